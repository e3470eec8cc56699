/**
 * GitOps health on live objects: an Integration and a SyncSchedule go through create → Ready →
 * a bad spec only the controller can judge → fixed spec → suspended, against the real API server
 * with the operator running as a process. At each step the object is read with the pinned kubectl
 * (`-o json`, as Flux and Argo CD read it from the API) and judged by kstatus (sigs.k8s.io/cli-utils,
 * what Flux and Helm --wait run) and by the Argo CD health check as Argo CD would load it: the
 * script is read back from an `argocd-cm` patched with deploy/argocd/README.md's command, and run on gopher-lua
 * and on Lua 5.4.
 *
 * "Before the new generation is observed" is read from the response of the `kubectl patch` that
 * makes it: the object as the API server stored it, before any controller could write status.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { HEALTH_KEYS } from '../../scripts/argocd-health.ts';
import { kubectl, repoRoot } from '../support/crds.ts';
import { kstatus } from '../support/kstatus.ts';
import { luaHealth, type HealthStatus } from '../support/lua-health.ts';
import { createIntegration, eventually, NS, publishEvents, putSecret, runtimeSuite, SOURCE, type RuntimeEnv } from '../support/runtime-harness.ts';

interface LiveCondition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
}

interface LiveObject {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly generation: number };
  readonly status?: { readonly observedGeneration?: number; readonly conditions?: readonly LiveCondition[] };
}

interface Expected {
  readonly kstatus: 'Current' | 'InProgress' | 'Failed';
  readonly health: HealthStatus['status'];
  /** The Argo CD message, exactly, or a pattern. */
  readonly message: string | RegExp;
}

function condition(obj: LiveObject, type: string): LiveCondition | undefined {
  return obj.status?.conditions?.find((c) => c.type === type);
}

