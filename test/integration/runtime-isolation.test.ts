/**
 * User-supplied code cannot block the operator: a JSONata transform or a JSON Schema `pattern`
 * with a catastrophically backtracking regex (`(a+)+$` on 30 × "a" + "!", about a minute of
 * backtracking in a JS RegExp) costs its own event and nothing else. While the evil event is
 * processed, a neighbour Integration keeps delivering, the evil event is parked exactly once with
 * the right reason, and the operator keeps its Lease (short lease timings: a blocked event loop
 * would lose it within seconds).
 *
 * Before JSONata ran in worker threads and patterns on RE2, the first test saw the operator's
 * event loop blocked for ~88 s: "leadership lost", the neighbour's in-flight attempts timed out
 * and opened its circuit, and the evil event was not even parked: the step time box never ran
 * again after the regex step, so it reached its target.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { FaultTarget } from '../support/fault-target.ts';
import type { OperatorProcess } from '../support/operator-process.ts';
import {
  createIntegration,
  drained,
  eventually,
  fallbackMessages,
  NS,
  publishEvents,
  runtimeSuite,
  SOURCE,
  type RuntimeEnv,
} from '../support/runtime-harness.ts';

const IDENTITY = 'isolation';
const leaseArgs = ['--lease-duration=4', '--renew-deadline=3', '--retry-period=1'];
const EVIL = `${'a'.repeat(30)}!`;
const EVIL_REGEX = '(a+)+$';
/** A neighbour event must reach its target within this long of being published. */
const NEIGHBOUR_LATENCY_BOUND_MS = 2_000;
/** How long the test waits for the evil event to be parked; a blocked operator needs ~a minute. */
const PARK_WITHIN_MS = 30_000;

/**
 * Publishes one neighbour event every `everyMs` until stopped, remembering when each was
 * published, so that delivery latency can be read off the target's receipts.
 */
function steadyPublisher(r: RuntimeEnv, subject: string, prefix: string, everyMs: number): { publishedAt: Map<string, number>; stop(): Promise<void> } {
  const publishedAt = new Map<string, number>();
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      // Ids unique per run: JetStream drops a Nats-Msg-Id it has seen within its duplicate window.
      const id = `${prefix}-${i}`;
      const h = natsHeaders();
      h.set('Nats-Msg-Id', id);
      publishedAt.set(id, Date.now());
      await r.js.publish(subject, JSON.stringify({ id, amount: i }), { headers: h });
      await sleep(everyMs);
    }
  })();
  return {
    publishedAt,
    async stop() {
      running = false;
      await loop;
    },
  };
}

interface NeighbourReport {
  readonly count: number;
  readonly maxLatencyMs: number;
  readonly maxGapMs: number;
}

/** Latency of every neighbour event published in [from, to], and the largest gap between receipts. */
function neighbourReport(t: FaultTarget, publishedAt: ReadonlyMap<string, number>, from: number, to: number): NeighbourReport {
  const receipts = t.requests
    .map((q) => ({ id: (JSON.parse(q.body) as { externalId: string }).externalId, at: q.receivedAt }))
    .filter((q) => {
      const p = publishedAt.get(q.id);
      return p !== undefined && p >= from && p <= to;
    })
    .sort((a, b) => a.at - b.at);
  let maxLatencyMs = 0;
  let maxGapMs = 0;
  for (const [i, q] of receipts.entries()) {
    maxLatencyMs = Math.max(maxLatencyMs, q.at - (publishedAt.get(q.id) ?? q.at));
    const prev = receipts[i - 1];
    if (prev) maxGapMs = Math.max(maxGapMs, q.at - prev.at);
  }
  const expected = [...publishedAt.values()].filter((p) => p >= from && p <= to).length;
  assert.equal(receipts.length, expected, 'every neighbour event published in the window was delivered');
  return { count: receipts.length, maxLatencyMs, maxGapMs };
}

/** How many messages the Integration's consumer has handed out, redeliveries included. */
async function deliveries(r: RuntimeEnv, name: string): Promise<number> {
  return (await r.jsm.consumers.info(SOURCE, `ferry_${NS}_${name}`)).delivered.consumer_seq;
}

