/**
 * Redrive end to end, with the operator as a process: events parked while the target was down are
 * replayed through the Integration when an SRE annotates it (`kubectl annotate … ferry.dev/redrive=…`).
 * Effects are counted by the invoice in the body (the business identity), never by the key under
 * test; the keys each request carried are compared with the parked messages' `Ferry-Idempotency-Key`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { StoredMsg } from '@nats-io/jetstream';
import { kubectl } from '../support/crds.ts';
import { bodyIdentity, faults, type FaultTarget } from '../support/fault-target.ts';
import { createIntegration, eventually, fallbackMessages, NS, publishEvents, runtimeSuite, type RuntimeEnv } from '../support/runtime-harness.ts';

interface LastRedrive {
  request?: string;
  result?: string;
  startedAt?: string;
  completedAt?: string;
  selected?: number;
  delivered?: number;
  failedAgain?: number;
  message?: string;
}

/** Parks every event at once: 500s, two attempts 10 ms apart, a breaker that never opens. */
const PARK_FAST = { maxAttempts: 2, backoff: { initial: '10ms', max: '20ms', multiplier: 2, jitter: 'None' }, circuitBreaker: { failures: 10_000, window: '1s', openFor: '1s' } };
const FAST_LEASE = ['--lease-duration=4', '--renew-deadline=3', '--retry-period=1'];
const FERRY = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

