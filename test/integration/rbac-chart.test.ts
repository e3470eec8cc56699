/**
 * The chart's RBAC is exactly what the operator calls — derived from the code, checked against a
 * real API server.
 *
 * (a) The rendered ClusterRole/Roles grant exactly the (group, resource, verb) set that
 *     test/support/rbac-scan.ts finds in src/ (nothing missing, nothing nobody uses), cluster-wide
 *     and with watchNamespaces, and the Lease permissions only in the release namespace, on the
 *     chart's Lease name.
 * (b) kube-apiserver runs with RBAC authorization and an audit log; the chart's ServiceAccount and
 *     RBAC are applied with the pinned kubectl; the operator runs as a process under the
 *     ServiceAccount's own token (TokenRequest API), through an Integration's create → Ready →
 *     event delivered → update → delete (finalizer released) and a SyncSchedule's create → Ready
 *     → delete, once cluster-wide and once with --watch-namespaces (Roles only). The audit log must
 *     hold requests of that user, none answered 403, and only calls the scan found.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseAllDocuments, stringify } from 'yaml';
import { FINALIZER } from '../../src/api/index.ts';
import { versions } from '../env/binaries.ts';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { ensureGoTool } from '../env/go-tools.ts';
import { credentialsFor } from '../support/credentials.ts';
import { installCrds, kubectl, repoRoot } from '../support/crds.ts';
import { startFaultTarget, type FaultTarget } from '../support/fault-target.ts';
import { FerryClient, isTrueNow } from '../support/ferry-client.ts';
import { startOperator } from '../support/operator-process.ts';
import { grantsFor, permissionKeys, type Grant, type RbacObject } from '../support/rbac-rules.ts';
import { permissionKey, scanOperatorApiCalls, type ApiPermission, type ScanResult } from '../support/rbac-scan.ts';

const execFileAsync = promisify(execFile);
const chartDir = join(repoRoot, 'charts', 'ferry');
const LEASE = 'coordination.k8s.io leases';
const SOURCE = 'EVENTS';

interface Release {
  readonly name: string;
  readonly namespace: string;
  /** The ServiceAccount the chart creates (its fullname). */
  readonly serviceAccount: string;
  readonly watchNamespaces: readonly string[];
}

const CLUSTER_WIDE: Release = { name: 'ferry', namespace: 'ferry-system', serviceAccount: 'ferry', watchNamespaces: [] };
const SCOPED: Release = { name: 'ferry-scoped', namespace: 'ferry-scoped-system', serviceAccount: 'ferry-scoped', watchNamespaces: ['apps-b', 'apps-c'] };

interface AuditEvent {
  readonly stage: string;
  readonly verb: string;
  readonly requestURI: string;
  readonly userAgent?: string;
  readonly user: { readonly username: string };
  readonly objectRef?: { readonly apiGroup?: string; readonly resource?: string; readonly subresource?: string; readonly namespace?: string; readonly name?: string };
  readonly responseStatus?: { readonly code?: number };
}

const username = (r: Release): string => `system:serviceaccount:${r.namespace}:${r.serviceAccount}`;

async function helmTemplate(helm: string, release: Release, extra: readonly string[] = []): Promise<RbacObject[]> {
  const set = release.watchNamespaces.length === 0 ? [] : ['--set', `watchNamespaces={${release.watchNamespaces.join(',')}}`];
  const { stdout } = await execFileAsync(
    helm,
    ['template', release.name, chartDir, '--namespace', release.namespace, '--kube-version', versions.kubernetes, '-s', 'templates/serviceaccount.yaml', '-s', 'templates/rbac.yaml', ...set, ...extra],
    { encoding: 'utf8' },
  );
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as RbacObject | null)
    .filter((o): o is RbacObject => o !== null);
}

/** `key → scopes` of the grants, to compare per namespace. */
function keysIn(grants: readonly Grant[], scope: string): string[] {
  return permissionKeys(grants.filter((g) => g.scope === scope));
}

