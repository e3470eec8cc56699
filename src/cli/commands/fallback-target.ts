/**
 * Which fallback stream a `ferry fallback` argument names, and which of its messages the
 * selection flags pick. `NAME` is an Integration; `syncschedule/NAME` (or `ss/NAME`) a
 * SyncSchedule; `integration/NAME` (or `ig/NAME`) says the default out loud.
 */
import { fallbackStreamName, syncFallbackStreamName, type FallbackStore, type ParkedMessage } from '../../nats/index.ts';
import { intFlag, isObjectName, reasonsFlag } from '../cli-args.ts';
import { UsageError } from '../usage-error.ts';

export interface FallbackTarget {
  readonly kind: 'Integration' | 'SyncSchedule';
  readonly namespace: string;
  readonly name: string;
  readonly stream: string;
}

const KINDS: Readonly<Record<string, FallbackTarget['kind']>> = {
  integration: 'Integration',
  integrations: 'Integration',
  ig: 'Integration',
  syncschedule: 'SyncSchedule',
  syncschedules: 'SyncSchedule',
  ss: 'SyncSchedule',
};

export function fallbackTarget(arg: string, namespace: string): FallbackTarget {
  const slash = arg.indexOf('/');
  const kind = slash < 0 ? 'Integration' : KINDS[arg.slice(0, slash).toLowerCase()];
  const name = slash < 0 ? arg : arg.slice(slash + 1);
  if (kind === undefined) throw new UsageError(`${JSON.stringify(arg)}: the kind must be integration or syncschedule`);
  if (!isObjectName(name)) throw new UsageError(`${JSON.stringify(name)} is not an object name`);
  const ref = { namespace, name };
  return { kind, namespace, name, stream: kind === 'Integration' ? fallbackStreamName(ref) : syncFallbackStreamName(ref) };
}

/** The selection flags of `show` and `purge`. */
export const SELECTION_OPTIONS = {
  seq: { type: 'string' },
  'from-seq': { type: 'string' },
  'to-seq': { type: 'string' },
  reason: { type: 'string', multiple: true },
  limit: { type: 'string' },
} as const;

export const SELECTION_USAGE = `  --seq N                  only the message with this fallback stream sequence
  --from-seq N, --to-seq N first and last sequence (inclusive)
  --reason R[,R]           only these Ferry-Reasons: invalid, transform, exhausted, rejected, contract
  --limit N                at most N messages`;

export interface Selection {
  readonly fromSequence: number | undefined;
  readonly toSequence: number | undefined;
  readonly reasons: readonly string[] | undefined;
  readonly limit: number | undefined;
}

/** Reads the selection flags; a malformed or contradictory one is a UsageError. */
export function selection(values: { seq?: string | undefined; 'from-seq'?: string | undefined; 'to-seq'?: string | undefined; reason?: string[] | undefined; limit?: string | undefined }): Selection {
  const seq = intFlag('seq', values.seq);
  if (seq !== undefined && (values['from-seq'] !== undefined || values['to-seq'] !== undefined)) throw new UsageError('--seq cannot be combined with --from-seq or --to-seq');
  const fromSequence = seq ?? intFlag('from-seq', values['from-seq']);
  const toSequence = seq ?? intFlag('to-seq', values['to-seq']);
  if (fromSequence !== undefined && toSequence !== undefined && fromSequence > toSequence) throw new UsageError('--from-seq must not be greater than --to-seq');
  return { fromSequence, toSequence, reasons: reasonsFlag(values.reason), limit: intFlag('limit', values.limit) };
}

/** The header's first value, names matched case-insensitively. */
export function header(message: Pick<ParkedMessage, 'headers'>, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of message.headers) if (k.toLowerCase() === lower) return v[0];
  return undefined;
}

/** The selected messages, in sequence order. */
export async function selectMessages(store: FallbackStore, stream: string, sel: Selection): Promise<ParkedMessage[]> {
  const out: ParkedMessage[] = [];
  if (sel.limit === 0) return out;
  for await (const message of store.read(stream, { fromSequence: sel.fromSequence, toSequence: sel.toSequence })) {
    const reason = header(message, 'Ferry-Reason');
    if (sel.reasons !== undefined && (reason === undefined || !sel.reasons.includes(reason))) continue;
    out.push(message);
    if (sel.limit !== undefined && out.length >= sel.limit) break;
  }
  return out;
}
