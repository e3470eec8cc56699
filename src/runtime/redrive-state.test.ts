import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../observability/index.ts';
import type { ParkedMessage, SharedRedrive } from '../nats/index.ts';
import {
  finished,
  invalid,
  isReparkedCopy,
  nextStep,
  parkedFacts,
  progressed,
  released,
  renewed,
  reparkHeaders,
  reparking,
  reparkMsgId,
  replayedEvent,
  started,
  takenOver,
} from './redrive-state.ts';

const TTL = 15_000;

describe('redrive state', () => {
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const holder = (name: string, runId: string) => ({ holder: name, runId, now: clock.now(), ttlMs: TTL });

  it('a request is started when nothing runs, waits while a live run holds the record, and is never run twice', () => {
    assert.equal(nextStep(undefined, 'r1', clock.now()), 'start');
    const running = started('r1', {}, holder('a', 'run-a'), 100);
    assert.equal(running.result, 'Running');
    assert.equal(running.upToSequence, 100);
    assert.equal(running.nextSequence, 1);
    assert.equal(nextStep(running, 'r1', clock.now()), 'busy');
    assert.equal(nextStep(running, 'r2', clock.now()), 'busy', 'a new request waits for the running one');
    const done = finished(running, 'run-a', clock.now());
    assert.equal(nextStep(done, 'r1', clock.now()), 'answered');
    assert.equal(nextStep(done, 'r2', clock.now()), 'start', 'then the new one runs');
    assert.equal(nextStep(invalid('r3', 'bad', clock.now()), 'r3', clock.now()), 'answered');
  });

  it('a sequence filter starts at its first sequence', () => {
    assert.equal(started('r1', { fromSequence: 40, toSequence: 50 }, holder('a', 'run-a'), 100).nextSequence, 40);
  });

  it('a run whose holder stops renewing is resumed after its lease, keeping its progress; the old holder can no longer write', async () => {
    let r: SharedRedrive | undefined = started('r1', {}, holder('a', 'run-a'), 10);
    r = progressed(r, 'run-a', { now: clock.now(), ttlMs: TTL }, 3, 'delivered');
    assert.equal(r?.nextSequence, 4);
    assert.equal(r?.pendingDelete, 3);
    await clock.advance(TTL - 1);
    assert.equal(nextStep(r, 'r1', clock.now()), 'busy');
    await clock.advance(1);
    assert.equal(nextStep(r, 'r1', clock.now()), 'resume');
    assert.ok(r);
    const taken = takenOver(r, holder('b', 'run-b'));
    assert.equal(taken.holder, 'b');
    assert.equal(taken.nextSequence, 4, 'resumes where the dead holder stopped');
    assert.equal(taken.delivered, 1);
    assert.equal(taken.pendingDelete, 3, 'the new holder deletes what the old one may not have');
    assert.equal(taken.expiresAt, clock.now() + TTL);
    assert.equal(renewed(taken, 'run-a', clock.now(), TTL), undefined, 'the old holder lost it');
    assert.equal(progressed(taken, 'run-a', { now: clock.now(), ttlMs: TTL }, 5, 'delivered'), undefined);
    assert.equal(finished(taken, 'run-a', clock.now()), undefined);
    assert.equal(renewed(taken, 'run-b', clock.now() + 1_000, TTL)?.expiresAt, clock.now() + 1_000 + TTL);
  });

  it('a message being parked again is marked until its outcome is recorded; a taken-over run sees the mark', () => {
    const h = { now: clock.now(), ttlMs: TTL };
    const marked = reparking(started('r1', {}, holder('a', 'run-a'), 10), 'run-a', h, 4);
    assert.equal(marked?.reparking, 4);
    assert.equal(reparking(marked, 'run-x', h, 4), undefined, 'only by the holder');
    assert.ok(marked);
    assert.equal(takenOver(marked, holder('b', 'run-b')).reparking, 4);
    const done = progressed(marked, 'run-a', h, 4, 'failedAgain');
    assert.equal((JSON.parse(JSON.stringify(done)) as SharedRedrive).reparking, undefined, 'cleared with the recorded outcome');
    assert.equal(finished(marked, 'run-a', clock.now())?.reparking, undefined);
  });

  it('a released lease can be resumed at once', () => {
    const r = started('r1', {}, holder('a', 'run-a'), 10);
    const given = released(r, 'run-a', clock.now());
    assert.equal(nextStep(given, 'r1', clock.now()), 'resume');
    assert.equal(released(r, 'run-x', clock.now()), undefined);
  });

  it('counts outcomes and ends Succeeded, Partial or Failed; the lease and pending delete are gone from a finished record', () => {
    const h = { now: clock.now(), ttlMs: TTL };
    let r: SharedRedrive | undefined = started('r1', {}, holder('a', 'run-a'), 10);
    r = progressed(r, 'run-a', h, 1, 'delivered');
    r = progressed(r, 'run-a', h, 2, 'failedAgain');
    r = progressed(r, 'run-a', h, 5, 'delivered');
    assert.deepEqual([r?.selected, r?.delivered, r?.failedAgain, r?.nextSequence], [3, 2, 1, 6]);
    const partial = finished(r, 'run-a', clock.now() + 5);
    assert.equal(partial?.result, 'Partial');
    assert.equal(partial?.completedAt, clock.now() + 5);
    assert.equal(partial?.holder, undefined);
    assert.equal(partial?.expiresAt, undefined);
    assert.equal(partial?.pendingDelete, undefined);
    assert.match(partial?.message ?? '', /3 selected, 2 delivered, 1 failed again/);
    assert.equal(finished(partial, 'run-a', clock.now()), undefined, 'a finished record is not finished again');

    const ok = finished(progressed(started('r2', {}, holder('a', 'run-b'), 10), 'run-b', h, 1, 'delivered'), 'run-b', clock.now());
    assert.equal(ok?.result, 'Succeeded');
    const none = finished(started('r3', {}, holder('a', 'run-c'), 0), 'run-c', clock.now());
    assert.equal(none?.result, 'Succeeded');
    assert.match(none?.message ?? '', /no parked message/);
    const failed = finished(progressed(started('r4', {}, holder('a', 'run-d'), 10), 'run-d', h, 1, 'delivered'), 'run-d', clock.now(), 'the circuit opened');
    assert.equal(failed?.result, 'Failed');
    assert.match(failed?.message ?? '', /stopped: the circuit opened; 1 selected, 1 delivered, 0 failed again; the messages not redriven stay parked untouched/);
  });

  it('an invalid request is answered with the message naming the annotation', () => {
    const r = invalid('r1', 'annotation ferry.dev/redrive-sequences: "x" must be a sequence range', clock.now());
    assert.equal(r.result, 'Invalid');
    assert.equal(r.completedAt, clock.now());
    assert.match(r.message ?? '', /ferry\.dev\/redrive-sequences/);
  });
});

