import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { apiKeyAuth, basicAuth, bearerAuth, type AuthProvider } from './auth.ts';
import type { Deliverer, DeliveryRequest } from './deliverer.ts';
import { withAuth } from './with-auth.ts';

describe('static auth providers', () => {
  it('build the expected headers', async () => {
    assert.deepEqual((await bearerAuth('tok').authorize()).headers, { authorization: 'Bearer tok' });
    assert.deepEqual((await basicAuth('Aladdin', 'open sesame').authorize()).headers, { authorization: 'Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==' });
    assert.deepEqual((await apiKeyAuth('X-Api-Key', 'k1').authorize()).headers, { 'x-api-key': 'k1' });
    assert.deepEqual(apiKeyAuth('X-Api-Key', 'k1').sensitiveHeaders, ['x-api-key']);
  });

  it('do not show the secret when serialised or inspected', () => {
    for (const provider of [bearerAuth('SECRET'), basicAuth('u', 'SECRET'), apiKeyAuth('X-Key', 'SECRET')]) {
      assert.ok(!JSON.stringify(provider).includes('SECRET'));
      assert.ok(!inspect(provider, { depth: 5 }).includes('SECRET'));
    }
  });
});

function target(statuses: number[]): Deliverer & { seen: DeliveryRequest[] } {
  const seen: DeliveryRequest[] = [];
  return {
    seen,
    deliver(request) {
      seen.push(request);
      const status = statuses[seen.length - 1] ?? 200;
      return Promise.resolve({ status, headers: {}, body: '', truncated: false, durationMs: 1 });
    },
  };
}

const request: DeliveryRequest = {
  url: 'https://api.example.com/v1/x',
  method: 'POST',
  headers: { Authorization: 'from config', 'X-Api-Version': '1' },
  idempotencyKey: 'k1',
  timeoutMs: 1000,
};

describe('withAuth', () => {
  it('adds the provider headers, overriding same-named config headers case-insensitively', async () => {
    const t = target([200]);
    await withAuth(t, bearerAuth('tok')).deliver(request);
    assert.deepEqual(t.seen[0]?.headers, { authorization: 'Bearer tok', 'x-api-version': '1' });
    assert.equal(t.seen[0].idempotencyKey, 'k1');
  });

  it('returns a static secret\'s 401 at once', async () => {
    const t = target([401]);
    const r = await withAuth(t, bearerAuth('tok')).deliver(request);
    assert.equal(r.status, 401);
    assert.equal(t.seen.length, 1);
  });

  it('refreshes a refreshable credential once on 401 and returns the second answer, whatever it is', async () => {
    let n = 0;
    const invalidated: (string | undefined)[] = [];
    const provider: AuthProvider = {
      sensitiveHeaders: ['authorization'],
      authorize: () => {
        n++;
        return Promise.resolve({ headers: { authorization: `Bearer t${n}` }, token: `t${n}` });
      },
      invalidate: (rejected) => {
        invalidated.push(rejected.token);
        return true;
      },
    };
    const ok = target([401, 200]);
    assert.equal((await withAuth(ok, provider).deliver(request)).status, 200);
    assert.deepEqual(ok.seen.map((r) => r.headers?.authorization), ['Bearer t1', 'Bearer t2']);
    assert.deepEqual(ok.seen.map((r) => r.idempotencyKey), ['k1', 'k1']);
    assert.deepEqual(invalidated, ['t1']);

    const still = target([401, 401, 200]);
    assert.equal((await withAuth(still, provider).deliver(request)).status, 401);
    assert.equal(still.seen.length, 2);
  });
});
