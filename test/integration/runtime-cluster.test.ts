/**
 * On a 3-node JetStream cluster, losing NATS nodes loses nothing: Ferry's own streams and KV
 * buckets are replicated, a node killed for good (the leader of the fallback stream, or of the
 * shared KV bucket), a rolling restart of every node, and two nodes down at once (no quorum) are
 * all survived — every valid event applied exactly once (counted by the invoice in the body),
 * every invalid one parked exactly once, status counts right, and the Integration Ready again on
 * its own. An operator of an older version's single-replica resources scales them up.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { EventsV1Api } from '@kubernetes/client-node';
import type { StoredMsg } from '@nats-io/jetstream';
import type { NatsCluster } from '../env/nats-cluster.ts';
import { faults, type FaultTarget } from '../support/fault-target.ts';
import { condition, isTrueNow } from '../support/ferry-client.ts';
import { createIntegration, drained, eventually, fallbackMessages, NS, publishEvents, runtimeSuite, SOURCE, type RuntimeEnv } from '../support/runtime-harness.ts';

const stats = (o: { status?: Record<string, unknown> }): { delivered?: number; invalid?: number; fallback?: number } =>
  (o.status?.stats as { delivered?: number; invalid?: number; fallback?: number } | undefined) ?? {};

/** Events `prefix-0 … prefix-(n-1)`; every 500th breaks the schema (amount is a string). */
function flow(prefix: string, n: number): { events: { id: string; amount: number | string }[]; valid: string[]; invalid: string[] } {
  const events: { id: string; amount: number | string }[] = Array.from({ length: n }, (_, i) => ({ id: `${prefix}-${i}`, amount: i % 500 === 250 ? 'lots' : i }));
  return {
    events,
    valid: events.filter((e) => typeof e.amount === 'number').map((e) => e.id),
    invalid: events.filter((e) => typeof e.amount !== 'number').map((e) => e.id),
  };
}

/**
 * A target that answers 5xx to roughly every third first attempt and to everything for one second
 * in seven (a cycle no breaker timing below divides, so a probe never keeps landing in a burst).
 */
function flapping(t: FaultTarget): void {
  t.script((q) => {
    if (Math.floor(q.receivedAt / 1_000) % 7 === 0) return faults.status(503);
    return q.keyAttempt === 1 && q.index % 3 === 0 ? faults.status(502) : undefined;
  });
}

function idsIn(messages: readonly StoredMsg[]): string[] {
  return messages.map((m) => (JSON.parse(Buffer.from(m.data).toString()) as { id: string }).id);
}

const delivery = { concurrency: 32, maxAttempts: 30, backoff: { initial: '100ms', max: '1s', multiplier: 2, jitter: 'Full' }, circuitBreaker: { failures: 1000, window: '10s', openFor: '2s' } };

async function publishInBatches(r: RuntimeEnv, subject: string, events: readonly Record<string, unknown>[], onBatch?: (done: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < events.length; i += 500) {
    await publishEvents(r, subject, events.slice(i, i + 500));
    await onBatch?.(i + 500);
  }
}

