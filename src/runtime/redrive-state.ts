/**
 * The pure parts of a redrive: which step a replica takes for a request (start, resume a dead
 * holder's run, wait, or nothing), how the shared record changes with each message and at the
 * end, and how a parked message is turned back into the event it was (and into a re-parked entry
 * when it fails again). No I/O: the runner reads and writes the record with compare-and-set.
 *
 * Guarantees: a record is only changed by the run that holds it (`runId`), except that a Running
 * record whose lease passed may be taken over, keeping its progress; `nextSequence` only grows;
 * a request id that has a finished record is never run again.
 */
import type { RedriveFilter } from '../api/index.ts';
import { fallbackHeaders, type FallbackFacts, type ParkedMessage, type SharedRedrive } from '../nats/index.ts';
import type { EventInput } from './prepare-event.ts';

/** What a replica does about an Integration's current request. */
export type RedriveStep =
  /** Answered already (finished, or invalid): nothing to do. */
  | 'answered'
  /** A run holds the record and its lease is alive: wait for it to end (or expire). */
  | 'busy'
  /** No run: start this request. */
  | 'start'
  /** A Running record whose holder stopped renewing: take it over and finish it. */
  | 'resume';

export function nextStep(record: SharedRedrive | undefined, request: string, now: number): RedriveStep {
  if (record?.result === 'Running') return (record.expiresAt ?? 0) > now ? 'busy' : 'resume';
  return record?.request === request ? 'answered' : 'start';
}

export interface Holder {
  readonly holder: string;
  readonly runId: string;
  readonly now: number;
  readonly ttlMs: number;
}

/** A new run of `request`, selecting up to the stream's last sequence now. */
export function started(request: string, filter: RedriveFilter, h: Holder, upToSequence: number): SharedRedrive {
  return {
    request,
    result: 'Running',
    filter,
    holder: h.holder,
    runId: h.runId,
    expiresAt: h.now + h.ttlMs,
    startedAt: h.now,
    upToSequence,
    nextSequence: filter.fromSequence ?? 1,
    selected: 0,
    delivered: 0,
    failedAgain: 0,
  };
}

/** The answer to a request whose annotations do not parse. */
export function invalid(request: string, message: string, now: number): SharedRedrive {
  return { request, result: 'Invalid', startedAt: now, completedAt: now, selected: 0, delivered: 0, failedAgain: 0, message };
}

/** A dead holder's run, taken over with its progress. */
export function takenOver(record: SharedRedrive, h: Holder): SharedRedrive {
  return { ...record, holder: h.holder, runId: h.runId, expiresAt: h.now + h.ttlMs };
}

/** The lease extended; undefined when the record is not this run's any more. */
export function renewed(record: SharedRedrive | undefined, runId: string, now: number, ttlMs: number): SharedRedrive | undefined {
  if (record?.runId !== runId || record.result !== 'Running') return undefined;
  return { ...record, expiresAt: now + ttlMs };
}

/** The lease given up at once (a shutdown): another replica may resume without waiting. */
export function released(record: SharedRedrive | undefined, runId: string, now: number): SharedRedrive | undefined {
  if (record?.runId !== runId || record.result !== 'Running') return undefined;
  return { ...record, expiresAt: now };
}

export type MessageOutcome = 'delivered' | 'failedAgain';

/** Marks `sequence` as being parked again (see `SharedRedrive.reparking`), before its copy is published. */
export function reparking(record: SharedRedrive | undefined, runId: string, h: { now: number; ttlMs: number }, sequence: number): SharedRedrive | undefined {
  const r = renewed(record, runId, h.now, h.ttlMs);
  return r && { ...r, reparking: sequence };
}

/**
 * Whether `copy` is the failed-again copy of `original` that this request published: same
 * request, same source event. Used when a run resumes a message marked `reparking`.
 */
export function isReparkedCopy(copy: ReadonlyMap<string, readonly string[]>, original: ReadonlyMap<string, readonly string[]>, request: string): boolean {
  const c = parkedFacts(copy);
  const o = parkedFacts(original);
  return header(copy, 'Ferry-Redrive') === request && c.sourceStream === o.sourceStream && c.sourceSequence === o.sourceSequence && c.key === o.key;
}

/**
 * One selected message done: counted, the next sequence after it, and the message marked for
 * deletion (the caller deletes it after this is stored, so a holder that dies in between leaves
 * the deletion to whoever continues — never a delivered message left parked unnoticed).
 */
export function progressed(record: SharedRedrive | undefined, runId: string, h: { now: number; ttlMs: number }, sequence: number, outcome: MessageOutcome): SharedRedrive | undefined {
  const r = renewed(record, runId, h.now, h.ttlMs);
  if (!r) return undefined;
  return {
    ...r,
    nextSequence: Math.max(r.nextSequence ?? 1, sequence + 1),
    pendingDelete: sequence,
    reparking: undefined,
    selected: r.selected + 1,
    delivered: r.delivered + (outcome === 'delivered' ? 1 : 0),
    failedAgain: r.failedAgain + (outcome === 'failedAgain' ? 1 : 0),
  };
}

