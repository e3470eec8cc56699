/**
 * The counts SREs read are counts of events: with NATS slow and then cut off under load, acks get
 * lost and events come back, yet `status.stats.delivered` says exactly how many events were
 * delivered, and no event is applied twice. The operator talks to NATS through a TCP proxy that
 * injects the latency and the outage.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { faults } from '../support/fault-target.ts';
import { condition } from '../support/ferry-client.ts';
import { createIntegration, drained, eventually, fallbackMessages, NS, publishEvents, runtimeSuite, type RuntimeEnv } from '../support/runtime-harness.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

describe('runtime: counts under NATS latency and an outage', () => {
  const suite = runtimeSuite();
  let r: RuntimeEnv;
  let proxy: TcpProxy;
  before(async () => {
    r = suite.env();
    const url = new URL(r.env.natsUrl);
    proxy = await startTcpProxy(url.hostname, Number(url.port));
    await r.startOperator('rt-counts', [`--nats-url=nats://${proxy.address}`]);
  });
  after(async () => {
    await proxy.close();
  });

  it('status.stats.delivered counts events, not successful attempts, through lost acks', async () => {
    const t = await suite.target();
    t.script(() => faults.slow(3));
    const name = 'counted-events';
    await createIntegration(r, { credentials: t.auth, name, subject: `events.${name}`, url: `${t.url}/v1/invoices`, target: { timeout: '2s' }, delivery: { concurrency: 32 } });
    const n = 3_000;
    await publishEvents(r, `events.${name}`, Array.from({ length: n }, (_, i) => ({ id: `cnt-${i}`, amount: i })));
    await eventually('delivery under way', () => t.stats().applied > 300 || undefined, 60_000);
    // A slow link, then no link at all: whatever the slow link still carries — acks among it — is lost.
    proxy.setLatency(400);
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    proxy.down();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    proxy.setLatency(0);
    proxy.up();

    await eventually(`all ${n} applied`, () => t.stats().identities === n || undefined, 120_000);
    // Acks lost in the outage bring events back after ack_wait (2 s + 30 s): wait for them too.
    await drained(r, name, 120_000);
    const s = t.stats();
    assert.equal(s.duplicates, 0, 'no invoice applied twice');
    assert.equal((await fallbackMessages(r, name)).length, 0);
    const obj = await r.ferry.waitFor('integrations', NS, name, (o) => (o.status?.stats as { delivered?: number } | undefined)?.delivered === n, 60_000).catch(async (err: unknown) => {
      const last = await r.ferry.get('integrations', NS, name);
      throw new Error(`${String(err)}: delivered=${JSON.stringify((last.status?.stats as { delivered?: number } | undefined)?.delivered)} for ${n} events`);
    });
    assert.equal(condition(obj, 'Ready')?.status, 'True');
    // Settled: a later flush must not add anything.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const settled = await r.ferry.get('integrations', NS, name);
    assert.equal((settled.status?.stats as { delivered?: number } | undefined)?.delivered, n, 'each event counted once');
    const metrics = await r.operators[0]!.metrics();
    const counted = Number(/^ferry_events_total\{namespace="flows",integration="counted-events",outcome="delivered"\} (\d+)/m.exec(metrics)?.[1]);
    assert.equal(counted, n, 'the metric counts events too');
  });
});
