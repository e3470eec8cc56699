/**
 * Builds (once) and locates the control-plane binaries the tests, the demo and `npm run env:up`
 * run: kube-apiserver, kubectl, etcd and nats-server, at the versions pinned in versions.json.
 *
 * Guarantees: a binary is built from its official Go module with the machine's Go, into a cache
 * outside the repo (`$FERRY_CACHE_DIR`, else `$XDG_CACHE_HOME/ferry`, else `~/.cache/ferry`), and
 * moved into place atomically, so a half-written binary is never run. A cross-process lock makes
 * parallel test files wait for one build instead of starting their own.
 *
 * Why scratch modules: `go install k8s.io/kubernetes/cmd/kube-apiserver@v1.36.N` fails because
 * k8s.io/kubernetes requires its staging modules at v0.0.0 through local `replace` lines (the
 * same holds for etcd's server module). A scratch module that requires the real module plus one
 * `replace` per staging module (read from the published go.mod, not hard-coded) builds it.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import versions from './versions.json' with { type: 'json' };
import { formatElapsed, withProgress } from './build-progress.ts';
import { withFileLock } from './file-lock.ts';

const execFileAsync = promisify(execFile);

export { versions };

export interface Binaries {
  readonly kubeApiserver: string;
  readonly kubectl: string;
  readonly etcd: string;
  readonly natsServer: string;
}

export type BuildLog = (line: string) => void;

export function cacheDir(): string {
  if (process.env.FERRY_CACHE_DIR) return process.env.FERRY_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache');
  return join(base, 'ferry');
}

export function binaryPaths(): Binaries {
  const bin = join(cacheDir(), 'bin');
  return {
    kubeApiserver: join(bin, `kube-apiserver-${versions.kubernetes}`),
    kubectl: join(bin, `kubectl-${versions.kubernetes}`),
    etcd: join(bin, `etcd-${versions.etcd}`),
    natsServer: join(bin, `nats-server-${versions.natsServer}`),
  };
}

const defaultLog: BuildLog = (line) => process.stderr.write(`[ferry env] ${line}\n`);

/**
 * Returns the binaries, building the missing ones first. Cheap when all are cached. A build says
 * what it builds, that it happens once and where the result is cached, reports every 30 s while
 * Go runs, and prints the total at the end.
 */
export async function ensureBinaries(log: BuildLog = defaultLog): Promise<Binaries> {
  const paths = binaryPaths();
  const missing = [paths.kubeApiserver, paths.kubectl, paths.etcd, paths.natsServer].filter((p) => !existsSync(p));
  if (missing.length === 0) return paths;
  const started = Date.now();
  const kubernetes = missing.includes(paths.kubeApiserver) || missing.includes(paths.kubectl);
  log(
    `not in the cache yet: ${missing.map((p) => basename(p)).join(', ')}. Building from the Go modules, once: ` +
      `the binaries are kept in ${dirname(paths.kubectl)} and every later run reuses them. ` +
      `${kubernetes ? 'Kubernetes takes several minutes and a few GB of RAM. ' : ''}Progress is reported every 30 s.`,
  );
  if (!existsSync(paths.kubeApiserver) || !existsSync(paths.kubectl)) {
    await withFileLock(join(cacheDir(), 'locks', `kubernetes-${versions.kubernetes}`), log, async () => {
      if (!existsSync(paths.kubeApiserver) || !existsSync(paths.kubectl)) await buildKubernetes(paths, log);
    });
  }
  if (!existsSync(paths.etcd)) {
    await withFileLock(join(cacheDir(), 'locks', `etcd-${versions.etcd}`), log, async () => {
      if (!existsSync(paths.etcd)) await buildEtcd(paths.etcd, log);
    });
  }
  if (!existsSync(paths.natsServer)) {
    await withFileLock(join(cacheDir(), 'locks', `nats-server-${versions.natsServer}`), log, async () => {
      if (!existsSync(paths.natsServer)) await buildNatsServer(paths.natsServer, log);
    });
  }
  log(`control-plane binaries ready in ${formatElapsed(Date.now() - started)}; cached in ${dirname(paths.kubectl)}`);
  return paths;
}