/** The audit log's events of `user` at ResponseComplete (one per finished request). */
async function auditOf(path: string, user: string): Promise<AuditEvent[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AuditEvent)
    .filter((e) => e.user.username === user && e.stage === 'ResponseComplete');
}

function auditedPermission(e: AuditEvent): ApiPermission | undefined {
  const ref = e.objectRef;
  if (!ref?.resource) return undefined;
  return { group: ref.apiGroup ?? '', resource: ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource, verb: e.verb };
}

describe('chart RBAC: exactly the API calls the operator makes', { timeout: 600_000 }, () => {
  let scan: ScanResult;
  let scanned: string[];
  let helm: string;

  before(async () => {
    helm = await ensureGoTool('helm3');
    scan = scanOperatorApiCalls();
    scanned = permissionKeys(scan.calls);
  });

  it('the scan resolves every request src/kube sends on the operator’s behalf', () => {
    assert.deepEqual(scan.unresolved, []);
    assert.ok(scan.files.includes('src/kube/watcher.ts') && scan.files.includes('src/controller/reconcile-steps.ts'), scan.files.join(' '));
    // The CLI's own calls (ferry status lists, fallback redrive gets) are not the operator's.
    assert.ok(!scan.files.some((f) => f.startsWith('src/cli/commands/')), 'the CLI commands are not scanned');
    // What the scan sees, so a reader can check it by eye; the assertions below compare it with the chart.
    assert.ok(scanned.length >= 10, scanned.join('\n'));
    for (const key of ['ferry.dev integrations watch', 'ferry.dev integrations/status patch', 'events.k8s.io events create', `${LEASE} update`]) {
      assert.ok(scanned.includes(key), `${key} in\n${scanned.join('\n')}`);
    }
  });

  it('cluster-wide (no watchNamespaces): the ClusterRole grants exactly the scanned calls, the Lease only in the release namespace', async () => {
    const objects = await helmTemplate(helm, CLUSTER_WIDE);
    const grants = grantsFor(objects, { namespace: CLUSTER_WIDE.namespace, name: CLUSTER_WIDE.serviceAccount });
    assert.deepEqual(permissionKeys(grants), scanned, 'everything granted (in any scope) = everything called');
    assert.deepEqual(keysIn(grants, 'cluster'), scanned.filter((k) => !k.startsWith(LEASE)), 'the ClusterRole: the watched kinds, Secrets, ConfigMaps, Events');
    assert.deepEqual(keysIn(grants, CLUSTER_WIDE.namespace), scanned.filter((k) => k.startsWith(LEASE)), 'the release namespace: the Lease');
    assert.deepEqual(objects.filter((o) => o.kind === 'ClusterRole').map((o) => o.metadata.name), ['ferry-ferry-system']);
    assert.ok(objects.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === CLUSTER_WIDE.serviceAccount && o.metadata.namespace === CLUSTER_WIDE.namespace));
    assertLeaseNames(grants, ['ferry-operator']);
    const renamed = grantsFor(await helmTemplate(helm, CLUSTER_WIDE, ['--set', 'leaderElection.leaseName=other-lease']), { namespace: CLUSTER_WIDE.namespace, name: CLUSTER_WIDE.serviceAccount });
    assertLeaseNames(renamed, ['other-lease']);
  });

  it('watchNamespaces: one Role per namespace grants exactly the scanned calls there; no ClusterRole', async () => {
    const objects = await helmTemplate(helm, SCOPED);
    const grants = grantsFor(objects, { namespace: SCOPED.namespace, name: SCOPED.serviceAccount });
    assert.deepEqual(objects.filter((o) => o.kind.startsWith('Cluster')), []);
    assert.deepEqual(permissionKeys(grants), scanned);
    for (const ns of SCOPED.watchNamespaces) assert.deepEqual(keysIn(grants, ns), scanned.filter((k) => !k.startsWith(LEASE)), ns);
    assert.deepEqual(keysIn(grants, SCOPED.namespace), scanned.filter((k) => k.startsWith(LEASE)));
    assert.deepEqual([...new Set(grants.map((g) => g.scope))].sort(), [...SCOPED.watchNamespaces, SCOPED.namespace].sort());
  });

  it('the comparison fails on a missing verb and on a verb nobody uses', async () => {
    const grants = grantsFor(await helmTemplate(helm, CLUSTER_WIDE), { namespace: CLUSTER_WIDE.namespace, name: CLUSTER_WIDE.serviceAccount });
    const missing = grants.filter((g) => permissionKey(g) !== 'ferry.dev integrations/status patch');
    assert.notDeepEqual(permissionKeys(missing), scanned);
    const extra = [...grants, { ...grants[0]!, verb: 'delete' }];
    assert.notDeepEqual(permissionKeys(extra), scanned);
  });

  describe('the operator under the ServiceAccount against an RBAC-enforcing API server', () => {
    let dir: string;
    let auditLog: string;
    let env: ControlPlane;
    let ferry: FerryClient;
    let nc: NatsConnection;
    let target: FaultTarget;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ferry-rbac-'));
      auditLog = join(dir, 'audit.log');
      const policy = join(dir, 'audit-policy.yaml');
      // Metadata of every request: who, what, which answer; no bodies (Secrets stay out of the log).
      await writeFile(policy, stringify({ apiVersion: 'audit.k8s.io/v1', kind: 'Policy', omitStages: ['RequestReceived'], rules: [{ level: 'Metadata' }] }));
      env = await startControlPlane({ apiServerArgs: [`--audit-policy-file=${policy}`, `--audit-log-path=${auditLog}`] });
      await installCrds(env);
      for (const ns of [CLUSTER_WIDE.namespace, SCOPED.namespace, 'apps-a', ...SCOPED.watchNamespaces]) await kc(['create', 'namespace', ns]);
      ferry = new FerryClient(env.kubeConfig);
      nc = await connect({ servers: env.natsUrl });
      await (await jetstreamManager(nc)).streams.add({ name: SOURCE, subjects: ['events.>'] });
      target = await startFaultTarget({ auth: { kind: 'bearer', token: 'rbac-test-token' } });
    });

    after(async () => {
      await nc?.close().catch(() => undefined);
      await target?.close();
      await env?.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const kc = async (args: readonly string[], kubeconfig = env.kubeconfigPath): Promise<string> => (await kubectl(kubeconfig, args)).stdout;

    /** Applies the chart's ServiceAccount and RBAC, and writes a kubeconfig with a token of that ServiceAccount. */
    async function install(release: Release): Promise<string> {
      const objects = await helmTemplate(helm, release);
      const file = join(dir, `${release.name}-rbac.yaml`);
      await writeFile(file, objects.map((o) => stringify(o)).join('---\n'));
      await kc(['apply', '-f', file]);
      const token = (await kc(['create', 'token', release.serviceAccount, '-n', release.namespace, '--duration=1h'])).trim();
      const cluster = env.kubeConfig.getCurrentCluster();
      assert.ok(cluster?.caData, 'the admin kubeconfig carries the CA');
      const path = join(dir, `${release.name}.kubeconfig`);
      await writeFile(
        path,
        stringify({
          apiVersion: 'v1',
          kind: 'Config',
          clusters: [{ name: 'local', cluster: { server: env.apiServerUrl, 'certificate-authority-data': cluster.caData } }],
          users: [{ name: release.serviceAccount, user: { token } }],
          contexts: [{ name: 'sa', context: { cluster: 'local', user: release.serviceAccount } }],
          'current-context': 'sa',
        }),
      );
      return path;
    }

    async function putSecret(namespace: string, name: string): Promise<void> {
      const c = credentialsFor(target.auth!, name);
      await env.kubeConfig.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: { ...c.secret } } });
    }

    /** create → Ready → an event delivered → spec update → Ready for generation 2 → delete (finalizer released). */
    async function integrationLifecycle(namespace: string, name: string): Promise<void> {
      const secret = `${name}-credentials`;
      await putSecret(namespace, secret);
      const c = credentialsFor(target.auth!, secret);
      await ferry.create('integrations', namespace, {
        kind: 'Integration',
        metadata: { name },
        spec: {
          source: { stream: SOURCE, subjects: [`events.${namespace}`] },
          schema: { inline: { type: 'object', required: ['id'] } },
          transform: { mapping: { externalId: '/id' } },
          target: { url: `${target.url}/v1/${namespace}`, timeout: '2s', auth: c.auth },
          delivery: { backoff: { initial: '100ms', max: '1s' } },
        },
      });
      const ready = await ferry.waitFor('integrations', namespace, name, (o) => isTrueNow(o, 'Ready'));
      assert.deepEqual(ready.metadata.finalizers, [FINALIZER], 'the operator added its finalizer');
      const id = `${namespace}-event-1`;
      await jetstream(nc).publish(`events.${namespace}`, JSON.stringify({ id }), { msgID: id });
      await waitUntil(`${id} delivered`, () => target.appliedCount(id) === 1);
      await ferry.editSpec('integrations', namespace, name, (spec) => {
        (spec.delivery as Record<string, unknown>).maxAttempts = 7;
      });
      const updated = await ferry.waitFor('integrations', namespace, name, (o) => o.metadata.generation === 2 && isTrueNow(o, 'Ready'));
      assert.equal(updated.status?.observedGeneration, 2);
      await ferry.delete('integrations', namespace, name);
      await ferry.waitGone('integrations', namespace, name);
    }

    async function syncScheduleLifecycle(namespace: string, name: string): Promise<void> {
      await ferry.create('syncschedules', namespace, {
        kind: 'SyncSchedule',
        metadata: { name },
        // Never fires during the test: the reconcile (status, finalizer, Events) is what is exercised.
        spec: { schedule: '0 0 1 1 *', source: { url: `${target.url}/contacts`, recordsPath: '/data' }, key: '/id', target: { url: `${target.url}/customers/{{/id}}` } },
      });
      await ferry.waitFor('syncschedules', namespace, name, (o) => isTrueNow(o, 'Ready'));
      await ferry.delete('syncschedules', namespace, name);
      await ferry.waitGone('syncschedules', namespace, name);
    }

    /** The operator's requests in the audit log: present, none forbidden, each one the scan found. */
    async function assertAudit(release: Release, allowedNamespaces: readonly string[] | undefined): Promise<AuditEvent[]> {
      const events = (await auditOf(auditLog, username(release))).filter((e) => !e.userAgent?.startsWith('kubectl'));
      assert.ok(events.length > 0, `the audit log holds the operator's requests as ${username(release)} (${events.length})`);
      const forbidden = events.filter((e) => e.responseStatus?.code === 403).map((e) => `${e.verb} ${e.requestURI}`);
      assert.deepEqual(forbidden, [], 'requests the API server refused');
      const used = permissionKeys(events.map(auditedPermission).filter((p): p is ApiPermission => p !== undefined));
      assert.deepEqual(used.filter((k) => !scanned.includes(k)), [], 'calls the scan did not find');
      for (const key of ['ferry.dev integrations watch', 'ferry.dev integrations patch', 'ferry.dev integrations/status patch', 'core secrets list', `${LEASE} update`, 'events.k8s.io events create']) {
        assert.ok(used.includes(key), `the lifecycle exercised ${key}; audited:\n${used.join('\n')}`);
      }
      if (allowedNamespaces) {
        const outside = events.filter((e) => !allowedNamespaces.includes(e.objectRef?.namespace ?? '')).map((e) => `${e.verb} ${e.requestURI}`);
        assert.deepEqual(outside, [], 'requests outside the watched namespaces and the release namespace');
      }
      return events;
    }

    it('cluster-wide: the whole lifecycle as the ServiceAccount, no request refused', async () => {
      const kubeconfig = await install(CLUSTER_WIDE);
      const op = await startOperator({
        env,
        identity: 'rbac-cluster',
        args: ['--allow-cidrs=127.0.0.1/32', `--kubeconfig=${kubeconfig}`, `--lease-namespace=${CLUSTER_WIDE.namespace}`],
      });
      try {
        await integrationLifecycle('apps-a', 'wide');
        await syncScheduleLifecycle('apps-a', 'wide-sync');
      } finally {
        await op.stop();
      }
      const events = await assertAudit(CLUSTER_WIDE, undefined);
      // Cluster-wide: the caches list and watch across all namespaces.
      assert.ok(events.some((e) => e.verb === 'watch' && e.requestURI.startsWith('/apis/ferry.dev/v1alpha1/integrations?')), 'a cluster-wide watch of Integrations');
    });

    it('watchNamespaces: Roles only; the same lifecycle, nothing outside the namespaces, nothing refused', async () => {
      const kubeconfig = await install(SCOPED);
      // An object in a namespace the scoped operator does not watch: it must stay untouched.
      await ferry.create('syncschedules', 'apps-a', {
        kind: 'SyncSchedule',
        metadata: { name: 'unwatched' },
        spec: { schedule: '0 0 1 1 *', source: { url: `${target.url}/contacts`, recordsPath: '/data' }, key: '/id', target: { url: `${target.url}/customers/{{/id}}` } },
      });
      const op = await startOperator({
        env,
        identity: 'rbac-scoped',
        args: ['--allow-cidrs=127.0.0.1/32', `--kubeconfig=${kubeconfig}`, `--lease-namespace=${SCOPED.namespace}`, `--watch-namespaces=${SCOPED.watchNamespaces.join(',')}`],
      });
      try {
        await integrationLifecycle('apps-b', 'scoped');
        await syncScheduleLifecycle('apps-c', 'scoped-sync');
        // The ServiceAccount really is confined: a cluster-wide list is refused, and the audit
        // check below sees that refusal (it can fail), then leaves kubectl's requests out.
        await assert.rejects(kc(['get', 'secrets', '--all-namespaces'], kubeconfig), /forbidden/i);
        const refused = (await auditOf(auditLog, username(SCOPED))).filter((e) => e.userAgent?.startsWith('kubectl') && e.responseStatus?.code === 403);
        assert.ok(refused.some((e) => e.requestURI.startsWith('/api/v1/secrets')), 'the audit log records the refused kubectl list');
        const unwatched = await ferry.get('syncschedules', 'apps-a', 'unwatched');
        // The CRD's default status is all it has: no condition was ever written.
        assert.deepEqual(unwatched.status?.conditions ?? [], [], 'the unwatched namespace is not reconciled');
        assert.deepEqual(unwatched.metadata.finalizers ?? [], []);
      } finally {
        await op.stop();
      }
      await assertAudit(SCOPED, [...SCOPED.watchNamespaces, SCOPED.namespace]);
    });
  });
});

/** Lease get/update must name the chart's Lease; create cannot (the name is in the body). */
function assertLeaseNames(grants: readonly Grant[], names: readonly string[]): void {
  const lease = grants.filter((g) => permissionKey(g).startsWith(LEASE));
  for (const g of lease) {
    if (g.verb === 'create') assert.equal(g.resourceNames, undefined);
    else assert.deepEqual(g.resourceNames, names, `${g.verb} leases is limited to ${names.join(',')}`);
  }
}

async function waitUntil(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    // Waiting on another process (the operator delivering): polling is the only way to observe it.
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
