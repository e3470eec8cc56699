/**
 * Installs Ferry's generated CRDs (crds/*.yaml) into a test API server and waits until the API
 * server serves them (Established), as `kubectl apply -f crds/ && kubectl wait` would.
 *
 * client-node's `loadYaml` turns the YAML into its typed models: its serializer writes only the
 * fields it knows by their model names, so a plain parsed object would silently lose
 * `x-kubernetes-preserve-unknown-fields` and every `default`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiextensionsV1Api, loadYaml, type KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';

export const crdDir = join(import.meta.dirname, '..', '..', 'crds');

export async function loadCrds(): Promise<V1CustomResourceDefinition[]> {
  const files = (await readdir(crdDir)).filter((f) => f.endsWith('.yaml')).sort();
  return await Promise.all(files.map(async (f) => loadYaml<V1CustomResourceDefinition>(await readFile(join(crdDir, f), 'utf8'))));
}

export async function installCrds(kubeConfig: KubeConfig, timeoutMs = 30_000): Promise<V1CustomResourceDefinition[]> {
  const crds = await loadCrds();
  await apply(kubeConfig, crds, timeoutMs);
  return crds;
}

/** Installs one file of crds/ (e.g. `syncschedules.ferry.dev.yaml`) and waits until it is Established. */
export async function installCrd(kubeConfig: KubeConfig, file: string, timeoutMs = 30_000): Promise<V1CustomResourceDefinition> {
  const crd = loadYaml<V1CustomResourceDefinition>(await readFile(join(crdDir, file), 'utf8'));
  await apply(kubeConfig, [crd], timeoutMs);
  return crd;
}

async function apply(kubeConfig: KubeConfig, crds: readonly V1CustomResourceDefinition[], timeoutMs: number): Promise<void> {
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  for (const crd of crds) await api.createCustomResourceDefinition({ body: crd });
  const deadline = Date.now() + timeoutMs;
  for (const crd of crds) {
    const name = crd.metadata?.name ?? '';
    for (;;) {
      const got = await api.readCustomResourceDefinition({ name });
      if (got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} not Established after ${timeoutMs} ms`);
      // The API server establishes a CRD asynchronously; there is nothing to wait on but polling.
      await sleep(100);
    }
  }
}