/** Environment for every go command: never fetch a toolchain, never build with cgo. */
function goEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0', GOFLAGS: '-mod=mod' };
}

async function go(args: readonly string[], cwd: string, log: BuildLog): Promise<string> {
  log(`go ${args.join(' ')}`);
  return await new Promise<string>((resolve, reject) => {
    const child = spawn('go', args, { cwd, env: goEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.length > 64_000) stderr = stderr.slice(-32_000);
    });
    child.on('error', (err) => {
      reject(new Error(`cannot run go (is Go >= 1.26 on PATH?): ${err.message}`));
    });
    child.on('close', (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`go ${args.join(' ')} failed with exit code ${code} in ${cwd}:\n${stderr.slice(-8000)}`));
    });
  });
}

export interface ScratchModule {
  readonly dir: string;
  readonly goMod: string;
  /** Packages imported by a `tools` build-tag file so that `go mod tidy` records their deps. */
  readonly tools: readonly string[];
}

export async function prepareScratchModule(mod: ScratchModule, log: BuildLog): Promise<void> {
  await mkdir(mod.dir, { recursive: true });
  await writeFile(join(mod.dir, 'go.mod'), mod.goMod);
  const imports = mod.tools.map((p) => `\t_ "${p}"`).join('\n');
  await writeFile(join(mod.dir, 'tools.go'), `//go:build tools\n\npackage tools\n\nimport (\n${imports}\n)\n`);
  // Downloads every dependency on a machine whose Go module cache is empty.
  await withProgress(`resolving and downloading the Go modules of ${mod.tools.join(', ')}`, log, () => go(['mod', 'tidy'], mod.dir, log));
}

/** `go build` of one binary, with progress: the step that runs for minutes without output. */
export async function goBuild(name: string, version: string, args: readonly string[], dir: string, log: BuildLog): Promise<void> {
  await withProgress(`go build ${name} ${version}`, log, () => go(args, dir, log));
}

export async function moveIntoPlace(built: string, target: string): Promise<void> {
  await mkdir(join(target, '..'), { recursive: true });
  await rename(built, target);
}

export async function checkVersion(binary: string, args: readonly string[], expected: string): Promise<void> {
  const { stdout, stderr } = await execFileAsync(binary, args);
  const out = `${stdout}${stderr}`;
  if (!out.includes(expected)) {
    await rm(binary, { force: true });
    throw new Error(`${binary} ${args.join(' ')} printed ${JSON.stringify(out.trim())}, expected it to contain ${expected}`);
  }
}

interface GoModDownload {
  readonly GoMod: string;
  readonly Info: string;
}

