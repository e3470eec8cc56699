/**
 * Runs one pipeline per Integration on this replica (every replica, leader or not), kept in step
 * with the watch caches: a new or changed generation is compiled and swapped in, a suspended or
 * deleted Integration's pipeline is drained and stopped, a Secret change re-compiles.
 *
 * Guarantees:
 * - A generation that does not compile never replaces a running one (the last good generation
 *   keeps running; the controller reports the bad one as Stalled). A replica that has no pipeline
 *   for it yet (a restart, a rollout, a scale-up) runs the last good generation the leader stored
 *   in KV, so "last good keeps running" survives restarts.
 * - One object's failure stays with that object: whatever goes wrong compiling or starting one
 *   Integration is logged against it and retried later; the others are never held up, and the
 *   supervisor itself never fails because of one object.
 * - A swap that changes the source drains the old pipeline before the new one starts pulling, so
 *   no event is processed by both; on stop every pipeline is drained.
 * - A deleted Integration's metric series are removed, so a re-created one starts from zero.
 * - Sharding: with a membership, this replica runs only the Integrations that rendezvous hashing
 *   assigns to it (`spec.runtime.replicas`, else `pipelineReplicas`, over the live members; see
 *   assignment.ts). A change of the live set or of an Integration re-evaluates the assignment; a
 *   pipeline no longer assigned here is drained like a suspended one (stop pulling, hand back what
 *   never started, finish what is in flight): the durable consumer is shared, so every unacked
 *   event goes to the replicas that run it now — none is lost.
 * - Before the first membership read (bounded by {@link FIRST_MEMBERSHIP_WAIT_MS}) no pipeline
 *   starts, so a replica joining does not start everything only to drain most of it a moment
 *   later; a membership that cannot be read at all leaves this replica running every
 *   Integration, as before sharding (delivery over memory).
 */
import { JsonSchemaCache, pipelineReplicasOf, referencesKey, specReferences, type ReferenceLookup, type SpecReferences } from '../api/index.ts';
import type { Deliverer, TokenCache } from '../delivery/index.ts';
import type { KubeObject, Store } from '../kube/index.ts';
import { integrationStateKeyPrefix, KvWatchStalledError, type LastGoodGeneration } from '../nats/index.ts';
import type { Logger } from '../observability/index.ts';
import { assignReplicas, type PipelineReplicas } from './assignment.ts';
import { compileIntegration, type CompiledIntegration } from './compile-integration.ts';
import { LeaseKeeper } from './lease-keeper.ts';
import type { LiveMembers } from './membership.ts';
import { PipelineConfigError } from './pipeline-errors.ts';
import { IntegrationPipeline, type PipelineDeps } from './pipeline.ts';

export interface IntegrationObject extends KubeObject {
  readonly metadata?: KubeObject['metadata'] & { readonly deletionTimestamp?: string };
  readonly spec?: unknown;
  readonly status?: { readonly conditions?: readonly { readonly type: string; readonly status: string }[] };
}

/**
 * The leader says Ready=True once it has provisioned the consumer; before that a pipeline would
 * only spin on "consumer not found". A stored last good generation also means the consumer was
 * provisioned. Later generations swap in whatever their Ready says (a stalled one is refused by
 * compiling anyway; a transient provisioning failure must not stop delivery on the consumer that
 * exists).
 */
