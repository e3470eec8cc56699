/**
 * `ferry run -f FILE…`: one Integration, locally, against a NATS server — no cluster — to try a
 * mapping or a target against real events. The Integration (and the Secrets and ConfigMaps it
 * references, as plain `kind: Secret` / `kind: ConfigMap` documents) comes from the files.
 *
 * It provisions what the controller would (the shared KV buckets, the source stream when
 * `spec.source.create`, the durable consumer `ferry_<namespace>_<name>`, the fallback stream;
 * the same specs, src/controller integration-resources.ts) and runs the real runtime: the
 * RuntimeSupervisor with the objects from the files in its stores, as `ferry controller` runs it.
 *
 * The consumer is the Integration's own durable, as a cluster's operator would bind: do not run
 * an Integration here that an operator runs against the same NATS under the same namespace and
 * name (the two would share its events). To try a copy beside a running one, give it another
 * namespace (`-n`) or name: it then gets its own consumer, starting where `spec.source.startAt`
 * says, and its own fallback stream.
 *
 * Logs (JSON) go to stderr. SIGINT/SIGTERM drain the pipeline (in-flight events finish or are
 * handed back) and exit 0.
 */
import { INTEGRATION, compileIntegrationSpec } from '../../api/index.ts';
import { integrationConsumerSpec, integrationFallbackSpec, SHARED_BUCKETS } from '../../controller/index.ts';
import { createAddressPolicy, HttpDeliverer, TokenCache } from '../../delivery/index.ts';
import { StoreWriter, type KubeObject } from '../../kube/index.ts';
import {
  ATTEMPTS_BUCKET,
  AttemptLedger,
  ConsumerControl,
  FallbackPublisher,
  INTEGRATION_STATE_BUCKET,
  JetStreamResources,
  SharedKv,
  StreamNotFoundError,
} from '../../nats/index.ts';
import { createLogger, createRegistry, systemClock } from '../../observability/index.ts';
import { RuntimeMetrics, RuntimeSupervisor, TransformPool, transformPoolMetrics, type DataObject, type IntegrationObject } from '../../runtime/index.ts';
import { NATS_OPTIONS, NATS_USAGE, parseCommand } from '../cli-args.ts';
import { natsTarget } from '../nats-flags.ts';
import { CommandError } from '../command-error.ts';
import { cidrs } from '../controller-flags.ts';
import { manifestLookup, readManifests, type Manifest } from '../manifests.ts';
import { natsFailure, openNats } from '../nats-session.ts';
import { closeNats, closeWithin } from '../shutdown.ts';
import { UsageError } from '../usage-error.ts';
import { printUsage, type Command } from './command.ts';

export const runUsage = (prog: string): string => `Usage: ${prog} run -f FILE [-f FILE…] [flags]

Runs one Integration locally against NATS, without a cluster: provisions its consumer and
fallback stream as the operator would, and delivers events with the real runtime until
SIGINT/SIGTERM (then drains). Secrets and ConfigMaps it references go in the same or other files.
It binds the Integration's own durable consumer (ferry_<namespace>_<name>): to try a copy beside
an operator that runs it on the same NATS, use another namespace (-n) or name.

Flags:
  -f, --filename FILE      manifest file(s); exactly one Integration among them
  -n, --namespace NS       namespace of documents without one (default: default)
${NATS_USAGE}
  --allow-cidrs LIST       target addresses allowed although private/loopback, e.g. 127.0.0.0/8
                           (default: $FERRY_ALLOW_CIDRS, else none)
  --deny-cidrs LIST        extra denied target ranges (default: $FERRY_DENY_CIDRS)
  --log-level LEVEL        trace|debug|info|warn|error (default: $FERRY_LOG_LEVEL, else info)
`;

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
const CLOSE_MS = 3_000;
const NATS_DRAIN_MS = 2_000;
/** JSONata workers for one Integration. */
const TRANSFORM_WORKERS = 1;

function storeOf<T extends KubeObject>(objects: readonly T[]): StoreWriter<T> {
  const store = new StoreWriter<T>();
  store.replace(objects);
  return store;
}

function asObject(m: Manifest): DataObject {
  return { ...(m.body as DataObject), metadata: { ...m.metadata, name: m.name ?? '', namespace: m.namespace } };
}

