/**
 * HTTP delivery against real local HTTP servers (test/support/fault-target.ts): undici pools, the
 * SSRF guard on the connect path, timeouts, redirects, encodings, OAuth2, and the fault target's
 * own Stripe-style idempotency behaviour. Needs no Kubernetes and no NATS.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import {
  classify,
  createAddressPolicy,
  DeliveryAbortedError,
  DeliveryNetworkError,
  DeliveryTimeoutError,
  HttpDeliverer,
  OAuth2ClientCredentials,
  outcomeOfError,
  parseRetryAfter,
  TargetDeniedError,
  TokenCache,
  withAuth,
  type ClassifyPolicy,
  type DeliveryRequest,
} from '../../src/delivery/index.ts';
import { silentLogger, systemClock } from '../../src/observability/index.ts';
import { faults, perKey, startFaultTarget, type FaultTarget, type Script } from '../support/fault-target.ts';

const policy: ClassifyPolicy = { successCodes: [200, 201, 202, 204], retryOn: [408, 425, 429, '5xx', 'network', 'timeout'] };
const loopbackAllowed = createAddressPolicy({ allowCidrs: ['127.0.0.1/32'] });

function newDeliverer(addressPolicy = loopbackAllowed): HttpDeliverer {
  return new HttpDeliverer({ policy: addressPolicy, clock: systemClock, logger: silentLogger() });
}

/** Runs `fn` with `script` in force on `target`, then back to plain successes. */
async function withScript(target: FaultTarget, script: Script, fn: () => Promise<void>): Promise<void> {
  target.script(script);
  try {
    await fn();
  } finally {
    target.script(undefined);
  }
}

/** Records every connection undici starts, so a test can prove none was attempted. */
function watchConnects(): { hosts: string[]; stop: () => void } {
  const hosts: string[] = [];
  const onConnect = (message: unknown): void => {
    const params = (message as { connectParams?: { hostname?: string } }).connectParams;
    hosts.push(params?.hostname ?? '?');
  };
  diagnostics.subscribe('undici:client:beforeConnect', onConnect);
  return { hosts, stop: () => diagnostics.unsubscribe('undici:client:beforeConnect', onConnect) };
}