describe('runtime on a 3-node NATS cluster', () => {
  const suite = runtimeSuite('rt-cluster', { natsCluster: 3 });
  let r: RuntimeEnv;
  let cluster: NatsCluster;
  before(() => {
    r = suite.env();
    const c = r.env.natsCluster;
    if (!c) throw new Error('the suite runs on a cluster');
    cluster = c;
  });
  // A failed test must not leave the next one without quorum.
  afterEach(async () => {
    if (cluster.nodes.some((n) => !n.running)) {
      await cluster.start();
      await cluster.waitForQuorum();
    }
  });

  async function killFor(stream: string): Promise<number> {
    const leader = await cluster.leaderOf(stream);
    await cluster.kill(leader);
    return leader;
  }

  async function expectEverythingOnce(t: FaultTarget, name: string, f: ReturnType<typeof flow>): Promise<void> {
    await eventually(`all ${f.valid.length} valid events applied`, () => t.stats().identities === f.valid.length || undefined, 240_000).catch(async (err: unknown) => {
      const consumer = await r.jsm.consumers.info(SOURCE, `ferry_${NS}_${name}`).catch((e: unknown) => String(e));
      const obj = await r.ferry.get('integrations', NS, name);
      const logs = r.operators.flatMap((o) => o.logs.filter((l) => l.level === 'warn' || l.level === 'error').slice(-25));
      throw new Error(`${String(err)}\nstats=${JSON.stringify(t.stats())}\nconsumer=${JSON.stringify(consumer)}\nstatus=${JSON.stringify(obj.status)}\nlogs=${logs.map((l) => JSON.stringify(l)).join('\n')}`);
    });
    await drained(r, name, 120_000);
    assert.equal(t.stats().duplicates, 0, 'no invoice applied twice');
    for (const id of f.valid) assert.equal(t.appliedCount(id), 1, id);
    const parked = idsIn(await fallbackMessages(r, name)).sort();
    assert.deepEqual(parked, [...f.invalid].sort(), 'every invalid event parked exactly once');
    const obj = await r.ferry.waitFor(
      'integrations',
      NS,
      name,
      (o) =>
        isTrueNow(o, 'Ready') &&
        stats(o).delivered === f.valid.length &&
        stats(o).invalid === f.invalid.length &&
        o.status?.fallbackPending === f.invalid.length &&
        condition(o, 'Degraded')?.status === 'False',
      // Well under a minute: a KV watch whose consumer died with its node stalled that long.
      40_000,
    );
    assert.equal(stats(obj).fallback, f.invalid.length);
    assert.equal(obj.status?.fallbackPending, f.invalid.length);
  }

  it('Ferry\'s own streams and buckets have 3 replicas', async () => {
    const t = await suite.target();
    await createIntegration(r, { credentials: t.auth, name: 'replicated', subject: 'events.replicated', url: `${t.url}/v1/x` });
    // The leader creates the shared buckets on its own schedule, not as part of an Integration's
    // reconcile: read them once it says they are there.
    const op = r.operators[0]!;
    const line = await op.waitForLog((l) => l.msg === 'shared KV buckets ready');
    assert.equal(line.replicas, 3);
    for (const stream of [`FERRY_FALLBACK_${NS}_replicated`, 'KV_ferry_integrations', 'KV_ferry_members', 'KV_ferry_attempts']) {
      const info = await r.jsm.streams.info(stream).catch((err: unknown) => assert.fail(`${stream}: ${String(err)}`));
      assert.equal(info.config.num_replicas, 3, stream);
    }
  });

  for (const [variant, streamOf] of [
    ['the leader of its fallback stream', (name: string) => `FERRY_FALLBACK_${NS}_${name}`],
    ['the leader of the shared KV bucket', () => 'KV_ferry_integrations'],
  ] as const) {
    it(`a node SIGKILLed for good mid-flow (${variant}): every valid event applied once, every invalid one parked once, Ready with right counts`, async () => {
      const name = variant.includes('fallback') ? 'kill-fallback' : 'kill-kv';
      const t = await suite.target();
      flapping(t);
      await createIntegration(r, { credentials: t.auth, name, subject: `events.${name}`, url: `${t.url}/v1/invoices`, delivery });
      const f = flow(name, 5_000);
      let killed: number | undefined;
      await publishInBatches(r, `events.${name}`, f.events, async (done) => {
        if (killed !== undefined || done < 2_000) return;
        // Some events are parked and many delivered before the node goes.
        await eventually('events parked before the kill', async () => (await fallbackMessages(r, name)).length >= 3 || undefined, 60_000).catch(async (err: unknown) => {
          const consumer = await r.jsm.consumers.info(SOURCE, `ferry_${NS}_${name}`).catch((e: unknown) => String(e));
          const logs = r.operators.flatMap((o) => o.logs.filter((l) => l.level !== 'debug').slice(-40));
          throw new Error(`${String(err)}\nstats=${JSON.stringify(t.stats())}\nconsumer=${JSON.stringify(consumer)}\nlogs=${logs.map((l) => JSON.stringify(l)).join('\n')}`);
        });
        killed = await killFor(streamOf(name));
      });
      assert.ok(killed !== undefined);
      assert.equal(cluster.nodes[killed]?.running, false, 'the node stays dead');
      await expectEverythingOnce(t, name, f);
      assert.equal(cluster.nodes[killed]?.running, false, 'still dead at the end');
    });
  }

  it('a rolling restart of all three nodes during a flow: nothing lost, nothing doubled', async () => {
    const name = 'rolling';
    const t = await suite.target();
    flapping(t);
    await createIntegration(r, { credentials: t.auth, name, subject: `events.${name}`, url: `${t.url}/v1/invoices`, delivery });
    const f = flow(name, 3_000);
    let restarting: Promise<void> | undefined;
    await publishInBatches(r, `events.${name}`, f.events, (done) => {
      if (done === 1_000) restarting = cluster.rollingRestart();
      return Promise.resolve();
    });
    await restarting;
    await expectEverythingOnce(t, name, f);
  });

  it('two of three nodes down (no quorum): nothing is lost or doubled, Degraded says JetStream is unavailable, and everything recovers on its own', async () => {
    const name = 'noquorum';
    const t = await suite.target();
    await createIntegration(r, { credentials: t.auth, name, subject: `events.${name}`, url: `${t.url}/v1/invoices`, delivery });
    const before = flow(`${name}-a`, 1_000);
    await publishInBatches(r, `events.${name}`, before.events);
    await eventually('some delivered', () => t.stats().applied > 200 || undefined, 60_000);
    const leader = await cluster.leaderOf(SOURCE);
    const others = cluster.nodes.map((n) => n.index).filter((i) => i !== leader);
    await cluster.kill(others[0] ?? 0);
    await cluster.kill(leader);
    const degraded = await r.ferry.waitFor('integrations', NS, name, (o) => condition(o, 'Degraded')?.reason === 'JetStreamUnavailable', 60_000);
    assert.equal(condition(degraded, 'Degraded')?.status, 'True');
    assert.match(condition(degraded, 'Degraded')?.message ?? '', /JetStream state unavailable: .+/);
    const events = r.env.kubeConfig.makeApiClient(EventsV1Api);
    await eventually(
      'a Warning Event JetStreamUnavailable',
      async () => (await events.listNamespacedEvent({ namespace: NS })).items.some((e) => e.regarding?.name === name && e.reason === 'JetStreamUnavailable' && e.type === 'Warning') || undefined,
      30_000,
    );

    await cluster.start();
    await cluster.waitForQuorum();
    await r.reconnect();
    const afterwards = flow(`${name}-b`, 500);
    await publishInBatches(r, `events.${name}`, afterwards.events);
    const all = { events: [...before.events, ...afterwards.events], valid: [...before.valid, ...afterwards.valid], invalid: [...before.invalid, ...afterwards.invalid] };
    await expectEverythingOnce(t, name, all);
  });

  it('source streams are never changed, and a single-replica one on a cluster is reported', async () => {
    await r.jsm.streams.add({ name: 'SINGLE', subjects: ['single.>'], num_replicas: 1 });
    const t = await suite.target();
    await r.ferry.create('integrations', NS, {
      kind: 'Integration',
      metadata: { name: 'on-single' },
      spec: { source: { stream: 'SINGLE', subjects: ['single.x'] }, target: { url: `${t.url}/v1/x` } },
    });
    const obj = await r.ferry.waitFor('integrations', NS, 'on-single', (o) => isTrueNow(o, 'Ready'), 30_000);
    assert.match(condition(obj, 'Ready')?.message ?? '', /warning: source stream SINGLE has 1 replica on a NATS cluster/);
    const events = r.env.kubeConfig.makeApiClient(EventsV1Api);
    await eventually('a Warning Event', async () => (await events.listNamespacedEvent({ namespace: NS })).items.some((e) => e.regarding?.name === 'on-single' && e.reason === 'SourceNotReplicated' && e.type === 'Warning') || undefined, 20_000);
    assert.equal((await r.jsm.streams.info('SINGLE')).config.num_replicas, 1, 'the user\'s stream is left as it is');
  });
});

