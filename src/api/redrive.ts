/**
 * A redrive request: which parked messages of an Integration's fallback stream to replay.
 *
 * A request is made by annotations on the Integration, so a GitOps commit and `ferry fallback
 * redrive` ask the same way and the operator is the only one that replays:
 *
 * - `ferry.dev/redrive: <any new value>` — the request id; a value not answered yet starts one.
 * - `ferry.dev/redrive-reasons: exhausted,rejected` — only these `Ferry-Reason`s (default: all).
 * - `ferry.dev/redrive-sequences: 100-250` — fallback stream sequences, inclusive; `100-` and
 *   `-250` leave one end open.
 * - `ferry.dev/redrive-older-than: 1h` / `ferry.dev/redrive-newer-than: 24h` — by the time the
 *   message was parked (its stream time), relative to when the redrive starts.
 *
 * The filters are read together with the request id: changing only a filter starts nothing.
 */
import { z } from 'zod';
import { GROUP, REDRIVE_ANNOTATION } from './constants.ts';
import { DURATION_MESSAGE, parseDuration, tryParseDuration } from './duration.ts';
import { RedriveRequestInvalidError } from './errors.ts';

export const REDRIVE_REASONS_ANNOTATION = `${GROUP}/redrive-reasons`;
export const REDRIVE_SEQUENCES_ANNOTATION = `${GROUP}/redrive-sequences`;
export const REDRIVE_OLDER_THAN_ANNOTATION = `${GROUP}/redrive-older-than`;
export const REDRIVE_NEWER_THAN_ANNOTATION = `${GROUP}/redrive-newer-than`;

/** Every annotation of a redrive request, the trigger first. */
export const REDRIVE_ANNOTATIONS = [
  REDRIVE_ANNOTATION,
  REDRIVE_REASONS_ANNOTATION,
  REDRIVE_SEQUENCES_ANNOTATION,
  REDRIVE_OLDER_THAN_ANNOTATION,
  REDRIVE_NEWER_THAN_ANNOTATION,
] as const;

/** The reasons a message is parked with (`Ferry-Reason`). */
export const FALLBACK_REASONS = ['invalid', 'transform', 'exhausted', 'rejected', 'contract'] as const;
export type ParkedReason = (typeof FALLBACK_REASONS)[number];

/** Longest request id: it is stored in status and in KV keys' values. */
export const REDRIVE_ID_MAX_LENGTH = 256;

export const redriveFilterSchema = z.strictObject({
  reasons: z.array(z.enum(FALLBACK_REASONS)).min(1).optional(),
  /** First fallback stream sequence to consider (inclusive). */
  fromSequence: z.int().min(1).optional(),
  /** Last fallback stream sequence to consider (inclusive). */
  toSequence: z.int().min(1).optional(),
  /** Only messages parked at least this long before the redrive started. */
  olderThanMs: z.int().min(0).optional(),
  /** Only messages parked at most this long before the redrive started. */
  newerThanMs: z.int().min(0).optional(),
});
export type RedriveFilter = z.output<typeof redriveFilterSchema>;

export const redriveRequestSchema = z.strictObject({
  /** The `ferry.dev/redrive` value. */
  id: z.string().min(1).max(REDRIVE_ID_MAX_LENGTH),
  filter: redriveFilterSchema,
});
export type RedriveRequest = z.output<typeof redriveRequestSchema>;

const SEQUENCES = /^([0-9]{1,15})?-([0-9]{1,15})?$/;

function parseSequences(text: string): Pick<RedriveFilter, 'fromSequence' | 'toSequence'> {
  const single = /^[0-9]{1,15}$/.test(text) ? Number(text) : undefined;
  if (single !== undefined && single >= 1) return { fromSequence: single, toSequence: single };
  const m = SEQUENCES.exec(text);
  const from = m?.[1] === undefined ? undefined : Number(m[1]);
  const to = m?.[2] === undefined ? undefined : Number(m[2]);
  if (!m || (from === undefined && to === undefined) || from === 0 || to === 0 || (from !== undefined && to !== undefined && from > to)) {
    throw new RedriveRequestInvalidError(REDRIVE_SEQUENCES_ANNOTATION, text, 'must be a sequence range such as 100-250, 100- or -250 (inclusive, from ≤ to, from 1)');
  }
  return { ...(from === undefined ? {} : { fromSequence: from }), ...(to === undefined ? {} : { toSequence: to }) };
}

