/**
 * Builds the fallback stream entry for what could not be delivered — an Integration's event or a
 * SyncSchedule's record: the original payload byte for byte, the original headers, and Ferry's
 * headers saying why and how it got here (DESIGN.md lists them). One builder for both kinds, so an
 * SRE (and redrive) reads one format. Pure; the caller publishes it.
 */

/** Why something was parked; the same words for both kinds. */
export type FallbackReason = 'invalid' | 'transform' | 'exhausted' | 'rejected' | 'contract';

export interface FallbackFacts {
  /** `<namespace>/<name>` of the Integration (absent for a SyncSchedule record). */
  readonly integration?: string | undefined;
  /** `<namespace>/<name>` of the SyncSchedule whose record this is. */
  readonly syncSchedule?: string | undefined;
  readonly reason: FallbackReason;
  readonly error: string;
  readonly httpStatus?: number | undefined;
  /** The target's response body (already truncated by the deliverer). */
  readonly responseBody?: string | undefined;
  /** HTTP attempts made; 0 for an event that never got that far (invalid, transform). */
  readonly attempts: number;
  /** Absent when no attempt was made. */
  readonly firstAttemptMs?: number | undefined;
  readonly lastAttemptMs?: number | undefined;
  /** Where an event came from (Integration). */
  readonly sourceStream?: string | undefined;
  readonly sourceSequence?: number | undefined;
  readonly sourceSubject?: string | undefined;
  /** Where a record came from and its key (SyncSchedule). */
  readonly sourceUrl?: string | undefined;
  readonly recordKey?: string | undefined;
  readonly idempotencyKey: string | undefined;
  /** The publisher's `Nats-Msg-Id` when `original` no longer carries it (a redrive re-parking an entry). */
  readonly sourceMsgId?: string | undefined;
  /** The redrive request (`ferry.dev/redrive` value) that re-parked this entry. */
  readonly redrive?: string | undefined;
}

/** NATS header values are one line; bodies and messages are cut to stay well under limits. */
const MAX_HEADER_VALUE = 1024;

function oneLine(text: string): string {
  const flat = text.replace(/[\r\n]+/g, ' ');
  return flat.length > MAX_HEADER_VALUE ? `${flat.slice(0, MAX_HEADER_VALUE - 1)}…` : flat;
}

/**
 * The entry's headers. Original headers are kept, except:
 * - `Ferry-*` (set below, from this parking);
 * - every `Nats-*` header: the server interprets them on publish (`Nats-Msg-Id` dedups,
 *   `Nats-Expected-*` make the publish conditional, `Nats-TTL`, `Nats-Rollup`, `Nats-Marker-*`,
 *   batch and schedule headers…), and an event published with `expect` would otherwise be
 *   refused by the fallback stream. The original `Nats-Msg-Id` is kept as `Ferry-Source-Msg-Id`.
 */
export function fallbackHeaders(
  original: ReadonlyMap<string, readonly string[]> | undefined,
  facts: FallbackFacts,
): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  let sourceMsgId: string | undefined;
  for (const [k, v] of original ?? []) {
    const lower = k.toLowerCase();
    if (lower === 'nats-msg-id') sourceMsgId = v[0];
    if (lower.startsWith('ferry-') || lower.startsWith('nats-')) continue;
    out.set(k, v);
  }
  const set = (name: string, value: string | number | undefined): void => {
    if (value !== undefined) out.set(name, [oneLine(String(value))]);
  };
  set('Ferry-Integration', facts.integration);
  set('Ferry-Sync-Schedule', facts.syncSchedule);
  set('Ferry-Reason', facts.reason);
  set('Ferry-Error', facts.error);
  set('Ferry-Http-Status', facts.httpStatus);
  set('Ferry-Response-Body', facts.responseBody);
  set('Ferry-Attempts', facts.attempts);
  set('Ferry-First-Attempt', facts.firstAttemptMs === undefined ? undefined : new Date(facts.firstAttemptMs).toISOString());
  set('Ferry-Last-Attempt', facts.lastAttemptMs === undefined ? undefined : new Date(facts.lastAttemptMs).toISOString());
  set('Ferry-Source-Stream', facts.sourceStream);
  set('Ferry-Source-Sequence', facts.sourceSequence);
  set('Ferry-Source-Subject', facts.sourceSubject);
  set('Ferry-Source-Msg-Id', facts.sourceMsgId ?? sourceMsgId);
  set('Ferry-Source-Url', facts.sourceUrl);
  set('Ferry-Record-Key', facts.recordKey);
  set('Ferry-Idempotency-Key', facts.idempotencyKey);
  set('Ferry-Redrive', facts.redrive);
  return out;
}

/** `Nats-Msg-Id` of the fallback entry: one source event, one fallback entry, across crashes. */
export function fallbackMsgId(stream: string, sequence: number): string {
  return `${stream}:${sequence}`;
}
