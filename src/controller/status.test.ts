import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { degradation, runtimeStatusFields } from './runtime-view.ts';
import { conditionsFor } from './status.ts';
import { FINALIZER } from '../api/index.ts';
import { shouldEnqueue } from './watch-predicates.ts';

describe('kstatus conditions for an outcome', () => {
  it('reports all four types, stamped with the generation', () => {
    const c = conditionsFor({ kind: 'ready', reason: 'Delivering', message: 'ok' }, undefined, 3, Date.UTC(2026, 0, 1));
    assert.deepEqual(c.map((x) => [x.type, x.status, x.observedGeneration]), [
      ['Ready', 'True', 3],
      ['Reconciling', 'False', 3],
      ['Stalled', 'False', 3],
      ['Degraded', 'False', 3],
    ]);
  });

  it('stalls with the reason and message on Ready and Stalled, moving lastTransitionTime only on a flip', () => {
    const t0 = Date.UTC(2026, 0, 1);
    const ready = conditionsFor({ kind: 'ready', reason: 'Delivering', message: 'ok' }, undefined, 1, t0);
    const stalled = conditionsFor({ kind: 'stalled', reason: 'SecretNotFound', message: 'spec.x: missing' }, ready, 2, t0 + 60_000);
    const r = stalled.find((x) => x.type === 'Ready');
    const s = stalled.find((x) => x.type === 'Stalled');
    assert.equal(r?.status, 'False');
    assert.equal(r?.reason, 'SecretNotFound');
    assert.equal(s?.message, 'spec.x: missing');
    assert.equal(s?.lastTransitionTime, '2026-01-01T00:01:00Z');
    const again = conditionsFor({ kind: 'stalled', reason: 'SecretNotFound', message: 'spec.x: still missing' }, stalled, 2, t0 + 120_000);
    assert.equal(again.find((x) => x.type === 'Stalled')?.lastTransitionTime, '2026-01-01T00:01:00Z');
  });

  it('keeps Degraded unless told, and sets it when told', () => {
    const degradedTrue = conditionsFor({ kind: 'ready', reason: 'Delivering', message: 'ok' }, undefined, 1, 0, { status: 'True', reason: 'CircuitOpen', message: 'open' });
    const kept = conditionsFor({ kind: 'ready', reason: 'Delivering', message: 'ok' }, degradedTrue, 2, 1_000);
    assert.equal(kept.find((x) => x.type === 'Degraded')?.status, 'True');
    assert.equal(kept.find((x) => x.type === 'Degraded')?.observedGeneration, 2);
  });
});

