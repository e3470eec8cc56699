/**
 * Flags of `ferry controller`, normalised once into a typed config. Flags win over environment
 * variables, which win over defaults. Anything malformed is a UsageError (exit 2).
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import type { NatsSecurity } from '../nats/index.ts';
import { NATS_SECURITY_OPTIONS, NATS_SECURITY_USAGE, natsSecurity, natsServers, type ReadFile } from './nats-flags.ts';
import { UsageError } from './usage-error.ts';

export const controllerUsage = `Usage: ferry controller [flags]

Runs the Ferry operator: watches Integrations and SyncSchedules, reconciles them (leader only)
and serves /healthz, /readyz and /metrics.

Flags:
  --kubeconfig PATH        kubeconfig file (default: $KUBECONFIG, else in-cluster config)
  --nats-url URL           NATS server(s), comma separated (default: $NATS_URL, else nats://127.0.0.1:4222)
${NATS_SECURITY_USAGE}
  --http-address HOST:PORT address of /healthz, /readyz, /metrics (default 0.0.0.0:8080; port 0 picks one)
  --webhook-address HOST:PORT
                           serve webhook ingress (POST /hooks/<namespace>/<name>) on this address,
                           on every replica (default: off; Integrations with spec.source.webhook
                           are then Stalled with reason WebhookIngressDisabled; port 0 picks one)
  --leader-elect BOOL      elect a leader through a Lease (default true)
  --lease-namespace NS     namespace of the Lease (default: $POD_NAMESPACE, else default)
  --lease-name NAME        name of the Lease (default ferry-operator)
  --identity ID            this replica's identity (default: $POD_NAME, else hostname-pid)
  --lease-duration SECS    seconds a leader holds the Lease without renewing (default 15)
  --renew-deadline SECS    seconds the leader keeps trying to renew before giving up (default 10)
  --retry-period SECS      seconds between acquire/renew attempts (default 2)
  --concurrency N          reconciles running at once per kind (default 4)
  --resync SECS            full resync period of the caches (default 600)
  --watch-namespaces LIST  watch Integrations, SyncSchedules, Secrets and ConfigMaps only in these
                           namespaces, comma separated: one namespaced list+watch each, so
                           namespaced Roles suffice (default: $FERRY_WATCH_NAMESPACES, else all
                           namespaces, which needs a ClusterRole)
  --log-level LEVEL        trace|debug|info|warn|error (default: $FERRY_LOG_LEVEL, else info)
  --allow-cidrs LIST       target addresses allowed although private/loopback, e.g. 10.1.0.0/16
                           (default: $FERRY_ALLOW_CIDRS, else none: only public unicast targets)
  --deny-cidrs LIST        extra denied target ranges, e.g. the pod and service CIDRs
                           (default: $FERRY_DENY_CIDRS)
  --runtime BOOL           run Integration pipelines and SyncSchedule runs on this replica (default true)
  --sync-lock-ttl SECS     lease of a SyncSchedule run's lock, renewed every third of it; a runner
                           that dies holds it at most this long (default 30)
  --pipeline-replicas N|all
                           operator replicas that run each Integration's pipeline, chosen by a
                           stable hash over the live replicas (capped at their number, at least 1);
                           all: every replica runs every pipeline. An Integration's
                           spec.runtime.replicas overrides it (default 2)
  --transform-workers N    worker threads that evaluate JSONata transforms, shared by all
                           Integrations; one that outlives its time box is terminated (default 2)
  --nats-replicas N|auto   replicas of every stream and KV bucket Ferry creates (fallback streams,
                           shared state); existing ones with fewer are scaled up. auto: 3 when
                           JetStream can place 3 replicas, else 1 (default: $FERRY_NATS_REPLICAS,
                           else auto)
  --fallback-placement-cluster NAME
                           JetStream cluster for fallback streams (default: any)
  --fallback-placement-tags LIST
                           server tags fallback streams must be placed on, comma separated
`;

export interface ControllerConfig {
  readonly kubeconfig: string | undefined;
  readonly natsServers: readonly string[];
  /** Credentials and TLS towards NATS; secrets inside are SecretValues. */
  readonly natsSecurity: NatsSecurity;
  readonly httpHost: string;
  readonly httpPort: number;
  /** Webhook ingress address; undefined: no ingress on this operator. */
  readonly webhook: { readonly host: string; readonly port: number } | undefined;
  readonly leaderElect: boolean;
  readonly leaseNamespace: string;
  readonly leaseName: string;
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly concurrency: number;
  readonly resyncMs: number;
  /** Namespaces to watch; empty: every namespace (cluster-wide list+watch). */
  readonly watchNamespaces: readonly string[];
  readonly logLevel: string;
  readonly allowCidrs: readonly string[];
  readonly denyCidrs: readonly string[];
  readonly runtime: boolean;
  readonly transformWorkers: number;
  /** Replicas that run each Integration's pipeline unless its spec says otherwise. */
  readonly pipelineReplicas: number | 'all';
  readonly syncLockTtlMs: number;
  /** Replicas of Ferry's own streams and buckets; `auto` detects what the JetStream domain can place. */
  readonly natsReplicas: number | 'auto';
  readonly fallbackPlacement: { readonly cluster?: string; readonly tags?: readonly string[] } | undefined;
}

