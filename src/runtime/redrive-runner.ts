/**
 * Redrive on every replica: watches Integrations for a `ferry.dev/redrive` request not answered
 * yet, and lets exactly one replica run it (compare-and-set on the Integration's `redrive` key in
 * the shared bucket, see redrive-state.ts and redrive-run.ts).
 *
 * Expected flow: `notify()` on every Integration change; `start(signal)` looks at once and then
 * every {@link LOOK_EVERY_MS} (a run elsewhere may end or its holder may die without any change
 * to the object).
 * Guarantees:
 * - One redrive at a time per Integration: a new request id while one runs waits until it ends.
 * - A request whose annotations do not parse is answered `Invalid`, naming the annotation.
 * - A Running record whose holder stopped renewing (SIGKILL, a lost node) is taken over after its
 *   lease ({@link LOCK_TTL_MS}) and finished from its recorded progress.
 * - A redrive runs through the generation this replica runs: while the Integration is suspended
 *   (or not yet provisioned, or its pipeline is not running here) the request waits, and starts
 *   once the pipeline runs again. A run whose pipeline stops (suspend, delete, moved to other
 *   replicas) gives its lease up.
 */
import { randomUUID } from 'node:crypto';
import { parseRedriveRequest, REDRIVE_ANNOTATION, RedriveRequestInvalidError } from '../api/index.ts';
import type { Store } from '../kube/index.ts';
import { fallbackStreamName, redriveKey, type ObjectRef, type SharedRedrive } from '../nats/index.ts';
import type { Logger } from '../observability/index.ts';
import type { CompiledIntegration } from './compile-integration.ts';
import { errorMessage } from './prepare-event.ts';
import { RedriveRun, type RedriveRunDeps } from './redrive-run.ts';
import { invalid, nextStep, started, takenOver } from './redrive-state.ts';
import type { IntegrationObject } from './supervisor.ts';

/** Lease of a redrive's record; renewed every third of it by its holder. */
export const LOCK_TTL_MS = 15_000;
/** How often requests are looked at without a change notification. */
const LOOK_EVERY_MS = 2_000;
/**
 * The least time between two passes. Every Integration event (status writes included) asks for
 * one, and a pass looks at every Integration: while 1,000 objects were being created, passes ran
 * back to back. Requests that arrive meanwhile are handled together by the next pass.
 */
export const REDRIVE_PASS_GAP_MS = 200;
/** The reason a wake-up aborts the wait with: a constant, not a DOMException built per wake-up. */
const WOKEN = Symbol('woken');

export interface RedriveRunnerDeps extends RedriveRunDeps {
  readonly integrations: Store<IntegrationObject>;
  /** The generation this replica runs for `namespace/name` (the runtime supervisor's). */
  compiledFor(key: string): CompiledIntegration | undefined;
  /** This replica, as the holder written into the record. */
  readonly identity: string;
  readonly lockTtlMs?: number;
}

interface Active {
  readonly done: Promise<void>;
}

export class RedriveRunner {
  readonly name = 'redrive';
  private readonly d: RedriveRunnerDeps;
  private readonly log: Logger;
  private readonly ttlMs: number;
  private readonly active = new Map<string, Active>();
  /** `uid|request` per Integration known answered: looked at no more until the request changes. */
  private readonly answered = new Map<string, string>();
  /** Integrations told (once per request) that their redrive waits for the pipeline. */
  private readonly waitingLogged = new Map<string, string>();
  private wake: (() => void) | undefined;

  constructor(deps: RedriveRunnerDeps) {
    this.d = deps;
    this.ttlMs = deps.lockTtlMs ?? LOCK_TTL_MS;
    this.log = deps.logger.child({ component: 'redrive' });
  }

  /** An Integration changed: look again now. */
  notify(): void {
    this.wake?.();
  }

  async start(signal: AbortSignal): Promise<void> {
    // A function, not the property: TypeScript narrows `signal.aborted` across the awaits otherwise.
    const aborted = (): boolean => signal.aborted;
    while (!aborted()) {
      const began = this.d.clock.now();
      await this.pass(signal);
      const rest = REDRIVE_PASS_GAP_MS - (this.d.clock.now() - began);
      if (rest > 0) await this.d.clock.sleep(rest, signal).catch(() => undefined);
      if (aborted()) break;
      const woken = new AbortController();
      this.wake = () => {
        woken.abort(WOKEN);
      };
      await this.d.clock.sleep(LOOK_EVERY_MS, AbortSignal.any([signal, woken.signal])).catch(() => undefined);
      this.wake = undefined;
    }
    await Promise.all([...this.active.values()].map((a) => a.done));
  }

