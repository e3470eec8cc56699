/**
 * Reads and removes what an Integration's fallback stream holds, by sequence: what redrive needs.
 * Parked messages are fetched one at a time with `next_by_subj` (the first message at or after a
 * sequence), so gaps left by earlier deletions cost nothing, and nothing is buffered for a
 * consumer that might die with its node.
 */
import type { MsgRequest } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { isMessageGone, isStreamNotFound, translateNatsError } from './errors.ts';
import { lazyJetStreamManager } from './jetstream-manager.ts';
import { fallbackStreamName, fallbackSubject, type ObjectRef } from './names.ts';

/** One parked message as stored. */
export interface ParkedMessage {
  readonly sequence: number;
  /** When the fallback stream stored it (ms since the epoch). */
  readonly storedAtMs: number;
  readonly data: Uint8Array;
  readonly headers: ReadonlyMap<string, readonly string[]>;
}

export class FallbackStream {
  private readonly manager: ReturnType<typeof lazyJetStreamManager>;

  constructor(nc: NatsConnection) {
    this.manager = lazyJetStreamManager(nc);
  }

  /** The stream's last sequence (0 when empty or missing). */
  async lastSequence(ref: ObjectRef): Promise<number> {
    const name = fallbackStreamName(ref);
    try {
      return (await (await this.manager()).streams.info(name)).state.last_seq;
    } catch (err) {
      if (isStreamNotFound(err)) return 0;
      throw translateNatsError(err, `reading stream ${name}`);
    }
  }

  /** The first message at or after `sequence`, or undefined when there is none. */
  async next(ref: ObjectRef, sequence: number): Promise<ParkedMessage | undefined> {
    const name = fallbackStreamName(ref);
    try {
      // The server's MSG.GET takes `next_by_subj` with `seq`; the client's type only lists the other forms.
      const query = { seq: sequence, next_by_subj: fallbackSubject(ref) } as unknown as MsgRequest;
      const m = await (await this.manager()).streams.getMessage(name, query);
      if (!m) return undefined;
      const headers = new Map<string, string[]>();
      for (const [k, v] of m.header) headers.set(k, [...v]);
      return { sequence: m.seq, storedAtMs: m.time.getTime(), data: m.data, headers };
    } catch (err) {
      if (isStreamNotFound(err)) return undefined;
      throw translateNatsError(err, `reading ${name} from sequence ${sequence}`);
    }
  }

  /** Removes one message; true when it was there. */
  async delete(ref: ObjectRef, sequence: number): Promise<boolean> {
    const name = fallbackStreamName(ref);
    try {
      return await (await this.manager()).streams.deleteMessage(name, sequence, false);
    } catch (err) {
      // Already gone (deleted by an earlier holder before it died): the outcome is the same.
      if (isMessageGone(err) || isStreamNotFound(err)) return false;
      throw translateNatsError(err, `deleting ${name} sequence ${sequence}`);
    }
  }
}
