/**
 * Builds (once) and locates the Go programs the tests and benchmarks run: helm 3 and helm 4,
 * gopher-lua's `glua` (the Lua 5.1 interpreter Argo CD embeds), a small kstatus program on
 * sigs.k8s.io/cli-utils, and goworker (the JetStream → HTTP worker a user would write in Go, the
 * pipeline benchmark's peer, on nats.go and santhosh-tekuri/jsonschema). Versions are pinned in
 * versions.json with the control-plane binaries, and the binaries are cached beside them, built
 * the same way: a scratch module per tool, a cross-process lock, an atomic move, a version check.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cp, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, checkVersion, goBuild, moveIntoPlace, prepareScratchModule, versions, type BuildLog } from './binaries.ts';
import { withFileLock } from './file-lock.ts';

export type GoToolName = 'helm3' | 'helm4' | 'glua' | 'kstatus' | 'goworker';

interface GoToolRecipe {
  /** The version in the cached binary's name: the first module of `requires`. */
  readonly version: string;
  /** Modules the scratch module requires, `path version`; the first names the tool in logs. */
  readonly requires: readonly (readonly [module: string, version: string])[];
  /** Packages `go mod tidy` must resolve (imported by a `tools` build-tag file). */
  readonly tools: readonly string[];
  /** What `go build` builds: an import path, or for a program of ours its directory (`./<name>`). */
  readonly pkg: string;
  /** Go sources of our own to copy into the scratch module as `./<name>` (for a program we wrote). */
  readonly source?: string;
  readonly ldflags: readonly string[];
  readonly versionCheck?: { readonly args: readonly string[]; readonly expected: string };
}

/** A tool built from one module's own command. */
function upstream(module: string, version: string, pkg: string, ldflags: readonly string[], versionCheck?: GoToolRecipe['versionCheck']): GoToolRecipe {
  return { version, requires: [[module, version]], tools: [pkg], pkg, ldflags, ...(versionCheck ? { versionCheck } : {}) };
}

/** A program of ours (`go/<name>/`), on the pinned modules it imports. */
function own(name: string, requires: GoToolRecipe['requires'], tools: readonly string[]): GoToolRecipe {
  return { version: requires[0]?.[1] ?? 'v0', requires, tools, pkg: `./${name}`, source: fileURLToPath(new URL(`./go/${name}/`, import.meta.url)), ldflags: ['-s', '-w'] };
}

const recipes: Record<GoToolName, GoToolRecipe> = {
  helm3: upstream('helm.sh/helm/v3', versions.helm3, 'helm.sh/helm/v3/cmd/helm', ['-s', '-w', `-X helm.sh/helm/v3/internal/version.version=${versions.helm3}`], {
    args: ['version', '--short'],
    expected: versions.helm3,
  }),
  helm4: upstream('helm.sh/helm/v4', versions.helm4, 'helm.sh/helm/v4/cmd/helm', ['-s', '-w', `-X helm.sh/helm/v4/internal/version.version=${versions.helm4}`], {
    args: ['version', '--short'],
    expected: versions.helm4,
  }),
  glua: upstream('github.com/yuin/gopher-lua', versions.gopherLua, 'github.com/yuin/gopher-lua/cmd/glua', ['-s', '-w']),
  kstatus: own('kstatus', [['sigs.k8s.io/cli-utils', versions.cliUtils]], ['sigs.k8s.io/cli-utils/pkg/kstatus/status']),
  goworker: own(
    'goworker',
    [
      ['github.com/nats-io/nats.go', versions.natsGo],
      ['github.com/santhosh-tekuri/jsonschema/v6', versions.jsonschemaGo],
    ],
    ['github.com/nats-io/nats.go/jetstream', 'github.com/santhosh-tekuri/jsonschema/v6'],
  ),
};

/**
 * A program of ours is cached under a hash of its sources too, so an edit rebuilds it, and of
 * the pins after the first (the first's version is in the name already), so a bump rebuilds it.
 */
function sourceHash(dir: string, pins: GoToolRecipe['requires']): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(dir).sort()) hash.update(file).update(readFileSync(join(dir, file)));
  for (const [module, version] of pins.slice(1)) hash.update(`${module}@${version}`);
  return hash.digest('hex').slice(0, 10);
}

export function goToolPath(name: GoToolName): string {
  const { version, source, requires } = recipes[name];
  return join(cacheDir(), 'bin', source === undefined ? `${name}-${version}` : `${name}-${version}-${sourceHash(source, requires)}`);
}

const defaultLog: BuildLog = (line) => process.stderr.write(`[ferry env] ${line}\n`);

/** Returns the tool's path, building it first when it is not cached (one build across processes). */
export async function ensureGoTool(name: GoToolName, log: BuildLog = defaultLog): Promise<string> {
  const target = goToolPath(name);
  if (existsSync(target)) return target;
  const recipe = recipes[name];
  await withFileLock(join(cacheDir(), 'locks', basename(target)), log, async () => {
    if (existsSync(target)) return;
    const dir = join(cacheDir(), 'build', basename(target));
    const what = recipe.requires.map(([module]) => module).join(', ');
    log(`building ${name} ${recipe.version} from ${what} (first time only)`);
    const moduleName = recipe.source === undefined ? `ferry.dev/tools/${name}` : 'ferry.dev/tools';
    await mkdir(dir, { recursive: true });
    if (recipe.source !== undefined) await cp(recipe.source, join(dir, name), { recursive: true });
    const require = recipe.requires.map(([module, version]) => `require ${module} ${version}\n`).join('');
    await prepareScratchModule({ dir, goMod: `module ${moduleName}\n\ngo 1.26.0\n\n${require}`, tools: recipe.tools }, log);
    const out = join(dir, `${name}.bin`);
    await goBuild(name, recipe.version, ['build', '-trimpath', `-ldflags=${recipe.ldflags.join(' ')}`, '-o', out, recipe.pkg], dir, log);
    if (recipe.versionCheck) await checkVersion(out, recipe.versionCheck.args, recipe.versionCheck.expected);
    await moveIntoPlace(out, target);
    log(`built ${target}`);
  });
  return target;
}

/** Every tool, for `npm run env:build` and CI: built up front rather than inside a test's timeout. */
export async function ensureGoTools(log: BuildLog = defaultLog): Promise<Record<GoToolName, string>> {
  const out = {} as Record<GoToolName, string>;
  for (const name of Object.keys(recipes) as GoToolName[]) out[name] = await ensureGoTool(name, log);
  return out;
}