  private async pass(signal: AbortSignal): Promise<void> {
    const live = new Set<string>();
    for (const obj of this.d.integrations.list()) {
      const meta = obj.metadata;
      if (!meta?.namespace || !meta.name || meta.deletionTimestamp) continue;
      const key = `${meta.namespace}/${meta.name}`;
      live.add(key);
      const request = meta.annotations?.[REDRIVE_ANNOTATION]?.trim();
      if (!request || this.active.has(key) || this.answered.get(key) === `${meta.uid ?? ''}|${request}`) continue;
      if (signal.aborted) return;
      try {
        await this.consider(key, obj, request, signal);
      } catch (err) {
        // NATS trouble: looked at again on the next pass.
        this.log.warn({ integration: key, redrive: request, err: errorMessage(err) }, 'could not look at the redrive request; trying again');
      }
    }
    for (const key of [...this.answered.keys()]) {
      if (live.has(key)) continue;
      this.answered.delete(key);
      const [namespace = '', name = ''] = key.split('/');
      this.d.metrics.forget(namespace, name);
    }
  }

  private async consider(key: string, obj: IntegrationObject, request: string, signal: AbortSignal): Promise<void> {
    const meta = obj.metadata;
    const ref: ObjectRef = { namespace: meta?.namespace ?? '', name: meta?.name ?? '' };
    const kvKey = redriveKey(ref);
    const current = await this.d.state.get<SharedRedrive>(kvKey);
    const now = this.d.clock.now();
    const step = nextStep(current?.value, request, now);
    if (step === 'answered') {
      this.answered.set(key, `${meta?.uid ?? ''}|${request}`);
      return;
    }
    if (step === 'busy') return;
    const holder = { holder: this.d.identity, runId: randomUUID(), now, ttlMs: this.ttlMs };
    let record: SharedRedrive;
    if (step === 'start') {
      let parsed;
      try {
        parsed = parseRedriveRequest(meta?.annotations);
      } catch (err) {
        if (!(err instanceof RedriveRequestInvalidError)) throw err;
        if ((await this.d.state.compareAndSet(kvKey, invalid(request, err.message, now), current?.revision ?? 0)) !== undefined) {
          this.log.warn({ integration: key, redrive: request, annotation: err.annotation }, `redrive request invalid: ${err.message}`);
        }
        return;
      }
      if (!parsed || !this.runsHere(key, request)) return;
      const upTo = await this.d.fallback.lastSequence(fallbackStreamName(ref));
      record = started(parsed.id, parsed.filter, holder, upTo);
    } else {
      if (!current || !this.runsHere(key, current.value.request)) return;
      record = takenOver(current.value, holder);
    }
    if ((await this.d.state.compareAndSet(kvKey, record, current?.revision ?? 0)) === undefined) return;
    this.log.info({ integration: key, redrive: record.request, upToSequence: record.upToSequence, nextSequence: record.nextSequence, resumed: step === 'resume' }, step === 'resume' ? 'redrive resumed (its holder stopped renewing)' : 'redrive started');
    const run = new RedriveRun(this.d, { ref, runId: holder.runId, record, compiled: () => this.d.compiledFor(key), ttlMs: this.ttlMs });
    const done = run
      .run(signal)
      .catch((err: unknown) => {
        this.log.error({ integration: key, redrive: record.request, err: errorMessage(err) }, 'redrive run failed unexpectedly; it resumes after its lease');
      })
      .finally(() => {
        this.active.delete(key);
        this.notify();
      });
    this.active.set(key, { done });
  }

  /** True when this replica runs the Integration's pipeline; logs once per request when not. */
  private runsHere(key: string, request: string): boolean {
    if (this.d.compiledFor(key)) return true;
    if (this.waitingLogged.get(key) !== request) {
      this.waitingLogged.set(key, request);
      this.log.info({ integration: key, redrive: request }, 'redrive waits: no pipeline runs for this Integration here (suspended, not provisioned yet, or assigned to other replicas)');
    }
    return false;
  }
}
