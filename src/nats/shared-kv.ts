/**
 * JSON values in a JetStream KV bucket, shared by every replica: compare-and-set updates (so
 * concurrent replicas never lose each other's writes) and a watch that delivers every change.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { untilAborted } from '../observability/index.ts';
import { DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import { isStreamNotFound, isWrongLastSequence, KvWatchStalledError, translateNatsError } from './errors.ts';
import { jetstreamClient, lazyJetStreamManager } from './jetstream-manager.ts';

/** How often a watch of a whole bucket checks that it keeps up (see `watchUntilAborted`). */
export const WATCH_CHECK_MS = 5_000;

export interface Versioned<T> {
  readonly value: T;
  readonly revision: number;
}

export class SharedKv {
  private readonly nc: NatsConnection;
  private readonly bucket: string;
  private kv: Promise<KV> | undefined;
  private readonly manager: ReturnType<typeof lazyJetStreamManager>;

  constructor(nc: NatsConnection, bucket: string) {
    this.nc = nc;
    this.bucket = bucket;
    this.manager = lazyJetStreamManager(nc);
  }

  private async open(): Promise<KV> {
    this.kv ??= new Kvm(jetstreamClient(this.nc)).open(this.bucket).catch((err: unknown) => {
      this.kv = undefined;
      throw translateNatsError(err, `opening KV bucket ${this.bucket}`);
    });
    return await this.kv;
  }

  async get<T>(key: string): Promise<Versioned<T> | undefined> {
    try {
      const e = await (await this.open()).get(key);
      if (!e || e.operation !== 'PUT' || e.value.length === 0) return undefined;
      return { value: e.json<T>(), revision: e.revision };
    } catch (err) {
      throw translateNatsError(err, `reading ${this.bucket}/${key}`);
    }
  }

  async put(key: string, value: unknown): Promise<number> {
    try {
      return await (await this.open()).put(key, JSON.stringify(value));
    } catch (err) {
      throw translateNatsError(err, `writing ${this.bucket}/${key}`);
    }
  }

  /**
   * Read-modify-write with compare-and-set on the revision, retried on a lost race. `change`
   * receives the current value (undefined when absent) and returns the new one.
   */
  async update<T>(key: string, change: (current: T | undefined) => T, attempts = 10): Promise<T> {
    const kv = await this.open();
    for (let i = 0; ; i++) {
      const current = await this.get<T>(key);
      const next = change(current?.value);
      try {
        if (current) await kv.update(key, JSON.stringify(next), current.revision);
        else await kv.create(key, JSON.stringify(next));
        return next;
      } catch (err) {
        if (i + 1 >= attempts) throw translateNatsError(err, `updating ${this.bucket}/${key}`);
      }
    }
  }

  /**
   * Writes `value` only if the key is still at `revision` (0: only if absent). Returns the new
   * revision, or undefined when another writer got there first — the caller re-reads and decides.
   */
  async compareAndSet(key: string, value: unknown, revision: number): Promise<number | undefined> {
    const kv = await this.open();
    try {
      return revision === 0 ? await kv.create(key, JSON.stringify(value)) : await kv.update(key, JSON.stringify(value), revision);
    } catch (err) {
      if (isWrongLastSequence(err)) return undefined;
      // create() on a key that was deleted (a tombstone) reports it the same way as a lost race.
      throw translateNatsError(err, `updating ${this.bucket}/${key}`);
    }
  }

  /**
   * Read, decide, compare-and-set; re-read and decide again on a lost race. `change` sees the
   * current value and returns the next one, or undefined to leave the key alone (it is not the
   * caller's any more, or nothing is to be done): then this returns undefined. Returns the value
   * written and its revision.
   * @throws Error after `attempts` lost races in a row (a busy key: the caller tries again later).
   */
  async casLoop<T>(key: string, change: (current: Versioned<T> | undefined) => T | undefined, attempts = 5): Promise<Versioned<T> | undefined> {
    for (let attempt = 0; attempt < attempts; attempt++) {
      const current = await this.get<T>(key);
      const next = change(current);
      if (next === undefined) return undefined;
      const revision = await this.compareAndSet(key, next, current?.revision ?? 0);
      if (revision !== undefined) return { value: next, revision };
    }
    throw new Error(`updating ${this.bucket}/${key}: lost ${attempts} races in a row`);
  }

