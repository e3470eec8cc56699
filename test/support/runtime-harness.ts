/**
 * Shared setup for the runtime's end-to-end tests: a control plane, the CRDs, a source stream,
 * and helpers to create Integrations aimed at local fault targets, publish events, and read what
 * ended where (target, fallback stream, consumer, status).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type StoredMsg } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { installCrds } from './crds.ts';
import { randomBytes } from 'node:crypto';
import { credentialsFor } from './credentials.ts';
import { startFaultTarget, type FaultTarget, type FaultTargetOptions, type TargetAuth } from './fault-target.ts';
import { FerryClient, isTrueNow, type FerryObj } from './ferry-client.ts';
import { publishRetrying } from './js-publish.ts';
import { startOperator, type OperatorProcess } from './operator-process.ts';

export const NS = 'flows';
export const SOURCE = 'EVENTS';

export interface RuntimeEnv {
  readonly env: ControlPlane;
  readonly ferry: FerryClient;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  readonly operators: OperatorProcess[];
  startOperator(identity: string, args?: readonly string[]): Promise<OperatorProcess>;
  /** Reconnects the test's own NATS client (after a nats-server restart). */
  reconnect(): Promise<void>;
  stop(): Promise<void>;
}

export interface RuntimeEnvOptions {
  /** Run NATS as a JetStream cluster of this many nodes (the source stream gets 3 replicas). */
  readonly natsCluster?: number;
}

export async function setupRuntimeEnv(options: RuntimeEnvOptions = {}): Promise<RuntimeEnv> {
  const env = await startControlPlane(options.natsCluster === undefined ? {} : { natsCluster: options.natsCluster });
  const servers = env.natsUrl.split(',');
  await installCrds(env);
  await env.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
  const nc = await connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: SOURCE, subjects: ['events.>'], num_replicas: options.natsCluster === undefined ? 1 : Math.min(3, options.natsCluster) });
  const operators: OperatorProcess[] = [];
  const self: RuntimeEnv = {
    env,
    ferry: new FerryClient(env.kubeConfig),
    nc,
    js: jetstream(nc),
    jsm,
    operators,
    async startOperator(identity, args = []) {
      // Test targets live on 127.0.0.1, which the SSRF guard denies unless allowed explicitly.
      const op = await startOperator({ env, identity, args: ['--allow-cidrs=127.0.0.1/32', ...args] });
      operators.push(op);
      return op;
    },
    async reconnect() {
      await self.nc.close().catch(() => undefined);
      self.nc = await connect({ servers, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
      self.js = jetstream(self.nc);
      self.jsm = await jetstreamManager(self.nc);
    },
    async stop() {
      await Promise.all(operators.map((o) => o.stop()));
      await self.nc.close().catch(() => undefined);
      await env.stop();
    },
  };
  return self;
}

export interface IntegrationOptions {
  readonly name: string;
  readonly subject: string;
  readonly url: string;
  /**
   * The credentials the target requires (a suite target's `auth`): a Secret `<name>-credentials`
   * is created and `spec.target.auth` references it, as a user would write it.
   */
  readonly credentials?: TargetAuth | undefined;
  readonly schema?: Record<string, unknown>;
  readonly transform?: Record<string, unknown>;
  readonly target?: Record<string, unknown>;
  readonly delivery?: Record<string, unknown>;
  readonly sla?: Record<string, unknown>;
}

/** Creates (or replaces the data of) a Secret in the test namespace. */
export async function putSecret(r: Pick<RuntimeEnv, 'env'>, name: string, stringData: Readonly<Record<string, string>>): Promise<void> {
  const core = r.env.kubeConfig.makeApiClient(CoreV1Api);
  try {
    await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name }, stringData: { ...stringData } } });
  } catch {
    await core.replaceNamespacedSecret({ name, namespace: NS, body: { metadata: { name }, stringData: { ...stringData } } });
  }
}

