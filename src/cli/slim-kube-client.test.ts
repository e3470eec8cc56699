/**
 * The resolve hook that keeps client-node's generated APIs and models out of the process. Each
 * case runs in its own Node process: hooks are process-wide, and this runner may have loaded
 * client-node already.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

interface Probe {
  readonly authorization: string | undefined;
  readonly server: string;
  /** Modules resolved under client-node's dist/gen/apis and dist/gen/models. */
  readonly generated: number;
}

/** Loads KubeConfig as the operator does, authenticates one request, and lists what loaded. */
async function probe(slim: boolean): Promise<Probe> {
  const source = `
    import { registerHooks } from 'node:module';
    const resolved = [];
    registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); resolved.push(r.url); return r; } });
    if (${String(slim)}) (await import(${JSON.stringify(import.meta.resolve('./slim-kube-client.ts'))})).slimKubeClient();
    const { KubeConfig, RequestContext, HttpMethod } = await import(${JSON.stringify(import.meta.resolve('../kube/client-node.ts'))});
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: false }],
      users: [{ name: 'u', token: 'token-from-kubeconfig' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const ctx = new RequestContext(kc.getCurrentCluster().server + '/api', HttpMethod.GET);
    await kc.applySecurityAuthentication(ctx);
    process.stdout.write(JSON.stringify({
      authorization: ctx.getHeaders().Authorization,
      server: kc.getCurrentCluster().server,
      generated: resolved.filter((u) => /\\/gen\\/(apis|models)\\//.test(u)).length,
    }));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', source]);
  return JSON.parse(stdout) as Probe;
}

describe('slimKubeClient', () => {
  it('KubeConfig loads without a generated API or model module, and still authenticates requests', async () => {
    const slim = await probe(true);
    assert.equal(slim.generated, 0);
    assert.equal(slim.authorization, 'Bearer token-from-kubeconfig');
    assert.equal(slim.server, 'https://127.0.0.1:6443');
  });

  it('without it, the same import loads the generated APIs and models (what the hook saves)', async () => {
    const full = await probe(false);
    assert.ok(full.generated > 100, `${full.generated} generated modules`);
    assert.equal(full.authorization, 'Bearer token-from-kubeconfig');
  });
});