/**
 * The end of a run. `stopped`: why it stopped before the end (the circuit opened, credentials
 * refused) — then `Failed`; otherwise `Partial` when something failed again, else `Succeeded`.
 */
export function finished(record: SharedRedrive | undefined, runId: string, now: number, stopped?: string): SharedRedrive | undefined {
  if (record?.runId !== runId || record.result !== 'Running') return undefined;
  const counts = `${record.selected} selected, ${record.delivered} delivered, ${record.failedAgain} failed again`;
  let result: SharedRedrive['result'];
  let message: string;
  if (stopped !== undefined) {
    result = 'Failed';
    message = `stopped: ${stopped}; ${counts}; the messages not redriven stay parked untouched — fix the cause and request a new redrive`;
  } else if (record.failedAgain > 0) {
    result = 'Partial';
    message = `${counts}; those that failed again stay parked with the new error in Ferry-Error (header Ferry-Redrive: ${record.request})`;
  } else {
    result = 'Succeeded';
    message = record.selected === 0 ? 'no parked message matched the request' : counts;
  }
  const { holder: _h, runId: _r, expiresAt: _e, pendingDelete: _p, reparking: _k, ...rest } = record;
  return { ...rest, result, completedAt: now, message };
}

/** What a parked message's headers say about it. */
export interface ParkedFacts {
  readonly reason: string | undefined;
  readonly key: string | undefined;
  readonly sourceStream: string | undefined;
  readonly sourceSequence: number | undefined;
  readonly sourceSubject: string | undefined;
  readonly sourceMsgId: string | undefined;
}

function header(headers: ReadonlyMap<string, readonly string[]>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of headers) if (k.toLowerCase() === lower) return v[0];
  return undefined;
}

export function parkedFacts(headers: ReadonlyMap<string, readonly string[]>): ParkedFacts {
  const seq = header(headers, 'Ferry-Source-Sequence');
  const n = seq === undefined ? Number.NaN : Number(seq);
  return {
    reason: header(headers, 'Ferry-Reason'),
    key: header(headers, 'Ferry-Idempotency-Key') || undefined,
    sourceStream: header(headers, 'Ferry-Source-Stream'),
    sourceSequence: Number.isSafeInteger(n) && n > 0 ? n : undefined,
    sourceSubject: header(headers, 'Ferry-Source-Subject'),
    sourceMsgId: header(headers, 'Ferry-Source-Msg-Id'),
  };
}

/** The original headers: everything a fallback entry carries except Ferry's and the server's own. */
function originalHeaders(headers: ReadonlyMap<string, readonly string[]>): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  for (const [k, v] of headers) {
    const lower = k.toLowerCase();
    if (!lower.startsWith('ferry-') && !lower.startsWith('nats-')) out.set(k, v);
  }
  return out;
}

/**
 * The event as it was in its source stream: the payload byte for byte, its original headers with
 * the publisher's `Nats-Msg-Id` back, its source stream and sequence, and the key its attempts
 * were sent with. An event parked before it had a key (invalid, transform) gets the key the
 * pipeline would have derived for it, from the same facts.
 */
export function replayedEvent(m: ParkedMessage, facts: ParkedFacts = parkedFacts(m.headers)): EventInput {
  const headers = originalHeaders(m.headers);
  if (facts.sourceMsgId !== undefined) headers.set('Nats-Msg-Id', [facts.sourceMsgId]);
  return {
    stream: facts.sourceStream ?? '',
    sequence: facts.sourceSequence ?? m.sequence,
    data: m.payload,
    headers,
    key: facts.key,
  };
}

/** Why a redriven message is parked again (the facts of this redrive's attempts). */
export interface Repark extends Pick<FallbackFacts, 'integration' | 'reason' | 'error' | 'httpStatus' | 'responseBody' | 'attempts' | 'firstAttemptMs' | 'lastAttemptMs'> {
  /** The redrive request (`ferry.dev/redrive` value). */
  readonly request: string;
  /** The key the attempts were sent with (the original one). */
  readonly key: string | undefined;
}

/**
 * The headers of a message that failed again: the original headers, the same source facts and
 * idempotency key, the new reason, error, status and attempts of this redrive, and
 * `Ferry-Redrive: <request>`.
 */
export function reparkHeaders(m: ParkedMessage, r: Repark, facts: ParkedFacts = parkedFacts(m.headers)): Map<string, readonly string[]> {
  return fallbackHeaders(originalHeaders(m.headers), {
    integration: r.integration,
    reason: r.reason,
    error: r.error,
    httpStatus: r.httpStatus,
    responseBody: r.responseBody,
    attempts: r.attempts,
    firstAttemptMs: r.firstAttemptMs,
    lastAttemptMs: r.lastAttemptMs,
    sourceStream: facts.sourceStream,
    sourceSequence: facts.sourceSequence,
    sourceSubject: facts.sourceSubject,
    sourceMsgId: facts.sourceMsgId,
    idempotencyKey: r.key ?? facts.key,
    redrive: r.request,
  });
}

/** `Nats-Msg-Id` of a re-parked copy: a publish retried after a crash is stored once. */
export function reparkMsgId(request: string, sequence: number): string {
  return `redrive:${request}:${sequence}`;
}
