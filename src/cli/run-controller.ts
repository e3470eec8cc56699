/**
 * Composition root of `ferry controller`: builds every part from the normalised flags, wires
 * watchers to work queues and reconcilers, and runs them under the manager until SIGTERM.
 *
 * Start order: HTTP endpoints (so probes answer from the first second) → NATS connection →
 * webhook ingress (with --webhook-address; 503 until the caches synced) → watch caches (every replica, so a standby takes over with a warm cache) → controllers (leader
 * only). SIGTERM/SIGINT: the manager stops controllers, releases the Lease, stops watches; then
 * the webhook ingress stops accepting and finishes open requests; then NATS is drained and the HTTP server closed. Exit code 0 after a requested stop, 1 when
 * leadership was lost or a part failed (the Deployment restarts the pod, as controller-runtime's).
 *
 * Stopping is bounded whatever state the servers are in: the manager gets {@link STOP_BUDGET_MS}
 * for every runnable, then each close step its own deadline (see shutdown.ts), in all at most
 * about 25 s — below Kubernetes' default terminationGracePeriodSeconds of 30. The caller (main)
 * exits the process with the returned code: a NATS client left reconnecting must not keep a
 * process alive that has no leader election, controllers or delivery any more.
 */
import { INTEGRATION, JsonSchemaCache, SYNC_SCHEDULE, type ReferenceLookup } from '../api/index.ts';
import {
  integrationReconciler,
  integrationsConcerned,
  referencedObjects,
  resourceType,
  RuntimeViewPoller,
  SharedBuckets,
  shouldEnqueue,
  syncScheduleReconciler,
  SyncReportView,
  type FerryObject,
} from '../controller/index.ts';
import { createAddressPolicy, HttpDeliverer, TokenCache } from '../delivery/index.ts';
import {
  Controller,
  EventRecorder,
  KubeConfig,
  LeaderElector,
  Manager,
  ObjectClient,
  objectKey,
  resourcePath,
  StoreWriter,
  Watcher,
  WatcherGroup,
  WorkQueue,
  type KubeObject,
  type ResourceType,
  type Runnable,
  type WatchSource,
} from '../kube/index.ts';
import {
  ATTEMPTS_BUCKET,
  AttemptLedger,
  connectNats,
  ConsumerControl,
  FallbackPublisher,
  FallbackStore,
  INTEGRATION_STATE_BUCKET,
  JetStreamAdvisories,
  JetStreamResources,
  MEMBERS_BUCKET,
  NatsAuthError,
  SharedKv,
  SYNC_RUNS_BUCKET,
  translateNatsError,
} from '../nats/index.ts';
import {
  createLogDestination,
  createLogger,
  createRegistry,
  HealthRegistry,
  logLinesDroppedCounter,
  serveOperatorEndpoints,
  systemClock,
  untilAborted,
  type Logger,
} from '../observability/index.ts';
import { applyMapping, authProvider, Membership, RedriveMetrics, RedriveRunner, RuntimeMetrics, RuntimeSupervisor, TransformPool, transformPoolMetrics } from '../runtime/index.ts';
import { HookTable, IngressMetrics, WebhookIngress } from '../ingress/index.ts';
import { SyncMetrics, SyncScheduler, type RecordTransformer } from '../sync/index.ts';
import type { ControllerConfig } from './controller-flags.ts';
import { closeNats, closeWithin } from './shutdown.ts';

/** How long the manager may take to stop every runnable (all groups together). */
export const STOP_BUDGET_MS = 15_000;
/** Source pages can be large (a page of 1,000 records); error bodies of targets are cut far lower. */
const SYNC_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** JSONata recursion bound, as for Integrations. */
const JSONATA_MAX_DEPTH = 200;
/** Deadlines of the close steps after the manager stopped. */
const DELIVERER_CLOSE_MS = 3_000;
const NATS_DRAIN_MS = 2_000;
const HTTP_CLOSE_MS = 1_000;
/** Open webhook requests may finish (their PubAck awaited) within this, then sockets are cut. */
const WEBHOOK_CLOSE_MS = 3_000;
/** Buffered log lines may take this long to reach a slow stdout when the process exits. */
const EXIT_LOG_FLUSH_MS = 2_000;

interface DataObject extends KubeObject {
  readonly data?: Readonly<Record<string, string>>;
}

function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

function watcherRunnable<T extends KubeObject>(watcher: WatchSource<T>): Runnable {
  return { name: `watch ${watcher.name}`, start: (signal) => watcher.start(signal), ready: (signal) => watcher.ready(signal) };
}