describe('redrive: events rebuilt from parked messages', () => {
  const parked: ParkedMessage = {
    sequence: 7,
    parkedAtMs: Date.UTC(2026, 0, 1),
    subject: 'ferry.fallback.revops.deal-to-invoice',
    payload: new TextEncoder().encode('{"id":"deal-1","amount":5}'),
    headers: new Map<string, readonly string[]>([
      ['X-Trace', ['abc']],
      ['ce-source', ['crm']],
      ['Nats-Msg-Id', ['CRM:41']],
      ['Ferry-Integration', ['revops/deal-to-invoice']],
      ['Ferry-Reason', ['exhausted']],
      ['Ferry-Error', ['gave up after 5 attempts; last: HTTP 500']],
      ['Ferry-Attempts', ['5']],
      ['Ferry-Source-Stream', ['CRM_EVENTS']],
      ['Ferry-Source-Sequence', ['41']],
      ['Ferry-Source-Subject', ['crm.deals.closed']],
      ['Ferry-Source-Msg-Id', ['deal-1']],
      ['Ferry-Idempotency-Key', ['revops/deal-to-invoice/deal-1']],
    ]),
  };

  it('reads the reason, key and source facts', () => {
    assert.deepEqual(parkedFacts(parked.headers), {
      reason: 'exhausted',
      key: 'revops/deal-to-invoice/deal-1',
      sourceStream: 'CRM_EVENTS',
      sourceSequence: 41,
      sourceSubject: 'crm.deals.closed',
      sourceMsgId: 'deal-1',
    });
  });

  it('replays the original event: payload byte for byte, original headers with the publisher id back, the original key', () => {
    const e = replayedEvent(parked);
    assert.equal(e.data, parked.payload);
    assert.equal(e.stream, 'CRM_EVENTS');
    assert.equal(e.sequence, 41);
    assert.equal(e.key, 'revops/deal-to-invoice/deal-1');
    assert.deepEqual([...(e.headers ?? new Map()).keys()].sort(), ['Nats-Msg-Id', 'X-Trace', 'ce-source']);
    assert.deepEqual(e.headers?.get('Nats-Msg-Id'), ['deal-1'], "the publisher's id, not the fallback entry's");
  });

  it('an event parked before it had a key is replayed without one, so it gets the key the pipeline would derive', () => {
    const noKey: ParkedMessage = { ...parked, headers: new Map([...parked.headers].filter(([k]) => k !== 'Ferry-Idempotency-Key')) };
    assert.equal(replayedEvent(noKey).key, undefined);
  });

  it('a message that fails again keeps its key and source facts, with the new error and the request', () => {
    const h = reparkHeaders(parked, {
      integration: 'revops/deal-to-invoice',
      request: 'r-9',
      reason: 'rejected',
      error: 'HTTP 422',
      httpStatus: 422,
      responseBody: '{"error":"closed"}',
      attempts: 1,
      firstAttemptMs: Date.UTC(2026, 0, 2),
      lastAttemptMs: Date.UTC(2026, 0, 2),
      key: 'revops/deal-to-invoice/deal-1',
    });
    const one = (k: string): string | undefined => h.get(k)?.[0];
    assert.equal(one('Ferry-Reason'), 'rejected');
    assert.equal(one('Ferry-Error'), 'HTTP 422');
    assert.equal(one('Ferry-Http-Status'), '422');
    assert.equal(one('Ferry-Attempts'), '1');
    assert.equal(one('Ferry-Last-Attempt'), '2026-01-02T00:00:00.000Z');
    assert.equal(one('Ferry-Idempotency-Key'), 'revops/deal-to-invoice/deal-1');
    assert.equal(one('Ferry-Source-Stream'), 'CRM_EVENTS');
    assert.equal(one('Ferry-Source-Sequence'), '41');
    assert.equal(one('Ferry-Source-Msg-Id'), 'deal-1');
    assert.equal(one('Ferry-Redrive'), 'r-9');
    assert.equal(one('X-Trace'), 'abc');
    assert.equal(h.get('Nats-Msg-Id'), undefined, "the fallback entry's own id is not carried over");
    assert.equal(reparkMsgId('r-9', 7), 'redrive:r-9:7');
    assert.equal(isReparkedCopy(h, parked.headers, 'r-9'), true, 'recognised as the copy of this message by this request');
    assert.equal(isReparkedCopy(h, parked.headers, 'r-10'), false);
    assert.equal(isReparkedCopy(parked.headers, parked.headers, 'r-9'), false, 'the original is no copy');
  });
});
