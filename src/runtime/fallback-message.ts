/**
 * Builds the fallback stream entry for an event: the original payload byte for byte, the
 * original headers, and Ferry's headers saying why and how it got here (DESIGN.md lists them).
 * Pure; the pipeline publishes it and terms the source message after the PubAck.
 */
import type { FallbackReason } from './decide.ts';

export interface FallbackFacts {
  readonly integration: string;
  readonly reason: FallbackReason;
  readonly error: string;
  readonly httpStatus?: number | undefined;
  /** The target's response body (already truncated by the deliverer). */
  readonly responseBody?: string | undefined;
  readonly attempts: number;
  readonly firstAttemptMs: number;
  readonly lastAttemptMs: number;
  readonly sourceStream: string;
  readonly sourceSequence: number;
  readonly sourceSubject: string;
  readonly idempotencyKey: string | undefined;
}

/** NATS header values are one line; bodies and messages are cut to stay well under limits. */
const MAX_HEADER_VALUE = 1024;

function oneLine(text: string): string {
  const flat = text.replace(/[\r\n]+/g, ' ');
  return flat.length > MAX_HEADER_VALUE ? `${flat.slice(0, MAX_HEADER_VALUE - 1)}…` : flat;
}

export function fallbackHeaders(
  original: ReadonlyMap<string, readonly string[]> | undefined,
  facts: FallbackFacts,
): Map<string, readonly string[]> {
  const out = new Map<string, readonly string[]>();
  for (const [k, v] of original ?? []) {
    // Ferry's headers are set below; Nats-Msg-Id is replaced by the fallback's own dedup id.
    if (k.toLowerCase().startsWith('ferry-') || k.toLowerCase() === 'nats-msg-id') continue;
    out.set(k, v);
  }
  const set = (name: string, value: string | number | undefined): void => {
    if (value !== undefined) out.set(name, [oneLine(String(value))]);
  };
  set('Ferry-Integration', facts.integration);
  set('Ferry-Reason', facts.reason);
  set('Ferry-Error', facts.error);
  set('Ferry-Http-Status', facts.httpStatus);
  set('Ferry-Response-Body', facts.responseBody);
  set('Ferry-Attempts', facts.attempts);
  set('Ferry-First-Attempt', new Date(facts.firstAttemptMs).toISOString());
  set('Ferry-Last-Attempt', new Date(facts.lastAttemptMs).toISOString());
  set('Ferry-Source-Stream', facts.sourceStream);
  set('Ferry-Source-Sequence', facts.sourceSequence);
  set('Ferry-Source-Subject', facts.sourceSubject);
  set('Ferry-Idempotency-Key', facts.idempotencyKey);
  return out;
}

/** `Nats-Msg-Id` of the fallback entry: one source event, one fallback entry, across crashes. */
export function fallbackMsgId(stream: string, sequence: number): string {
  return `${stream}:${sequence}`;
}