describe('HttpDeliverer against a fault target', () => {
  let target: FaultTarget;
  let deliverer: HttpDeliverer;
  const post = (path: string, key: string, value: unknown = { id: key }, extra: Partial<DeliveryRequest> = {}): DeliveryRequest => ({
    url: `${target.url}${path}`,
    method: 'POST',
    body: { encoding: 'json', value },
    idempotencyKey: key,
    timeoutMs: 5000,
    ...extra,
  });

  const scripted = (script: Script, fn: () => Promise<void>): Promise<void> => withScript(target, script, fn);

  before(async () => {
    target = await startFaultTarget();
    deliverer = newDeliverer();
  });
  after(async () => {
    await deliverer.close();
    await target.close();
  });

  it('delivers a POST with its idempotency key, JSON body and headers', async () => {
    const response = await deliverer.deliver(
      post('/v1/invoices?draft=1', 'deal_1-invoice', { externalId: 'deal_1', total: 1250 }, { headers: { 'X-Api-Version': '2024-06-01' } }),
    );
    assert.equal(response.status, 200);
    assert.deepEqual(JSON.parse(response.body), { id: `obj_${target.requests.length - 1}`, received: true });
    assert.equal(response.truncated, false);
    assert.ok(response.durationMs >= 0);
    assert.equal(classify({ kind: 'status', status: response.status }, policy).action, 'success');
    const seen = target.requests.at(-1)!;
    assert.equal(seen.method, 'POST');
    assert.equal(seen.path, '/v1/invoices?draft=1');
    assert.equal(seen.headers['idempotency-key'], 'deal_1-invoice');
    assert.equal(seen.headers['content-type'], 'application/json');
    assert.equal(seen.headers['x-api-version'], '2024-06-01');
    assert.equal(seen.headers['user-agent'], 'ferry');
    assert.equal(seen.body, '{"externalId":"deal_1","total":1250}');
  });

  it('sends form bodies Stripe-style under a custom idempotency header', async () => {
    await deliverer.deliver({
      ...post('/v1/payment_intents', 'pi-1', { amount: 2000, metadata: { order: 'o 1' } }),
      body: { encoding: 'form', value: { amount: 2000, metadata: { order: 'o 1' } } },
      idempotencyHeader: 'X-Request-Id',
    });
    const seen = target.requests.at(-1)!;
    assert.equal(seen.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(seen.body, 'amount=2000&metadata[order]=o%201');
    assert.equal(seen.headers['x-request-id'], 'pi-1');
  });

  it('returns a 503 as a response that classifies as a retryable failure', async () => {
    await scripted(perKey(faults.unavailable()), async () => {
      const response = await deliverer.deliver(post('/v1/invoices', 'k-503'));
      assert.equal(response.status, 503);
      const c = classify({ kind: 'status', status: response.status }, policy);
      assert.deepEqual(c, { action: 'retry', throttle: false, breaker: 'failure', retryAfterMs: undefined });
      // The retry with the same key is executed normally: a 503 in front of the app saves nothing.
      assert.equal((await deliverer.deliver(post('/v1/invoices', 'k-503'))).status, 200);
    });
  });

  it('reads a 429 Retry-After into a throttle', async () => {
    await scripted(perKey(faults.throttle(7)), async () => {
      const response = await deliverer.deliver(post('/v1/invoices', 'k-429'));
      const retryAfterMs = parseRetryAfter(response.headers['retry-after'], { now: Date.now(), maxMs: 600_000 });
      assert.equal(retryAfterMs, 7000);
      const c = classify({ kind: 'status', status: response.status, retryAfterMs }, policy);
      assert.deepEqual(c, { action: 'retry', throttle: true, breaker: 'neutral', retryAfterMs: 7000 });
    });
  });

  it('times out an attempt whose target never answers', async () => {
    await scripted(perKey(faults.hang()), async () => {
      await assert.rejects(deliverer.deliver(post('/v1/invoices', 'k-hang', undefined, { timeoutMs: 200 })), (e: unknown) => {
        assert.ok(e instanceof DeliveryTimeoutError, String(e));
        assert.equal(e.timeoutMs, 200);
        assert.equal(e.phase, 'attempt');
        assert.equal(e.retryable, true);
        assert.equal(outcomeOfError(e).kind, 'timeout');
        return true;
      });
      assert.equal(target.requests.at(-1)?.key, 'k-hang'); // it was sent, then abandoned
    });
  });

  it('times out a target that answers too slowly', async () => {
    await scripted(perKey(faults.slow(2000)), async () => {
      await assert.rejects(deliverer.deliver(post('/v1/invoices', 'k-slow', undefined, { timeoutMs: 200 })), DeliveryTimeoutError);
    });
  });

  it('times out a body that arrives too slowly after prompt headers (the deadline covers the body)', async () => {
    await scripted(perKey(faults.slowBody(2000)), async () => {
      await assert.rejects(deliverer.deliver(post('/v1/invoices', 'k-slow-body', undefined, { timeoutMs: 200 })), DeliveryTimeoutError);
      assert.equal(target.requests.at(-1)?.outcome, 'applied'); // applied, yet the attempt failed: why keys matter
    });
  });

  it('turns a connection reset into a retryable network error with the code kept', async () => {
    await scripted(perKey(faults.reset()), async () => {
      await assert.rejects(deliverer.deliver(post('/v1/invoices', 'k-reset')), (e: unknown) => {
        assert.ok(e instanceof DeliveryNetworkError, String(e));
        assert.ok(e.causeCode === 'ECONNRESET' || e.causeCode === 'UND_ERR_SOCKET', e.causeCode);
        assert.equal(outcomeOfError(e).kind, 'network');
        return true;
      });
    });
  });

  it('never follows a redirect', async () => {
    await scripted((r) => (r.path === '/v1/moved' ? faults.redirect(`${target.url}/v1/elsewhere`) : undefined), async () => {
      const before = target.requests.length;
      const response = await deliverer.deliver(post('/v1/moved', 'k-302'));
      assert.equal(response.status, 302);
      assert.equal(response.headers.location, `${target.url}/v1/elsewhere`);
      assert.equal(classify({ kind: 'status', status: 302 }, policy).action, 'reject');
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(target.requests.slice(before).map((r) => r.path), ['/v1/moved']);
    });
  });

  it('bounds the response body it reads and flags the cut', async () => {
    const big = 'x'.repeat(200 * 1024);
    await scripted(perKey(faults.respond(200, big)), async () => {
      const response = await deliverer.deliver(post('/v1/big', 'k-big'));
      assert.equal(response.truncated, true);
      assert.equal(response.body.length, 64 * 1024);
    });
  });

  it('hands back a malformed 2xx body as it is (contract checks are the caller\'s)', async () => {
    await scripted(perKey(faults.malformedJson()), async () => {
      const response = await deliverer.deliver(post('/v1/invoices', 'k-bad-json'));
      assert.equal(response.status, 200);
      assert.throws(() => JSON.parse(response.body) as unknown, SyntaxError);
    });
  });

  it('stops an attempt when the caller aborts', async () => {
    await scripted(perKey(faults.hang()), async () => {
      const ac = new AbortController();
      const attempt = deliverer.deliver(post('/v1/invoices', 'k-abort', undefined, { signal: ac.signal }));
      setTimeout(() => { ac.abort(); }, 50);
      await assert.rejects(attempt, (e: unknown) => e instanceof DeliveryAbortedError && outcomeOfError(e).kind === 'aborted');
    });
  });

  it('fails an attempt whose deadline passes while it waits for a connection, and never sends it', async () => {
    const single = new HttpDeliverer({ policy: loopbackAllowed, clock: systemClock, logger: silentLogger(), connectionsPerOrigin: 1 });
    try {
      await scripted(perKey(faults.slow(400)), async () => {
        const settled: string[] = [];
        const holder = single.deliver(post('/v1/queue', 'k-holder')).then((r) => {
          settled.push('holder');
          return r;
        });
        const queued = single.deliver(post('/v1/queue', 'k-queued', undefined, { timeoutMs: 100 })).catch((e: unknown) => {
          settled.push('queued');
          return e;
        });
        const error = await queued;
        assert.ok(error instanceof DeliveryTimeoutError, String(error));
        assert.equal(error.phase, 'attempt');
        assert.equal((await holder).status, 200);
        // The queued attempt failed at its deadline, not when the connection came free.
        assert.deepEqual(settled, ['queued', 'holder']);
        // The pool reached the aborted attempt once the holder finished: nothing was written.
        await single.deliver(post('/v1/queue', 'k-after'));
        assert.deepEqual(
          target.requests.filter((r) => ['k-holder', 'k-queued', 'k-after'].includes(r.key ?? '')).map((r) => r.key),
          ['k-holder', 'k-after'],
        );
      });
    } finally {
      await single.close();
    }
  });

  it('keeps one pool per origin with a bounded number of kept-alive connections', async () => {
    const narrow = new HttpDeliverer({ policy: loopbackAllowed, clock: systemClock, logger: silentLogger(), connectionsPerOrigin: 2 });
    try {
      await scripted(perKey(faults.slow(30)), async () => {
        const first = target.requests.length;
        const keys = Array.from({ length: 10 }, (_, i) => `k-pool-${i}`);
        const responses = await Promise.all(keys.map((k) => narrow.deliver(post('/v1/pool', k))));
        assert.ok(responses.every((r) => r.status === 200));
        const ports = new Set(target.requests.slice(first).map((r) => r.remotePort));
        assert.equal(ports.size, 2); // ten concurrent attempts over exactly two connections
        assert.deepEqual(narrow.stats().map((s) => s.origin), [target.url]);
      });
    } finally {
      await narrow.close();
    }
  });
});

describe('SSRF guard on real connections', () => {
  let target: FaultTarget;
  before(async () => {
    target = await startFaultTarget();
  });
  after(async () => {
    await target.close();
  });

  it('denies a target on 127.0.0.1 unless allowCidrs includes it', async () => {
    const strict = newDeliverer(createAddressPolicy());
    const open = newDeliverer(createAddressPolicy({ allowCidrs: ['127.0.0.1/32'] }));
    try {
      const request: DeliveryRequest = { url: `${target.url}/v1/x`, method: 'POST', idempotencyKey: 'ssrf-1', timeoutMs: 2000 };
      await assert.rejects(strict.deliver(request), (e: unknown) => {
        assert.ok(e instanceof TargetDeniedError, String(e));
        assert.equal(e.range, 'loopback');
        assert.equal(outcomeOfError(e).kind, 'refused');
        return true;
      });
      assert.equal(target.requests.length, 0);
      assert.equal((await open.deliver(request)).status, 200);
      assert.equal(target.requests.length, 1);
    } finally {
      await strict.close();
      await open.close();
    }
  });

  it('refuses metadata and private IP literals before any connection is attempted', async () => {
    const strict = newDeliverer(createAddressPolicy());
    const connects = watchConnects();
    try {
      for (const [url, range] of [
        ['http://169.254.169.254/latest/meta-data/iam/', 'linkLocal'],
        ['http://10.0.0.1/', 'private'],
        ['http://[fd00:ec2::254]/', 'uniqueLocal'],
      ] as const) {
        await assert.rejects(strict.deliver({ url, method: 'GET', timeoutMs: 2000 }), (e: unknown) => {
          assert.ok(e instanceof TargetDeniedError, String(e));
          assert.equal(e.stage, 'url');
          assert.equal(e.range, range);
          assert.match(e.message, /is in a denied range .*; allow it with/);
          return true;
        });
      }
      assert.deepEqual(connects.hosts, []);
      assert.deepEqual(strict.stats(), []); // not even a pool was created
    } finally {
      connects.stop();
      await strict.close();
    }
  });

  it('denies a host name that resolves to loopback (localhost) on the lookup path', async () => {
    const strict = newDeliverer(createAddressPolicy());
    try {
      const url = `http://localhost:${target.port}/v1/x`;
      await assert.rejects(strict.deliver({ url, method: 'POST', idempotencyKey: 'ssrf-2', timeoutMs: 2000 }), (e: unknown) => {
        assert.ok(e instanceof TargetDeniedError, String(e));
        assert.equal(e.stage, 'lookup');
        assert.equal(e.hostname, 'localhost');
        assert.equal(e.range, 'loopback');
        return true;
      });
      assert.equal(target.requests.length, 1); // only the allowed request of the first test
    } finally {
      await strict.close();
    }
  });

  it('denies on the lookup path with a faked DNS answer pointing at the metadata address', async () => {
    const strict = new HttpDeliverer({
      policy: createAddressPolicy(),
      clock: systemClock,
      logger: silentLogger(),
      resolve: () => Promise.resolve([{ address: '169.254.169.254', family: 4 }]),
    });
    const connects = watchConnects();
    try {
      await assert.rejects(
        strict.deliver({ url: 'http://billing.example.com/v1', method: 'POST', timeoutMs: 2000 }),
        (e: unknown) => e instanceof TargetDeniedError && e.stage === 'lookup' && e.address === '169.254.169.254',
      );
      // undici began connecting (it must, to call our lookup) but no socket reached the address.
      assert.deepEqual(connects.hosts, ['billing.example.com']);
    } finally {
      connects.stop();
      await strict.close();
    }
  });
});

describe('OAuth2 client credentials end to end', () => {
  let target: FaultTarget;
  let deliverer: HttpDeliverer;
  let issued = 0;
  let valid = new Set<string>();

  before(async () => {
    target = await startFaultTarget();
    deliverer = newDeliverer();
    target.script((r) => {
      if (r.path === '/oauth/token') {
        const token = `tok-${++issued}`;
        valid.add(token);
        return faults.respond(200, JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 3600 }), {
          'content-type': 'application/json',
        });
      }
      const presented = r.headers.authorization?.replace(/^Bearer /, '') ?? '';
      return valid.has(presented) ? undefined : faults.status(401, { 'www-authenticate': 'Bearer error="invalid_token"' });
    });
  });
  after(async () => {
    await deliverer.close();
    await target.close();
  });

  const tokenRequests = (): number => target.requests.filter((r) => r.path === '/oauth/token').length;

  it('fetches the token once, reuses it, and refreshes once on 401', async () => {
    const auth = new OAuth2ClientCredentials(
      { tokenUrl: `${target.url}/oauth/token`, clientId: 'ferry', clientSecret: 'shh', scopes: ['invoices:write'] },
      { deliverer, cache: new TokenCache(systemClock), clock: systemClock },
    );
    const authed = withAuth(deliverer, auth);
    const send = (key: string) =>
      authed.deliver({ url: `${target.url}/v1/invoices`, method: 'POST', body: { encoding: 'json', value: { key } }, idempotencyKey: key, timeoutMs: 2000 });

    for (const key of ['o-1', 'o-2', 'o-3']) assert.equal((await send(key)).status, 200);
    assert.equal(tokenRequests(), 1);
    const tokenRequest = target.requests.find((r) => r.path === '/oauth/token')!;
    assert.equal(tokenRequest.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(tokenRequest.body, 'grant_type=client_credentials&scope=invoices%3Awrite');
    assert.equal(tokenRequest.headers.authorization, `Basic ${Buffer.from('ferry:shh').toString('base64')}`);

    valid = new Set(); // the server revokes every token
    assert.equal((await send('o-4')).status, 200);
    assert.equal(tokenRequests(), 2);
    const o4 = target.requests.filter((r) => r.key === 'o-4');
    assert.deepEqual(o4.map((r) => r.outcome), ['fault', 'applied']); // 401, then success with the new token

    // A target that refuses every token: exactly one refresh, then the 401 is the answer.
    target.script((r) => (r.path === '/oauth/token' ? faults.respond(200, JSON.stringify({ access_token: `tok-${++issued}` })) : faults.status(401)));
    const response = await send('o-5');
    assert.equal(response.status, 401);
    assert.equal(tokenRequests(), 3);
    assert.equal(target.requests.filter((r) => r.key === 'o-5').length, 2);
    assert.equal(classify({ kind: 'status', status: 401 }, policy).action, 'unauthorized');
  });
});

