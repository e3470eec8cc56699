/**
 * Builds (once) and locates the packaging tools the chart, health-check and kstatus tests run:
 * helm 3 and helm 4, gopher-lua's `glua` (the Lua 5.1 interpreter Argo CD embeds) and a small
 * kstatus program on sigs.k8s.io/cli-utils. Versions are pinned in versions.json with the
 * control-plane binaries, and the binaries are cached beside them, built the same way: a scratch
 * module per tool, a cross-process lock, an atomic move, a version check.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cp, mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, checkVersion, goBuild, moveIntoPlace, prepareScratchModule, versions, type BuildLog } from './binaries.ts';
import { withFileLock } from './file-lock.ts';

export type GoToolName = 'helm3' | 'helm4' | 'glua' | 'kstatus';

interface GoToolRecipe {
  readonly version: string;
  readonly module: string;
  readonly pkg: string;
  /** Go sources of our own to copy into the scratch module (for a program we wrote). */
  readonly source?: string;
  readonly ldflags: readonly string[];
  readonly versionCheck?: { readonly args: readonly string[]; readonly expected: string };
}

const recipes: Record<GoToolName, GoToolRecipe> = {
  helm3: {
    version: versions.helm3,
    module: 'helm.sh/helm/v3',
    pkg: 'helm.sh/helm/v3/cmd/helm',
    ldflags: ['-s', '-w', `-X helm.sh/helm/v3/internal/version.version=${versions.helm3}`],
    versionCheck: { args: ['version', '--short'], expected: versions.helm3 },
  },
  helm4: {
    version: versions.helm4,
    module: 'helm.sh/helm/v4',
    pkg: 'helm.sh/helm/v4/cmd/helm',
    ldflags: ['-s', '-w', `-X helm.sh/helm/v4/internal/version.version=${versions.helm4}`],
    versionCheck: { args: ['version', '--short'], expected: versions.helm4 },
  },
  glua: {
    version: versions.gopherLua,
    module: 'github.com/yuin/gopher-lua',
    pkg: 'github.com/yuin/gopher-lua/cmd/glua',
    ldflags: ['-s', '-w'],
  },
  kstatus: {
    version: versions.cliUtils,
    module: 'sigs.k8s.io/cli-utils',
    pkg: 'ferry.dev/tools/kstatus',
    source: fileURLToPath(new URL('./go/kstatus/', import.meta.url)),
    ldflags: ['-s', '-w'],
  },
};

/** A program of ours is cached under a hash of its sources too, so an edit rebuilds it. */
function sourceHash(dir: string): string {
  const hash = createHash('sha256');
  for (const file of readdirSync(dir).sort()) hash.update(file).update(readFileSync(join(dir, file)));
  return hash.digest('hex').slice(0, 10);
}

export function goToolPath(name: GoToolName): string {
  const { version, source } = recipes[name];
  return join(cacheDir(), 'bin', source === undefined ? `${name}-${version}` : `${name}-${version}-${sourceHash(source)}`);
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
    log(`building ${name} ${recipe.version} from ${recipe.module} (first time only)`);
    const ownModule = recipe.source !== undefined;
    const moduleName = ownModule ? 'ferry.dev/tools' : `ferry.dev/tools/${name}`;
    await mkdir(dir, { recursive: true });
    if (recipe.source !== undefined) await cp(recipe.source, join(dir, name), { recursive: true });
    await prepareScratchModule(
      {
        dir,
        goMod: `module ${moduleName}\n\ngo 1.26.0\n\nrequire ${recipe.module} ${recipe.version}\n`,
        tools: ownModule ? [recipe.module + '/pkg/kstatus/status'] : [recipe.pkg],
      },
      log,
    );
    const out = join(dir, `${name}.bin`);
    const pkg = ownModule ? `./${name}` : recipe.pkg;
    await goBuild(name, recipe.version, ['build', '-trimpath', `-ldflags=${recipe.ldflags.join(' ')}`, '-o', out, pkg], dir, log);
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
