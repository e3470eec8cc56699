/**
 * The Helm chart charts/ferry, with the tools users have: Helm 3 and Helm 4 (built from their Go
 * modules) lint and render it with the default values and with every optional part on
 * (ci/all-on-values.yaml); values.schema.json rejects wrong values with Helm's message; the
 * rendered manifests go through `kubectl apply --dry-run=server` against a real kube-apiserver
 * (Ferry's CRDs and minimal monitoring.coreos.com CRDs installed first), which checks them against
 * the real schemas with strict field validation; the operator runs with exactly the flags the
 * chart renders; every metric the chart's alerts use is in that operator's /metrics.
 *
 * The locally built helm 3 has no Kubernetes version stamped in (release builds set it with
 * -ldflags) and would render for v1.20, below the chart's kubeVersion; every render and lint
 * therefore passes `--kube-version` with the control plane's version.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parser as promql } from '@prometheus-io/lezer-promql';
import { parseAllDocuments } from 'yaml';
import { versions } from '../env/binaries.ts';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { ensureGoTool } from '../env/go-tools.ts';
import { installCrds, kubectl, kubectlEnv, repoRoot } from '../support/crds.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';

const execFileAsync = promisify(execFile);

const chartDir = join(repoRoot, 'charts', 'ferry');
const allOnValues = join(chartDir, 'ci', 'all-on-values.yaml');
const monitoringCrds = join(repoRoot, 'test', 'fixtures', 'monitoring-crds');
const NS = 'ferry-system';
/** Namespaces ci/all-on-values.yaml watches (the chart renders Roles into them). */
const WATCHED = ['revops', 'billing'];
const HELMS = ['helm3', 'helm4'] as const;
type Helm = (typeof HELMS)[number];

interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
  readonly spec?: Record<string, unknown>;
}

interface Container {
  readonly args: string[];
  readonly env: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } } }[];
  readonly image: string;
  readonly ports: { name: string; containerPort: number }[];
  readonly livenessProbe: { httpGet: { path: string; port: string } };
  readonly readinessProbe: { httpGet: { path: string; port: string } };
  readonly securityContext: Record<string, unknown>;
  readonly volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
  readonly resources?: Record<string, unknown>;
}

interface PodSpec {
  readonly containers: Container[];
  readonly securityContext: Record<string, unknown>;
  readonly terminationGracePeriodSeconds: number;
  readonly topologySpreadConstraints: { topologyKey: string; whenUnsatisfiable: string }[];
  readonly volumes: { name: string; secret?: { secretName: string }; emptyDir?: object }[];
  readonly serviceAccountName: string;
}

