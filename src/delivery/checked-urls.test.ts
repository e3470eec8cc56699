import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CheckedUrls } from './checked-urls.ts';
import { InvalidTargetUrlError, TargetDeniedError } from './errors.ts';
import { checkTargetUrl, createAddressPolicy, type AddressPolicy } from './ssrf-guard.ts';

/** A policy that counts how often it judges an address. */
function countingPolicy(inner: AddressPolicy): AddressPolicy & { calls: number } {
  const counted = {
    calls: 0,
    check(address: string) {
      counted.calls += 1;
      return inner.check(address);
    },
  };
  return counted;
}

describe('CheckedUrls', () => {
  it('gives the origin and path checkTargetUrl gives, for a table of URLs', () => {
    const policy = createAddressPolicy({ allowCidrs: ['127.0.0.1/32'] });
    const cache = new CheckedUrls(policy);
    for (const url of ['http://127.0.0.1:8080/hook', 'https://example.com/a/b?x=1&y=2', 'http://example.com', 'https://[2606:4700:4700::1111]/p?q', 'http://0x7f.1/x']) {
      const direct = checkTargetUrl(url, policy);
      for (let i = 0; i < 2; i++) {
        assert.deepEqual(cache.check(url), { origin: direct.origin, path: `${direct.pathname}${direct.search}` }, url);
      }
    }
  });

  it('judges an unchanged URL once', () => {
    const policy = countingPolicy(createAddressPolicy({ allowCidrs: ['127.0.0.1/32'] }));
    const cache = new CheckedUrls(policy);
    for (let i = 0; i < 5; i++) cache.check('http://127.0.0.1:9000/x');
    assert.equal(policy.calls, 1);
  });

  it('judges a URL naming a different address on its own', () => {
    const policy = countingPolicy(createAddressPolicy({ allowCidrs: ['127.0.0.1/32'] }));
    const cache = new CheckedUrls(policy);
    cache.check('http://127.0.0.1:9000/x');
    assert.throws(() => cache.check('http://127.0.0.2:9000/x'), TargetDeniedError);
    assert.equal(policy.calls, 2);
  });

  it('never remembers a refused URL: it throws on every attempt', () => {
    const policy = countingPolicy(createAddressPolicy());
    const cache = new CheckedUrls(policy);
    for (let i = 0; i < 3; i++) {
      assert.throws(() => cache.check('http://169.254.169.254/latest/meta-data'), TargetDeniedError);
      assert.throws(() => cache.check('ftp://example.com/'), InvalidTargetUrlError);
      assert.throws(() => cache.check('http://user:pw@example.com/'), InvalidTargetUrlError);
    }
    assert.equal(policy.calls, 3);
    assert.equal(cache.size, 0);
  });

  it('stays within its bound', () => {
    const cache = new CheckedUrls(createAddressPolicy(), 4);
    for (let i = 0; i < 10; i++) cache.check(`https://example.com/${i}`);
    assert.ok(cache.size <= 4);
    assert.deepEqual(cache.check('https://example.com/9'), { origin: 'https://example.com', path: '/9' });
  });
});