export const runCommand: Command = async (argv, ctx) => {
  const parsed = parseCommand(
    argv,
    {
      filename: { type: 'string', short: 'f', multiple: true },
      namespace: { type: 'string', short: 'n' },
      ...NATS_OPTIONS,
      'allow-cidrs': { type: 'string' },
      'deny-cidrs': { type: 'string' },
      'log-level': { type: 'string' },
    },
    0,
  );
  if (!parsed) return printUsage(runUsage(ctx.prog), 0);
  const { values } = parsed;
  const files = values.filename ?? [];
  if (files.length === 0) throw new UsageError('at least one -f FILE is required');
  const level = values['log-level'] ?? ctx.env.FERRY_LOG_LEVEL ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const allowCidrs = cidrs('allow-cidrs', values['allow-cidrs'] ?? ctx.env.FERRY_ALLOW_CIDRS);
  const denyCidrs = cidrs('deny-cidrs', values['deny-cidrs'] ?? ctx.env.FERRY_DENY_CIDRS);
  const nats = natsTarget(values, ctx.env);
  const url = nats.url;

  // Namespace of documents without one: the flag wins over the files' so a copy can run apart.
  const { manifests, problems } = await readManifests(files, values.namespace ?? 'default');
  if (problems[0]) throw new CommandError(`${problems[0].file}: document ${problems[0].index}: ${problems[0].message}`);
  const placed = values.namespace === undefined ? manifests : manifests.map((m) => ({ ...m, namespace: values.namespace ?? m.namespace }));
  const integrations = placed.filter((m) => m.kind === INTEGRATION.kind);
  const [m] = integrations;
  if (m === undefined || integrations.length > 1) {
    throw new CommandError(`the files hold ${integrations.length} Integrations${integrations.length > 1 ? ` (${integrations.map((i) => i.name ?? '?').join(', ')})` : ''}; ferry run runs exactly one`);
  }
  const name = m.name;
  if (name === undefined) throw new CommandError(`${m.file}: Integration without metadata.name`);
  const { lookup } = manifestLookup(placed);
  const check = compileIntegrationSpec(m.namespace, m.body.spec, lookup);
  if (!check.ok) throw new CommandError(`${m.file}: Integration/${name}: ${check.message}`);
  const config = check.config.config;
  const ref = { namespace: m.namespace, name };

  const logger = createLogger({ level, destination: process.stderr }).child({ integration: `${ref.namespace}/${ref.name}` });
  const nc = await openNats(nats);
  const stop = new AbortController();
  const onSignal = (signal: string) => () => {
    logger.info({ signal }, 'draining');
    stop.abort(new Error(`received ${signal}`));
  };
  process.once('SIGINT', onSignal('SIGINT'));
  process.once('SIGTERM', onSignal('SIGTERM'));

  const registry = createRegistry({ version: 'local', defaultMetrics: false });
  const deliverer = new HttpDeliverer({ policy: createAddressPolicy({ allowCidrs, denyCidrs }), clock: systemClock, logger, userAgent: 'ferry-run' });
  const transforms = new TransformPool({ size: TRANSFORM_WORKERS, clock: systemClock, logger, metrics: transformPoolMetrics(registry) });
  try {
    try {
      const jetstream = new JetStreamResources(nc);
      for (const bucket of SHARED_BUCKETS) await jetstream.ensureKvBucket(bucket);
      await jetstream.ensureSourceStream({ name: config.source.stream, subjects: config.source.subjects, create: config.source.create });
      await jetstream.ensureConsumer(integrationConsumerSpec(ref, config, 1));
      await jetstream.ensureFallbackStream(integrationFallbackSpec(ref, config));
    } catch (err) {
      if (err instanceof StreamNotFoundError) throw new CommandError(`spec.source.stream: stream ${JSON.stringify(err.stream)} not found at ${url} (create it, or set spec.source.create: true)`);
      throw natsFailure(err, url);
    }
    // What the controller would have written: the runtime starts a pipeline for a Ready object.
    const integration: IntegrationObject = {
      ...(m.body as IntegrationObject),
      metadata: { ...m.metadata, name, namespace: ref.namespace, uid: `local-${ref.namespace}-${name}`, generation: 1 },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    };
    const data = (kind: string): DataObject[] => placed.filter((d) => d.kind === kind && d.name !== undefined).map(asObject);
    const supervisor = new RuntimeSupervisor({
      integrations: storeOf([integration]).reader,
      secrets: storeOf(data('Secret').map((s) => ({ ...s, data: lookup.secretData(s.metadata?.namespace ?? '', s.metadata?.name ?? '') ?? {} }))).reader,
      configMaps: storeOf(data('ConfigMap')).reader,
      nc,
      deliverer,
      tokenCache: new TokenCache(systemClock),
      publisher: new FallbackPublisher(nc),
      control: new ConsumerControl(nc),
      state: new SharedKv(nc, INTEGRATION_STATE_BUCKET),
      ledger: new AttemptLedger(new SharedKv(nc, ATTEMPTS_BUCKET)),
      metrics: new RuntimeMetrics(registry),
      clock: systemClock,
      logger,
      transforms,
    });
    logger.info({ stream: config.source.stream, subjects: config.source.subjects, target: config.target.url }, 'running; SIGINT or SIGTERM drains and stops');
    await supervisor.start(stop.signal);
    logger.info('stopped');
    return 0;
  } finally {
    await closeWithin(systemClock, logger, 'HTTP deliverer', CLOSE_MS, () => deliverer.close());
    await closeWithin(systemClock, logger, 'transform workers', CLOSE_MS, () => transforms.close());
    await closeNats(nc, systemClock, logger, NATS_DRAIN_MS);
  }
};