describe('redrive of the fallback stream', () => {
  const suite = runtimeSuite();
  let r: RuntimeEnv;
  before(async () => {
    r = suite.env();
    await r.startOperator('redrive-1', FAST_LEASE);
  });

  const annotate = async (name: string, ...pairs: string[]): Promise<void> => {
    await kubectl(r.env.kubeconfigPath, ['annotate', '-n', NS, `integration/${name}`, ...pairs, '--overwrite']);
  };
  const lastRedrive = async (name: string): Promise<LastRedrive | undefined> => (await r.ferry.get('integrations', NS, name)).status?.lastRedrive as LastRedrive | undefined;
  const redriveEnded = (name: string, request: string, timeoutMs = 60_000): Promise<LastRedrive> =>
    eventually(`redrive ${request} of ${name} ended`, async () => {
      const lr = await lastRedrive(name);
      return lr?.request === request && lr.result !== 'Running' ? lr : undefined;
    }, timeoutMs);
  const header = (m: StoredMsg, name: string): string | undefined => m.header.get(name) || undefined;
  /** Business id → the key its attempts were sent with, from the parked messages. */
  const keysById = (ms: readonly StoredMsg[]): Map<string, string | undefined> =>
    new Map(ms.map((m) => [(JSON.parse(new TextDecoder().decode(m.data)) as { id: string }).id, header(m, 'Ferry-Idempotency-Key')]));

  /** An Integration whose `count` events were all parked while the target answered 500. */
  const parked = async (t: FaultTarget, name: string, count: number, extra: readonly Record<string, unknown>[] = []): Promise<StoredMsg[]> => {
    t.script(() => faults.status(500));
    await createIntegration(r, { credentials: t.auth, name, subject: `events.${name}`, url: `${t.url}/v1/invoices`, delivery: PARK_FAST });
    await publishEvents(r, `events.${name}`, [...Array.from({ length: count }, (_, i) => ({ id: `${name}-${i}`, amount: i })), ...extra]);
    const all = await eventually(`${count + extra.length} parked`, async () => {
      const ms = await fallbackMessages(r, name);
      return ms.length === count + extra.length ? ms : undefined;
    }, 60_000);
    assert.equal(t.stats().applied, 0, 'nothing was applied while the target was down');
    return all;
  };

  it('100 events parked while the target was down, redriven with `ferry fallback redrive --wait`, are delivered exactly once with their original keys; the fallback stream is emptied', async () => {
    const t = await suite.target();
    const before = await parked(t, 'rd-all', 100);
    assert.ok(before.every((m) => header(m, 'Ferry-Reason') === 'exhausted'));
    const keyOf = keysById(before);
    t.script(undefined);
    // As an SRE asks for it: the real `ferry` binary, which annotates and waits for the answer.
    const { stdout } = await promisify(execFile)(process.execPath, [FERRY, 'fallback', 'redrive', 'rd-all', '-n', NS, '--kubeconfig', r.env.kubeconfigPath, '--wait', '--timeout', '60s']);
    const request = /request (\S+)/.exec(stdout)?.[1];
    assert.ok(request, stdout);
    assert.match(stdout, /Succeeded/, stdout);
    const lr = await redriveEnded('rd-all', request);
    assert.equal(lr.result, 'Succeeded', JSON.stringify(lr));
    assert.equal(lr.selected, 100);
    assert.equal(lr.delivered, 100);
    assert.equal(lr.failedAgain, 0);
    assert.ok(lr.startedAt && lr.completedAt && Date.parse(lr.completedAt) >= Date.parse(lr.startedAt));
    const s = t.stats();
    assert.equal(s.identities, 100);
    assert.equal(s.applied, 100);
    assert.equal(s.duplicates, 0);
    for (let i = 0; i < 100; i++) {
      const id = `rd-all-${i}`;
      assert.equal(t.appliedCount(id), 1, id);
      // Every request — the parked attempts and the redrive's — carried one key: the parked one.
      const requests = t.requestsOf(id);
      assert.equal(requests.length, 3, `${id}: two attempts before parking, one redrive`);
      for (const q of requests) assert.equal(q.key, keyOf.get(id), id);
    }
    assert.equal((await fallbackMessages(r, 'rd-all')).length, 0);
    await eventually('status.fallbackPending 0', async () => (await r.ferry.get('integrations', NS, 'rd-all')).status?.fallbackPending === 0 || undefined);
    const op = r.operators[0];
    assert.ok(op);
    assert.match(await op.metrics(), /ferry_redrive_messages_total\{namespace="flows",integration="rd-all",outcome="delivered"\} 100/);
  });

  it('filters select only what they name; an event that fails again stays parked with its new error (Partial); a malformed request is Invalid; a request waits while the Integration is suspended', async () => {
    const t = await suite.target();
    // Five events parked `exhausted` (sequences 1–5, in the order their attempts ran out), then one
    // `invalid` (sequence 6: no id).
    const exhausted = await parked(t, 'rd-mix', 5);
    await publishEvents(r, 'events.rd-mix', [{ id: 'rd-mix-invalid', amount: 'seven' }]);
    const before = await eventually('the invalid event parked', async () => {
      const ms = await fallbackMessages(r, 'rd-mix');
      return ms.length === 6 ? ms : undefined;
    });
    assert.equal(header(before[5] as StoredMsg, 'Ferry-Reason'), 'invalid');
    const idAt = (seq: number): string => (JSON.parse(new TextDecoder().decode(before.find((m) => m.seq === seq)?.data)) as { id: string }).id;
    // The target is back, but refuses the invoice parked at sequence 4 for good.
    const refused = idAt(4);
    const refusedKey = keysById(exhausted).get(refused);
    assert.ok(refusedKey);
    t.script((q) => (bodyIdentity(q) === refused ? faults.status(422, { 'content-type': 'application/json' }, '{"error":"customer closed"}') : undefined));

    await annotate('rd-mix', 'ferry.dev/redrive=seq-1', 'ferry.dev/redrive-sequences=1-2');
    const bySeq = await redriveEnded('rd-mix', 'seq-1');
    assert.equal(bySeq.result, 'Succeeded', JSON.stringify(bySeq));
    assert.equal(bySeq.selected, 2);
    assert.equal(bySeq.delivered, 2);
    assert.deepEqual(t.applied.map((a) => a.identity).sort(), [idAt(1), idAt(2)].sort(), 'only the two the sequences name');
    assert.deepEqual((await fallbackMessages(r, 'rd-mix')).map((m) => m.seq), [3, 4, 5, 6]);

    await annotate('rd-mix', 'ferry.dev/redrive=bad-1', 'ferry.dev/redrive-sequences=three');
    const bad = await redriveEnded('rd-mix', 'bad-1');
    assert.equal(bad.result, 'Invalid');
    assert.match(bad.message ?? '', /ferry\.dev\/redrive-sequences/);
    assert.equal((await fallbackMessages(r, 'rd-mix')).length, 4, 'an invalid request touches nothing');

    await annotate('rd-mix', 'ferry.dev/redrive=reasons-1', 'ferry.dev/redrive-sequences-', 'ferry.dev/redrive-reasons=exhausted');
    const byReason = await redriveEnded('rd-mix', 'reasons-1');
    assert.equal(byReason.result, 'Partial', JSON.stringify(byReason));
    assert.equal(byReason.selected, 3, 'sequences 3–5; the invalid event is not exhausted');
    assert.equal(byReason.delivered, 2);
    assert.equal(byReason.failedAgain, 1);
    assert.equal(t.appliedCount(refused), 0);
    assert.equal(t.appliedCount('rd-mix-invalid'), 0);
    for (let i = 0; i < 5; i++) if (`rd-mix-${i}` !== refused) assert.equal(t.appliedCount(`rd-mix-${i}`), 1, `rd-mix-${i}`);
    const left = await fallbackMessages(r, 'rd-mix');
    assert.equal(left.length, 2, 'the invalid event (not selected) and the re-parked one');
    assert.equal(left[0]?.seq, 6, 'the invalid event was not selected');
    const again = left[1];
    assert.ok(again && again.seq > 6, 're-parked as a new message after the selection');
    assert.equal(header(again, 'Ferry-Reason'), 'rejected');
    assert.equal(header(again, 'Ferry-Http-Status'), '422');
    assert.match(header(again, 'Ferry-Response-Body') ?? '', /customer closed/);
    assert.equal(header(again, 'Ferry-Attempts'), '1');
    assert.equal(header(again, 'Ferry-Redrive'), 'reasons-1');
    assert.equal(header(again, 'Ferry-Idempotency-Key'), refusedKey, 'the same key as before');
    const original = before.find((m) => m.seq === 4);
    assert.ok(original);
    assert.equal(header(again, 'Ferry-Source-Sequence'), header(original, 'Ferry-Source-Sequence'));
    assert.deepEqual(again.data, original.data, 'the payload byte for byte');
    // The Event says how it ended and what to do.
    const events = await kubectl(r.env.kubeconfigPath, ['get', 'events', '-n', NS, '--field-selector', 'reason=RedrivePartial', '-o', 'jsonpath={.items[*].message}']);
    assert.match(events.stdout, /reasons-1.*2 delivered, 1 failed again/);

    // Suspended: a request waits (nothing runs, status keeps the last redrive) and runs on resume.
    await r.ferry.editSpec('integrations', NS, 'rd-mix', (spec) => {
      spec.suspend = true;
    });
    await eventually('pipeline stopped', () => r.operators[0]?.logs.some((l) => l.msg === 'stopping pipeline (suspended)' && l.integration === `${NS}/rd-mix`) || undefined);
    await annotate('rd-mix', 'ferry.dev/redrive=suspended-1');
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    assert.equal((await lastRedrive('rd-mix'))?.request, 'reasons-1', 'no redrive while suspended');
    await r.ferry.editSpec('integrations', NS, 'rd-mix', (spec) => {
      spec.suspend = false;
    });
    const resumed = await redriveEnded('rd-mix', 'suspended-1');
    assert.equal(resumed.result, 'Succeeded', 'reasons=exhausted still set: nothing left to select');
    assert.equal(resumed.selected, 0);
    assert.equal((await fallbackMessages(r, 'rd-mix')).length, 2);
  });

  it('the operator SIGKILLed mid-redrive: a second one takes the redrive over and finishes it; every invoice applied once, the message in flight re-sent with its original key', async () => {
    const t = await suite.target();
    const before = await parked(t, 'rd-kill', 40);
    const keyOf = keysById(before);
    // Slow answers; the redrive's request for the 11th parked invoice is held long enough for the
    // kill to land while it is in flight (its 3rd request: two attempts before it was parked).
    const held = (JSON.parse(new TextDecoder().decode(before[10]?.data)) as { id: string }).id;
    t.script((q) => (bodyIdentity(q) === held && q.keyAttempt === 3 ? faults.slow(4_000) : faults.slow(50)));
    await annotate('rd-kill', 'ferry.dev/redrive=kill-1');
    const running = await eventually('status shows the redrive Running with some delivered', async () => {
      const lr = await lastRedrive('rd-kill');
      return lr?.request === 'kill-1' && lr.result === 'Running' && (lr.delivered ?? 0) >= 5 ? lr : undefined;
    }, 60_000);
    assert.equal(running.failedAgain, 0);
    await eventually(`${held} in flight`, () => t.requestsOf(held).some((q) => q.outcome === 'pending') || undefined, 60_000);
    const first = r.operators[0];
    assert.ok(first);
    await first.kill();
    await r.startOperator('redrive-2', FAST_LEASE);
    const lr = await redriveEnded('rd-kill', 'kill-1', 90_000);
    assert.equal(lr.result, 'Succeeded', JSON.stringify(lr));
    assert.equal(lr.selected, 40);
    assert.equal(lr.delivered, 40);
    assert.equal(lr.failedAgain, 0);
    const s = t.stats();
    assert.equal(s.identities, 40);
    assert.equal(s.duplicates, 0);
    for (let i = 0; i < 40; i++) assert.equal(t.appliedCount(`rd-kill-${i}`), 1, `rd-kill-${i}`);
    // Attempts per key: the message in flight at the kill was sent twice by the redrive, both
    // times with the key it was parked with; the target applied it once and replayed the second.
    const inFlight = t.requestsOf(held);
    assert.equal(inFlight.length, 4, 'two attempts before parking, one at the kill, sent again by the second operator');
    assert.equal(inFlight.slice(2).filter((q) => q.outcome === 'applied').length, 1, inFlight.map((q) => q.outcome).join(','));
    for (const q of inFlight) assert.equal(q.key, keyOf.get(held));
    for (const [id, key] of keyOf) for (const q of t.requestsOf(id)) assert.equal(q.key, key, id);
    assert.equal((await fallbackMessages(r, 'rd-kill')).length, 0);
  });
});
