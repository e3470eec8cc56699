/**
 * What Ferry remembers about one event across deliveries, in the ATTEMPTS_BUCKET (key
 * `<namespace>.<name>.<stream sequence>`): the HTTP attempts made, when the first one was made,
 * and whether a success was already applied but its ack not confirmed. Written only on the slow
 * path (an event that failed once, or whose ack was lost) and read only on a redelivery, so an
 * event delivered at the first try costs no KV round trip.
 *
 * Why not JetStream's delivery count: it also counts redeliveries that were no attempt — a
 * shutdown handing events back, a generation swap, a lost ack — so `maxAttempts`,
 * `Ferry-Attempts` and `maxElapsed` would drift from what the target actually saw.
 */
import { integrationStateKeyPrefix, type ObjectRef } from './names.ts';
import type { SharedKv } from './shared-kv.ts';

export interface AttemptRecord {
  /** The source stream the sequence belongs to (a spec may switch streams). */
  readonly stream: string;
  /** HTTP attempts made, whatever their answer. */
  readonly attempts: number;
  /** Of those, answered 401/403: they say nothing about the event and do not count to maxAttempts. */
  readonly authFailures: number;
  /** When the first HTTP attempt was made (ms since the epoch); `maxElapsed` counts from here. */
  readonly firstAttemptMs?: number | undefined;
  /** When the first 401/403 came back. */
  readonly firstAuthFailureMs?: number | undefined;
  /** Failed fallback publishes, for their backoff. */
  readonly parkFailures: number;
  /** Redeliveries Ferry asked for (nak with a delay); the rest of the delivery count was no choice of ours. */
  readonly naks: number;
  /** A 2xx was received and counted, but the ack was not confirmed: a redelivery is acked, not sent. */
  readonly succeeded?: boolean | undefined;
}

export const NO_ATTEMPTS = (stream: string): AttemptRecord => ({ stream, attempts: 0, authFailures: 0, parkFailures: 0, naks: 0 });

export class AttemptLedger {
  private readonly kv: SharedKv;

  constructor(kv: SharedKv) {
    this.kv = kv;
  }

  private key(ref: ObjectRef, sequence: number): string {
    return `${integrationStateKeyPrefix(ref)}.${sequence}`;
  }

  /** The record of an event, or undefined when it has none (or one from another stream). */
  async get(ref: ObjectRef, stream: string, sequence: number): Promise<AttemptRecord | undefined> {
    const found = await this.kv.get<AttemptRecord>(this.key(ref, sequence));
    return found?.value.stream === stream ? found.value : undefined;
  }

  async put(ref: ObjectRef, sequence: number, record: AttemptRecord): Promise<void> {
    await this.kv.put(this.key(ref, sequence), record);
  }

  async delete(ref: ObjectRef, sequence: number): Promise<void> {
    await this.kv.delete(this.key(ref, sequence));
  }

  /** Forgets every record of an Integration (it was deleted). */
  async purge(ref: ObjectRef): Promise<void> {
    await this.kv.purge(`${integrationStateKeyPrefix(ref)}.>`);
  }
}