function provisioned(obj: IntegrationObject): boolean {
  return obj.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export interface DataObject extends KubeObject {
  readonly data?: Readonly<Record<string, string>>;
}

/** What every pipeline shares (the lease keeper and runner counts are the supervisor's), plus the caches. */
export interface SupervisorDeps extends Omit<PipelineDeps, 'leases' | 'runners'> {
  readonly integrations: Store<IntegrationObject>;
  readonly secrets: Store<DataObject>;
  readonly configMaps: Store<DataObject>;
  readonly deliverer: Deliverer;
  readonly tokenCache: TokenCache;
  /** The live replicas; absent: this replica is alone and runs every Integration (`ferry run`). */
  readonly membership?: LiveMembers;
  /** Replicas per Integration unless its `spec.runtime.replicas` says otherwise (`--pipeline-replicas`). */
  readonly pipelineReplicas?: PipelineReplicas;
  /** Compiled schemas shared by content, with the controller in the same process; default: the supervisor's own. */
  readonly schemas?: JsonSchemaCache;
  /** Builds a pipeline; tests replace it. */
  readonly createPipeline?: (compiled: CompiledIntegration, deps: PipelineDeps) => PipelineLike;
}

/** What the supervisor does with a pipeline. */
export interface PipelineLike {
  readonly compiled: CompiledIntegration;
  canReconfigure(next: CompiledIntegration): boolean;
  reconfigure(next: CompiledIntegration): void;
  start(): void;
  /** `deleted`: the Integration is gone; its counters are not flushed. */
  stop(deleted?: boolean): Promise<void>;
  onShared(key: string, value: unknown): void;
}

/** Periodic re-check, in case a change notification was missed. */
const RESYNC_MS = 5_000;
/**
 * How long the first pass waits for the live set. The first heartbeat normally answers in
 * milliseconds; a bucket that does not exist yet (no leader so far) must not hold delivery back
 * for long.
 */
export const FIRST_MEMBERSHIP_WAIT_MS = 5_000;
/**
 * The least time between the start of one pass and the next. A pass looks at every Integration,
 * and every watch event asks for one: creating 1,000 objects ran passes back to back, an O(N)
 * loop per event that took 13 % of the operator's CPU and delayed the reconciles sharing its
 * event loop. Events that arrive meanwhile are handled together by the next pass.
 */
export const PASS_GAP_MS = 200;
/** Compilations per pass between two yields to the event loop (timers, heartbeats, I/O). */
const YIELD_EVERY = 20;
/** Lease renewals for held messages; far below any ack_wait the controller sets (≥ 30 s). */
const WORKING_EVERY_MS = 5_000;

export class RuntimeSupervisor {
  readonly name = 'runtime';
  private readonly deps: SupervisorDeps;
  private readonly log: Logger;
  private readonly leases: LeaseKeeper;
  private readonly pipelines = new Map<string, PipelineLike>();
  /**
   * The inputs (generation, referenced objects' versions, last good generation) last handled per
   * Integration, whether that succeeded or not: compiling schemas is the expensive part, and a
   * watch event on anything must not recompile everything (N Integrations: N² compilations).
   */
  private readonly compiledInputs = new Map<string, string>();
  /** Shared-state key prefix (`<namespace>.<name>`) → Integration key, to route KV changes. */
  private readonly byStatePrefix = new Map<string, string>();
  /** The leader's last good generation per shared-state key prefix (from the shared bucket). */
  private readonly lastGood = new Map<string, LastGoodGeneration>();
  /** The members that run each runnable Integration (here or elsewhere), as of the last pass. */
  private readonly assigned = new Map<string, readonly string[]>();
  /** Whether each Integration was assigned here at the last pass (assignment change counting). */
  private readonly assignedHere = new Map<string, boolean>();
  private wake: (() => void) | undefined;
  private dirty = true;
  private readonly schemas: JsonSchemaCache;
  /**
   * Per Integration, what its cached spec object references and its shared-state key prefix. A
   * pass looks at every Integration and passes follow each other while objects are being created:
   * walking every spec on every pass made the passes O(N²) in all (13 % of the operator's CPU at
   * N = 1,000). The spec object is replaced whenever the object changes, so identity tells.
   */
  private readonly specFacts = new Map<string, { readonly spec: unknown; readonly uid: string | undefined; readonly refs: SpecReferences; readonly statePrefix: string }>();

  constructor(deps: SupervisorDeps) {
    this.deps = deps;
    this.schemas = deps.schemas ?? new JsonSchemaCache();
    this.log = deps.logger.child({ component: 'runtime' });
    this.leases = new LeaseKeeper(deps.clock, WORKING_EVERY_MS);
  }

  /** Something changed (an Integration, Secret or ConfigMap): look again soon. */
  notify(): void {
    this.dirty = true;
    this.wake?.();
  }

  /** Number of running pipelines, for tests and metrics. */
  get running(): number {
    return this.pipelines.size;
  }

  /**
   * How many replicas run an Integration (`namespace/name`) as this replica computes it: shared
   * limits (rate, its AIMD recovery, redrive) are divided by it, not by every live replica —
   * a replica that does not run an Integration takes no share of its rate. At least 1.
   */
  runnersOf(key: string): number {
    return Math.max(1, this.assigned.get(key)?.length ?? 1);
  }

  /** The generation running for an Integration (`namespace/name`), if any. */
  runningGeneration(key: string): number | undefined {
    return this.pipelines.get(key)?.compiled.generation;
  }

  /**
   * The generation this replica runs for an Integration (`namespace/name`) — the current one, or
   * the last good one while a later one is Stalled; undefined while none runs here (suspended,
   * not provisioned yet, deleted). Redrive replays through it.
   */
  compiledFor(key: string): CompiledIntegration | undefined {
    return this.pipelines.get(key)?.compiled;
  }

  async start(signal: AbortSignal): Promise<void> {
    const shared = this.watchShared(signal);
    const leases = this.leases.start(signal);
    const unsubscribe = this.deps.membership?.onChange(() => {
      this.notify();
    });
    if (this.deps.membership) await this.firstMembership(this.deps.membership, signal);
    while (!signal.aborted) {
      if (this.dirty) {
        this.dirty = false;
        const began = this.deps.clock.now();
        await this.sync();
        const rest = PASS_GAP_MS - (this.deps.clock.now() - began);
        if (rest > 0) await this.deps.clock.sleep(rest, signal).catch(() => undefined);
        // Stopped during the gap: the abort listener below would never fire. (A call, not the
        // property: TypeScript narrows `signal.aborted` to false across the await otherwise.)
        if (isAborted(signal)) break;
      }
      await new Promise<void>((resolve) => {
        // Something changed while the last pass ran: look again at once.
        if (this.dirty) {
          resolve();
          return;
        }
        const onAbort = (): void => {
          this.wake?.();
        };
        const cancel = this.deps.clock.setTimer(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        }, RESYNC_MS);
        this.wake = () => {
          cancel();
          signal.removeEventListener('abort', onAbort);
          resolve();
        };
        // Removed again on every wake-up: one listener per pass would pile up on a long run.
        signal.addEventListener('abort', onAbort, { once: true });
      });
      this.wake = undefined;
      this.dirty = true;
    }
    unsubscribe?.();
    await Promise.all([...this.pipelines.values()].map((p) => this.stopBounded(p)));
    this.pipelines.clear();
    this.deps.metrics.pipelines.set(0);
    await Promise.all([shared, leases]);
  }

  /** Waits for the first read of the live set, at most {@link FIRST_MEMBERSHIP_WAIT_MS}. */
  private async firstMembership(membership: LiveMembers, signal: AbortSignal): Promise<void> {
    const waited = new AbortController();
    const cancel = this.deps.clock.setTimer(() => {
      waited.abort();
    }, FIRST_MEMBERSHIP_WAIT_MS);
    await membership.settled(AbortSignal.any([signal, waited.signal]));
    cancel();
    if (waited.signal.aborted && !signal.aborted) {
      this.log.warn({ waitedMs: FIRST_MEMBERSHIP_WAIT_MS }, 'live replicas unknown; running every Integration until they are known');
    }
  }

  /** The members that run an Integration, from its spec and the live set. */
  private runnersFor(key: string, spec: unknown): readonly string[] {
    const membership = this.deps.membership;
    if (!membership) return [];
    return assignReplicas(key, membership.members(), pipelineReplicasOf(spec) ?? this.deps.pipelineReplicas ?? 'all');
  }

  /** Counts an Integration moving onto or off this replica (not its creation or deletion). */
  private noteAssignment(key: string, here: boolean): void {
    const before = this.assignedHere.get(key);
    this.assignedHere.set(key, here);
    if (before === undefined || before === here) return;
    this.deps.metrics.assignmentChanges.inc({ change: here ? 'assigned' : 'unassigned' });
  }

  /**
   * One watch on the shared-state bucket for the whole process, routed by key
   * (`<namespace>.<name>.<what>`): a watch per pipeline would be a JetStream consumer each.
   */
  private async watchShared(signal: AbortSignal): Promise<void> {
    await this.deps.state.watchUntilAborted(
      '>',
      (key, value) => {
        // The circuit and the throttle go to the pipeline; the last good generation is kept here.
        // Counters are the leader's business.
        const dot = key.lastIndexOf('.');
        const what = key.slice(dot + 1);
        const prefix = key.slice(0, dot);
        if (what === 'lastgood') {
          this.onLastGood(prefix, value as LastGoodGeneration | undefined);
          return;
        }
        if (what !== 'circuit' && what !== 'throttle') return;
        const owner = this.byStatePrefix.get(prefix);
        if (owner) this.pipelines.get(owner)?.onShared(key, value);
      },
      signal,
      (ms, s) => this.deps.clock.sleep(ms, s),
      (err) => {
        // The bucket may not exist yet (the leader creates it).
        this.log[err instanceof KvWatchStalledError ? 'warn' : 'debug']({ err: err instanceof Error ? err.message : String(err) }, 'shared state watch failed; retrying');
      },
    );
  }

  private onLastGood(prefix: string, value: LastGoodGeneration | undefined): void {
    if (value) this.lastGood.set(prefix, value);
    else this.lastGood.delete(prefix);
    this.notify();
  }

  /**
   * Stops a pipeline, but never waits longer than its attempts can take plus a margin: one
   * pipeline that cannot stop must not freeze every other Integration on this replica. Loud,
   * since its events may then be redelivered after ack_wait rather than handed back at once.
   */
  private async stopBounded(pipeline: PipelineLike, deleted = false): Promise<void> {
    const limitMs = pipeline.compiled.config.target.timeoutMs + 15_000;
    let cancel = (): void => {};
    const timedOut = new Promise<boolean>((resolve) => {
      cancel = this.deps.clock.setTimer(() => {
        resolve(true);
      }, limitMs);
    });
    const late = await Promise.race([
      pipeline.stop(deleted).then(
        () => false,
        (err: unknown) => {
          this.log.error({ integration: `${pipeline.compiled.namespace}/${pipeline.compiled.name}`, err }, 'pipeline failed while stopping');
          return false;
        },
      ),
      timedOut,
    ]);
    cancel();
    if (late) {
      const c = pipeline.compiled;
      this.log.error({ integration: `${c.namespace}/${c.name}`, limitMs }, 'pipeline did not stop in time; going on without it');
    }
  }

  /** What `obj`'s spec references and its state prefix, worked out once per version of the object. */
  private factsOf(key: string, namespace: string, name: string, uid: string | undefined, spec: unknown): { readonly refs: SpecReferences; readonly statePrefix: string } {
    const known = this.specFacts.get(key);
    if (known && known.spec === spec && known.uid === uid) return known;
    const facts = { spec, uid, refs: specReferences(spec), statePrefix: integrationStateKeyPrefix({ namespace, name }) };
    this.specFacts.set(key, facts);
    return facts;
  }

  private lastGoodFor(obj: IntegrationObject, statePrefix: string): LastGoodGeneration | undefined {
    const lg = this.lastGood.get(statePrefix);
    // A re-created Integration (same name, new uid) never inherits the old one's generation.
    return lg && lg.uid === obj.metadata?.uid ? lg : undefined;
  }

  private async sync(): Promise<void> {
    const desired = new Set<string>();
    const present = new Set<string>();
    /** Runnable, but assigned to other replicas: drained here, not deleted. */
    const elsewhere = new Set<string>();
    const self = this.deps.membership?.self;
    let compiled = 0;
    for (const obj of this.deps.integrations.list()) {
      const meta = obj.metadata;
      if (!meta?.name || !meta.namespace || meta.deletionTimestamp) continue;
      const key = `${meta.namespace}/${meta.name}`;
      present.add(key);
      const spec = obj.spec as { suspend?: unknown } | undefined;
      if (spec?.suspend === true) continue;
      const facts = this.factsOf(key, meta.namespace, meta.name, meta.uid, obj.spec);
      const lastGood = this.lastGoodFor(obj, facts.statePrefix);
      if (!this.pipelines.has(key) && !provisioned(obj) && !lastGood) continue;
      if (self !== undefined) {
        const runners = this.runnersFor(key, obj.spec);
        this.assigned.set(key, runners);
        const here = runners.includes(self);
        this.noteAssignment(key, here);
        if (!here) {
          elsewhere.add(key);
          continue;
        }
      }
      desired.add(key);
      const ns = meta.namespace;
      const inputs = `${referencesKey(meta.uid, meta.generation ?? 0, facts.refs, (kind, name) =>
        (kind === 'Secret' ? this.deps.secrets : this.deps.configMaps).get(`${ns}/${name}`)?.metadata?.resourceVersion,
      )}|lg:${lastGood?.generation ?? '-'}`;
      if (this.compiledInputs.get(key) === inputs) continue;
      this.compiledInputs.set(key, inputs);
      // Compiling is synchronous: a pass that starts a thousand pipelines (a replica starting, or
      // taking over a dead one's share) would hold the event loop for seconds, and the membership
      // heartbeat with it — long enough for the others to count this replica dead and take its
      // Integrations, which then move back: churn that feeds itself.
      if (++compiled % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
      try {
        await this.ensure(key, obj, lastGood);
      } catch (err) {
        // Not a spec problem (those are handled in ensure): a bug or an unexpected failure of
        // this one object. Logged against it, retried on the next resync; others go on.
        this.compiledInputs.delete(key);
        this.log.error({ integration: key, err }, 'could not run this Integration; retrying later');
      }
    }
    for (const key of this.compiledInputs.keys()) if (!desired.has(key)) this.compiledInputs.delete(key);
    for (const key of this.specFacts.keys()) if (!present.has(key)) this.specFacts.delete(key);
    for (const key of this.assigned.keys()) if (!desired.has(key) && !elsewhere.has(key)) this.assigned.delete(key);
    for (const key of this.assignedHere.keys()) if (!desired.has(key) && !elsewhere.has(key)) this.assignedHere.delete(key);
    // Drained together: one replica leaving hands over a third of the pipelines at once, and
    // each drain waits only for its own in-flight events.
    const stopping: Promise<void>[] = [];
    for (const [key, pipeline] of this.pipelines) {
      if (desired.has(key)) continue;
      this.pipelines.delete(key);
      this.byStatePrefix.delete(integrationStateKeyPrefix(pipeline.compiled));
      const deleted = !present.has(key);
      const why = deleted ? 'deleted' : elsewhere.has(key) ? 'assigned to other replicas' : 'suspended';
      this.log.info({ integration: key, runners: this.assigned.get(key) }, `stopping pipeline (${why})`);
      stopping.push(
        this.stopBounded(pipeline, deleted).then(() => {
          if (!deleted) return;
          this.deps.metrics.forget(pipeline.compiled.namespace, pipeline.compiled.name);
          this.log.debug({ integration: key }, 'removed the metric series of a deleted Integration');
        }),
      );
    }
    this.deps.metrics.pipelines.set(this.pipelines.size);
    await Promise.all(stopping);
  }

  private references(namespace: string, stored?: LastGoodGeneration): ReferenceLookup {
    return {
      secretData: (ns, name) => this.deps.secrets.get(`${ns}/${name}`)?.data,
      configMapData: (ns, name) => (ns === namespace ? stored?.configMaps[name] : undefined) ?? this.deps.configMaps.get(`${ns}/${name}`)?.data,
    };
  }

  private compile(namespace: string, name: string, generation: number, spec: unknown, stored?: LastGoodGeneration): CompiledIntegration {
    return compileIntegration(namespace, name, generation, spec, {
      references: this.references(namespace, stored),
      deliverer: this.deps.deliverer,
      tokenCache: this.deps.tokenCache,
      clock: this.deps.clock,
      compileSchema: this.schemas.compile,
    });
  }

  private async ensure(key: string, obj: IntegrationObject, lastGood: LastGoodGeneration | undefined): Promise<void> {
    const namespace = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    const generation = obj.metadata?.generation ?? 0;
    let compiled: CompiledIntegration;
    try {
      compiled = this.compile(namespace, name, generation, obj.spec);
    } catch (err) {
      if (!(err instanceof PipelineConfigError)) throw err;
      const running = this.pipelines.get(key);
      // Logged once per inputs: sync() skips unchanged inputs.
      this.log.warn({ integration: key, generation, field: err.field, keepingGeneration: running?.compiled.generation }, `generation not runnable: ${err.message}`);
      if (running || !lastGood) return;
      // No pipeline here yet (this replica restarted, or is new): run what the leader last found
      // good — possibly this very generation, with the ConfigMap values it had then.
      try {
        compiled = this.compile(namespace, name, lastGood.generation, lastGood.spec, lastGood);
      } catch (lgErr) {
        if (!(lgErr instanceof PipelineConfigError)) throw lgErr;
        this.log.warn({ integration: key, generation: lastGood.generation, field: lgErr.field }, `last good generation not runnable either: ${lgErr.message}`);
        return;
      }
      this.log.info({ integration: key, generation: lastGood.generation, stalledGeneration: generation }, 'running the last good generation while the current one is stalled');
    }
    const current = this.pipelines.get(key);
    if (current?.compiled.fingerprint === compiled.fingerprint) return;
    if (current?.canReconfigure(compiled)) {
      this.log.info({ integration: key, from: current.compiled.generation, to: compiled.generation }, 'swapping pipeline configuration in place');
      current.reconfigure(compiled);
      return;
    }
    if (current) {
      this.log.info({ integration: key, from: current.compiled.generation, to: compiled.generation }, 'swapping pipeline');
      this.pipelines.delete(key);
      await this.stopBounded(current);
    }
    const d = this.deps;
    const deps: PipelineDeps = {
      nc: d.nc,
      publisher: d.publisher,
      control: d.control,
      state: d.state,
      ledger: d.ledger,
      leases: this.leases,
      transforms: d.transforms,
      metrics: d.metrics,
      clock: d.clock,
      logger: d.logger,
      runners: () => this.runnersOf(key),
    };
    const pipeline = this.deps.createPipeline ? this.deps.createPipeline(compiled, deps) : new IntegrationPipeline(compiled, deps);
    this.pipelines.set(key, pipeline);
    this.byStatePrefix.set(integrationStateKeyPrefix({ namespace, name }), key);
    pipeline.start();
    this.deps.metrics.pipelines.set(this.pipelines.size);
    if (!current) this.log.info({ integration: key, generation: compiled.generation, runners: this.assigned.get(key) }, 'pipeline started');
  }
}

function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}
