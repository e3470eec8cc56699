/**
 * Which replicas are alive, from heartbeats in the MEMBERS_BUCKET (entries expire unless
 * renewed). The live set decides which Integrations each replica runs (see assignment.ts), and
 * the number of replicas running one Integration divides its shared limits.
 *
 * Guarantees:
 * - `members()` is sorted and always includes this replica. Before the first successful read a
 *   replica counts itself alone, which errs on the side of running (and of the configured rate)
 *   rather than of silence.
 * - Change listeners hear every change of the live set, once per change, after `members()`
 *   already returns the new set.
 * Caveats: a replica that dies without deleting its key (SIGKILL) stays a member until its entry
 * expires (the bucket's TTL, 15 s) and the others' next read (at most {@link HEARTBEAT_MS}).
 */
import type { SharedKv } from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';

/** Renewal period; the bucket's TTL (15 s) must be several of these. */
export const HEARTBEAT_MS = 3_000;
/**
 * Retry period until the first read succeeded: the runtime starts no pipeline before it (or a
 * bounded wait), and on a fresh install the bucket appears only when the leader has created it —
 * a full heartbeat period later would hold every pipeline back that much longer.
 */
export const FIRST_READ_RETRY_MS = 200;

/** The live replicas as the runtime supervisor sees them. */
export interface LiveMembers {
  /** This replica's member name (its identity as a KV key). */
  readonly self: string;
  /** Live members, sorted, this one included. */
  members(): readonly string[];
  /** Resolves on the first successful read of the live set, or when `signal` aborts. */
  settled(signal: AbortSignal): Promise<void>;
  /** Calls `listener` whenever the live set changes; returns the unsubscribe function. */
  onChange(listener: () => void): () => void;
}

/** KV keys allow [-/_=.a-zA-Z0-9]; pod names fit, anything else is mapped to '_'. */
export function memberName(identity: string): string {
  return identity.replace(/[^-/_=.a-zA-Z0-9]/g, '_');
}

export class Membership implements LiveMembers {
  readonly self: string;
  private readonly kv: SharedKv;
  private readonly clock: Clock;
  private readonly log: Logger;
  private live: readonly string[];
  private readonly listeners = new Set<() => void>();
  private readonly firstRead: Promise<void>;
  private markRead: () => void = () => {};
  private read = false;

  private readonly onCount: ((count: number) => void) | undefined;

  /** `onCount` hears every count read (the `ferry_replicas` gauge). */
  constructor(options: { kv: SharedKv; identity: string; clock: Clock; logger: Logger; onCount?: (count: number) => void }) {
    this.onCount = options.onCount;
    this.kv = options.kv;
    this.self = memberName(options.identity);
    this.live = [this.self];
    this.clock = options.clock;
    this.log = options.logger.child({ component: 'membership' });
    this.firstRead = new Promise<void>((resolve) => {
      this.markRead = resolve;
    });
  }

  /** Live replicas including this one; at least 1. */
  get count(): number {
    return this.live.length;
  }

  members(): readonly string[] {
    return this.live;
  }

  async settled(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    let onAbort = (): void => {};
    const aborted = new Promise<void>((resolve) => {
      onAbort = resolve;
      signal.addEventListener('abort', onAbort, { once: true });
    });
    await Promise.race([this.firstRead, aborted]);
    signal.removeEventListener('abort', onAbort);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async start(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.kv.put(this.self, { at: this.clock.now() });
        const keys = await this.kv.keys('>');
        this.apply(keys);
        this.read = true;
        this.markRead();
      } catch (err) {
        // The bucket may not exist yet (the leader creates it); keep the last set meanwhile.
        this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'membership heartbeat failed');
      }
      await this.clock.sleep(this.read ? HEARTBEAT_MS : FIRST_READ_RETRY_MS, signal).catch(() => undefined);
    }
    await this.kv.delete(this.self).catch(() => undefined);
  }

  private apply(keys: readonly string[]): void {
    // Our own put may not be visible to the listing yet; we are alive either way.
    const next = [...new Set([...keys, this.self])].sort();
    this.onCount?.(next.length);
    if (next.length === this.live.length && next.every((m, i) => m === this.live[i])) return;
    this.log.info({ members: next, previous: this.live }, 'live replicas changed');
    this.live = next;
    for (const listener of this.listeners) listener();
  }
}
