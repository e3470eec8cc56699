/**
 * Targets that require credentials, end to end: every auth kind the CRD offers reaches a target
 * that checks it (OAuth2 with a token endpoint whose tokens expire), and credentials rotated
 * under load park nothing — events wait in their source, `Degraded` names the Secret, and
 * delivery resumes as soon as the Secret is updated. Effects are counted by the invoice in the
 * body, never by the key under test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EventsV1Api } from '@kubernetes/client-node';
import { faults, type TargetAuth } from '../support/fault-target.ts';
import { condition } from '../support/ferry-client.ts';
import { startOAuth2Server, type OAuth2TokenServer } from '../support/oauth2-server.ts';
import {
  createIntegration,
  drained,
  eventually,
  fallbackMessages,
  NS,
  publishEvents,
  putSecret,
  runtimeSuite,
  type RuntimeEnv,
} from '../support/runtime-harness.ts';

describe('runtime: targets that require credentials', () => {
  const suite = runtimeSuite('rt-auth');
  let r: RuntimeEnv;
  let oauth: OAuth2TokenServer;
  before(async () => {
    r = suite.env();
    // Tokens live 2 s: a stream of events outlives several of them.
    oauth = await startOAuth2Server({ ttlSeconds: 2 });
  });
  after(async () => {
    await oauth.close();
  });

  const kinds: [string, () => TargetAuth][] = [
    ['bearer', () => ({ kind: 'bearer', token: 'b3arer-t0ken' })],
    ['basic', () => ({ kind: 'basic', username: 'ferry', password: 'p@ss:word' })],
    ['apikey', () => ({ kind: 'apiKey', header: 'X-Api-Key', key: 'k-123' })],
    ['oauth', () => ({ kind: 'oauth2', server: oauth })],
  ];
  for (const [name, auth] of kinds) {
    it(`${name}: every event reaches a target that requires it, exactly once`, async () => {
      const t = await suite.target({ auth: auth() });
      await createIntegration(r, { credentials: t.auth, name: `auth-${name}`, subject: `events.auth-${name}`, url: `${t.url}/v1/invoices`, delivery: { concurrency: 4 } });
      const n = name === 'oauth' ? 60 : 30;
      const ids = Array.from({ length: n }, (_, i) => `${name}-${i}`);
      // OAuth2: published over ~5 s, so tokens expire while events flow.
      const batches = name === 'oauth' ? 6 : 1;
      for (let b = 0; b < batches; b++) {
        await publishEvents(r, `events.auth-${name}`, ids.slice((b * n) / batches, ((b + 1) * n) / batches).map((id, i) => ({ id, amount: i })));
        if (batches > 1) await new Promise((resolve) => setTimeout(resolve, 900));
      }
      await eventually(`all ${n} applied`, () => t.stats().identities === n || undefined, 60_000);
      await drained(r, `auth-${name}`);
      assert.equal(t.stats().duplicates, 0);
      for (const id of ids) assert.equal(t.appliedCount(id), 1, id);
      assert.equal((await fallbackMessages(r, `auth-${name}`)).length, 0, 'nothing parked');
      if (name === 'oauth') {
        assert.ok(oauth.issued >= 2, `tokens were refreshed as they expired (${oauth.issued} issued)`);
      } else {
        assert.equal(t.stats().unauthorized, 0, 'every request carried valid credentials');
      }
    });
  }

  it('credentials rotated under load: nothing parked, Degraded names the Secret, delivery resumes at once when the Secret is updated', async () => {
    const t = await suite.target({ auth: { kind: 'bearer', token: 'before-rotation' } });
    // A slow target keeps events in flight while the API rotates its credentials.
    t.script(() => faults.slow(15));
    const name = 'rotated';
    await createIntegration(r, {
      credentials: t.auth,
      name,
      subject: `events.${name}`,
      url: `${t.url}/v1/invoices`,
      // openFor far longer than the test waits after the Secret update: resuming must not wait for it.
      delivery: { concurrency: 8, maxAttempts: 3, circuitBreaker: { failures: 3, window: '30s', openFor: '120s' } },
    });
    const n = 400;
    await publishEvents(r, `events.${name}`, Array.from({ length: n }, (_, i) => ({ id: `rot-${i}`, amount: i })));
    await eventually('some applied', () => t.stats().applied > 50 || undefined, 30_000);

    t.setAuth({ kind: 'bearer', token: 'after-rotation' });
    const degraded = await r.ferry.waitFor('integrations', NS, name, (o) => condition(o, 'Degraded')?.reason === 'TargetUnauthorized', 30_000);
    assert.equal(condition(degraded, 'Degraded')?.status, 'True');
    assert.match(condition(degraded, 'Degraded')?.message ?? '', /Secret "rotated-credentials" key "token"/);
    const eventsApi = r.env.kubeConfig.makeApiClient(EventsV1Api);
    await eventually('a Warning Event names the Secret', async () =>
      (await eventsApi.listNamespacedEvent({ namespace: NS })).items.some(
        (e) => e.regarding?.name === name && e.type === 'Warning' && e.reason === 'TargetUnauthorized' && /rotated-credentials/.test(e.note ?? ''),
      ) || undefined,
    20_000);
    // The breaker opened on the 401s: the consumer is paused, the rest waits in the stream.
    const appliedWhileRefused = t.stats().applied;
    assert.ok(appliedWhileRefused < n);
    assert.ok(t.stats().unauthorized >= 3);

    const updatedAt = Date.now();
    await putSecret(r, `${name}-credentials`, { token: 'after-rotation' });
    await eventually(`all ${n} applied after the Secret update`, () => t.stats().identities === n || undefined, 90_000).catch((err: unknown) => {
      throw new Error(`${String(err)} stats=${JSON.stringify(t.stats())} logs=${JSON.stringify(r.operators[0]!.logs.filter((l) => /circuit|credentials|swapping|not runnable|resume/.test(String(l.msg))).slice(-15))}`);
    });
    const resumedIn = Date.now() - updatedAt;
    assert.ok(resumedIn < 60_000, `delivery resumed without waiting for the breaker's openFor of 120 s (${resumedIn} ms)`);
    await drained(r, name, 60_000);
    assert.equal((await fallbackMessages(r, name)).length, 0, 'wrong credentials never park an event');
    assert.equal(t.stats().duplicates, 0, 'each invoice applied once');
    const healed = await r.ferry.waitFor('integrations', NS, name, (o) => condition(o, 'Degraded')?.status === 'False' && (o.status?.stats as { delivered?: number } | undefined)?.delivered === n, 30_000);
    assert.equal(condition(healed, 'Ready')?.status, 'True');
    // Counters settle: nothing is counted twice afterwards.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const settled = await r.ferry.get('integrations', NS, name);
    assert.equal((settled.status?.stats as { delivered?: number } | undefined)?.delivered, n, 'status counts each event once');
  });
});