describe('runtime view → status', () => {
  it('derives Degraded: open circuit first, then recent contract drift, else healthy', () => {
    const now = 1_000_000;
    assert.equal(degradation({ circuit: { state: 'Open', since: now, consecutiveFailures: 5, openUntil: now + 60_000 } }, now).reason, 'CircuitOpen');
    const drift = { ...{ delivered: 0, retried: 0, fallback: 1, invalid: 0, throttled: 0 }, lastContractDrift: now - 1_000 };
    assert.equal(degradation({ stats: drift }, now).reason, 'ContractDrift');
    assert.equal(degradation({ stats: { ...drift, lastContractDrift: now - 16 * 60_000 } }, now).status, 'False');
    assert.equal(degradation(undefined, now).status, 'False');
  });

  it('names refused credentials first, with the Secret, until a delivery succeeds again', () => {
    const now = 1_000_000;
    const spec = { target: { url: 'https://x', auth: { bearer: { secretKeyRef: { name: 'billing-api', key: 'token' } } } } };
    const base = { delivered: 10, retried: 3, fallback: 0, invalid: 0, throttled: 0 };
    const refused = { ...base, lastDeliveredTime: now - 5_000, lastUnauthorized: { time: now - 1_000, httpStatus: 401 } };
    const open = { state: 'Open' as const, since: now, consecutiveFailures: 5, openUntil: now + 60_000 };
    const d = degradation({ stats: refused, circuit: open }, now, spec);
    assert.equal(d.reason, 'TargetUnauthorized', 'the cause, not the symptom (an open circuit)');
    assert.match(d.message, /answered 401/);
    assert.match(d.message, /Secret "billing-api" key "token" \(spec\.target\.auth\.bearer\.secretKeyRef\)/);
    assert.match(d.message, /nothing is parked/);
    // Delivered after the 401: the credentials work again.
    assert.equal(degradation({ stats: { ...refused, lastDeliveredTime: now } }, now, spec).status, 'False');
  });

  it('reports a fallback stream that refuses parked events until one is parked again', () => {
    const now = 1_000_000;
    const base = { delivered: 0, retried: 0, fallback: 0, invalid: 0, throttled: 0 };
    const failing = { ...base, lastFallbackFailure: { time: now - 1_000, message: 'no stream matches subject' } };
    const d = degradation({ stats: failing }, now);
    assert.equal(d.reason, 'FallbackUnavailable');
    assert.match(d.message, /stay in the source stream/);
    assert.equal(degradation({ stats: { ...failing, lastParkedTime: now } }, now).status, 'False');
  });

  it('says first when part of Ferry\'s JetStream state cannot be served', () => {
    const now = 1_000_000;
    const refused = { delivered: 1, retried: 0, fallback: 0, invalid: 0, throttled: 0, lastUnauthorized: { time: now, httpStatus: 401 } };
    const d = degradation({ stats: refused, unavailable: 'the shared state (KV bucket ferry_integrations) cannot be served: timeout' }, now);
    assert.equal(d.reason, 'JetStreamUnavailable');
    assert.match(d.message, /ferry_integrations\) cannot be served: timeout; delivery continues/);
  });

  it('renders counters and times as status fields', () => {
    const f = runtimeStatusFields(
      { stats: { delivered: 3, retried: 1, fallback: 1, invalid: 1, throttled: 0, lastError: { time: Date.UTC(2026, 0, 1), reason: 'invalid', message: 'm' } }, fallbackPending: 1 },
      Date.UTC(2026, 0, 1),
    );
    assert.deepEqual(f, {
      fallbackPending: 1,
      stats: { delivered: 3, retried: 1, fallback: 1, invalid: 1, lastError: { time: '2026-01-01T00:00:00Z', reason: 'invalid', message: 'm' } },
    });
  });
});

describe('watch predicates', () => {
  const obj = (generation: number, extra: Record<string, unknown> = {}) => ({ metadata: { name: 'a', namespace: 'n', generation, ...extra } });
  it('skips status-only updates and keeps spec, finalizer, deletion and annotation changes', () => {
    assert.equal(shouldEnqueue('modified', obj(1), obj(1)), false);
    assert.equal(shouldEnqueue('modified', obj(2), obj(1)), true);
    assert.equal(shouldEnqueue('modified', obj(1, { finalizers: ['x'] }), obj(1)), true);
    assert.equal(shouldEnqueue('modified', obj(1, { deletionTimestamp: 't' }), obj(1)), true);
    assert.equal(shouldEnqueue('modified', obj(1, { annotations: { 'ferry.dev/redrive': '1' } }), obj(1)), true);
    assert.equal(shouldEnqueue('resync', obj(1)), true);
  });
  it('skips Ferry adding its own finalizer (that reconcile went on), not its removal nor another change with it', () => {
    assert.equal(shouldEnqueue('modified', obj(1, { finalizers: [FINALIZER] }), obj(1)), false);
    assert.equal(shouldEnqueue('modified', obj(1, { finalizers: ['x', FINALIZER] }), obj(1, { finalizers: ['x'] })), false);
    assert.equal(shouldEnqueue('modified', obj(1), obj(1, { finalizers: [FINALIZER] })), true);
    assert.equal(shouldEnqueue('modified', obj(1, { finalizers: [FINALIZER, 'x'] }), obj(1)), true);
    assert.equal(shouldEnqueue('modified', obj(2, { finalizers: [FINALIZER] }), obj(1)), true);
  });
});