describe('upgrade on a 3-node NATS cluster: single-replica resources of an older version are scaled up', () => {
  const suite = runtimeSuite(undefined, { natsCluster: 3 });
  let r: RuntimeEnv;
  before(() => {
    r = suite.env();
  });
  after(async () => {
    await Promise.all(r.operators.map((o) => o.stop()));
  });

  it('scales the fallback stream and the KV buckets to 3 replicas, keeping every parked message', async () => {
    const old = await r.startOperator('old-version', ['--nats-replicas=1']);
    const t = await suite.target();
    await createIntegration(r, { credentials: t.auth, name: 'upgraded', subject: 'events.upgraded', url: `${t.url}/v1/x` });
    await publishEvents(r, 'events.upgraded', [{ id: 'u-bad-1', amount: 'x' }, { id: 'u-bad-2', amount: 'y' }, { id: 'u-ok', amount: 1 }]);
    await eventually('two parked', async () => (await fallbackMessages(r, 'upgraded')).length === 2 || undefined, 30_000);
    for (const s of [`FERRY_FALLBACK_${NS}_upgraded`, 'KV_ferry_integrations']) assert.equal((await r.jsm.streams.info(s)).config.num_replicas, 1, s);
    await old.stop();
    r.operators.splice(r.operators.indexOf(old), 1);

    await r.startOperator('new-version');
    for (const s of [`FERRY_FALLBACK_${NS}_upgraded`, 'KV_ferry_integrations', 'KV_ferry_members', 'KV_ferry_attempts']) {
      await eventually(`${s} scaled to 3 replicas`, async () => (await r.jsm.streams.info(s)).config.num_replicas === 3 || undefined, 60_000);
    }
    assert.deepEqual(idsIn(await fallbackMessages(r, 'upgraded')).sort(), ['u-bad-1', 'u-bad-2'], 'no parked message lost');
    await publishEvents(r, 'events.upgraded', [{ id: 'u-ok-2', amount: 2 }]);
    await eventually('still delivering', () => t.appliedCount('u-ok-2') === 1 || undefined, 30_000);
  });
});
