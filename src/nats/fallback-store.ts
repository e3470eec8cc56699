/**
 * Reads and deletes what sits in fallback streams: for the operations CLI (`ferry fallback …`:
 * which fallback streams exist, what each holds, purging by sequence) and for redrive (the next
 * parked message at or after a sequence, deleting what was delivered). Parked messages are never
 * changed in place: a redrive publishes a re-parked copy and deletes the original.
 *
 * Range reads go through an ordered (ephemeral, server-side flow-controlled) consumer that starts at the
 * first wanted sequence and stops at the last sequence the stream had when the read began: a
 * message parked meanwhile is not waited for, and a big stream is streamed, not loaded whole.
 */
import { DeliverPolicy, type JetStreamManager, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { isMessageGone, isStreamNotFound, translateNatsError } from './errors.ts';
import { jetstreamClient, lazyJetStreamManager, nextBySubject } from './jetstream-manager.ts';
import { parseFallbackStreamName, type FallbackStreamRef } from './names.ts';

/** One parked message as stored. */
export interface ParkedMessage {
  readonly sequence: number;
  /** When the fallback stream stored it (ms since the epoch). */
  readonly parkedAtMs: number;
  readonly subject: string;
  /** Every header, names as sent (`Ferry-Reason`, original headers…). */
  readonly headers: ReadonlyMap<string, readonly string[]>;
  readonly payload: Uint8Array;
}

/** A fallback stream's size. */
export interface FallbackStreamInfo {
  readonly stream: string;
  readonly messages: number;
  readonly firstSequence: number;
  readonly lastSequence: number;
}

/** Which sequences to read (inclusive; open ends allowed). */
export interface SequenceRange {
  readonly fromSequence?: number | undefined;
  readonly toSequence?: number | undefined;
  /** Headers only, no payloads (counting by reason): much less to transfer. */
  readonly headersOnly?: boolean;
}

/** How long a read waits for the next message before it decides the stream has no more. */
const READ_IDLE_MS = 2_000;

function headersOf(headers: Iterable<[string, string[]]> | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (!headers) return out;
  for (const [name, values] of headers) out.set(name, [...values]);
  return out;
}

export class FallbackStore {
  private readonly nc: NatsConnection;
  private readonly jsm: () => Promise<JetStreamManager>;

  constructor(nc: NatsConnection) {
    this.nc = nc;
    this.jsm = lazyJetStreamManager(nc);
  }

  /** Every fallback stream on the server (Integrations' and SyncSchedules'), with the object it belongs to. */
  async streams(): Promise<(FallbackStreamRef & FallbackStreamInfo)[]> {
    const jsm = await this.jsm();
    const out: (FallbackStreamRef & FallbackStreamInfo)[] = [];
    try {
      for await (const info of jsm.streams.list()) {
        const ref = parseFallbackStreamName(info.config.name);
        if (!ref) continue;
        out.push({ ...ref, stream: info.config.name, messages: info.state.messages, firstSequence: info.state.first_seq, lastSequence: info.state.last_seq });
      }
    } catch (err) {
      throw translateNatsError(err, 'listing streams');
    }
    return out;
  }

  /** The stream's size, or undefined when it does not exist. */
  async info(stream: string): Promise<FallbackStreamInfo | undefined> {
    const jsm = await this.jsm();
    try {
      const info = await jsm.streams.info(stream);
      return { stream, messages: info.state.messages, firstSequence: info.state.first_seq, lastSequence: info.state.last_seq };
    } catch (err) {
      if (isStreamNotFound(err)) return undefined;
      throw translateNatsError(err, `reading stream ${stream}`);
    }
  }

  /**
   * The messages in `range`, in sequence order, up to the stream's last sequence when the read
   * began. Stops early when the caller stops iterating.
   *
   * @throws StreamNotFoundError-like Ferry NATS errors (translated) when the stream cannot be read.
   */
  async *read(stream: string, range: SequenceRange = {}): AsyncGenerator<ParkedMessage> {
    const info = await this.info(stream);
    if (!info || info.messages === 0) return;
    const from = Math.max(range.fromSequence ?? info.firstSequence, info.firstSequence);
    const to = Math.min(range.toSequence ?? info.lastSequence, info.lastSequence);
    if (from > to) return;
    let consumer;
    try {
      consumer = await jetstreamClient(this.nc).consumers.get(stream, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: from, headers_only: range.headersOnly === true });
    } catch (err) {
      throw translateNatsError(err, `reading stream ${stream}`);
    }
    try {
      for (;;) {
        let msg: JsMsg | null;
        try {
          msg = await consumer.next({ expires: READ_IDLE_MS });
        } catch (err) {
          throw translateNatsError(err, `reading stream ${stream}`);
        }
        // No message within the idle time: the rest was deleted meanwhile.
        if (!msg || msg.seq > to) return;
        yield {
          sequence: msg.seq,
          parkedAtMs: Math.floor(msg.info.timestampNanos / 1_000_000),
          subject: msg.subject,
          headers: headersOf(msg.headers),
          payload: msg.data,
        };
        // Nothing left behind it (the stream's last messages were deleted): no idle wait.
        if (msg.seq >= to || msg.info.pending === 0) return;
      }
    } finally {
      await consumer.delete().catch(() => false);
    }
  }

  /** The stream's last sequence (0 when it is empty or does not exist). */
  async lastSequence(stream: string): Promise<number> {
    return (await this.info(stream))?.lastSequence ?? 0;
  }

  /**
   * The first message at or after `sequence`, or undefined when there is none. One request per
   * message (`next_by_subj`): gaps left by deletions cost nothing, and nothing is buffered in a
   * consumer that might die with its node.
   */
  async next(stream: string, subject: string, sequence: number): Promise<ParkedMessage | undefined> {
    const jsm = await this.jsm();
    try {
      const m = await jsm.streams.getMessage(stream, nextBySubject(sequence, subject));
      if (!m) return undefined;
      return { sequence: m.seq, parkedAtMs: m.time.getTime(), subject: m.subject, headers: headersOf(m.header), payload: m.data };
    } catch (err) {
      if (isStreamNotFound(err)) return undefined;
      throw translateNatsError(err, `reading ${stream} from sequence ${sequence}`);
    }
  }

  /** Deletes one message; false when it was not there (already deleted, never stored, no stream). */
  async delete(stream: string, sequence: number): Promise<boolean> {
    const jsm = await this.jsm();
    try {
      return await jsm.streams.deleteMessage(stream, sequence, false);
    } catch (err) {
      // Deleted meanwhile (by an earlier redrive holder before it died, or never stored): what was asked holds.
      if (isMessageGone(err) || isStreamNotFound(err)) return false;
      throw translateNatsError(err, `deleting message ${sequence} of ${stream}`);
    }
  }
}
