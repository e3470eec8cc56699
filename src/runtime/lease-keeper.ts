/**
 * Keeps the JetStream lease of every message this process holds and has not finished: every
 * `everyMs` each held message gets `working()`, which restarts its `ack_wait` on the server.
 *
 * Why all of them, and not only the ones in flight: a message waits in this process for a free
 * slot, an open circuit, a throttle hold or a rate-limit token — possibly for longer than
 * `ack_wait`. Without `working()` the server would redeliver it while the old copy is still
 * here, and the two copies would be sent concurrently with one idempotency key (a Stripe-style
 * target answers 409 to the second). One process-wide timer, so idle Integrations cost nothing.
 *
 * Guarantees: a message is kept from `hold()` until its release is called; release is idempotent.
 */
import type { Clock } from '../observability/index.ts';

export interface Leasable {
  working(): void;
}

export class LeaseKeeper {
  private readonly held = new Set<Leasable>();
  private readonly clock: Clock;
  private readonly everyMs: number;

  /** `everyMs` must be well below the smallest `ack_wait` in use. */
  constructor(clock: Clock, everyMs: number) {
    this.clock = clock;
    this.everyMs = everyMs;
  }

  /** Keeps `message` alive until the returned function is called. */
  hold(message: Leasable): () => void {
    this.held.add(message);
    return () => {
      this.held.delete(message);
    };
  }

  /** Messages held now. */
  get size(): number {
    return this.held.size;
  }

  /** Renews every held lease now. */
  renew(): void {
    for (const m of this.held) m.working();
  }

  /** Renews every `everyMs` until `signal` aborts. */
  async start(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        await this.clock.sleep(this.everyMs, signal);
      } catch {
        return;
      }
      this.renew();
    }
  }
}
