/**
 * Kubernetes Events (`events.k8s.io/v1`) about an object, for `kubectl describe` and alerting.
 *
 * Expected flow: reconcilers call `recorder.record(obj, { type, reason, note })` on escalations
 * (a terminal error, a breaker opening). It is cheap to call repeatedly.
 *
 * Guarantees:
 * - Never throws and never rejects: an Event is a side channel, so a failure to write one is
 *   logged and counted (`ferry_kube_events_total{outcome="failed"}`), not propagated.
 * - Repeats of the same event (same object, type, reason, action and note) within `windowMs` of
 *   the previous one do not create new objects: the first Event's `series.count` and
 *   `series.lastObservedTime` are bumped instead, as the events.k8s.io/v1 API intends.
 * - Calls for the same event are written one after another, so the count never goes backwards.
 *
 * Caveats: the de-duplication memory is per process (bounded to `maxCached` entries) and lost
 * on restart; a restarted operator starts a new Event for a repeat, which is harmless.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock, Counter, Logger, Registry } from '../observability/index.ts';
import { isNotFound, toError } from './errors.ts';
import { KubeHttp, MERGE_PATCH } from './http.ts';
import { counter } from './metrics.ts';
import { microTime, resourcePath, type KubeObject } from './object.ts';

/** Which object an Event is about (core/v1 ObjectReference fields). */
export interface ObjectReference {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
}

export interface EventSpec {
  readonly type: 'Normal' | 'Warning';
  /** Machine-readable, UpperCamelCase, e.g. `CircuitOpened`. */
  readonly reason: string;
  /** Human-readable; truncated to 1 kB (the API's limit). */
  readonly note: string;
  /** What was done or failed, machine-readable; defaults to `reason`. */
  readonly action?: string;
}

export interface EventRecorderOptions {
  readonly kubeConfig: KubeConfig;
  /** Default `ferry.dev/operator`. */
  readonly reportingController?: string;
  /** This replica, e.g. the pod name. */
  readonly reportingInstance: string;
  /** Repeats within this long of the previous one bump a series; default 10 min. */
  readonly windowMs?: number;
  /** Bound of the de-duplication memory; default 4096 entries. */
  readonly maxCached?: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: Registry;
}

interface Entry {
  name: string;
  namespace: string;
  count: number;
  lastAt: number;
}

const events = { group: 'events.k8s.io', version: 'v1', plural: 'events' } as const;
const MAX_NOTE_BYTES = 1024;

/** Writes de-duplicated events.k8s.io/v1 Events; never throws (see the file header). */
export class EventRecorder {
  private readonly http: KubeHttp;
  private readonly controller: string;
  private readonly instance: string;
  private readonly windowMs: number;
  private readonly maxCached: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly total: Counter<'type' | 'outcome'>;
  private readonly cache = new Map<string, Entry>();
  /** The tail of each key's chain of writes, so writes of one event are serialised. */
  private readonly chains = new Map<string, Promise<void>>();
  private sequence = 0;

  constructor(options: EventRecorderOptions) {
    this.http = new KubeHttp({ kubeConfig: options.kubeConfig, clock: options.clock, timeoutMs: 10_000 });
    this.controller = options.reportingController ?? 'ferry.dev/operator';
    this.instance = options.reportingInstance;
    this.windowMs = options.windowMs ?? 10 * 60_000;
    this.maxCached = options.maxCached ?? 4096;
    this.clock = options.clock;
    this.logger = options.logger;
    this.total = counter(options.registry, {
      name: 'ferry_kube_events_total',
      help: 'Kubernetes Events written by type and outcome (created, series, failed).',
      labelNames: ['type', 'outcome'],
    });
  }

  /**
   * Records an Event about `regarding` (an object or a reference to one). Resolves when the
   * write has finished or failed; never rejects. Callers that do not care can `void` it.
   */
  record(regarding: KubeObject | ObjectReference, event: EventSpec): Promise<void> {
    const ref = toReference(regarding);
    const action = event.action ?? event.reason;
    const note = truncate(event.note, MAX_NOTE_BYTES);
    const key = JSON.stringify([ref.apiVersion, ref.kind, ref.namespace, ref.name, ref.uid, event.type, event.reason, action, note]);
    const previous = this.chains.get(key) ?? Promise.resolve();
    const next = previous.then(() => this.write(key, ref, { ...event, action, note }));
    this.chains.set(key, next);
    return next.finally(() => {
      if (this.chains.get(key) === next) this.chains.delete(key);
    });
  }

  private async write(key: string, ref: ObjectReference, event: EventSpec & { action: string }): Promise<void> {
    const now = this.clock.now();
    const entry = this.cache.get(key);
    try {
      if (entry && now - entry.lastAt < this.windowMs) {
        try {
          await this.http.request<unknown>({
            method: 'PATCH',
            path: resourcePath(events, entry.namespace, entry.name),
            contentType: MERGE_PATCH,
            body: { series: { count: entry.count + 1, lastObservedTime: microTime(now) } },
            response: 'discard',
          });
          entry.count++;
          entry.lastAt = now;
          this.touch(key, entry);
          this.total.inc({ type: event.type, outcome: 'series' });
          return;
        } catch (err) {
          // Expired (Events have a TTL) or deleted: start a new one below.
          if (!isNotFound(err)) throw err;
        }
      }
      const namespace = ref.namespace ?? 'default';
      const name = this.eventName(ref.name, now);
      await this.http.request<unknown>({
        method: 'POST',
        path: resourcePath(events, namespace),
        body: {
          apiVersion: 'events.k8s.io/v1',
          kind: 'Event',
          metadata: { name, namespace },
          eventTime: microTime(now),
          reportingController: this.controller,
          reportingInstance: this.instance,
          action: event.action,
          reason: event.reason,
          note: event.note,
          type: event.type,
          regarding: ref,
        },
        response: 'discard',
      });
      this.touch(key, { name, namespace, count: 1, lastAt: now });
      this.total.inc({ type: event.type, outcome: 'created' });
    } catch (err) {
      this.total.inc({ type: event.type, outcome: 'failed' });
      this.logger.warn(
        { err: toError(err), kind: ref.kind, namespace: ref.namespace, name: ref.name, reason: event.reason },
        'could not record a Kubernetes Event',
      );
    }
  }

  /** Inserts or refreshes an entry as most recently used, evicting the oldest past the bound. */
  private touch(key: string, entry: Entry): void {
    this.cache.delete(key);
    this.cache.set(key, entry);
    while (this.cache.size > this.maxCached) {
      const oldest = this.cache.keys().next();
      if (oldest.done) break;
      this.cache.delete(oldest.value);
    }
  }

  /** client-go's naming: `<object name>.<unique hex>`, kept within the 253-character limit. */
  private eventName(objectName: string, now: number): string {
    const unique = (BigInt(now) * 1_000_000n + BigInt(this.sequence++ % 1_000_000)).toString(16);
    return `${objectName.slice(0, 253 - unique.length - 1)}.${unique}`;
  }
}

function toReference(x: KubeObject | ObjectReference): ObjectReference {
  if ('name' in x && typeof x.name === 'string') return x;
  const obj = x as KubeObject;
  const meta = obj.metadata ?? {};
  return {
    apiVersion: obj.apiVersion,
    kind: obj.kind,
    namespace: meta.namespace,
    name: meta.name ?? '',
    uid: meta.uid,
    resourceVersion: meta.resourceVersion,
  };
}

function truncate(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  // Cut on a character boundary: decoding a cut multi-byte sequence would add U+FFFD.
  let end = maxBytes - 3;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return `${bytes.subarray(0, end).toString('utf8')}...`;
}