describe('fault target idempotency (Stripe semantics)', () => {
  let target: FaultTarget;
  let deliverer: HttpDeliverer;
  before(async () => {
    target = await startFaultTarget();
    deliverer = newDeliverer();
  });
  after(async () => {
    await deliverer.close();
    await target.close();
  });
  const send = (key: string, value: unknown) =>
    deliverer.deliver({ url: `${target.url}/v1/charges`, method: 'POST', body: { encoding: 'json', value }, idempotencyKey: key, timeoutMs: 2000 });

  it('replays the first response for a retry with the same key and body', async () => {
    const first = await send('ch-1', { id: 'charge-1', amount: 1 });
    const second = await send('ch-1', { id: 'charge-1', amount: 1 });
    assert.equal(second.status, first.status);
    assert.equal(second.body, first.body);
    assert.equal(second.headers['idempotent-replayed'], 'true');
    assert.equal(first.headers['idempotent-replayed'], undefined);
    assert.deepEqual(target.stats(), { requests: 2, applied: 1, replays: 1, distinctKeys: 1, duplicates: 0, identities: 1, unauthorized: 0, conflicts: 0 });
    assert.equal(target.appliedCount('charge-1'), 1);
  });

  it('answers 422 for the same key with a different body, applying nothing', async () => {
    const response = await send('ch-1', { id: 'charge-1', amount: 2 });
    assert.equal(response.status, 422);
    assert.equal((JSON.parse(response.body) as { error: { type: string } }).error.type, 'idempotency_error');
    assert.equal(target.stats().applied, 1);
    assert.equal(target.requests.at(-1)?.outcome, 'mismatch');
  });

  it('replays a response the client never saw (lost response, then retry)', async () => {
    await withScript(target, perKey(faults.lostResponse()), async () => {
      await assert.rejects(send('ch-lost', { amount: 3 }), DeliveryNetworkError);
      const retry = await send('ch-lost', { amount: 3 });
      assert.equal(retry.status, 200);
      assert.equal(retry.headers['idempotent-replayed'], 'true');
      assert.equal(target.applied.filter((a) => a.key === 'ch-lost').length, 1);
    });
  });

  it('counts duplicates by business identity when a target does not honour keys', async () => {
    const naive = await startFaultTarget({ honourIdempotency: false });
    try {
      const url = `${naive.url}/v1/charges`;
      for (let i = 0; i < 3; i++) {
        await deliverer.deliver({ url, method: 'POST', body: { encoding: 'json', value: { externalId: 'inv-1' } }, idempotencyKey: `k-${i}`, timeoutMs: 2000 });
      }
      // Three keys, one invoice: only the body's identity shows that it was applied three times.
      assert.deepEqual(naive.stats(), { requests: 3, applied: 3, replays: 0, distinctKeys: 3, duplicates: 2, identities: 1, unauthorized: 0, conflicts: 0 });
      assert.equal(naive.appliedCount('inv-1'), 3);
    } finally {
      await naive.close();
    }
  });

  it('requires credentials like a real API: 401 and nothing applied without them, rotation at any time', async () => {
    const guarded = await startFaultTarget({ auth: { kind: 'bearer', token: 'old' } });
    try {
      const url = `${guarded.url}/v1/charges`;
      const post = (key: string, headers: Record<string, string>) =>
        deliverer.deliver({ url, method: 'POST', headers, body: { encoding: 'json', value: { externalId: key } }, idempotencyKey: key, timeoutMs: 2000 });
      assert.equal((await post('a-1', {})).status, 401);
      assert.equal((await post('a-1', { authorization: 'Bearer wrong' })).status, 401);
      assert.equal((await post('a-1', { authorization: 'Bearer old' })).status, 200);
      guarded.setAuth({ kind: 'bearer', token: 'new' });
      assert.equal((await post('a-2', { authorization: 'Bearer old' })).status, 401, 'rotated: the old token is refused');
      assert.equal((await post('a-2', { authorization: 'Bearer new' })).status, 200);
      assert.equal(guarded.stats().unauthorized, 3);
      assert.equal(guarded.stats().applied, 2);
    } finally {
      await guarded.close();
    }
  });
});
