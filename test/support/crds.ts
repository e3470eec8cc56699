/**
 * Installs Ferry's CRDs the way users do: the pinned kubectl runs `kubectl apply -f crds/` from
 * the repository root, then `kubectl wait --for=condition=Established` on both. Every test that
 * installs CRDs through here therefore takes the user's path — YAML 1.1 parsing, client-side
 * apply and all — and fails as users would if the committed files do not install.
 *
 * The API client is not used on purpose: client-node parses YAML as 1.2 and serialises through
 * its own models, so it installed files kubectl refused (an unquoted `default: off`).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { KubeConfig } from '@kubernetes/client-node';
import { binaryPaths } from '../env/binaries.ts';

const execFileAsync = promisify(execFile);

export const repoRoot = join(import.meta.dirname, '..', '..');
export const crdDir = join(repoRoot, 'crds');

/** The CRDs in crds/, by name. */
export const CRD_NAMES = ['integrations.ferry.dev', 'syncschedules.ferry.dev'] as const;

/** A cluster to install into: a control plane (its kubeconfig file) or a loaded KubeConfig. */
export type Cluster = KubeConfig | { readonly kubeconfigPath: string };

export interface KubectlResult {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Environment for kubectl: `KUBECONFIG`, and its discovery and OpenAPI cache beside the
 * kubeconfig (a test's temporary directory) instead of one directory per port in ~/.kube/cache.
 */
export function kubectlEnv(kubeconfigPath: string): NodeJS.ProcessEnv {
  return { ...process.env, KUBECONFIG: kubeconfigPath, KUBECACHEDIR: join(dirname(kubeconfigPath), 'kube-cache') };
}

/**
 * Runs the pinned kubectl with `KUBECONFIG=kubeconfigPath` in the repository root.
 *
 * @throws Error with kubectl's exit code, stdout and stderr when it fails.
 */
export async function kubectl(kubeconfigPath: string, args: readonly string[], timeoutMs = 120_000): Promise<KubectlResult> {
  try {
    const { stdout, stderr } = await execFileAsync(binaryPaths().kubectl, args, {
      cwd: repoRoot,
      env: kubectlEnv(kubeconfigPath),
      encoding: 'utf8',
      timeout: timeoutMs,
      maxBuffer: 16 * 1024 * 1024,
    });
    return { stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    throw new Error(`kubectl ${args.join(' ')} failed (exit ${String(e.code)}):\n${e.stdout ?? ''}${e.stderr ?? ''}`, { cause: err });
  }
}

async function withKubeconfigFile<T>(cluster: Cluster, use: (path: string) => Promise<T>): Promise<T> {
  if ('kubeconfigPath' in cluster) return await use(cluster.kubeconfigPath);
  // A KubeConfig object may not come from a file: write what it holds for kubectl.
  const dir = await mkdtemp(join(tmpdir(), 'ferry-kubeconfig-'));
  try {
    const path = join(dir, 'kubeconfig');
    await writeFile(path, cluster.exportConfig(), { mode: 0o600 });
    return await use(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `kubectl apply -f crds/`, then waits until the API server serves both kinds (Established).
 * Returns the CRD names.
 *
 * @throws Error with kubectl's output when apply fails or the CRDs are not Established in time.
 */
export async function installCrds(cluster: Cluster, timeoutMs = 60_000): Promise<readonly string[]> {
  return await withKubeconfigFile(cluster, async (path) => {
    await kubectl(path, ['apply', '-f', 'crds/']);
    await kubectl(path, ['wait', '--for=condition=Established', `--timeout=${Math.ceil(timeoutMs / 1000)}s`, ...CRD_NAMES.map((n) => `crd/${n}`)], timeoutMs + 10_000);
    return CRD_NAMES;
  });
}

/** `kubectl apply -f crds/<file>` (e.g. `syncschedules.ferry.dev.yaml`), then waits until it is Established. */
export async function installCrd(cluster: Cluster, file: string, timeoutMs = 60_000): Promise<string> {
  return await withKubeconfigFile(cluster, async (path) => {
    await kubectl(path, ['apply', '-f', `crds/${file}`]);
    const name = file.replace(/\.yaml$/, '');
    await kubectl(path, ['wait', '--for=condition=Established', `--timeout=${Math.ceil(timeoutMs / 1000)}s`, `crd/${name}`], timeoutMs + 10_000);
    return name;
  });
}
