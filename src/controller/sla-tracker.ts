/**
 * Leader-only: the SLA figures of each Integration with `spec.sla`, measured once per tick by the
 * runtime-status poller — the shared counters sampled into a sliding window, and the age of the
 * oldest event still waiting in the source stream (consumer info + one message lookup).
 *
 * State is per object uid: a re-created Integration starts a new window. `retain` drops the
 * state of objects that are gone, `clear` all of it at the start of a leader term (samples from an
 * earlier term would put everything finished in between into the window).
 */
import { resolveSla, slaSchema, type ResolvedSla } from '../api/index.ts';
import { integrationConsumerName, type JetStreamResources, type SharedStats } from '../nats/index.ts';
import { untilAborted, type Clock, type Logger } from '../observability/index.ts';
import type { FerryObject } from './ferry-object.ts';
import { SlaWindow } from './sla-window.ts';

/** spec.sla, the figures of its window, and the oldest event waiting in the source while it is late. */
export interface SlaView extends ResolvedSla {
  /** spec.sla.window as written. */
  readonly window: string;
  readonly total: number;
  readonly late: number;
  /** When the oldest event still waiting in the source was stored, only while it is older than deliverWithin. */
  readonly oldestPendingMs?: number | undefined;
}

type SlaSpec = ResolvedSla & { readonly window: string };

interface State {
  readonly window: SlaWindow;
  generation: number | undefined;
  spec: SlaSpec | undefined;
  oldestPendingMs: number | undefined;
}

export interface SlaTrackerDeps {
  readonly jetstream: Pick<JetStreamResources, 'oldestUnacked'>;
  readonly clock: Clock;
  readonly logger: Logger;
}

export class SlaTracker {
  private readonly deps: SlaTrackerDeps;
  private readonly states = new Map<string, State>();

  constructor(deps: SlaTrackerDeps) {
    this.deps = deps;
  }

  /**
   * Samples `stats` and looks at the oldest waiting event. Undefined when the object has no
   * (valid) spec.sla, or when `signal` ended the look.
   */
  async measure(obj: FerryObject, stats: SharedStats | undefined, signal: AbortSignal): Promise<SlaView | undefined> {
    const uid = obj.metadata?.uid ?? '';
    let s = this.states.get(uid);
    if (!s) {
      s = { window: new SlaWindow(), generation: undefined, spec: undefined, oldestPendingMs: undefined };
      this.states.set(uid, s);
    }
    const generation = obj.metadata?.generation;
    if (s.spec === undefined || s.generation !== generation) {
      s.generation = generation;
      s.spec = slaSpecOf(obj.spec);
    }
    const sla = s.spec;
    if (!sla) return undefined;
    const now = this.deps.clock.now();
    s.window.observe(now, stats?.slaMet ?? 0, stats?.slaLate ?? 0);
    const stream = sourceStreamOf(obj.spec);
    if (stream !== undefined) {
      try {
        const looked = await untilAborted(this.deps.jetstream.oldestUnacked(stream, integrationConsumerName({ namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '' })), signal);
        if (looked.aborted) return undefined;
        s.oldestPendingMs = looked.value;
      } catch (err) {
        // Unknown this time: keep the last answer; JetStream trouble has its own reason.
        this.deps.logger.debug({ namespace: obj.metadata?.namespace, integration: obj.metadata?.name, err: err instanceof Error ? err.message : String(err) }, 'could not read the oldest pending event');
      }
    }
    const oldest = s.oldestPendingMs;
    const late = oldest !== undefined && this.deps.clock.now() - oldest > sla.deliverWithinMs ? oldest : undefined;
    return { ...sla, ...s.window.figures(now, sla.windowMs), ...(late === undefined ? {} : { oldestPendingMs: late }) };
  }

  /** Forgets everything: a new leader term measures from its own first look (see SlaWindow). */
  clear(): void {
    this.states.clear();
  }

  /** Forgets the objects whose uid is not in `live`. */
  retain(live: ReadonlySet<string>): void {
    for (const uid of this.states.keys()) if (!live.has(uid)) this.states.delete(uid);
  }
}

/** spec.sla of an unparsed spec, resolved; undefined when not set or invalid (the reconciler reports that). */
function slaSpecOf(spec: unknown): SlaSpec | undefined {
  const raw = typeof spec === 'object' && spec !== null && 'sla' in spec ? spec.sla : undefined;
  if (raw === undefined) return undefined;
  const parsed = slaSchema.safeParse(raw);
  const sla = parsed.success ? resolveSla(parsed.data) : undefined;
  return sla && parsed.success ? { ...sla, window: parsed.data.window } : undefined;
}

/** spec.source.stream of an unparsed spec. */
function sourceStreamOf(spec: unknown): string | undefined {
  const source = typeof spec === 'object' && spec !== null && 'source' in spec ? spec.source : undefined;
  return typeof source === 'object' && source !== null && 'stream' in source && typeof source.stream === 'string' ? source.stream : undefined;
}
