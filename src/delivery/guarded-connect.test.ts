import assert from 'node:assert/strict';
import type { LookupAddress } from 'node:dns';
import { describe, it } from 'node:test';
import { TargetDeniedError, TargetResolutionError } from './errors.ts';
import { createGuardedLookup, type Resolver } from './guarded-connect.ts';
import { createAddressPolicy } from './ssrf-guard.ts';

const fakeDns = (answers: Record<string, LookupAddress[]>): Resolver => (hostname) => {
  const found = answers[hostname];
  if (found) return Promise.resolve(found);
  return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
};

const dns = fakeDns({
  'api.example.com': [{ address: '93.184.216.34', family: 4 }, { address: '2606:2800:220:1::1', family: 6 }],
  'rebind.example.com': [{ address: '93.184.216.34', family: 4 }, { address: '169.254.169.254', family: 4 }],
  'internal.example.com': [{ address: '10.1.2.3', family: 4 }],
  'empty.example.com': [],
});

function lookup(hostname: string, options: { all?: boolean; family?: number } = {}): Promise<{ error: Error | null; address: unknown; family?: number }> {
  const fn = createGuardedLookup(createAddressPolicy(), dns);
  return new Promise((resolve) => {
    fn(hostname, options, (error, address, family) => {
      resolve({ error, address, family });
    });
  });
}

describe('createGuardedLookup', () => {
  it('returns all allowed addresses when asked for all (happy eyeballs)', async () => {
    const r = await lookup('api.example.com', { all: true });
    assert.equal(r.error, null);
    assert.deepEqual(r.address, [
      { address: '93.184.216.34', family: 4 },
      { address: '2606:2800:220:1::1', family: 6 },
    ]);
  });

  it('returns the first address of the wanted family otherwise', async () => {
    assert.deepEqual(await lookup('api.example.com'), { error: null, address: '93.184.216.34', family: 4 });
    const v6 = await lookup('api.example.com', { family: 6 });
    assert.equal(v6.address, '2606:2800:220:1::1');
  });

  it('refuses a name that resolves to a denied address', async () => {
    const r = await lookup('internal.example.com', { all: true });
    assert.ok(r.error instanceof TargetDeniedError);
    assert.equal(r.error.stage, 'lookup');
    assert.equal(r.error.hostname, 'internal.example.com');
    assert.equal(r.error.address, '10.1.2.3');
    assert.match(r.error.message, /^target internal\.example\.com resolved to 10\.1\.2\.3, which is in a denied range \(private\)/);
  });

  it('refuses the whole answer when any address is denied (DNS rebinding)', async () => {
    const r = await lookup('rebind.example.com', { all: true });
    assert.ok(r.error instanceof TargetDeniedError);
    assert.equal(r.error.range, 'linkLocal');
  });

  it('fails closed on DNS errors and empty answers', async () => {
    const missing = await lookup('nope.example.com', { all: true });
    assert.ok(missing.error instanceof TargetResolutionError);
    assert.equal(missing.error.dnsCode, 'ENOTFOUND');
    assert.equal(missing.error.retryable, true);
    const empty = await lookup('empty.example.com', { all: true });
    assert.ok(empty.error instanceof TargetResolutionError);
  });
});