function assertKeptLease(op: OperatorProcess): void {
  const lost = op.logs.filter((l) => typeof l.msg === 'string' && /leadership lost|lost leadership/.test(l.msg));
  assert.deepEqual(lost.map((l) => l.msg), [], 'the operator never lost leadership');
  assert.equal(op.logs.filter((l) => l.msg === 'acquired leadership').length, 1, 'leadership acquired once and kept');
  assert.ok(op.process.running, 'the operator is still running');
}

describe('runtime: user-supplied code cannot block the operator', () => {
  const suite = runtimeSuite();
  let r: RuntimeEnv;
  let op: OperatorProcess;
  let neighbour: FaultTarget;

  before(async () => {
    r = suite.env();
    op = await r.startOperator(IDENTITY, leaseArgs);
    await op.waitForLog((l) => l.msg === 'acquired leadership');
    neighbour = await suite.target();
    await createIntegration(r, { credentials: neighbour.auth, name: 'steady', subject: 'events.steady', url: `${neighbour.url}/v1/steady` });
  });

  /**
   * Runs `evil` (publishes the evil event) while the neighbour delivers a steady stream, waits
   * until the evil event is parked, and checks the neighbour was never held up meanwhile.
   */
  async function withNeighbourStream(
    label: string,
    evil: () => Promise<number>,
    parkedCheck: () => Promise<number | undefined>,
  ): Promise<{ parkedAfterMs: number; report: NeighbourReport }> {
    const publisher = steadyPublisher(r, 'events.steady', `steady-${label}`, 100);
    const before = neighbour.requests.length;
    try {
      // The neighbour is flowing before the evil event arrives.
      await eventually('neighbour delivering', () => neighbour.requests.length >= before + 5 || undefined);
      const from = Date.now();
      const publishedEvilAt = await evil();
      const parkedAt = await eventually('evil event parked', parkedCheck, PARK_WITHIN_MS);
      // A little more steady traffic after the park, then let everything in flight arrive.
      await sleep(1_000);
      const to = Date.now();
      await publisher.stop();
      await eventually('neighbour caught up', () => [...publisher.publishedAt.keys()].every((id) => neighbour.requests.some((q) => q.body.includes(`"${id}"`))) || undefined);
      const report = neighbourReport(neighbour, publisher.publishedAt, from, to);
      return { parkedAfterMs: parkedAt - publishedEvilAt, report };
    } finally {
      await publisher.stop();
    }
  }

  it('a JSONata transform with a catastrophic regex is stopped at its time box; the neighbour keeps delivering and the Lease is kept', async (t) => {
    const evilTarget = await suite.target();
    await createIntegration(r, {
      credentials: evilTarget.auth,
      name: 'evil-jsonata',
      subject: 'events.evil-jsonata',
      url: `${evilTarget.url}/v1/evil`,
      schema: { inline: { type: 'object', required: ['id', 's'], properties: { id: { type: 'string' }, s: { type: 'string' } } } },
      transform: { jsonata: `{ "externalId": id, "ok": $contains(s, /${EVIL_REGEX}/) }`, timeout: '1s' },
    });

    const { parkedAfterMs, report } = await withNeighbourStream(
      'jsonata',
      async () => {
        const at = Date.now();
        await publishEvents(r, 'events.evil-jsonata', [{ id: 'evil-1', s: EVIL }]);
        return at;
      },
      async () => {
        const parked = await fallbackMessages(r, 'evil-jsonata');
        return parked.length > 0 ? Date.parse(parked[0]?.header.get('Ferry-Last-Attempt') ?? '') || Date.now() : undefined;
      },
    );
    t.diagnostic(`evil event parked ${parkedAfterMs} ms after publication; neighbour: ${report.count} events, max latency ${report.maxLatencyMs} ms, max gap ${report.maxGapMs} ms`);
    assert.ok(report.maxLatencyMs < NEIGHBOUR_LATENCY_BOUND_MS, `a neighbour event waited ${report.maxLatencyMs} ms`);

    // The same transform still serves the next (harmless) event: the pool replaced its worker.
    await publishEvents(r, 'events.evil-jsonata', [{ id: 'good-1', s: 'aaa' }]);
    await eventually('harmless event delivered', () => evilTarget.requests.length === 1 || undefined);
    assert.deepEqual(JSON.parse(evilTarget.requests[0]?.body ?? ''), { externalId: 'good-1', ok: true });
    await drained(r, 'evil-jsonata');

    const parked = await fallbackMessages(r, 'evil-jsonata');
    assert.equal(parked.length, 1, 'parked exactly once');
    const h = parked[0]?.header;
    assert.equal(h?.get('Ferry-Reason'), 'transform');
    assert.match(h.get('Ferry-Error'), /^transform expression ran for \d+ ms, over its 1000 ms limit, and was stopped$/);
    assert.equal(h.get('Ferry-Attempts'), '0', 'parked before any HTTP attempt');
    assert.deepEqual(JSON.parse(parked[0]?.string() ?? ''), { id: 'evil-1', s: EVIL }, 'the original payload');
    assert.equal(evilTarget.requests.filter((q) => q.body.includes('evil-1')).length, 0, 'nothing of the evil event reached its target');
    assert.equal(await deliveries(r, 'evil-jsonata'), 2, 'two events, each delivered to the operator once: nothing came back after ack_wait');
    assertKeptLease(op);
  });

  it('a JSON Schema pattern with a catastrophic regex answers at once (RE2): the event is parked as invalid; the neighbour is unaffected', async (t) => {
    const evilTarget = await suite.target();
    await createIntegration(r, {
      credentials: evilTarget.auth,
      name: 'evil-pattern',
      subject: 'events.evil-pattern',
      url: `${evilTarget.url}/v1/evil`,
      schema: { inline: { type: 'object', required: ['id'], properties: { id: { type: 'string' }, s: { type: 'string', pattern: EVIL_REGEX } } } },
      transform: { mapping: { externalId: '/id' } },
    });

    const { parkedAfterMs, report } = await withNeighbourStream(
      'pattern',
      async () => {
        const at = Date.now();
        await publishEvents(r, 'events.evil-pattern', [{ id: 'evil-2', s: EVIL }]);
        return at;
      },
      async () => {
        const parked = await fallbackMessages(r, 'evil-pattern');
        return parked.length > 0 ? Date.parse(parked[0]?.header.get('Ferry-Last-Attempt') ?? '') || Date.now() : undefined;
      },
    );
    t.diagnostic(`evil event parked ${parkedAfterMs} ms after publication; neighbour: ${report.count} events, max latency ${report.maxLatencyMs} ms, max gap ${report.maxGapMs} ms`);
    assert.ok(report.maxLatencyMs < NEIGHBOUR_LATENCY_BOUND_MS, `a neighbour event waited ${report.maxLatencyMs} ms`);

    await drained(r, 'evil-pattern');
    const parked = await fallbackMessages(r, 'evil-pattern');
    assert.equal(parked.length, 1, 'parked exactly once');
    const h = parked[0]?.header;
    assert.equal(h?.get('Ferry-Reason'), 'invalid');
    assert.equal(h.get('Ferry-Error'), `/s: must match pattern "${EVIL_REGEX}"`);
    assert.equal(evilTarget.requests.length, 0, 'nothing of the evil event reached its target');
    assert.equal(await deliveries(r, 'evil-pattern'), 1, 'delivered to the operator once: it did not come back after ack_wait');
    assertKeptLease(op);

    const lease = await r.env.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'ferry-operator', namespace: 'default' });
    assert.equal(lease.spec?.holderIdentity, IDENTITY, 'the operator still holds the Lease');
  });

  it('stops cleanly on SIGTERM, transform workers included', async () => {
    await op.stop();
    assert.equal(await op.process.exited(), 0);
    assert.ok(op.logs.some((l) => l.msg === 'released the lease'));
  });
});