function parseReasons(text: string): ParkedReason[] {
  const reasons = text.split(',').map((r) => r.trim()).filter((r) => r.length > 0);
  const known = new Set<string>(FALLBACK_REASONS);
  const unknown = reasons.filter((r) => !known.has(r));
  if (reasons.length === 0 || unknown.length > 0) {
    throw new RedriveRequestInvalidError(REDRIVE_REASONS_ANNOTATION, text, `must be a comma-separated list of ${FALLBACK_REASONS.join(', ')}`);
  }
  return [...new Set(reasons)] as ParkedReason[];
}

function parseAge(annotation: string, text: string): number {
  const ms = tryParseDuration(text.trim());
  if (ms === undefined) throw new RedriveRequestInvalidError(annotation, text, DURATION_MESSAGE);
  return ms;
}

/**
 * Reads the redrive request from an Integration's annotations.
 *
 * @returns undefined when there is no `ferry.dev/redrive` annotation (or it is empty).
 * @throws RedriveRequestInvalidError naming the annotation and what it must look like.
 */
export function parseRedriveRequest(annotations: Readonly<Record<string, string>> | undefined): RedriveRequest | undefined {
  const id = annotations?.[REDRIVE_ANNOTATION]?.trim();
  if (!annotations || !id) return undefined;
  if (id.length > REDRIVE_ID_MAX_LENGTH) throw new RedriveRequestInvalidError(REDRIVE_ANNOTATION, id, `must be at most ${REDRIVE_ID_MAX_LENGTH} characters`);
  const reasons = annotations[REDRIVE_REASONS_ANNOTATION];
  const sequences = annotations[REDRIVE_SEQUENCES_ANNOTATION];
  const older = annotations[REDRIVE_OLDER_THAN_ANNOTATION];
  const newer = annotations[REDRIVE_NEWER_THAN_ANNOTATION];
  const filter: RedriveFilter = {
    ...(reasons === undefined || reasons.trim() === '' ? {} : { reasons: parseReasons(reasons) }),
    ...(sequences === undefined || sequences.trim() === '' ? {} : parseSequences(sequences.trim())),
    ...(older === undefined || older.trim() === '' ? {} : { olderThanMs: parseAge(REDRIVE_OLDER_THAN_ANNOTATION, older) }),
    ...(newer === undefined || newer.trim() === '' ? {} : { newerThanMs: parseAge(REDRIVE_NEWER_THAN_ANNOTATION, newer) }),
  };
  return { id, filter };
}

/** What a parked message must be for a filter to select it. */
export interface ParkedMessageFacts {
  readonly sequence: number;
  /** `Ferry-Reason`; a message without one is only selected by a filter without reasons. */
  readonly reason: string | undefined;
  /** When the message was stored in the fallback stream (ms since the epoch). */
  readonly parkedAtMs: number;
}

/** Whether `filter` selects a parked message, for a redrive that started at `startedAtMs`. */
export function redriveSelects(filter: RedriveFilter, message: ParkedMessageFacts, startedAtMs: number): boolean {
  if (filter.fromSequence !== undefined && message.sequence < filter.fromSequence) return false;
  if (filter.toSequence !== undefined && message.sequence > filter.toSequence) return false;
  if (filter.reasons !== undefined && (message.reason === undefined || !(filter.reasons as readonly string[]).includes(message.reason))) return false;
  const age = startedAtMs - message.parkedAtMs;
  if (filter.olderThanMs !== undefined && age < filter.olderThanMs) return false;
  if (filter.newerThanMs !== undefined && age > filter.newerThanMs) return false;
  return true;
}

/**
 * The annotations that make a request: what `ferry fallback redrive` merges into the
 * Integration. Filters not given are set to null so an older request's filters do not linger.
 */
export function redriveAnnotations(id: string, options: { readonly reasons?: readonly ParkedReason[]; readonly fromSequence?: number; readonly toSequence?: number; readonly olderThan?: string; readonly newerThan?: string }): Record<string, string | null> {
  if (options.olderThan !== undefined) parseDuration(options.olderThan);
  if (options.newerThan !== undefined) parseDuration(options.newerThan);
  const sequences =
    options.fromSequence === undefined && options.toSequence === undefined ? null : `${options.fromSequence ?? ''}-${options.toSequence ?? ''}`;
  return {
    [REDRIVE_ANNOTATION]: id,
    [REDRIVE_REASONS_ANNOTATION]: options.reasons && options.reasons.length > 0 ? options.reasons.join(',') : null,
    [REDRIVE_SEQUENCES_ANNOTATION]: sequences,
    [REDRIVE_OLDER_THAN_ANNOTATION]: options.olderThan ?? null,
    [REDRIVE_NEWER_THAN_ANNOTATION]: options.newerThan ?? null,
  };
}
