/**
 * One SyncSchedule's durable state in its own KV bucket (`syncStateBucketName`):
 * - `watermark`: W, the highest cursor whose records are all resolved (compare-and-set commits);
 * - `h.<key>`: the content hash of the transformed record the target acknowledged, per key;
 * - `f.<key>`: the failed-key index (error, attempts, first and last failure, the source record).
 *
 * Why a KV bucket for the hashes: a bucket is a stream with one subject per key and history 1,
 * so it holds exactly one small message per key (≈ 100 bytes with headers; 1M keys ≈ 100 MB on
 * disk), is replicated like every other Ferry bucket, and is read whole at the start of a run by
 * one ordered consumer (`snapshot`), not one request per key. Hashes are written only after the
 * target's acknowledgement, so a crash can make Ferry write a record again (with the same
 * idempotency key), never skip one.
 */
import type { FallbackReason, SharedKv, Versioned } from '../nats/index.ts';
import { keyToken, tokenKey } from './records.ts';

export interface WatermarkRecord {
  /** Epoch ms of the cursor value. */
  readonly value: number;
  readonly runId: string;
  readonly committedAt: string;
}

export interface FailedRecord {
  readonly key: string;
  /** The latest source version that failed (retried as it is when a run does not read it again). */
  readonly record: unknown;
  readonly reason: FallbackReason;
  readonly error: string;
  readonly httpStatus?: number | undefined;
  readonly responseBody?: string | undefined;
  readonly attempts: number;
  readonly firstFailure: string;
  readonly lastFailure: string;
}

const WATERMARK = 'watermark';

export class SyncState {
  private readonly kv: SharedKv;

  constructor(kv: SharedKv) {
    this.kv = kv;
  }

  watermark(): Promise<Versioned<WatermarkRecord> | undefined> {
    return this.kv.get<WatermarkRecord>(WATERMARK);
  }

  /** Moves W forward (never back), with compare-and-set; returns the committed value. */
  async advanceWatermark(value: number, runId: string, now: number): Promise<number> {
    const next = await this.kv.update<WatermarkRecord>(WATERMARK, (current) =>
      current && current.value >= value ? current : { value, runId, committedAt: new Date(now).toISOString() },
    );
    return next.value;
  }

  /** Every stored content hash, by key. */
  hashes(): Promise<Map<string, string>> {
    return this.kv.snapshot<string>('h.>', (k) => tokenKey(k.slice(2)));
  }

  /** Changes with every write to the bucket (by any replica): equal means nothing changed. */
  version(): Promise<number | undefined> {
    return this.kv.lastSequence();
  }

  putHashes(entries: readonly (readonly [key: string, hash: string])[]): Promise<void> {
    return this.kv.putMany(entries.map(([key, hash]) => [`h.${keyToken(key)}`, hash] as const));
  }

  async forgetHash(key: string): Promise<void> {
    await this.kv.delete(`h.${keyToken(key)}`);
  }

  async failed(): Promise<Map<string, FailedRecord>> {
    const raw = await this.kv.snapshot<FailedRecord>('f.>');
    const out = new Map<string, FailedRecord>();
    for (const v of raw.values()) out.set(v.key, v);
    return out;
  }

  putFailed(records: readonly FailedRecord[]): Promise<void> {
    return this.kv.putMany(records.map((r) => [`f.${keyToken(r.key)}`, r] as const));
  }

  async clearFailed(keys: readonly string[]): Promise<void> {
    for (const key of keys) await this.kv.delete(`f.${keyToken(key)}`);
  }
}