async function buildKubernetes(paths: Binaries, log: BuildLog): Promise<void> {
  const version = versions.kubernetes;
  const dir = join(cacheDir(), 'build', `kubernetes-${version}`);
  log(`building kube-apiserver and kubectl ${version} from k8s.io/kubernetes (first time only; takes several minutes)`);
  await mkdir(dir, { recursive: true });
  // The published go.mod is the authoritative list of staging modules and of the go/godebug lines.
  const download = JSON.parse(
    await withProgress(`downloading k8s.io/kubernetes ${version}`, log, () => go(['mod', 'download', '-json', `k8s.io/kubernetes@${version}`], dir, log)),
  ) as GoModDownload;
  const upstream = await readFile(download.GoMod, 'utf8');
  const staging = [...upstream.matchAll(/^\s*(k8s\.io\/[\w.-]+)\s+=>\s+\.\/staging\/src\//gm)].map((m) => m[1] ?? '');
  if (staging.length < 20) throw new Error(`found only ${staging.length} staging modules in ${download.GoMod}`);
  const goLine = /^go\s+\S+$/m.exec(upstream)?.[0] ?? 'go 1.26.0';
  const godebug = /^godebug\s+.+$/m.exec(upstream)?.[0] ?? '';
  const stagingVersion = version.replace(/^v1\./, 'v0.');
  const goMod = [
    'module ferry.dev/controlplane/kubernetes',
    '',
    goLine,
    '',
    godebug,
    '',
    `require k8s.io/kubernetes ${version}`,
    '',
    ...staging.map((m) => `replace ${m} => ${m} ${stagingVersion}`),
    '',
  ].join('\n');
  await prepareScratchModule(
    { dir, goMod, tools: ['k8s.io/kubernetes/cmd/kube-apiserver', 'k8s.io/kubernetes/cmd/kubectl'] },
    log,
  );

  const info = JSON.parse(await readFile(download.Info, 'utf8')) as { Time?: string; Origin?: { Hash?: string } };
  const [major, minor] = version.replace(/^v/, '').split('.');
  const stamp = {
    gitVersion: version,
    gitMajor: major ?? '',
    gitMinor: minor ?? '',
    gitTreeState: 'clean',
    gitCommit: info.Origin?.Hash ?? '',
    buildDate: (info.Time ?? new Date().toISOString()).replace(/\.\d+Z$/, 'Z'),
  };
  // Both packages carry a copy of the version; a -X on a missing symbol is ignored silently,
  // which is why the result is checked with --version below.
  const ldflags = ['-s', '-w'];
  for (const pkg of ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version']) {
    for (const [key, value] of Object.entries(stamp)) ldflags.push(`-X '${pkg}.${key}=${value}'`);
  }
  for (const [name, target] of [
    ['kube-apiserver', paths.kubeApiserver],
    ['kubectl', paths.kubectl],
  ] as const) {
    const out = join(dir, name);
    await goBuild(
      name,
      version,
      ['build', '-trimpath', '-tags=selinux,notest,grpcnotrace', `-ldflags=${ldflags.join(' ')}`, '-o', out, `k8s.io/kubernetes/cmd/${name}`],
      dir,
      log,
    );
    const args = name === 'kubectl' ? ['version', '--client'] : ['--version'];
    await checkVersion(out, args, version);
    await moveIntoPlace(out, target);
    log(`built ${target}`);
  }
}

async function buildEtcd(target: string, log: BuildLog): Promise<void> {
  const version = versions.etcd;
  const dir = join(cacheDir(), 'build', `etcd-${version}`);
  log(`building etcd ${version} from go.etcd.io/etcd/server/v3 (first time only)`);
  // A module of its own, so etcd's grpc/otel versions never move kube-apiserver's.
  await prepareScratchModule(
    {
      dir,
      goMod: `module ferry.dev/controlplane/etcd\n\ngo 1.26.0\n\nrequire go.etcd.io/etcd/server/v3 ${version}\n`,
      tools: ['go.etcd.io/etcd/server/v3'],
    },
    log,
  );
  const out = join(dir, 'etcd');
  await goBuild('etcd', version, ['build', '-trimpath', '-ldflags=-s -w', '-o', out, 'go.etcd.io/etcd/server/v3'], dir, log);
  await checkVersion(out, ['--version'], version.replace(/^v/, ''));
  await moveIntoPlace(out, target);
  log(`built ${target}`);
}

async function buildNatsServer(target: string, log: BuildLog): Promise<void> {
  const version = versions.natsServer;
  const dir = join(cacheDir(), 'build', `nats-server-${version}`);
  log(`building nats-server ${version} from github.com/nats-io/nats-server/v2 (first time only)`);
  await prepareScratchModule(
    {
      dir,
      goMod: `module ferry.dev/controlplane/nats\n\ngo 1.26.0\n\nrequire github.com/nats-io/nats-server/v2 ${version}\n`,
      tools: ['github.com/nats-io/nats-server/v2'],
    },
    log,
  );
  const out = join(dir, 'nats-server');
  await goBuild('nats-server', version, ['build', '-trimpath', '-ldflags=-s -w', '-o', out, 'github.com/nats-io/nats-server/v2'], dir, log);
  await checkVersion(out, ['--version'], version.replace(/^v/, ''));
  await moveIntoPlace(out, target);
  log(`built ${target}`);
}