function replicas(value: string): number | 'auto' {
  if (value === 'auto') return 'auto';
  if (!/^[1-5]$/.test(value)) throw new UsageError(`--nats-replicas must be auto or a number from 1 to 5, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** Same bounds as `spec.runtime.replicas` in the CRD. */
function pipelineReplicas(value: string): number | 'all' {
  if (value === 'all') return 'all';
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 1000) {
    throw new UsageError(`--pipeline-replicas must be all or an integer from 1 to 1000, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

function placement(cluster: string | undefined, tags: string | undefined): ControllerConfig['fallbackPlacement'] {
  const tagList = (tags ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (cluster !== undefined && !/^[^\s.*>]+$/.test(cluster)) throw new UsageError(`--fallback-placement-cluster: ${JSON.stringify(cluster)} is not a cluster name`);
  if (cluster === undefined && tagList.length === 0) return undefined;
  return { ...(cluster === undefined ? {} : { cluster }), ...(tagList.length === 0 ? {} : { tags: tagList }) };
}

const CIDR = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+)\/\d{1,3}$/;

/** A comma-separated CIDR list flag; a malformed entry is a UsageError. */
export function cidrs(flag: string, value: string | undefined): string[] {
  const list = (value ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const c of list) if (!CIDR.test(c)) throw new UsageError(`--${flag}: ${JSON.stringify(c)} is not a CIDR such as 10.0.0.0/8`);
  return list;
}

/** A DNS-1123 label: what the API server accepts as a namespace name. */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `--watch-namespaces`: distinct DNS-1123 labels in the order given; a malformed one is a UsageError. */
export function namespaces(value: string | undefined): string[] {
  const list = (value ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const ns of list) {
    if (ns.length > 63 || !DNS1123_LABEL.test(ns)) {
      throw new UsageError(`--watch-namespaces: ${JSON.stringify(ns)} is not a namespace name (a DNS-1123 label: at most 63 of a-z, 0-9 and -, starting and ending alphanumeric)`);
    }
  }
  return [...new Set(list)];
}

function hostPort(flag: string, address: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(address);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`--${flag} must be HOST:PORT, got ${JSON.stringify(address)}`);
  return { host: m[1] === '' || m[1] === undefined ? '0.0.0.0' : m[1], port: Number(m[2]) };
}

function positiveInt(flag: string, value: string, min = 1): number {
  if (!/^\d+$/.test(value) || Number(value) < min) throw new UsageError(`--${flag} must be an integer ≥ ${min}, got ${JSON.stringify(value)}`);
  return Number(value);
}

function bool(flag: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new UsageError(`--${flag} must be true or false, got ${JSON.stringify(value)}`);
}

/**
 * @throws UsageError for a malformed or contradictory command line; CommandError when a file a
 *   NATS flag names cannot be read.
 */
export function parseControllerFlags(argv: readonly string[], env: NodeJS.ProcessEnv, readFile?: ReadFile): ControllerConfig {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        kubeconfig: { type: 'string' },
        'nats-url': { type: 'string' },
        ...NATS_SECURITY_OPTIONS,
        'http-address': { type: 'string' },
        'webhook-address': { type: 'string' },
        'leader-elect': { type: 'string' },
        'lease-namespace': { type: 'string' },
        'lease-name': { type: 'string' },
        identity: { type: 'string' },
        'lease-duration': { type: 'string' },
        'renew-deadline': { type: 'string' },
        'retry-period': { type: 'string' },
        concurrency: { type: 'string' },
        resync: { type: 'string' },
        'watch-namespaces': { type: 'string' },
        'log-level': { type: 'string' },
        'allow-cidrs': { type: 'string' },
        'deny-cidrs': { type: 'string' },
        runtime: { type: 'string' },
        'transform-workers': { type: 'string' },
        'pipeline-replicas': { type: 'string' },
        'sync-lock-ttl': { type: 'string' },
        'nats-replicas': { type: 'string' },
        'fallback-placement-cluster': { type: 'string' },
        'fallback-placement-tags': { type: 'string' },
      },
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : 'invalid arguments');
  }
  const http = hostPort('http-address', values['http-address'] ?? '0.0.0.0:8080');
  const webhookAddress = values['webhook-address'];
  const servers = natsServers(values['nats-url'], env);
  const level = values['log-level'] ?? env.FERRY_LOG_LEVEL ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(level)) throw new UsageError(`--log-level: unknown level ${JSON.stringify(level)}`);
  const leaseDurationMs = positiveInt('lease-duration', values['lease-duration'] ?? '15') * 1000;
  const renewDeadlineMs = positiveInt('renew-deadline', values['renew-deadline'] ?? '10') * 1000;
  const retryPeriodMs = positiveInt('retry-period', values['retry-period'] ?? '2') * 1000;
  if (!(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > retryPeriodMs)) {
    throw new UsageError('lease timing must satisfy --lease-duration > --renew-deadline > --retry-period');
  }
  return {
    kubeconfig: values.kubeconfig ?? env.KUBECONFIG,
    natsServers: servers,
    natsSecurity: natsSecurity(values, env, readFile),
    httpHost: http.host,
    httpPort: http.port,
    webhook: webhookAddress === undefined ? undefined : hostPort('webhook-address', webhookAddress),
    leaderElect: bool('leader-elect', values['leader-elect'] ?? 'true'),
    leaseNamespace: values['lease-namespace'] ?? env.POD_NAMESPACE ?? 'default',
    leaseName: values['lease-name'] ?? 'ferry-operator',
    identity: values.identity ?? env.POD_NAME ?? `${hostname()}-${process.pid}`,
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    concurrency: positiveInt('concurrency', values.concurrency ?? '4'),
    resyncMs: positiveInt('resync', values.resync ?? '600') * 1000,
    watchNamespaces: namespaces(values['watch-namespaces'] ?? env.FERRY_WATCH_NAMESPACES),
    logLevel: level,
    allowCidrs: cidrs('allow-cidrs', values['allow-cidrs'] ?? env.FERRY_ALLOW_CIDRS),
    denyCidrs: cidrs('deny-cidrs', values['deny-cidrs'] ?? env.FERRY_DENY_CIDRS),
    runtime: bool('runtime', values.runtime ?? 'true'),
    transformWorkers: positiveInt('transform-workers', values['transform-workers'] ?? '2'),
    pipelineReplicas: pipelineReplicas(values['pipeline-replicas'] ?? '2'),
    syncLockTtlMs: positiveInt('sync-lock-ttl', values['sync-lock-ttl'] ?? '30') * 1000,
    natsReplicas: replicas(values['nats-replicas'] ?? env.FERRY_NATS_REPLICAS ?? 'auto'),
    fallbackPlacement: placement(values['fallback-placement-cluster'], values['fallback-placement-tags']),
  };
}
