import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeliveryConfigError, InvalidTargetUrlError, TargetDeniedError } from './errors.ts';
import { checkTargetUrl, createAddressPolicy } from './ssrf-guard.ts';

describe('AddressPolicy (defaults)', () => {
  const policy = createAddressPolicy();
  const table: [string, boolean, string?][] = [
    // public unicast
    ['8.8.8.8', true],
    ['1.1.1.1', true],
    ['2606:4700:4700::1111', true],
    ['::ffff:8.8.8.8', true], // mapped to an allowed IPv4
    // IPv4 denied ranges
    ['127.0.0.1', false, 'loopback'],
    ['127.255.255.254', false, 'loopback'],
    ['10.0.0.1', false, 'private'],
    ['172.16.5.4', false, 'private'],
    ['192.168.1.1', false, 'private'],
    ['169.254.169.254', false, 'linkLocal'], // AWS/GCP/Azure metadata
    ['100.64.0.1', false, 'carrierGradeNat'],
    ['100.100.100.200', false, 'carrierGradeNat'], // Alibaba metadata
    ['0.0.0.0', false, 'unspecified'],
    ['0.1.2.3', false, 'unspecified'],
    ['224.0.0.1', false, 'multicast'],
    ['240.0.0.1', false, 'reserved'],
    ['255.255.255.255', false, 'broadcast'],
    ['192.0.0.192', false, 'reserved'],
    ['198.18.0.1', false],
    // IPv6 denied ranges
    ['::1', false, 'loopback'],
    ['::', false, 'unspecified'],
    ['fe80::1', false, 'linkLocal'],
    ['fe80::1%eth0', false, 'linkLocal'],
    ['fc00::1', false, 'uniqueLocal'],
    ['fd00:ec2::254', false, 'uniqueLocal'], // AWS IPv6 metadata
    ['ff02::1', false, 'multicast'],
    ['::ffff:127.0.0.1', false, 'loopback'], // mapped loopback
    ['::ffff:169.254.169.254', false, 'linkLocal'],
    ['::ffff:7f00:1', false, 'loopback'], // same, hex form
    ['::127.0.0.1', false, 'loopback'], // ipaddr.js reads the dotted compatible form as mapped
    ['::7f00:1', false, 'ipv4Compatible'], // the same address in hex: IPv4-compatible, deprecated
    ['::808:808', false, 'ipv4Compatible'],
    ['64:ff9b::a9fe:a9fe', false, 'rfc6052'], // NAT64 of 169.254.169.254
    ['2002:a9fe:a9fe::1', false, '6to4'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', false, 'teredo'],
    ['2001:db8::1', false, 'reserved'],
    // not addresses
    ['not-an-ip', false, 'invalid'],
    ['', false, 'invalid'],
  ];
  for (const [address, allowed, range] of table) {
    it(`${address || '(empty)'} → ${allowed ? 'allowed' : `denied${range ? ` (${range})` : ''}`}`, () => {
      const verdict = policy.check(address);
      assert.equal(verdict.allowed, allowed);
      if (!verdict.allowed && range) assert.equal(verdict.range, range);
    });
  }
});

describe('AddressPolicy (operator lists)', () => {
  it('allowCidrs opens private ranges, and only those', () => {
    const policy = createAddressPolicy({ allowCidrs: ['127.0.0.1/32', '10.20.0.0/16', 'fd12::/16'] });
    assert.equal(policy.check('127.0.0.1').allowed, true);
    assert.equal(policy.check('::ffff:127.0.0.1').allowed, true); // mapped form of an allowed address
    assert.equal(policy.check('127.0.0.2').allowed, false);
    assert.equal(policy.check('10.20.3.4').allowed, true);
    assert.equal(policy.check('10.21.0.1').allowed, false);
    assert.equal(policy.check('fd12::5').allowed, true);
    assert.equal(policy.check('169.254.169.254').allowed, false);
  });

  it('denyCidrs closes public ranges and wins over allowCidrs', () => {
    const policy = createAddressPolicy({ denyCidrs: ['203.0.113.0/24', '8.8.0.0/16'], allowCidrs: ['8.8.8.0/24'] });
    const v = policy.check('8.8.8.8');
    assert.equal(v.allowed, false);
    assert.equal(v.range, 'denyCidrs 8.8.0.0/16');
    assert.equal(policy.check('1.1.1.1').allowed, true);
  });

  it('refuses CIDRs that do not parse, naming the entry', () => {
    assert.throws(
      () => createAddressPolicy({ allowCidrs: ['10.0.0.0/8', '10.0.0.0/33'] }),
      (e: unknown) => e instanceof DeliveryConfigError && e.option === 'allowCidrs[1]',
    );
    assert.throws(() => createAddressPolicy({ denyCidrs: ['localhost'] }), DeliveryConfigError);
  });
});

describe('checkTargetUrl', () => {
  const policy = createAddressPolicy();

  it('accepts http(s) URLs with host names (checked later, at connect)', () => {
    assert.equal(checkTargetUrl('https://billing.example.com/v1/invoices?x=1', policy).pathname, '/v1/invoices');
    assert.equal(checkTargetUrl('http://localhost:8080/', policy).hostname, 'localhost');
    assert.equal(checkTargetUrl('https://8.8.8.8/', policy).hostname, '8.8.8.8');
  });

  it('denies IP literals in denied ranges before anything is dialled, with a clear message', () => {
    assert.throws(
      () => checkTargetUrl('http://169.254.169.254/latest/meta-data/', policy),
      (e: unknown) =>
        e instanceof TargetDeniedError &&
        e.stage === 'url' &&
        e.range === 'linkLocal' &&
        e.message.startsWith('target address 169.254.169.254 is in a denied range (linkLocal); allow it with'),
    );
    for (const url of ['http://10.0.0.1/', 'http://[::1]:8080/', 'http://[::ffff:127.0.0.1]/', 'http://0.0.0.0/']) {
      assert.throws(() => checkTargetUrl(url, policy), TargetDeniedError, url);
    }
  });

  it('judges obfuscated IPv4 literals in canonical form', () => {
    for (const url of ['http://2130706433/', 'http://0x7f.1/', 'http://0177.0.0.1/', 'http://127.1/', 'http://0xa9fea9fe/']) {
      assert.throws(() => checkTargetUrl(url, policy), TargetDeniedError, url);
    }
  });

  it('refuses other schemes, userinfo and garbage, without echoing a password', () => {
    const reasons: [string, string][] = [
      ['ftp://example.com/', 'scheme'],
      ['file:///etc/passwd', 'scheme'],
      ['https://user:s3cret@example.com/', 'userinfo'],
      ['https://user@example.com/', 'userinfo'],
      ['not a url', 'unparseable'],
      ['/relative/path', 'unparseable'],
    ];
    for (const [url, reason] of reasons) {
      assert.throws(
        () => checkTargetUrl(url, policy),
        (e: unknown) => e instanceof InvalidTargetUrlError && e.reason === reason && !e.message.includes('s3cret'),
        url,
      );
    }
  });

  it('lets allowCidrs admit a private literal', () => {
    const open = createAddressPolicy({ allowCidrs: ['127.0.0.1/32'] });
    assert.equal(checkTargetUrl('http://127.0.0.1:9/', open).port, '9');
  });
});