interface Rendered {
  readonly text: string;
  readonly objects: K8sObject[];
}

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(binary: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(binary, args, { cwd: repoRoot, env, encoding: 'utf8', timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function parseObjects(text: string): K8sObject[] {
  // YAML 1.1, as kubectl and Helm read it.
  return parseAllDocuments(text, { version: '1.1' })
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

function only(objects: readonly K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(found.length, 1, `expected one ${kind}${name === undefined ? '' : ` ${name}`}, got ${found.length}: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  const [object] = found;
  assert.ok(object);
  return object;
}

function podSpec(deployment: K8sObject): PodSpec {
  return (deployment.spec as { template: { spec: PodSpec } }).template.spec;
}

function container(deployment: K8sObject): Container {
  const [c] = podSpec(deployment).containers;
  assert.ok(c);
  return c;
}

/** `--name=value` → `--name`. */
function flagName(arg: string): string {
  return arg.split('=', 1)[0] ?? arg;
}

describe('Helm chart charts/ferry', () => {
  const helmPath = {} as Record<Helm, string>;
  let env: ControlPlane;
  let dir: string;
  let operator: OperatorProcess | undefined;
  const rendered = {} as Record<'default' | 'allOn', Rendered>;

  async function helm(which: Helm, args: readonly string[]): Promise<Run> {
    return await run(helmPath[which], [...args, '--kube-version', versions.kubernetes]);
  }

  async function template(which: Helm, extra: readonly string[] = []): Promise<Run> {
    return await helm(which, ['template', 'ferry', chartDir, '--namespace', NS, ...extra]);
  }

  async function render(extra: readonly string[]): Promise<Rendered> {
    const out = await template('helm4', extra);
    assert.equal(out.code, 0, `helm template ${extra.join(' ')} failed:\n${out.stderr}`);
    return { text: out.stdout, objects: parseObjects(out.stdout) };
  }

  async function dryRun(name: string, text: string): Promise<string> {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, text);
    // No -n: every namespaced object names its namespace, and the per-namespace Roles of
    // watchNamespaces live outside the release namespace (kubectl refuses a mismatch with -n).
    const { stdout } = await kubectl(env.kubeconfigPath, ['apply', '--dry-run=server', '--validate=strict', '-f', file]);
    return stdout;
  }

  before(async () => {
    const [h3, h4, cp] = await Promise.all([ensureGoTool('helm3'), ensureGoTool('helm4'), startControlPlane()]);
    helmPath.helm3 = h3;
    helmPath.helm4 = h4;
    env = cp;
    dir = await mkdtemp(join(tmpdir(), 'ferry-chart-'));
    await installCrds(env);
    await kubectl(env.kubeconfigPath, ['apply', '-f', monitoringCrds]);
    await kubectl(env.kubeconfigPath, ['wait', '--for=condition=Established', '--timeout=60s', 'crd/servicemonitors.monitoring.coreos.com', 'crd/prometheusrules.monitoring.coreos.com']);
    for (const ns of [NS, ...WATCHED]) await kubectl(env.kubeconfigPath, ['create', 'namespace', ns]);
    rendered.default = await render([]);
    rendered.allOn = await render(['-f', allOnValues]);
  });

  after(async () => {
    await operator?.stop();
    await env?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("carries in crds/ exactly the repository's crds/ (npm run gen:crds writes both)", () => {
    const root = readdirSync(join(repoRoot, 'crds')).sort();
    const chart = readdirSync(join(chartDir, 'crds')).sort();
    assert.deepEqual(chart, root);
    for (const file of root) {
      assert.ok(readFileSync(join(chartDir, 'crds', file), 'utf8') === readFileSync(join(repoRoot, 'crds', file), 'utf8'), `charts/ferry/crds/${file} differs from crds/${file}: run npm run gen:crds`);
    }
  });

  it('passes helm lint and helm lint --strict with helm 3 and 4, default values and every optional part on', async () => {
    for (const which of HELMS) {
      for (const values of [[], ['-f', allOnValues]]) {
        for (const strict of [[], ['--strict']]) {
          const out = await helm(which, ['lint', chartDir, ...strict, ...values]);
          assert.equal(out.code, 0, `${which} lint ${[...strict, ...values].join(' ')}:\n${out.stdout}${out.stderr}`);
          assert.match(out.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
          assert.doesNotMatch(out.stdout, /\[(WARNING|ERROR)\]/);
        }
      }
    }
  });

  it('renders the same manifests with helm 3 and helm 4', async () => {
    for (const values of [[], ['-f', allOnValues]]) {
      const [three, four] = await Promise.all(HELMS.map((which) => template(which, values)));
      assert.equal(three?.code, 0, three?.stderr);
      assert.deepEqual(parseObjects(three?.stdout ?? ''), parseObjects(four?.stdout ?? ''));
    }
  });

  it('by default: 2 replicas with leader election, hardened pods, probes, metrics Service and PDB; no optional part', () => {
    const { objects } = rendered.default;
    const deployment = only(objects, 'Deployment', 'ferry');
    assert.equal(deployment.metadata.namespace, NS);
    assert.equal(deployment.spec?.replicas, 2);
    const pod = podSpec(deployment);
    const c = container(deployment);
    const chartYaml = readFileSync(join(chartDir, 'Chart.yaml'), 'utf8');
    const appVersion = /^appVersion:\s*"?([^"\n]+)"?$/m.exec(chartYaml)?.[1];
    assert.equal(c.image, `ghcr.io/ferry-dev/ferry:${appVersion}`);

    assert.deepEqual(pod.securityContext, { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    assert.deepEqual(c.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 65532,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    // A read-only root needs a writable /tmp.
    assert.ok(c.volumeMounts.some((m) => m.mountPath === '/tmp' && pod.volumes.some((v) => v.name === m.name && v.emptyDir)));
    assert.ok(pod.terminationGracePeriodSeconds >= 30);

    assert.deepEqual(c.ports, [{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'http' });
    assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'http' });
    assert.ok(c.resources?.requests && c.resources.limits);

    assert.ok(c.args.includes('--leader-elect=true'));
    assert.ok(c.args.includes('--http-address=0.0.0.0:8080'));
    assert.ok(c.args.includes('--nats-url=nats://nats.nats.svc:4222'));
    assert.ok(c.args.includes('--pipeline-replicas=2'));
    // The Lease namespace and the identity come from the downward API.
    const fieldRefs = Object.fromEntries(c.env.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    assert.equal(fieldRefs.POD_NAMESPACE, 'metadata.namespace');
    assert.equal(fieldRefs.POD_NAME, 'metadata.name');
    assert.ok(!c.args.some((a) => a.startsWith('--lease-namespace') || a.startsWith('--identity')));

    assert.deepEqual(
      pod.topologySpreadConstraints.map((t) => [t.topologyKey, t.whenUnsatisfiable]),
      [
        ['topology.kubernetes.io/zone', 'ScheduleAnyway'],
        ['kubernetes.io/hostname', 'ScheduleAnyway'],
      ],
    );

    const service = only(objects, 'Service', 'ferry-metrics');
    assert.deepEqual((service.spec as { ports: unknown[] }).ports, [{ name: 'http', port: 8080, targetPort: 'http', protocol: 'TCP' }]);
    assert.equal(only(objects, 'PodDisruptionBudget').spec?.minAvailable, 1);
    for (const kind of ['ServiceMonitor', 'PrometheusRule', 'NetworkPolicy']) assert.ok(!objects.some((o) => o.kind === kind), `${kind} is rendered by default`);
    assert.ok(!objects.some((o) => o.metadata.name === 'ferry-webhook'));
    assert.ok(!c.args.some((a) => a.startsWith('--webhook-address') || a.startsWith('--nats-creds') || a.startsWith('--nats-tls')));
  });

  it('with every optional part on: webhook Service, ServiceMonitor, PrometheusRule, NetworkPolicy, NATS credentials and TLS from Secrets', () => {
    const { objects } = rendered.allOn;
    const deployment = only(objects, 'Deployment', 'ferry');
    assert.equal(deployment.spec?.replicas, 3);
    const pod = podSpec(deployment);
    const c = container(deployment);
    assert.equal(c.image, 'ghcr.io/ferry-dev/ferry:0.1.0-test');
    for (const arg of [
      '--webhook-address=0.0.0.0:8081',
      '--nats-url=nats://nats-0.nats-headless.nats.svc:4222,nats://nats-1.nats-headless.nats.svc:4222',
      '--nats-replicas=3',
      '--fallback-placement-cluster=east',
      '--fallback-placement-tags=ssd,fast',
      '--allow-cidrs=10.20.0.0/16,fd00::/8',
      '--deny-cidrs=10.96.0.0/12',
      '--log-level=debug',
      '--transform-workers=4',
      '--pipeline-replicas=all',
      '--sync-lock-ttl=45',
      '--concurrency=8',
      '--watch-namespaces=revops,billing',
      '--nats-creds=/etc/ferry/nats-auth/nats.creds',
      '--nats-tls-ca=/etc/ferry/nats-tls/ca.crt',
      '--nats-tls-cert=/etc/ferry/nats-tls/tls.crt',
      '--nats-tls-key=/etc/ferry/nats-tls/tls.key',
      '--resync=300',
    ]) {
      assert.ok(c.args.includes(arg), `${arg} not in ${c.args.join(' ')}`);
    }
    // Secrets are mounted read-only where the flags point.
    const mounts = Object.fromEntries(c.volumeMounts.map((m) => [m.mountPath, m]));
    assert.equal(mounts['/etc/ferry/nats-auth']?.readOnly, true);
    assert.equal(mounts['/etc/ferry/nats-tls']?.readOnly, true);
    const secrets = Object.fromEntries(pod.volumes.filter((v) => v.secret).map((v) => [v.name, v.secret?.secretName]));
    assert.deepEqual(secrets, { 'nats-auth': 'ferry-nats-creds', 'nats-tls': 'ferry-nats-tls' });
    assert.ok(c.ports.some((p) => p.name === 'webhook' && p.containerPort === 8081));

    const webhook = only(objects, 'Service', 'ferry-webhook');
    assert.deepEqual((webhook.spec as { ports: unknown[] }).ports, [{ name: 'webhook', port: 80, targetPort: 'webhook', protocol: 'TCP' }]);
    const monitor = only(objects, 'ServiceMonitor');
    assert.deepEqual((monitor.spec as { endpoints: { port: string; honorLabels: boolean }[] }).endpoints.map((e) => [e.port, e.honorLabels]), [['http', true]]);
    const alerts = alertRules(only(objects, 'PrometheusRule')).map((r) => r.alert);
    assert.deepEqual(alerts, ['FerryCircuitBreakerOpen', 'FerryFallbackGrowing', 'FerryFallbackPublishFailing', 'FerrySLAMissed', 'FerrySyncMismatches', 'FerrySyncNotSucceeding', 'FerryNoLeader']);
    const policy = only(objects, 'NetworkPolicy');
    assert.deepEqual((policy.spec as { policyTypes: string[] }).policyTypes, ['Ingress', 'Egress']);
  });

  it('NATS user/password: --nats-user as a flag, the password only as NATS_PASSWORD from the Secret', async () => {
    const { objects } = await render(['--set', 'nats.auth.type=userPassword', '--set', 'nats.auth.existingSecret=nats-login', '--set', 'nats.auth.user=ferry']);
    const c = container(only(objects, 'Deployment'));
    assert.ok(c.args.includes('--nats-user=ferry'));
    assert.ok(!c.args.some((a) => /password/i.test(a)));
    assert.deepEqual(c.env.find((e) => e.name === 'NATS_PASSWORD')?.valueFrom?.secretKeyRef, { name: 'nats-login', key: 'password' });
    assert.ok(!c.volumeMounts.some((m) => m.mountPath === '/etc/ferry/nats-auth'), 'nothing to mount for user/password');
  });

  it('renders no PodDisruptionBudget for a single replica (it would block every drain)', async () => {
    const { objects } = await render(['--set', 'replicaCount=1']);
    assert.ok(!objects.some((o) => o.kind === 'PodDisruptionBudget'));
  });

  // Helm validates values against values.schema.json before rendering; its message names the
  // value's path and what is wrong.
  const wrongValues: readonly { readonly args: readonly string[]; readonly message: RegExp }[] = [
    { args: ['--set', 'replicaCount=-1'], message: /at '\/replicaCount': minimum: got -1, want 1/ },
    { args: ['--set', 'logLevel=loud'], message: /at '\/logLevel': value must be one of 'trace', 'debug', 'info', 'warn', 'error'/ },
    { args: ['--set', 'ssrf.allowCidrs={10.0.0.0}'], message: /at '\/ssrf\/allowCidrs\/0': '10\.0\.0\.0' does not match pattern/ },
    { args: ['--set', 'replicas=2'], message: /at '': additional properties 'replicas' not allowed/ },
    { args: ['--set-string', 'metrics.serviceMonitor.enabled=yes'], message: /at '\/metrics\/serviceMonitor\/enabled': got string, want boolean/ },
    { args: ['--set', 'webhook.port=70000'], message: /at '\/webhook\/port': maximum: got 70,?000, want 65,?535/ },
    { args: ['--set', 'terminationGracePeriodSeconds=10'], message: /at '\/terminationGracePeriodSeconds': minimum: got 10, want 30/ },
    { args: ['--set', 'nats.url=http://nats:4222'], message: /at '\/nats\/url': 'http:\/\/nats:4222' does not match pattern/ },
    { args: ['--set', 'nats.replicas=7'], message: /at '\/nats\/replicas': maximum: got 7, want 5/ },
    { args: ['--set', 'nats.auth.type=creds'], message: /at '\/nats\/auth\/existingSecret': minLength: got 0, want 1/ },
    { args: ['--set', 'nats.tls.enabled=true'], message: /at '\/nats\/tls\/existingSecret': minLength: got 0, want 1/ },
    { args: ['--set', 'watchNamespaces={Revops}'], message: /at '\/watchNamespaces\/0': 'Revops' does not match pattern/ },
    { args: ['--set', 'pipelineReplicas=0'], message: /at '\/pipelineReplicas': minimum: got 0, want 1/ },
    { args: ['--set', 'pipelineReplicas=All'], message: /at '\/pipelineReplicas': value must be 'all'/ },
    { args: ['--set', 'serviceAccount.nmae=ferry'], message: /at '\/serviceAccount': additional properties 'nmae' not allowed/ },
    { args: ['--set', 'image.pullPolicy=Sometimes'], message: /at '\/image\/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'/ },
  ];

  it(`values.schema.json rejects ${wrongValues.length} wrong values with a message naming the value, in helm 3 and 4`, async () => {
    for (const which of HELMS) {
      const results = await Promise.all(wrongValues.map(async ({ args }) => await template(which, args)));
      wrongValues.forEach(({ args, message }, i) => {
        const out = results[i];
        assert.ok(out);
        assert.notEqual(out.code, 0, `${which} accepted ${args.join(' ')}`);
        assert.match(out.stderr, /values don't meet the specifications of the schema/);
        assert.match(out.stderr, message, `${which} ${args.join(' ')}`);
      });
    }
  });

  it('refuses values that contradict each other, with a message saying what to change', async () => {
    for (const { args, message } of [
      { args: ['--set', 'leaderElection.enabled=false'], message: /leaderElection\.enabled=false needs replicaCount: 1 \(got 2\)/ },
      { args: ['--set', 'leaderElection.renewDeadline=20'], message: /leaseDuration \(15\) > renewDeadline \(20\) > retryPeriod \(2\) must hold/ },
      { args: ['--set', 'podDisruptionBudget.minAvailable=2'], message: /podDisruptionBudget\.minAvailable \(2\) must be below replicaCount \(2\)/ },
      { args: ['--set', 'metrics.serviceMonitor.enabled=true', '--set', 'metrics.service.enabled=false'], message: /metrics\.serviceMonitor\.enabled needs metrics\.service\.enabled/ },
    ]) {
      const out = await template('helm4', args);
      assert.notEqual(out.code, 0, `accepted ${args.join(' ')}`);
      assert.match(out.stderr, message);
    }
    const single = await template('helm4', ['--set', 'leaderElection.enabled=false', '--set', 'replicaCount=1']);
    assert.equal(single.code, 0, single.stderr);
    assert.ok(container(only(parseObjects(single.stdout), 'Deployment')).args.includes('--leader-elect=false'));
  });

  it('values.schema.json accepts the right forms of the same values', async () => {
    for (const args of [
      ['--set', 'nats.replicas=3'],
      ['--set', 'nats.replicas=auto'],
      ['--set', 'ssrf.allowCidrs={10.0.0.0/8,fd00::/8}'],
      ['--set', 'nats.url=tls://a:4222\\,tls://b:4222'],
      ['--set', 'replicaCount=1'],
      ['--set', 'logLevel=warn'],
      ['--set', 'pipelineReplicas=all'],
      ['--set', 'pipelineReplicas=3'],
    ]) {
      const out = await template('helm4', args);
      assert.equal(out.code, 0, `${args.join(' ')}:\n${out.stderr}`);
    }
  });

  it('kubectl apply --dry-run=server accepts the default manifests', async () => {
    const stdout = await dryRun('default', rendered.default.text);
    for (const o of rendered.default.objects) assert.match(stdout, new RegExp(`${o.metadata.name}\\b.*(created|configured|unchanged) \\(server dry run\\)`), `${o.kind}/${o.metadata.name}:\n${stdout}`);
    assert.equal(stdout.trim().split('\n').length, rendered.default.objects.length, stdout);
  });

  it('kubectl apply --dry-run=server accepts the manifests with every optional part on', async () => {
    const stdout = await dryRun('all-on', rendered.allOn.text);
    assert.equal(stdout.trim().split('\n').length, rendered.allOn.objects.length, stdout);
    assert.match(stdout, /servicemonitor\.monitoring\.coreos\.com\/ferry created \(server dry run\)/);
    assert.match(stdout, /prometheusrule\.monitoring\.coreos\.com\/ferry created \(server dry run\)/);
    assert.match(stdout, /networkpolicy\.networking\.k8s\.io\/ferry created \(server dry run\)/);
    assert.match(stdout, /service\/ferry-webhook created \(server dry run\)/);
  });

  it('the dry run is a real check: a misspelt field in a rendered manifest is refused', async () => {
    const broken = rendered.allOn.text.replace('honorLabels: true', 'honourLabels: true');
    assert.notEqual(broken, rendered.allOn.text);
    await assert.rejects(dryRun('broken', broken), /unknown field "spec\.endpoints\[0\]\.honourLabels"/);
  });

  it('renders only flags `ferry controller` has, and the operator starts with the default ones', async () => {
    const help = await run(process.execPath, [join(repoRoot, 'src', 'cli', 'main.ts'), 'controller', '--help']);
    const known = new Set(help.stdout.match(/--[a-z][a-z-]+/g) ?? []);
    assert.ok(known.has('--nats-url') && known.has('--leader-elect'), help.stdout);
    for (const [name, r] of Object.entries(rendered)) {
      const args = container(only(r.objects, 'Deployment')).args;
      assert.equal(args[0], 'controller');
      const unknown = args.slice(1).map(flagName).filter((f) => !known.has(f));
      assert.deepEqual(unknown, [], `${name}: flags ferry controller --help does not list`);
    }
    // The pod's addresses are replaced by the test's; every other default flag is passed as rendered.
    const args = container(only(rendered.default.objects, 'Deployment')).args.slice(1).filter((a) => !/^--(nats-url|http-address)=/.test(a));
    operator = await startOperator({ env, identity: 'chart', args, envVars: { POD_NAMESPACE: NS, POD_NAME: 'ferry-0' } });
    await operator.waitForLog((l) => l.msg === 'acquired leadership', 60_000);
  });

  it("every alert expression is valid PromQL (Prometheus' own Lezer grammar)", () => {
    const rules = alertRules(only(rendered.allOn.objects, 'PrometheusRule'));
    for (const rule of rules) assert.deepEqual(promqlErrors(rule.expr), [], `${rule.alert}: ${rule.expr}`);
    // The check is able to fail.
    assert.deepEqual(promqlErrors('sum by (namespace) (increase(ferry_events_total[15m]) > 1'), ['at 57: end of input']);
  });

  it("every metric in the PrometheusRule's alerts is exported by the operator's /metrics", async () => {
    assert.ok(operator, 'the operator was started by the previous test');
    const metrics = await operator.metrics();
    const exprs = alertRules(only(rendered.allOn.objects, 'PrometheusRule')).map((r) => r.expr);
    assert.ok(metricNames(exprs).size >= 7, [...metricNames(exprs)].join(' '));
    assert.deepEqual(unexported(exprs, metrics), [], 'metrics used in alerts but not in /metrics');
    // The check is able to fail, and knows a histogram's series.
    assert.deepEqual(unexported(['rate(ferry_not_exported_total[5m])', 'ferry_delivery_duration_seconds_bucket', 'ferry_events_total_sum'], metrics), ['ferry_not_exported_total', 'ferry_events_total_sum']);
    // The no-leader alert reads the Lease's gauge with the operator's own lease name.
    assert.match(metrics, /^leader_election_master_status\{name="ferry-operator"\} 1$/m);
  });

  it('helm install --dry-run=server against the API server renders NOTES.txt: what was installed, how to check Ready, where the docs are', async () => {
    for (const which of HELMS) {
      // Helm reads the cluster's version here, so no --kube-version (install does not take it).
      const out = await run(helmPath[which], ['install', 'ferry', chartDir, '--namespace', NS, '--dry-run=server', '-f', allOnValues], kubectlEnv(env.kubeconfigPath));
      assert.equal(out.code, 0, `${which} install --dry-run=server:\n${out.stderr}`);
      const notes = out.stdout.slice(out.stdout.indexOf('NOTES:'));
      for (const expected of [
        /Deployment ferry with 3 replica\(s\), one leader elected through the Lease ferry-operator/,
        /Service ferry-webhook on port 80/,
        /PrometheusRule ferry/,
        /It watches the namespaces revops, billing\./,
        /kubectl -n ferry-system rollout status deployment\/ferry/,
        /README\.md/,
      ]) {
        assert.match(notes, expected, `${which}:\n${notes}`);
      }
    }
  });

  it('README shows the two-command Helm install, and its `helm install ferry` line renders', async () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const lines = readme.split('\n').filter((l) => /^helm install /.test(l));
    const nats = lines.find((l) => l.startsWith('helm install nats nats/nats '));
    assert.ok(nats, 'README has no `helm install nats nats/nats …` line');
    for (const setting of ['config.jetstream.enabled=true', 'config.jetstream.fileStore.pvc.size=']) assert.ok(nats.includes(setting), `${nats} lacks ${setting}`);
    const ferry = lines.find((l) => l.startsWith('helm install ferry charts/ferry '));
    assert.ok(ferry, 'README has no `helm install ferry charts/ferry …` line');
    // Same arguments, rendered instead of installed (no cluster for Helm here).
    const args = ferry.split(/\s+/).slice(2).filter((a) => a !== '--create-namespace');
    for (const which of HELMS) {
      const out = await helm(which, ['template', ...args]);
      assert.equal(out.code, 0, `${which} template ${args.join(' ')}:\n${out.stderr}`);
      const c = container(only(parseObjects(out.stdout), 'Deployment'));
      assert.ok(c.args.includes('--nats-url=nats://nats.nats.svc:4222'), c.args.join(' '));
    }
  });
});

interface AlertRule {
  readonly alert: string;
  readonly expr: string;
}

function alertRules(rule: K8sObject): AlertRule[] {
  return (rule.spec as { groups: { rules: AlertRule[] }[] }).groups.flatMap((g) => g.rules);
}

/** Metric names in PromQL expressions (Ferry's, and the controller-runtime/client-go names it reuses). */
function metricNames(exprs: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const expr of exprs) for (const m of expr.matchAll(/\b(ferry_[a-z_]+|leader_election_[a-z_]+|controller_runtime_[a-z_]+|workqueue_[a-z_]+)\b/g)) if (m[1]) names.add(m[1]);
  return names;
}

/** Names used in `exprs` that the Prometheus text `metrics` does not declare (a histogram declares name_bucket, name_sum, name_count). */
function unexported(exprs: readonly string[], metrics: string): string[] {
  const types = new Map<string, string>();
  for (const m of metrics.matchAll(/^# TYPE (\S+) (\S+)$/gm)) if (m[1] && m[2]) types.set(m[1], m[2]);
  return [...metricNames(exprs)].filter((name) => !types.has(name) && types.get(name.replace(/_(bucket|sum|count)$/, '')) !== 'histogram');
}

/** Where the PromQL grammar could not parse `expr` (empty: it parses). */
function promqlErrors(expr: string): string[] {
  const errors: string[] = [];
  promql.parse(expr).iterate({
    enter(node) {
      if (node.type.isError) errors.push(`at ${node.from}: ${node.from >= expr.length ? 'end of input' : JSON.stringify(expr.slice(node.from, node.from + 20))}`);
    },
  });
  return errors;
}