  /**
   * Writes many values with up to `concurrency` writes in flight: one awaited write after another
   * would make a run of 100,000 records wait 100,000 round trips. Rejects if any write fails
   * (after the others settled), so the caller knows the batch is not all stored.
   */
  async putMany(entries: Iterable<readonly [string, unknown]>, concurrency = 128): Promise<void> {
    const kv = await this.open();
    const iterator = entries[Symbol.iterator]();
    let failure: Error | undefined;
    const lane = async (): Promise<void> => {
      for (let next = iterator.next(); !next.done; next = iterator.next()) {
        const [key, value] = next.value;
        try {
          await kv.put(key, JSON.stringify(value));
        } catch (err) {
          failure ??= translateNatsError(err, `writing ${this.bucket}/${key}`);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
    if (failure !== undefined) throw failure;
  }

  /**
   * The current value of every key under `filter` (`a.>`), read with one ordered consumer on the
   * bucket's stream delivering the last message per subject: a get per key would be one round
   * trip each, and `keys()` then `get()` two. Deleted keys are left out. `decodeKey` maps each
   * stored key (without the bucket prefix) to the map's key.
   */
  async snapshot<T>(filter: string, decodeKey: (key: string) => string = (k) => k): Promise<Map<string, T>> {
    const out = new Map<string, T>();
    const prefix = `$KV.${this.bucket}.`;
    try {
      const consumer = await jetstreamClient(this.nc).consumers.get(`KV_${this.bucket}`, {
        filter_subjects: [`${prefix}${filter}`],
        deliver_policy: DeliverPolicy.LastPerSubject,
      });
      const info = await consumer.info(true);
      const expected = info.num_pending;
      if (expected === 0) return out;
      const messages = await consumer.consume();
      try {
        // Counted against num_pending (one last message per subject at the time of the info):
        // `m.info.pending` parses every message's reply subject.
        let received = 0;
        for await (const m of messages) {
          this.takeEntry(m, prefix, out, decodeKey);
          if (++received >= expected) break;
        }
      } finally {
        messages.stop();
      }
      return out;
    } catch (err) {
      if (isStreamNotFound(err)) return out;
      throw translateNatsError(err, `reading ${this.bucket}/${filter}`);
    }
  }

  private takeEntry<T>(m: JsMsg, prefix: string, out: Map<string, T>, decodeKey: (key: string) => string): void {
    const key = decodeKey(m.subject.slice(prefix.length));
    const op = m.headers?.get('KV-Operation');
    if (op === 'DEL' || op === 'PURGE' || m.data.length === 0) out.delete(key);
    else out.set(key, m.json<T>());
  }

  /** The bucket's last sequence: it changes with every write, so equal means unchanged. */
  async lastSequence(): Promise<number | undefined> {
    try {
      const jsm = await this.manager();
      return (await jsm.streams.info(`KV_${this.bucket}`)).state.last_seq;
    } catch (err) {
      if (isStreamNotFound(err)) return undefined;
      throw translateNatsError(err, `reading the state of ${this.bucket}`);
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await (await this.open()).delete(key);
    } catch (err) {
      throw translateNatsError(err, `deleting ${this.bucket}/${key}`);
    }
  }

  /**
   * Removes every key matching `filter` (`a.b.>`) at once, by purging their subjects from the
   * bucket's stream (no per-key delete markers left behind). A bucket that does not exist has
   * nothing to purge.
   */
  async purge(filter: string): Promise<void> {
    try {
      const jsm = await this.manager();
      await jsm.streams.purge(`KV_${this.bucket}`, { filter: `$KV.${this.bucket}.${filter}` });
    } catch (err) {
      if (isStreamNotFound(err)) return;
      throw translateNatsError(err, `purging ${this.bucket}/${filter}`);
    }
  }

  /** Keys under a prefix (`a.b.>` style filter). */
  async keys(filter: string): Promise<string[]> {
    try {
      const out: string[] = [];
      for await (const k of await (await this.open()).keys(filter)) out.push(k);
      return out;
    } catch (err) {
      throw translateNatsError(err, `listing ${this.bucket}/${filter}`);
    }
  }

  /**
   * Like {@link watch}, but never gives up: after any failure (the bucket not created yet, NATS
   * restarting) it reports the error to `onError` and watches again a second later, until
   * `signal` aborts. Resolves only then.
   *
   * A watch of every key (`>`) also has a watchdog: every {@link WATCH_CHECK_MS} it compares the
   * last revision it delivered with the bucket's last sequence, and when the bucket stayed ahead
   * across two checks (and that last entry still exists), the watch is re-created. The watch's
   * consumer lives on one NATS node; when that node dies, the client only notices after missed
   * heartbeats and a slow reset (a minute was measured on a 3-node cluster), while every change
   * in between would be missed silently.
   */
  async watchUntilAborted(
    key: string,
    onChange: (key: string, value: unknown) => void,
    signal: AbortSignal,
    sleep: (ms: number, signal: AbortSignal) => Promise<void>,
    onError: (err: unknown) => void,
  ): Promise<void> {
    // A function, not the property: TypeScript narrows `signal.aborted` across awaits otherwise.
    const aborted = (): boolean => signal.aborted;
    while (!aborted()) {
      const attempt = new AbortController();
      const onAbort = (): void => {
        attempt.abort();
      };
      signal.addEventListener('abort', onAbort, { once: true });
      const seen = { revision: 0 };
      const watchdog = key === '>' ? this.watchdog(seen, attempt, sleep, onError) : Promise.resolve();
      try {
        await this.watch(key, onChange, attempt.signal, (revision) => {
          seen.revision = Math.max(seen.revision, revision);
        });
      } catch (err) {
        if (!aborted()) onError(err);
      } finally {
        attempt.abort();
        signal.removeEventListener('abort', onAbort);
        await watchdog;
      }
      if (aborted()) return;
      await sleep(1_000, signal).catch(() => undefined);
    }
  }

  /** Aborts `attempt` once the bucket's last sequence stayed ahead of `seen` for two checks. */
  private async watchdog(
    seen: { readonly revision: number },
    attempt: AbortController,
    sleep: (ms: number, signal: AbortSignal) => Promise<void>,
    onError: (err: unknown) => void,
  ): Promise<void> {
    const stopped = (): boolean => attempt.signal.aborted;
    let behind: number | undefined;
    while (!stopped()) {
      await sleep(WATCH_CHECK_MS, attempt.signal).catch(() => undefined);
      if (stopped()) return;
      const stream = `KV_${this.bucket}`;
      let last: number;
      let stalled: boolean;
      try {
        const jsm = await this.manager();
        last = (await jsm.streams.info(stream)).state.last_seq;
        if (last <= seen.revision) {
          behind = undefined;
          continue;
        }
        // Behind once is normal (a change on its way); behind the same point twice is a stall —
        // unless that last entry is gone (purged, or expired by a TTL): then it is never delivered.
        stalled = behind !== undefined && seen.revision <= behind && (await jsm.streams.getMessage(stream, { seq: last })) !== null;
      } catch {
        // Cannot tell now (no quorum, a restart); the watch's own errors are what gets reported.
        continue;
      }
      if (stalled) {
        onError(new KvWatchStalledError(`watch of KV bucket ${this.bucket} stalled at revision ${seen.revision} while the bucket is at ${last}; watching again`));
        attempt.abort();
        return;
      }
      behind = seen.revision;
    }
  }

  /**
   * Calls `onChange` for the current value and every later change of keys matching `key`, until
   * `signal` aborts. Returns as soon as `signal` aborts, also while the watch is being set up or
   * is re-creating its consumer after missed heartbeats (its iterator may then end only later).
   */
  async watch(key: string, onChange: (key: string, value: unknown) => void, signal: AbortSignal, onRevision?: (revision: number) => void): Promise<void> {
    let stopIter = (): void => {};
    const stop = (): void => {
      stopIter();
    };
    signal.addEventListener('abort', stop, { once: true });
    // A function, not the property: TypeScript narrows `signal.aborted` across awaits otherwise.
    const isAborted = (): boolean => signal.aborted;
    const consume = async (): Promise<void> => {
      let iter;
      try {
        iter = await (await this.open()).watch({ key });
      } catch (err) {
        throw translateNatsError(err, `watching ${this.bucket}/${key}`);
      }
      stopIter = () => {
        iter.stop();
      };
      if (isAborted()) {
        iter.stop();
        return;
      }
      for await (const e of iter) {
        if (isAborted()) break;
        onRevision?.(e.revision);
        onChange(e.key, e.operation === 'PUT' && e.value.length > 0 ? e.json<unknown>() : undefined);
      }
    };
    const consuming = consume();
    // Once aborted nobody awaits the consumer any more: its late failure must not go unhandled.
    consuming.catch(() => undefined);
    try {
      await untilAborted(consuming, signal);
    } finally {
      signal.removeEventListener('abort', stop);
    }
  }
}
