/**
 * Runs one pipeline per Integration on this replica (every replica, leader or not), kept in step
 * with the watch caches: a new or changed generation is compiled and swapped in, a suspended or
 * deleted Integration's pipeline is drained and stopped, a Secret change re-compiles.
 *
 * Guarantees: a generation that does not compile never replaces a running one (the last good
 * generation keeps running; the controller reports the bad one as Stalled); a swap drains the old
 * pipeline before the new one starts pulling, so no event is processed by both; on stop every
 * pipeline is drained.
 */
import { inputsKey, type SecretKeyRef } from '../api/index.ts';
import type { Deliverer, TokenCache } from '../delivery/index.ts';
import type { KubeObject, Store } from '../kube/index.ts';
import { integrationStateKeyPrefix, type ConsumerControl, type FallbackPublisher, type SharedKv } from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import { compileIntegration } from './compile-integration.ts';
import type { Membership } from './membership.ts';
import type { RuntimeMetrics } from './metrics.ts';
import { PipelineConfigError } from './pipeline-errors.ts';
import { IntegrationPipeline, type PipelineDeps } from './pipeline.ts';

export interface IntegrationObject extends KubeObject {
  readonly metadata?: KubeObject['metadata'] & { readonly deletionTimestamp?: string };
  readonly spec?: unknown;
  readonly status?: { readonly conditions?: readonly { readonly type: string; readonly status: string }[] };
}

/**
 * The leader says Ready=True once it has provisioned the consumer; before that a pipeline would
 * only spin on "consumer not found". Later generations swap in whatever their Ready says (a
 * stalled one is refused by compiling anyway; a transient provisioning failure must not stop
 * delivery on the consumer that exists).
 */