describe('GitOps health on live objects: kstatus and the Argo CD check agree through a spec lifecycle', () => {
  const suite = runtimeSuite('health-1');
  let r: RuntimeEnv;
  /** The scripts as Argo CD reads them from argocd-cm, by kind. */
  const scripts = new Map<string, string>();

  const kc = async (args: readonly string[]): Promise<string> => (await kubectl(r.env.kubeconfigPath, args)).stdout;
  const json = async (args: readonly string[]): Promise<LiveObject> => JSON.parse(await kc([...args, '-o', 'json'])) as LiveObject;
  const get = (resource: string): Promise<LiveObject> => json(['get', '-n', NS, resource]);
  const patch = (resource: string, body: unknown): Promise<LiveObject> => json(['patch', '-n', NS, resource, '--type', 'merge', '-p', JSON.stringify(body)]);
  const apply = async (manifest: unknown): Promise<LiveObject> => {
    const file = join(r.env.dir, `health-${Date.now()}.json`);
    await writeFile(file, JSON.stringify(manifest));
    return await json(['apply', '-n', NS, '-f', file]);
  };
  /** Reads the object until the controller has written status for its current generation. */
  const observed = async (resource: string): Promise<LiveObject> =>
    await eventually(`${resource} observed`, async () => {
      const o = await get(resource);
      return o.status?.observedGeneration === o.metadata.generation && condition(o, 'Ready') !== undefined ? o : undefined;
    });

  /** Judges `obj` with kstatus and the Argo CD script on both interpreters, and checks `want`. */
  async function judge(step: string, obj: LiveObject, want: Expected): Promise<void> {
    const [k] = await kstatus([obj]);
    const script = scripts.get(obj.kind);
    assert.ok(script, `argocd-cm holds a check for ${obj.kind}`);
    const lua = await luaHealth(script, obj);
    const where = `${obj.kind} ${step} (generation ${obj.metadata.generation}, observed ${String(obj.status?.observedGeneration)})`;
    assert.equal(k?.status, want.kstatus, `kstatus on ${where}: ${k?.message ?? ''}`);
    assert.deepEqual(lua.lua54, lua.gopherLua, `Lua 5.4 and gopher-lua agree on ${where}`);
    assert.equal(lua.gopherLua.status, want.health, `Argo CD health on ${where}: ${lua.gopherLua.message}`);
    if (typeof want.message === 'string') assert.equal(lua.gopherLua.message, want.message, where);
    else assert.match(lua.gopherLua.message, want.message, where);
  }

  before(async () => {
    r = suite.env();
    await putSecret(r, 'health-token', { token: 'health-secret-token' });
    // Install the check the way the README says, into an argocd-cm like Argo CD's own.
    await kc(['create', 'namespace', 'argocd']);
    await kc(['-n', 'argocd', 'create', 'configmap', 'argocd-cm', '--from-literal=url=https://argocd.example.com']);
    // The install command of deploy/argocd/README.md, as written there (it has no quoting).
    const readme = await readFile(join(repoRoot, 'deploy', 'argocd', 'README.md'), 'utf8');
    const install = readme.split('\n').find((line) => line.startsWith('kubectl -n argocd patch configmap argocd-cm'));
    assert.ok(install, 'deploy/argocd/README.md shows the install command');
    await kc(install.trim().split(/\s+/).slice(1));
    const cm = JSON.parse(await kc(['-n', 'argocd', 'get', 'configmap', 'argocd-cm', '-o', 'json'])) as { data: Record<string, string> };
    const file = await readFile(join(repoRoot, 'deploy', 'argocd', 'health.lua'), 'utf8');
    assert.equal(cm.data.url, 'https://argocd.example.com', 'the patch merges into the existing ConfigMap');
    for (const key of HEALTH_KEYS) {
      assert.equal(cm.data[key], file, `argocd-cm ${key} is health.lua`);
      scripts.set(key.slice(key.lastIndexOf('_') + 1), cm.data[key]);
    }
  });

  interface Lifecycle {
    /** `kind/name` for kubectl. */
    readonly resource: string;
    readonly spec: Record<string, unknown>;
    /** A merge patch the API server accepts and the controller refuses, and the one that undoes it. */
    readonly bad: Record<string, unknown>;
    readonly fix: Record<string, unknown>;
    readonly stalledReason: string;
    /** What the Stalled message must name. */
    readonly stalledNames: RegExp;
    readonly suspendedMessage: string | RegExp;
  }

  /** create → Ready → bad spec → Stalled → fixed → Ready → suspended, judged at every step. */
  async function lifecycle(l: Lifecycle): Promise<void> {
    const [kind, name] = l.resource.split('/');
    const created = await apply({ apiVersion: 'ferry.dev/v1alpha1', kind: kind === 'integration' ? 'Integration' : 'SyncSchedule', metadata: { name }, spec: l.spec });
    await judge('as created', created, { kstatus: 'InProgress', health: 'Progressing', message: 'Waiting for the Ferry controller to reconcile generation 1' });

    const ready = await observed(l.resource);
    assert.equal(condition(ready, 'Ready')?.status, 'True');
    await judge('Ready', ready, { kstatus: 'Current', health: 'Healthy', message: condition(ready, 'Ready')!.message });

    const edited = await patch(l.resource, { spec: l.bad });
    await judge('with the bad spec just written', edited, { kstatus: 'InProgress', health: 'Progressing', message: 'Waiting for the Ferry controller to observe generation 2 (status describes 1)' });

    const stalled = await observed(l.resource);
    const why = condition(stalled, 'Stalled');
    assert.equal(why?.status, 'True');
    assert.equal(why?.reason, l.stalledReason);
    assert.match(why?.message ?? '', l.stalledNames);
    await judge('Stalled', stalled, { kstatus: 'Failed', health: 'Degraded', message: `${l.stalledReason}: ${why.message}` });

    const fixing = await patch(l.resource, { spec: l.fix });
    await judge('with the fix just written', fixing, { kstatus: 'InProgress', health: 'Progressing', message: 'Waiting for the Ferry controller to observe generation 3 (status describes 2)' });

    const fixed = await observed(l.resource);
    await judge('fixed', fixed, { kstatus: 'Current', health: 'Healthy', message: condition(fixed, 'Ready')!.message });

    await patch(l.resource, { spec: { suspend: true } });
    await judge('suspended', await observed(l.resource), { kstatus: 'Current', health: 'Suspended', message: l.suspendedMessage });
  }

  const auth = (secret: string): Record<string, unknown> => ({ bearer: { secretKeyRef: { name: secret, key: 'token' } } });

  it('Integration: create → Ready → missing Secret (Stalled) → fixed → suspended', async () => {
    await lifecycle({
      resource: 'integration/health-int',
      spec: {
        source: { stream: SOURCE, subjects: ['events.health'] },
        schema: { inline: { type: 'object', required: ['id'] } },
        transform: { mapping: { externalId: '/id' } },
        target: { url: 'http://127.0.0.1:9/v1/invoices', timeout: '1s', auth: auth('health-token') },
        delivery: { backoff: { initial: '10ms', max: '100ms' } },
      },
      bad: { target: { auth: auth('no-such-secret') } },
      fix: { target: { auth: auth('health-token') } },
      stalledReason: 'SecretNotFound',
      stalledNames: /spec\.target\.auth.*no-such-secret/,
      suspendedMessage: /^suspended: the pipeline does not consume until spec.suspend is false/,
    });
  });

  it('SyncSchedule: create → Ready → JSONata that does not parse (Stalled) → fixed → suspended', async () => {
    await lifecycle({
      resource: 'syncschedule/health-sync',
      spec: {
        // Never fires during the test: only the controller's view of the spec is judged.
        schedule: '0 0 1 1 *',
        source: { url: 'http://127.0.0.1:9/contacts', recordsPath: '/data', auth: auth('health-token') },
        key: '/id',
        transform: { jsonata: '{ "externalId": id }' },
        target: { url: 'http://127.0.0.1:9/customers/{{/id}}', method: 'PUT' },
      },
      bad: { transform: { jsonata: '{ "externalId": id ' } },
      fix: { transform: { jsonata: '{ "externalId": id }' } },
      stalledReason: 'TransformInvalid',
      stalledNames: /spec\.transform\.jsonata/,
      suspendedMessage: 'suspended: no runs are scheduled until spec.suspend is false',
    });
  });
  it('Ready but Degraded (the target refuses the credentials): kstatus Current, Argo CD Degraded; Healthy again once the Secret is updated', async () => {
    const t = await suite.target();
    await createIntegration(r, { name: 'health-refused', subject: 'events.refused', url: `${t.url}/v1/invoices`, credentials: t.auth, delivery: { backoff: { initial: '10ms', max: '100ms' } } });
    // The API rotates its token; the Secret still holds the old one.
    t.setAuth({ kind: 'bearer', token: 'rotated-token' });
    await publishEvents(r, 'events.refused', [{ id: 'refused-1', amount: 1 }]);
    const refused = await eventually('Degraded=True TargetUnauthorized', async () => {
      const o = await get('integration/health-refused');
      return condition(o, 'Degraded')?.reason === 'TargetUnauthorized' && condition(o, 'Degraded')?.status === 'True' ? o : undefined;
    });
    assert.equal(condition(refused, 'Ready')?.status, 'True', 'still Ready: the configuration is fine');
    await judge('refused by its target', refused, { kstatus: 'Current', health: 'Degraded', message: `TargetUnauthorized: ${condition(refused, 'Degraded')!.message}` });
    assert.match(condition(refused, 'Degraded')!.message, /health-refused-credentials/);

    await putSecret(r, 'health-refused-credentials', { token: 'rotated-token' });
    const healed = await eventually('Degraded=False', async () => {
      const o = await get('integration/health-refused');
      return condition(o, 'Degraded')?.status === 'False' ? o : undefined;
    });
    await judge('after the Secret update', healed, { kstatus: 'Current', health: 'Healthy', message: condition(healed, 'Ready')!.message });
    // Nothing lost, nothing twice: the refused event waited in the stream and was applied once.
    await eventually('the refused event applied', () => t.stats().identities === 1 || undefined);
    assert.equal(t.stats().duplicates, 0);
  });
});