/** Creates an Integration and waits until it is Ready. */
export async function createIntegration(r: RuntimeEnv, o: IntegrationOptions): Promise<FerryObj> {
  let auth: Record<string, unknown> = {};
  if (o.credentials) {
    const c = credentialsFor(o.credentials, `${o.name}-credentials`);
    await putSecret(r, `${o.name}-credentials`, c.secret);
    auth = { auth: c.auth };
  }
  await r.ferry.create('integrations', NS, {
    kind: 'Integration',
    metadata: { name: o.name },
    spec: {
      source: { stream: SOURCE, subjects: [o.subject] },
      schema: o.schema ?? { inline: { type: 'object', required: ['id'], properties: { id: { type: 'string' }, amount: { type: 'number' } } } },
      transform: o.transform ?? { mapping: { externalId: '/id', total: '/amount' } },
      target: { url: o.url, timeout: '2s', ...auth, ...o.target },
      delivery: { concurrency: 16, maxAttempts: 5, backoff: { initial: '200ms', max: '2s', multiplier: 2, jitter: 'Full' }, ...o.delivery },
      ...(o.sla ? { sla: o.sla } : {}),
    },
  });
  return await r.ferry.waitFor('integrations', NS, o.name, (obj) => isTrueNow(obj, 'Ready'));
}

/** Publishes events with `Nats-Msg-Id = id`, waiting for every PubAck. */
export async function publishEvents(r: Pick<RuntimeEnv, 'js'>, subject: string, events: readonly Record<string, unknown>[], batch = 500): Promise<number[]> {
  const seqs: number[] = [];
  for (let i = 0; i < events.length; i += batch) {
    const acks = events.slice(i, i + batch).map((e) => {
      const h = natsHeaders();
      h.set('Nats-Msg-Id', String(e.id));
      // On a cluster a publish made during an election fails for a moment; it is retried.
      return publishRetrying(r.js, subject, JSON.stringify(e), { headers: h });
    });
    for (const a of await Promise.all(acks)) seqs.push(a.seq);
  }
  return seqs;
}

/** Every message in an Integration's fallback stream. */
export async function fallbackMessages(r: Pick<RuntimeEnv, 'jsm'>, name: string, namespace = NS): Promise<StoredMsg[]> {
  const stream = `FERRY_FALLBACK_${namespace}_${name}`;
  let info;
  try {
    info = await r.jsm.streams.info(stream);
  } catch {
    return [];
  }
  const out: StoredMsg[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await r.jsm.streams.getMessage(stream, { seq });
    if (m) out.push(m);
  }
  return out;
}

/** The consumer's counters: nothing pending or unacked means every event reached its end. */
export async function consumerState(r: RuntimeEnv, name: string): Promise<{ pending: number; ackPending: number; redelivered: number }> {
  const info = await r.jsm.consumers.info(SOURCE, `ferry_${NS}_${name}`);
  return { pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered };
}

/** Polls `check` until it returns a value that is not undefined/false. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${last instanceof Error ? ` (${last.message})` : ''}`);
    // Waiting on other processes (operator, NATS): polling is the only way to observe them.
    await sleep(100);
  }
}

/** Waits until the consumer has nothing pending or in flight. */
export async function drained(r: RuntimeEnv, name: string, timeoutMs = 60_000): Promise<void> {
  await eventually(`consumer of ${name} drained`, async () => {
    const s = await consumerState(r, name);
    return s.pending === 0 && s.ackPending === 0;
  }, timeoutMs);
}

export interface RuntimeSuite {
  /** The suite's environment; valid inside tests (set up by the suite's `before`). */
  env(): RuntimeEnv;
  /**
   * A fresh fault target, closed when the suite ends. Like a real API it requires credentials —
   * a bearer token of its own unless `options.auth` says otherwise (`null`: none) — so pass its
   * `auth` to `createIntegration` as `credentials`.
   */
  target(options?: Omit<FaultTargetOptions, 'auth'> & { readonly auth?: TargetAuth | null }): Promise<FaultTarget>;
}

/**
 * Registers the suite's hooks: one control plane per test file, an operator when `operator`
 * names one, and every fault target closed at the end. Call at the top of a `describe`.
 */
export function runtimeSuite(operator?: string, options: RuntimeEnvOptions = {}): RuntimeSuite {
  let r: RuntimeEnv | undefined;
  const targets: FaultTarget[] = [];
  before(async () => {
    r = await setupRuntimeEnv(options);
    if (operator) await r.startOperator(operator);
  });
  after(async () => {
    await r?.stop();
    await Promise.all(targets.map((t) => t.close()));
  });
  return {
    env: () => {
      if (!r) throw new Error('runtimeSuite: the environment is set up in before()');
      return r;
    },
    async target(options = {}) {
      const { auth, ...rest } = options;
      const t = await startFaultTarget({ ...rest, ...(auth === null ? {} : { auth: auth ?? { kind: 'bearer', token: randomBytes(12).toString('hex') } }) });
      targets.push(t);
      return t;
    },
  };
}
