/**
 * Webhook ingress end to end: the operator as a process with --webhook-address, real NATS, a
 * local target. Signed requests of each scheme are stored once and delivered; every bad request
 * gets its status code and stores nothing (counted in the stream); nats-server down → 503 and
 * the sender's retry is accepted once it is back; 1,000 concurrent requests are all stored once;
 * an operator without --webhook-address does not call such an Integration Ready.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { Pool, request } from 'undici';
import { credentialsFor } from '../support/credentials.ts';
import type { FaultTarget } from '../support/fault-target.ts';
import { condition, isTrueNow } from '../support/ferry-client.ts';
import type { OperatorProcess } from '../support/operator-process.ts';
import { eventually, NS, putSecret, runtimeSuite, SOURCE, type RuntimeEnv } from '../support/runtime-harness.ts';

const STD_CURRENT = `whsec_${randomBytes(32).toString('base64')}`;
const STD_PREVIOUS = `whsec_${randomBytes(32).toString('base64')}`;
const GITHUB = 'github-secret';
const STRIPE = `whsec_${randomBytes(16).toString('hex')}`;
const SHOPIFY = 'shopify-secret';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

describe('webhook ingress', { timeout: 300_000 }, () => {
  const suite = runtimeSuite();
  let r: RuntimeEnv;
  let t: FaultTarget;
  let op: OperatorProcess;
  let base: string;

  const subject = (name: string): string => `events.hook.${name}`;
  /** Messages the source stream holds on a hook's subject. */
  async function stored(name: string): Promise<number> {
    const info = await r.jsm.streams.info(SOURCE, { subjects_filter: subject(name) });
    return info.state.subjects?.[subject(name)] ?? 0;
  }

  async function createHook(name: string, webhook: Record<string, unknown>, source: Record<string, unknown> = {}): Promise<void> {
    await r.ferry.create('integrations', NS, {
      kind: 'Integration',
      metadata: { name },
      spec: {
        source: { stream: SOURCE, subjects: [subject(name)], webhook: { subject: subject(name), ...webhook }, ...source },
        transform: { mapping: { externalId: '/id', total: '/amount' } },
        target: { url: `${t.url}/v1/invoices`, timeout: '2s', auth: credentialsFor(t.auth!, 'target').auth },
        delivery: { backoff: { initial: '10ms', max: '200ms' } },
      },
    });
  }

  async function post(path: string, body: string | Buffer, headers: Record<string, string>, method = 'POST'): Promise<Answer> {
    const res = await request(`${base}${path}`, { method: method as 'POST', headers: { 'content-type': 'application/json', ...headers }, body: method === 'GET' ? null : body });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  }

  function standardHeaders(secret: string, id: string, body: string, at = new Date()): Record<string, string> {
    return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign(id, at, body) };
  }
  const event = (id: string, amount = 1): string => JSON.stringify({ id, amount });

  before(async () => {
    r = suite.env();
    t = await suite.target();
    await putSecret(r, 'target', credentialsFor(t.auth!, 'target').secret);
    await putSecret(r, 'hooks', { current: STD_CURRENT, previous: STD_PREVIOUS, github: GITHUB, stripe: STRIPE, shopify: SHOPIFY });
    op = await r.startOperator('ingress', ['--webhook-address=127.0.0.1:0']);
    const line = await op.waitForLog((l) => l.msg === 'webhook ingress listening');
    base = `http://127.0.0.1:${String(line.port)}`;
    const both = [{ name: 'hooks', key: 'current' }, { name: 'hooks', key: 'previous' }];
    await createHook('std', { signature: { secretKeyRefs: both }, maxBodyBytes: 2048 });
    await createHook('gh', { signature: { scheme: 'HMAC', header: 'X-Hub-Signature-256', prefix: 'sha256=', secretKeyRefs: [{ name: 'hooks', key: 'github' }] }, idHeader: 'X-GitHub-Delivery' });
    await createHook('stripe', { signature: { scheme: 'Stripe', secretKeyRefs: [{ name: 'hooks', key: 'stripe' }] } });
    await createHook('shop', { signature: { scheme: 'HMAC', header: 'X-Shopify-Hmac-Sha256', encoding: 'Base64', secretKeyRefs: [{ name: 'hooks', key: 'shopify' }] }, idHeader: 'X-Shopify-Webhook-Id' });
    await createHook('limited', { signature: { secretKeyRefs: both }, rateLimit: { perSecond: 0.01, burst: 1 } });
    await createHook('bulk', { signature: { secretKeyRefs: both } });
    for (const name of ['std', 'gh', 'stripe', 'shop', 'limited', 'bulk']) {
      const obj = await r.ferry.waitFor('integrations', NS, name, (o) => isTrueNow(o, 'Ready'));
      assert.match(condition(obj, 'Ready')?.message ?? '', new RegExp(`webhook POST /hooks/${NS}/${name} → events\\.hook\\.${name}`));
    }
  });

  it('accepts each scheme (Standard Webhooks with either secret and several signatures, GitHub, Stripe, Shopify) and delivers the event', async () => {
    const answers: [string, Answer][] = [];
    const b1 = event('std-current', 1);
    answers.push(['std current', await post(`/hooks/${NS}/std`, b1, standardHeaders(STD_CURRENT, 'msg-std-1', b1))]);
    const b2 = event('std-previous', 2);
    answers.push(['std rotated', await post(`/hooks/${NS}/std`, b2, standardHeaders(STD_PREVIOUS, 'msg-std-2', b2))]);
    const b3 = event('std-several', 3);
    const h3 = standardHeaders(STD_PREVIOUS, 'msg-std-3', b3);
    h3['webhook-signature'] = `v1,${randomBytes(32).toString('base64')} ${h3['webhook-signature']!}`;
    answers.push(['std several', await post(`/hooks/${NS}/std`, b3, h3)]);
    const b4 = event('gh-1', 4);
    answers.push(['github', await post(`/hooks/${NS}/gh`, b4, { 'X-Hub-Signature-256': `sha256=${createHmac('sha256', GITHUB).update(b4).digest('hex')}`, 'X-GitHub-Delivery': 'gh-delivery-1' })]);
    const b5 = event('evt_stripe_1', 5);
    const ts = Math.floor(Date.now() / 1000);
    answers.push(['stripe', await post(`/hooks/${NS}/stripe`, b5, { 'Stripe-Signature': `t=${ts},v1=${createHmac('sha256', STRIPE).update(`${ts}.${b5}`).digest('hex')}` })]);
    const b6 = event('shop-1', 6);
    answers.push(['shopify', await post(`/hooks/${NS}/shop`, b6, { 'X-Shopify-Hmac-Sha256': createHmac('sha256', SHOPIFY).update(b6).digest('base64'), 'X-Shopify-Webhook-Id': 'shop-delivery-1' })]);
    for (const [what, a] of answers) assert.equal(a.status, 202, `${what}: ${a.body}`);
    for (const id of ['std-current', 'std-previous', 'std-several', 'gh-1', 'evt_stripe_1', 'shop-1']) {
      await eventually(`${id} delivered`, () => t.appliedCount(id) === 1 || undefined, 30_000);
    }
    assert.equal(await stored('std'), 3);
  });

  it('answers each bad request with its status and stores nothing', async () => {
    const before = await stored('std');
    const body = event('bad-1');
    const good = standardHeaders(STD_CURRENT, 'msg-bad-1', body);
    const cases: [string, Promise<Answer>, number][] = [
      ['bad signature', post(`/hooks/${NS}/std`, body, { ...good, 'webhook-signature': `v1,${randomBytes(32).toString('base64')}` }), 401],
      ['signed by an unknown secret', post(`/hooks/${NS}/std`, body, standardHeaders(`whsec_${randomBytes(32).toString('base64')}`, 'msg-bad-1', body)), 401],
      ['body changed after signing', post(`/hooks/${NS}/std`, event('bad-1', 999), good), 401],
      ['signature header missing', post(`/hooks/${NS}/std`, body, { 'webhook-id': 'msg-bad-1', 'webhook-timestamp': good['webhook-timestamp']! }), 401],
      ['id header missing', post(`/hooks/${NS}/std`, body, { 'webhook-timestamp': good['webhook-timestamp']!, 'webhook-signature': good['webhook-signature']! }), 400],
      ['timestamp not a number', post(`/hooks/${NS}/std`, body, { ...good, 'webhook-timestamp': 'yesterday' }), 400],
      ['stale timestamp (signed 10 minutes ago)', post(`/hooks/${NS}/std`, body, standardHeaders(STD_CURRENT, 'msg-bad-1', body, new Date(Date.now() - 600_000))), 401],
      ['far-future timestamp', post(`/hooks/${NS}/std`, body, standardHeaders(STD_CURRENT, 'msg-bad-1', body, new Date(Date.now() + 600_000))), 401],
      ['too large', post(`/hooks/${NS}/std`, JSON.stringify({ id: 'big', pad: 'x'.repeat(3_000) }), good), 413],
      ['wrong method', post(`/hooks/${NS}/std`, '', good, 'GET'), 405],
      ['wrong content type', post(`/hooks/${NS}/std`, body, { ...good, 'content-type': 'text/plain' }), 415],
      ['signed body that is not JSON', post(`/hooks/${NS}/std`, 'not json', standardHeaders(STD_CURRENT, 'msg-bad-2', 'not json')), 400],
      ['unknown Integration', post(`/hooks/${NS}/nope`, body, good), 404],
      ['unknown namespace', post('/hooks/elsewhere/std', body, good), 404],
      ['not a hook path', post('/metrics', body, good), 404],
    ];
    for (const [what, answer, status] of cases) {
      const a = await answer;
      assert.equal(a.status, status, `${what}: got ${a.status} ${a.body}`);
      if (status === 405) assert.equal(a.headers.allow, 'POST');
    }
    // An Integration without a webhook answers exactly like one that does not exist.
    await r.ferry.create('integrations', NS, {
      kind: 'Integration',
      metadata: { name: 'plain' },
      spec: { source: { stream: SOURCE, subjects: ['events.plain'] }, target: { url: `${t.url}/v1/invoices`, auth: credentialsFor(t.auth!, 'target').auth } },
    });
    await r.ferry.waitFor('integrations', NS, 'plain', (o) => isTrueNow(o, 'Ready'));
    const plain = await post(`/hooks/${NS}/plain`, body, good);
    const missing = await post(`/hooks/${NS}/nope`, body, good);
    assert.deepEqual([plain.status, plain.body], [missing.status, missing.body]);

    // Throttled: the burst of one is taken by a verified request (a forged one does not count),
    // the next is refused with Retry-After.
    const forged = event('limited-0');
    assert.equal((await post(`/hooks/${NS}/limited`, forged, { ...standardHeaders(STD_CURRENT, 'msg-limited-0', forged), 'webhook-signature': 'v1,AAAA' })).status, 401);
    const l1 = event('limited-1');
    assert.equal((await post(`/hooks/${NS}/limited`, l1, standardHeaders(STD_CURRENT, 'msg-limited-1', l1))).status, 202);
    const l2 = event('limited-2');
    const throttled = await post(`/hooks/${NS}/limited`, l2, standardHeaders(STD_CURRENT, 'msg-limited-2', l2));
    assert.equal(throttled.status, 429);
    assert.ok(Number(throttled.headers['retry-after']) >= 1);
    assert.equal(await stored('limited'), 1);

    assert.equal(await stored('std'), before, 'no bad request was stored');
    assert.equal(t.appliedCount('bad-1'), 0);
    const metrics = await op.metrics();
    assert.match(metrics, new RegExp(`ferry_webhook_requests_total\\{namespace="${NS}",integration="std",outcome="unauthorized"\\} 6`));
    assert.match(metrics, /ferry_webhook_requests_total\{namespace="",integration="",outcome="not_found"\} [1-9]/);
    assert.match(metrics, new RegExp(`ferry_webhook_requests_total\\{namespace="${NS}",integration="limited",outcome="throttled"\\} 1`));
    // Nothing a sender sent reaches the log: no signature, no body.
    const logged = JSON.stringify(op.logs);
    assert.ok(!logged.includes(good['webhook-signature']!.slice(3)), 'a signature was logged');
    assert.ok(!logged.includes('"amount"'), 'a body was logged');
  });

  it('stores and delivers a webhook sent twice once', async () => {
    const body = event('twice-1', 7);
    const first = await post(`/hooks/${NS}/std`, body, standardHeaders(STD_CURRENT, 'msg-twice', body));
    // A resend is signed again (a new timestamp) with the same webhook-id.
    const again = await post(`/hooks/${NS}/std`, body, standardHeaders(STD_CURRENT, 'msg-twice', body, new Date(Date.now() + 1_000)));
    assert.deepEqual([first.status, again.status], [202, 202]);
    const gh = event('gh-twice', 8);
    const ghHeaders = { 'X-Hub-Signature-256': `sha256=${createHmac('sha256', GITHUB).update(gh).digest('hex')}`, 'X-GitHub-Delivery': 'gh-twice' };
    assert.equal((await post(`/hooks/${NS}/gh`, gh, ghHeaders)).status, 202);
    assert.equal((await post(`/hooks/${NS}/gh`, gh, ghHeaders)).status, 202);
    await eventually('delivered', () => (t.appliedCount('twice-1') === 1 && t.appliedCount('gh-twice') === 1) || undefined, 30_000);
    // Give a second copy time to arrive if one had been stored.
    await eventually('consumer idle', async () => (await r.jsm.consumers.info(SOURCE, `ferry_${NS}_std`)).num_pending === 0 || undefined);
    assert.equal(t.requestsOf('twice-1').length, 1, 'the target saw the event once');
    assert.equal(t.requestsOf('gh-twice').length, 1);
    assert.match(await op.metrics(), new RegExp(`ferry_webhook_requests_total\\{namespace="${NS}",integration="std",outcome="duplicate"\\} 1`));
  });

  it('answers 503 while nats-server is down, and accepts the sender\'s retry once it is back', async () => {
    const body = event('outage-1', 9);
    await r.env.stopNats();
    try {
      const during = await post(`/hooks/${NS}/std`, body, standardHeaders(STD_CURRENT, 'msg-outage', body));
      assert.equal(during.status, 503, during.body);
      assert.ok(Number(during.headers['retry-after']) > 0);
    } finally {
      await r.env.startNats();
    }
    await r.reconnect();
    // The sender retries (signing again) until it gets a 2xx.
    const retried = await eventually('retry accepted', async () => {
      const a = await post(`/hooks/${NS}/std`, body, standardHeaders(STD_CURRENT, 'msg-outage', body));
      return a.status === 202 ? a : undefined;
    }, 60_000);
    assert.equal(retried.status, 202);
    await eventually('delivered after the outage', () => t.appliedCount('outage-1') === 1 || undefined, 60_000);
  });

  it('stores 1,000 concurrent signed requests, each once', async () => {
    const pool = new Pool(base, { connections: 200 });
    try {
      const send = (i: number) => {
        const body = event(`bulk-${i}`, i);
        return pool
          .request({ path: `/hooks/${NS}/bulk`, method: 'POST', headers: { 'content-type': 'application/json', ...standardHeaders(STD_CURRENT, `msg-bulk-${i}`, body) }, body })
          .then(async (res) => {
            await res.body.dump();
            return res.statusCode;
          });
      };
      const statuses = await Promise.all(Array.from({ length: 1_000 }, (_, i) => send(i)));
      assert.deepEqual(statuses.filter((s) => s !== 202), []);
      assert.equal(await stored('bulk'), 1_000);
      // A second wave of the first 100 ids: all answered 2xx, none stored again.
      const again = await Promise.all(Array.from({ length: 100 }, (_, i) => send(i)));
      assert.deepEqual(again.filter((s) => s !== 202), []);
      assert.equal(await stored('bulk'), 1_000);
    } finally {
      await pool.close();
    }
    await eventually('all 1,000 delivered', () => Array.from({ length: 1_000 }, (_, i) => t.appliedCount(`bulk-${i}`)).every((n) => n === 1) || undefined, 90_000);
  });

  it('is Stalled, not Ready, when the stream does not capture the webhook subject, or the operator serves no ingress', async () => {
    // The Integration consumes everything ('>'), the stream only events.>: the webhook subject has no stream.
    await r.ferry.create('integrations', NS, {
      kind: 'Integration',
      metadata: { name: 'elsewhere' },
      spec: {
        source: { stream: SOURCE, subjects: ['>'], webhook: { subject: 'other.hook', signature: { secretKeyRefs: [{ name: 'hooks', key: 'current' }] } } },
        target: { url: `${t.url}/v1/invoices`, auth: credentialsFor(t.auth!, 'target').auth },
      },
    });
    const elsewhere = await r.ferry.waitFor('integrations', NS, 'elsewhere', (o) => isTrueNow(o, 'Stalled'));
    assert.equal(condition(elsewhere, 'Ready')?.status, 'False');
    assert.equal(condition(elsewhere, 'Stalled')?.reason, 'WebhookSubjectNotCaptured');
    assert.match(condition(elsewhere, 'Stalled')?.message ?? '', /^spec\.source\.webhook\.subject: "other\.hook" is not captured by stream EVENTS/);
    await r.ferry.delete('integrations', NS, 'elsewhere');

    await op.stop();
    await r.startOperator('no-ingress');
    const std = await r.ferry.waitFor('integrations', NS, 'std', (o) => isTrueNow(o, 'Stalled'), 60_000);
    assert.equal(condition(std, 'Ready')?.status, 'False');
    assert.equal(condition(std, 'Ready')?.reason, 'WebhookIngressDisabled');
    assert.match(condition(std, 'Stalled')?.message ?? '', /start the operator with --webhook-address/);
    // An Integration without a webhook is not affected.
    assert.ok(isTrueNow(await r.ferry.get('integrations', NS, 'plain'), 'Ready'));
  });
});
