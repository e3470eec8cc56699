/**
 * Which replicas are alive, from heartbeats in the MEMBERS_BUCKET (entries expire unless
 * renewed). The count divides shared limits: each replica enforces `perSecond / count`.
 * Before the first successful read a replica counts itself alone, which errs on the side of the
 * configured rate rather than of silence.
 */
import type { SharedKv } from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';

/** Renewal period; the bucket's TTL (15 s) must be several of these. */
const HEARTBEAT_MS = 3_000;

export class Membership {
  private readonly kv: SharedKv;
  private readonly key: string;
  private readonly clock: Clock;
  private readonly log: Logger;
  private members = 1;

  private readonly onCount: ((count: number) => void) | undefined;

  /** `onCount` hears every count read (the `ferry_replicas` gauge). */
  constructor(options: { kv: SharedKv; identity: string; clock: Clock; logger: Logger; onCount?: (count: number) => void }) {
    this.onCount = options.onCount;
    this.kv = options.kv;
    // KV keys allow [-/_=.a-zA-Z0-9]; pod names fit, anything else is mapped to '_'.
    this.key = options.identity.replace(/[^-/_=.a-zA-Z0-9]/g, '_');
    this.clock = options.clock;
    this.log = options.logger.child({ component: 'membership' });
  }

  /** Live replicas including this one; at least 1. */
  get count(): number {
    return this.members;
  }

  async start(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.kv.put(this.key, { at: this.clock.now() });
        const keys = await this.kv.keys('>');
        this.members = Math.max(1, keys.length);
        this.onCount?.(this.members);
      } catch (err) {
        // The bucket may not exist yet (the leader creates it); keep the last count meanwhile.
        this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'membership heartbeat failed');
      }
      await this.clock.sleep(HEARTBEAT_MS, signal).catch(() => undefined);
    }
    await this.kv.delete(this.key).catch(() => undefined);
  }
}