export async function runController(config: ControllerConfig, version: string): Promise<number> {
  const registry = createRegistry({ version });
  const clock = systemClock;
  // stdout behind a bounded buffer: a reader that stalls costs dropped (and counted) lines, not
  // memory without limit. At exit what is buffered is written within EXIT_LOG_FLUSH_MS; the
  // listener goes first so that pino's own unbounded exit flush finds nothing left to wait for.
  const droppedLines = logLinesDroppedCounter(registry);
  // `process.stdout.fd`, not 1: opening process.stdout puts a piped fd 1 in non-blocking mode,
  // so a full pipe answers EAGAIN (retried; the exit flush gives up after its budget) instead of
  // blocking a libuv thread, and the exit, for ever.
  const logOutput = createLogDestination({
    fd: process.stdout.fd,
    clock,
    onDrop: () => {
      droppedLines.inc();
    },
  });
  process.prependOnceListener('exit', () => logOutput.flushSync(EXIT_LOG_FLUSH_MS));
  const logger: Logger = createLogger({ level: config.logLevel, destination: logOutput.stream }).child({ identity: config.identity });
  const health = new HealthRegistry();
  const stop = new AbortController();
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'shutting down');
      stop.abort(new Error(`received ${signal}`));
    });
  }

  const endpoints = await serveOperatorEndpoints({ host: config.httpHost, port: config.httpPort, health, registry, logger });
  logger.info({ port: endpoints.port, host: config.httpHost }, 'operator endpoints listening');
  health.addLiveness('process', () => ({ ok: true }));

  const kubeConfig = loadKubeConfig(config.kubeconfig);
  let natsConnected = false;
  health.addReadiness('nats', () => ({ ok: natsConnected, detail: 'not connected to NATS' }));
  // The first connection waits for a server as long as it takes (a warning per failed round); a
  // SIGTERM meanwhile ends it. Refused credentials end the process (exit 1, clear error line).
  const connecting = connectNats({ servers: config.natsServers, name: `ferry-${config.identity}`, logger, security: config.natsSecurity, signal: stop.signal });
  let connected;
  try {
    connected = await untilAborted(connecting, stop.signal);
  } catch (err) {
    await closeWithin(clock, logger, 'operator endpoints', HTTP_CLOSE_MS, () => endpoints.close());
    if (err instanceof NatsAuthError) return 1;
    throw err;
  }
  if (connected.aborted) {
    logger.info('stopped before NATS was reachable');
    await closeWithin(clock, logger, 'operator endpoints', HTTP_CLOSE_MS, () => endpoints.close());
    return 0;
  }
  const nc = connected.value;
  natsConnected = true;
  // What must happen after a reconnect; parts of the operator built below add to it.
  const onNatsReconnect: (() => void)[] = [];
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') natsConnected = false;
      if (s.type === 'reconnect') {
        natsConnected = true;
        for (const f of onNatsReconnect) f();
      }
    }
  })();
  // The client reconnects forever, except when the server refuses the credentials twice in a row
  // (rotated or revoked): then it closes for good. Stop with exit 1 rather than run on without
  // NATS — the pod restarts and reads the mounted credentials again.
  let managerDone = false;
  let natsLost: Error | undefined;
  void nc.closed().then((err) => {
    if (managerDone) return;
    natsLost = translateNatsError(err ?? new Error('closed by the client'), 'NATS connection closed');
    const code = natsLost instanceof NatsAuthError ? natsLost.code : undefined;
    logger.error({ err: natsLost.message, code }, 'NATS connection closed for good; stopping so that a restart connects again');
    stop.abort(natsLost);
  });
  const jetstream = new JetStreamResources(nc, { replicas: config.natsReplicas, fallbackPlacement: config.fallbackPlacement });

  // One list+watch across all namespaces, or with --watch-namespaces one per namespace (so the
  // operator needs only namespaced Roles there); either way one store to read.
  const watch = <T extends KubeObject>(name: string, type: ResourceType, notServedHint?: string): WatchSource<T> => {
    const watcher = (namespace?: string): Watcher<T> =>
      new Watcher<T>({
        kubeConfig,
        path: resourcePath(type, namespace),
        resource: name,
        store: new StoreWriter<T>(),
        resyncMs: config.resyncMs,
        ...(notServedHint === undefined ? {} : { notServedHint }),
        clock,
        logger: namespace === undefined ? logger : logger.child({ namespace }),
        registry,
      });
    if (config.watchNamespaces.length === 0) return watcher();
    return new WatcherGroup<T>(name, new Map(config.watchNamespaces.map((ns) => [ns, watcher(ns)])));
  };
  // A kind whose CRD is missing is not reconciled until the CRD appears (its watcher polls); the
  // other kind and the delivery runtime run meanwhile, and /readyz says what to apply.
  const watchKind = (kind: typeof INTEGRATION | typeof SYNC_SCHEDULE): WatchSource<FerryObject> => {
    const hint = `CustomResourceDefinition ${kind.crdName} is not installed; ${kind.kind} objects are not reconciled until it is (no restart needed): kubectl apply -f crds/${kind.crdName}.yaml`;
    const watcher = watch<FerryObject>(kind.plural, resourceType(kind.plural), hint);
    health.addReadiness(`crd ${kind.crdName}`, () => ({ ok: watcher.served !== 'not-served', detail: hint }));
    return watcher;
  };
  const integrations = watchKind(INTEGRATION);
  const syncSchedules = watchKind(SYNC_SCHEDULE);
  const secrets = watch<DataObject>('secrets', { group: '', version: 'v1', plural: 'secrets' });
  const configMaps = watch<DataObject>('configmaps', { group: '', version: 'v1', plural: 'configmaps' });

  const references = {
    secretData: (namespace, name) => secrets.store.get(`${namespace}/${name}`)?.data ?? undefined,
    configMapData: (namespace, name) => configMaps.store.get(`${namespace}/${name}`)?.data ?? undefined,
    version: (kind, namespace, name) => (kind === 'Secret' ? secrets : configMaps).store.get(`${namespace}/${name}`)?.metadata?.resourceVersion,
  } satisfies ReferenceLookup;
  // One per process: the controller checks and the runtime runs the same schemas; Integrations
  // that carry identical schemas share one compiled validator.
  const schemas = new JsonSchemaCache();
  const client = new ObjectClient({ kubeConfig, clock, fieldManager: 'ferry-operator' });
  const events = new EventRecorder({ kubeConfig, reportingInstance: config.identity, clock, logger, registry });

  const integrationQueue = new WorkQueue({ name: 'integration', clock, registry });
  const integrationState = new SharedKv(nc, INTEGRATION_STATE_BUCKET);
  const ledger = new AttemptLedger(new SharedKv(nc, ATTEMPTS_BUCKET));
  const runtimeView = new RuntimeViewPoller({ integrations: integrations.store, queue: integrationQueue, state: integrationState, jetstream, events, clock, logger });
  const syncQueue = new WorkQueue({ name: 'syncschedule', clock, registry });
  const syncRuns = new SharedKv(nc, SYNC_RUNS_BUCKET);
  const syncReports = new SyncReportView({ syncSchedules: syncSchedules.store, queue: syncQueue, runs: syncRuns, clock, logger });
  integrations.addHandler((type, obj, old) => {
    if (shouldEnqueue(type, obj, old)) integrationQueue.add(objectKey(obj));
  });
  syncSchedules.addHandler((type, obj, old) => {
    if (shouldEnqueue(type, obj, old)) syncQueue.add(objectKey(obj));
  });
  // A Secret or ConfigMap that appears, changes or goes away requeues the objects that use it:
  // a Stalled "Secret not found" heals without a restart.
  const requeueReferencing = (kind: 'secrets' | 'configMaps') => (_type: string, obj: DataObject) => {
    const namespace = obj.metadata?.namespace;
    const name = obj.metadata?.name;
    if (!namespace || !name) return;
    for (const [store, queue] of [
      [integrations.store, integrationQueue],
      [syncSchedules.store, syncQueue],
    ] as const) {
      for (const ferryObj of store.list()) {
        if (ferryObj.metadata?.namespace === namespace && referencedObjects(ferryObj)[kind].has(name)) queue.add(objectKey(ferryObj));
      }
    }
  };
  secrets.addHandler(requeueReferencing('secrets'));
  configMaps.addHandler(requeueReferencing('configMaps'));

  const controllers = [
    new Controller({
      name: 'integration',
      queue: integrationQueue,
      keys: () => integrations.store.keys(),
      reconcile: integrationReconciler({
        integrations: integrations.store,
        references,
        client,
        jetstream,
        state: integrationState,
        ledger,
        events,
        clock,
        logger,
        runtimeView: (key) => runtimeView.view(key),
        fallbackCreated: (key) => {
          runtimeView.fallbackCreated(key);
        },
        webhookIngress: config.webhook !== undefined,
        schemas,
      }),
      concurrency: config.concurrency,
      clock,
      logger,
      registry,
    }),
    new Controller({
      name: 'syncschedule',
      queue: syncQueue,
      keys: () => syncSchedules.store.keys(),
      reconcile: syncScheduleReconciler({
        syncSchedules: syncSchedules.store,
        references,
        client,
        jetstream,
        events,
        clock,
        logger,
        report: (namespace, name, uid) => syncReports.report(namespace, name, uid),
      }),
      concurrency: config.concurrency,
      clock,
      logger,
      registry,
    }),
  ];

  const manager = new Manager({
    logger,
    clock,
    gracefulShutdownMs: STOP_BUDGET_MS,
    // The delivery runtime runs on every replica: a slow Lease renewal must not interrupt it.
    onLeadershipLost: 'recampaign',
    leaderElection: config.leaderElect
      ? new LeaderElector({
          lease: { namespace: config.leaseNamespace, name: config.leaseName },
          identity: config.identity,
          kubeConfig,
          leaseDurationMs: config.leaseDurationMs,
          renewDeadlineMs: config.renewDeadlineMs,
          retryPeriodMs: config.retryPeriodMs,
          clock,
          logger,
          registry,
        })
      : undefined,
  });
  for (const w of [secrets, configMaps, integrations, syncSchedules]) manager.add(watcherRunnable(w), 'caches');
  // Buckets every Integration's runtime shares; every leader term re-ensures them (and scales up
  // what an older version created with fewer replicas).
  manager.add(new SharedBuckets({ jetstream, serverHasJetStream: () => (natsConnected ? nc.info?.jetstream === true : undefined), clock, logger }), 'leader');
  for (const c of controllers) manager.add({ name: `controller ${c.name}`, start: (signal) => c.start(signal) }, 'leader');
  manager.add(runtimeView, 'leader');
  // A consumer or stream deleted by hand, a source stream created or changed: reconciled now,
  // not at the next resync. The queue takes adds only during a leader term.
  manager.add(
    new JetStreamAdvisories({
      nc,
      logger,
      onChange: (change) => {
        for (const key of integrationsConcerned(change, integrations.store)) integrationQueue.add(key);
      },
    }),
    'leader',
  );
  // Advisories sent while disconnected are lost: look at every Integration again.
  onNatsReconnect.push(() => {
    for (const key of integrations.store.keys()) integrationQueue.add(key);
  });
  manager.add(syncReports, 'leader');

  const closers: (() => Promise<void>)[] = [];
  // The runtime: each Integration's pipeline runs on the replicas its assignment picks (all with
  // --pipeline-replicas=all); JetStream spreads its events across them.
  const deliverer = new HttpDeliverer({
    policy: createAddressPolicy({ allowCidrs: config.allowCidrs, denyCidrs: config.denyCidrs }),
    clock,
    logger,
    userAgent: `ferry/${version}`,
  });
  // JSONata transforms run in worker threads that can be terminated: user code never blocks the
  // thread that renews the Lease and moves every other Integration's events.
  const transforms = config.runtime ? new TransformPool({ size: config.transformWorkers, clock, logger, metrics: transformPoolMetrics(registry) }) : undefined;
  if (transforms) {
    const runtimeMetrics = new RuntimeMetrics(registry);
    const membership = new Membership({
      kv: new SharedKv(nc, MEMBERS_BUCKET),
      identity: config.identity,
      clock,
      logger,
      onCount: (n) => {
        runtimeMetrics.replicas.set(n);
      },
    });
    // One OAuth2 token cache for both kinds: the same client credentials fetch one token.
    const tokenCache = new TokenCache(clock);
    const supervisor = new RuntimeSupervisor({
      integrations: integrations.store,
      secrets: secrets.store,
      configMaps: configMaps.store,
      nc,
      deliverer,
      tokenCache,
      publisher: new FallbackPublisher(nc),
      control: new ConsumerControl(nc),
      state: integrationState,
      ledger,
      membership,
      pipelineReplicas: config.pipelineReplicas,
      schemas,
      metrics: runtimeMetrics,
      clock,
      logger,
      transforms,
    });
    for (const w of [integrations, secrets, configMaps]) {
      w.addHandler(() => {
        supervisor.notify();
      });
    }
    // Redrive: one replica replays an Integration's parked events through the generation its
    // pipeline runs (`ferry.dev/redrive` annotation).
    const redrive = new RedriveRunner({
      integrations: integrations.store,
      compiledFor: (key) => supervisor.compiledFor(key),
      identity: config.identity,
      state: integrationState,
      fallback: new FallbackStore(nc),
      publisher: new FallbackPublisher(nc),
      transforms,
      metrics: new RedriveMetrics(registry),
      runnersOf: (key) => supervisor.runnersOf(key),
      clock,
      logger,
    });
    integrations.addHandler(() => {
      redrive.notify();
    });
    // SyncSchedule runs: every replica schedules, one takes each run's lock.
    const syncDeliverer = new HttpDeliverer({
      policy: createAddressPolicy({ allowCidrs: config.allowCidrs, denyCidrs: config.denyCidrs }),
      clock,
      logger,
      userAgent: `ferry/${version}`,
      maxResponseBytes: SYNC_MAX_RESPONSE_BYTES,
    });
    closers.push(() => syncDeliverer.close());
    const transform: RecordTransformer = (t, record, timeoutMs, scope) =>
      t.kind === 'mapping' ? applyMapping(t, record) : transforms.evaluate({ key: scope, source: t.source, data: record, limits: { timeoutMs, maxDepth: JSONATA_MAX_DEPTH } });
    const scheduler = new SyncScheduler({
      syncSchedules: syncSchedules.store,
      references,
      nc,
      runs: syncRuns,
      stores: jetstream,
      publisher: new FallbackPublisher(nc),
      deliverer: syncDeliverer,
      authFor: (credentials) => {
        const provider = authProvider(credentials, { deliverer: syncDeliverer, tokenCache, clock });
        if (!provider) throw new Error('credentials without a provider');
        return provider;
      },
      transform,
      metrics: new SyncMetrics(registry, () => clock.now()),
      clock,
      logger,
      identity: config.identity,
      lockTtlMs: config.syncLockTtlMs,
      members: () => membership.count,
    });
    syncSchedules.addHandler(() => {
      scheduler.notify();
    });
    manager.add({ name: 'sync', start: (signal) => scheduler.start(signal) }, 'others');
    manager.add({ name: 'membership', start: (signal) => membership.start(signal) }, 'others');
    manager.add({ name: 'runtime', start: (signal) => supervisor.start(signal) }, 'others');
    manager.add({ name: 'redrive', start: (signal) => redrive.start(signal) }, 'others');
  }
  health.addReadiness('caches', () => ({ ok: manager.ready, detail: 'watch caches not synced' }));

  // Webhook ingress: every replica, from here (NATS connected) until after the manager stopped,
  // so a request in flight while the runtime stops still gets its PubAck and a true answer.
  let ingress: WebhookIngress | undefined;
  if (config.webhook !== undefined) {
    const ingressMetrics = new IngressMetrics(registry);
    // A deleted Integration's series go, as its runtime series do.
    integrations.addHandler((type, obj) => {
      if (type === 'deleted') ingressMetrics.forget(obj.metadata?.namespace ?? '', obj.metadata?.name ?? '');
    });
    ingress = new WebhookIngress({
      host: config.webhook.host,
      port: config.webhook.port,
      hooks: new HookTable({ integrations: integrations.store, references, clock }),
      publisher: new FallbackPublisher(nc),
      natsConnected: () => natsConnected,
      cachesSynced: () => integrations.store.synced && secrets.store.synced,
      metrics: ingressMetrics,
      clock,
      logger,
      closeGraceMs: WEBHOOK_CLOSE_MS - 1_000,
    });
    const port = await ingress.listen();
    logger.info({ port, host: config.webhook.host }, 'webhook ingress listening');
  }

  const exit = await manager.start(stop.signal);
  managerDone = true;
  logger.info({ exit: exit.reason }, 'manager exited');
  if (ingress) await closeWithin(clock, logger, 'webhook ingress', WEBHOOK_CLOSE_MS, () => ingress.close());
  await closeWithin(clock, logger, 'HTTP deliverer', DELIVERER_CLOSE_MS, () => deliverer.close());
  for (const close of closers) await closeWithin(clock, logger, 'sync HTTP deliverer', DELIVERER_CLOSE_MS, close);
  // After the manager: every pipeline has stopped, so no transform is waiting or running.
  if (transforms) await closeWithin(clock, logger, 'transform workers', DELIVERER_CLOSE_MS, () => transforms.close());
  await closeNats(nc, clock, logger, NATS_DRAIN_MS);
  await closeWithin(clock, logger, 'operator endpoints', HTTP_CLOSE_MS, () => endpoints.close());
  const code = exit.reason === 'stopped' && natsLost === undefined ? 0 : 1;
  logger.info({ exit: exit.reason, code }, 'exiting');
  return code;
}