function provisioned(obj: IntegrationObject): boolean {
  return obj.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export interface DataObject extends KubeObject {
  readonly data?: Readonly<Record<string, string>>;
}

export interface SupervisorDeps {
  readonly integrations: Store<IntegrationObject>;
  readonly secrets: Store<DataObject>;
  readonly configMaps: Store<DataObject>;
  readonly nc: PipelineDeps['nc'];
  readonly deliverer: Deliverer;
  readonly tokenCache: TokenCache;
  readonly publisher: FallbackPublisher;
  readonly control: ConsumerControl;
  readonly state: SharedKv;
  readonly membership: Membership;
  readonly metrics: RuntimeMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The process's JSONata worker pool, shared by every pipeline. */
  readonly transforms: PipelineDeps['transforms'];
}

/** Periodic re-check, in case a change notification was missed. */
const RESYNC_MS = 5_000;

export class RuntimeSupervisor {
  readonly name = 'runtime';
  private readonly deps: SupervisorDeps;
  private readonly log: Logger;
  private readonly pipelines = new Map<string, IntegrationPipeline>();
  /**
   * The inputs (generation and referenced objects' versions) last compiled per Integration,
   * whether that succeeded or not: compiling schemas is the expensive part, and a watch event on
   * anything must not recompile everything (with N Integrations that is N² compilations).
   */
  private readonly compiledInputs = new Map<string, string>();
  /** Shared-state key prefix (`<namespace>.<name>`) → Integration key, to route KV changes. */
  private readonly byStatePrefix = new Map<string, string>();
  private wake: (() => void) | undefined;
  private dirty = true;

  constructor(deps: SupervisorDeps) {
    this.deps = deps;
    this.log = deps.logger.child({ component: 'runtime' });
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

  async start(signal: AbortSignal): Promise<void> {
    const shared = this.watchShared(signal);
    while (!signal.aborted) {
      if (this.dirty) {
        this.dirty = false;
        await this.sync();
      }
      await new Promise<void>((resolve) => {
        const cancel = this.deps.clock.setTimer(resolve, RESYNC_MS);
        this.wake = () => {
          cancel();
          resolve();
        };
        signal.addEventListener('abort', () => {
          this.wake?.();
        }, { once: true });
      });
      this.wake = undefined;
      this.dirty = true;
    }
    await Promise.all([...this.pipelines.values()].map((p) => this.stopBounded(p)));
    this.pipelines.clear();
    await shared;
  }

  /**
   * One watch on the shared-state bucket for the whole process, routed to pipelines by key
   * (`<namespace>.<name>.<what>`): a watch per pipeline would be a JetStream consumer each.
   */
  private async watchShared(signal: AbortSignal): Promise<void> {
    await this.deps.state.watchUntilAborted(
      '>',
      (key, value) => {
        // Only the circuit and the throttle are adopted; counters are the leader's business.
        const dot = key.lastIndexOf('.');
        const what = key.slice(dot + 1);
        if (what !== 'circuit' && what !== 'throttle') return;
        const owner = this.byStatePrefix.get(key.slice(0, dot));
        if (owner) this.pipelines.get(owner)?.onShared(key, value);
      },
      signal,
      (ms, s) => this.deps.clock.sleep(ms, s),
      (err) => {
        // The bucket may not exist yet (the leader creates it).
        this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'shared state watch failed; retrying');
      },
    );
  }

  /**
   * Stops a pipeline, but never waits longer than its attempts can take plus a margin: one
   * pipeline that cannot stop must not freeze every other Integration on this replica. Loud,
   * since its events may then be redelivered after ack_wait rather than handed back at once.
   */
  private async stopBounded(pipeline: IntegrationPipeline): Promise<void> {
    const limitMs = pipeline.compiled.config.target.timeoutMs + 15_000;
    let cancel = (): void => {};
    const timedOut = new Promise<boolean>((resolve) => {
      cancel = this.deps.clock.setTimer(() => {
        resolve(true);
      }, limitMs);
    });
    const late = await Promise.race([pipeline.stop().then(() => false), timedOut]);
    cancel();
    if (late) {
      const c = pipeline.compiled;
      this.log.error({ integration: `${c.namespace}/${c.name}`, limitMs }, 'pipeline did not stop in time; going on without it');
    }
  }

  private async sync(): Promise<void> {
    const desired = new Set<string>();
    for (const obj of this.deps.integrations.list()) {
      const meta = obj.metadata;
      if (!meta?.name || !meta.namespace || meta.deletionTimestamp) continue;
      const spec = obj.spec as { suspend?: unknown } | undefined;
      if (spec?.suspend === true) continue;
      const key = `${meta.namespace}/${meta.name}`;
      if (!this.pipelines.has(key) && !provisioned(obj)) continue;
      desired.add(key);
      const ns = meta.namespace;
      const inputs = inputsKey(meta.uid, meta.generation ?? 0, obj.spec, (kind, name) =>
        (kind === 'Secret' ? this.deps.secrets : this.deps.configMaps).get(`${ns}/${name}`)?.metadata?.resourceVersion,
      );
      if (this.compiledInputs.get(key) === inputs) continue;
      this.compiledInputs.set(key, inputs);
      try {
        await this.ensure(key, ns, meta.name, meta.generation ?? 0, obj.spec);
      } catch (err) {
        this.compiledInputs.delete(key);
        throw err;
      }
    }
    for (const key of this.compiledInputs.keys()) if (!desired.has(key)) this.compiledInputs.delete(key);
    for (const [key, pipeline] of this.pipelines) {
      if (desired.has(key)) continue;
      this.pipelines.delete(key);
      this.byStatePrefix.delete(integrationStateKeyPrefix(pipeline.compiled));
      this.log.info({ integration: key }, 'stopping pipeline (deleted or suspended)');
      await this.stopBounded(pipeline);
    }
  }

  private async ensure(key: string, namespace: string, name: string, generation: number, spec: unknown): Promise<void> {
    let compiled;
    try {
      compiled = compileIntegration(namespace, name, generation, spec, {
        secretValue: (ns: string, ref: SecretKeyRef) => {
          const b64 = this.deps.secrets.get(`${ns}/${ref.name}`)?.data?.[ref.key];
          return b64 === undefined ? undefined : Buffer.from(b64, 'base64').toString('utf8');
        },
        configMapValue: (ns, cm, k) => this.deps.configMaps.get(`${ns}/${cm}`)?.data?.[k],
        deliverer: this.deps.deliverer,
        tokenCache: this.deps.tokenCache,
        clock: this.deps.clock,
      });
    } catch (err) {
      if (!(err instanceof PipelineConfigError)) throw err;
      // Logged once per inputs: sync() skips unchanged inputs.
      const keeping = this.pipelines.get(key)?.compiled.generation;
      this.log.warn({ integration: key, generation, field: err.field, keepingGeneration: keeping }, `generation not runnable: ${err.message}`);
      return;
    }
    const current = this.pipelines.get(key);
    if (current?.compiled.fingerprint === compiled.fingerprint) return;
    if (current?.canReconfigure(compiled)) {
      this.log.info({ integration: key, from: current.compiled.generation, to: generation }, 'swapping pipeline configuration in place');
      current.reconfigure(compiled);
      return;
    }
    if (current) {
      this.log.info({ integration: key, from: current.compiled.generation, to: generation }, 'swapping pipeline');
      await this.stopBounded(current);
    }
    const pipeline = new IntegrationPipeline(compiled, {
      nc: this.deps.nc,
      deliverer: this.deps.deliverer,
      publisher: this.deps.publisher,
      control: this.deps.control,
      state: this.deps.state,
      metrics: this.deps.metrics,
      clock: this.deps.clock,
      logger: this.deps.logger,
      transforms: this.deps.transforms,
      members: () => this.deps.membership.count,
    });
    this.pipelines.set(key, pipeline);
    this.byStatePrefix.set(integrationStateKeyPrefix({ namespace, name }), key);
    pipeline.start();
    if (!current) this.log.info({ integration: key, generation }, 'pipeline started');
  }
}
