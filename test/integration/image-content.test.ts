/**
 * What the operator image holds, proven without Docker: the Dockerfile is read stage by stage and
 * replayed in temporary folders — `COPY` from the build context through .dockerignore's rules, the
 * `RUN` lines executed as written (`npm ci …`, `npx tsc …`), `COPY --from` between stages — so the
 * final stage's folder has exactly what `docker build` would put in the image. Then the image's
 * entry point runs from that folder (cwd = its WORKDIR, NODE_ENV=production) against a real
 * control plane and NATS until an Integration is Ready and delivers an event.
 *
 * Guarantees checked: no sources, tests or devDependencies in the image; .dockerignore keeps .git,
 * test/, .env files, secrets and local tool folders out of the build context; OCI labels and a
 * numeric non-root user.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { installCrds, repoRoot } from '../support/crds.ts';
import { startFaultTarget, type FaultTarget } from '../support/fault-target.ts';
import { FerryClient, isTrueNow } from '../support/ferry-client.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';

interface Instruction {
  readonly op: string;
  readonly args: string;
}

interface Stage {
  readonly base: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** The Dockerfile's stages and their instructions (continuation lines joined, comments dropped). */
function parseDockerfile(text: string): Stage[] {
  const lines = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const m = /^(\S+)\s+(.*)$/.exec(line);
    if (!m?.[1] || m[2] === undefined) throw new Error(`Dockerfile: cannot read ${JSON.stringify(line)}`);
    const op = m[1].toUpperCase();
    if (op === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(m[2]);
      stages.push({ base: from?.[1] ?? '', name: from?.[2], instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) throw new Error(`Dockerfile: ${op} before FROM`);
    stage.instructions.push({ op, args: m[2] });
  }
  return stages;
}

/** .dockerignore's rules as Docker applies them: the last pattern matching a path or a parent wins. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negated = l.startsWith('!');
      const pattern = posix.normalize((negated ? l.slice(1) : l).replace(/^\/+/, '')).replace(/\/+$/, '');
      const source = pattern
        .split(/(\*\*\/|\*\*|\*|\?)/)
        .map((part) => ({ '**/': '(?:.*/)?', '**': '.*', '*': '[^/]*', '?': '[^/]' })[part] ?? part.replace(/[.+^${}()|[\]\\]/g, '\\$&'))
        .join('');
      return { negated, re: new RegExp(`^${source}$`) };
    });
  return (path) => {
    const parts = path.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) if (candidates.some((c) => rule.re.test(c))) excluded = !rule.negated;
    return excluded;
  };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(full)));
    else out.push(full);
  }
  return out;
}

async function sh(command: string, cwd: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    // prefer-offline: the lockfile's packages are in the npm cache after the repository's own
    // npm ci; the registry is asked only for what is missing.
    execFile('sh', ['-c', command], { cwd, env: { ...process.env, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' }, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`RUN ${command} (in ${cwd}) failed: ${err.message}\n${stdout}\n${stderr}`, { cause: err }));
      else resolve();
    });
  });
}

/** Splits a JSON-array or shell-form instruction argument. */
function words(args: string): string[] {
  return args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
}

/** RUN lines this replay knows how to run faithfully; anything else fails the test, never silently passes. */
const KNOWN_RUN = /^(npm ci( --[a-z-]+(=\S+)?)*|npx tsc -p \S+)$/;

describe('operator image content', () => {
  let work: string;
  let stages: Stage[];
  let final: Stage;
  let app: string;
  let ignored: (path: string) => boolean;
  let env: ControlPlane | undefined;
  let operator: OperatorProcess | undefined;
  let target: FaultTarget | undefined;

  before(async () => {
    stages = parseDockerfile(await readFile(join(repoRoot, 'Dockerfile'), 'utf8'));
    ignored = dockerignore(await readFile(join(repoRoot, '.dockerignore'), 'utf8'));
    const last = stages.at(-1);
    if (!last) throw new Error('Dockerfile without a stage');
    final = last;
    work = await mkdtemp(join(process.env.FERRY_TMP_DIR ?? tmpdir(), 'ferry-image-'));

    // Each stage is a folder standing for its filesystem root.
    const roots = new Map<string, string>();
    for (const [i, stage] of stages.entries()) {
      const root = join(work, `stage-${i}`);
      await mkdir(root, { recursive: true });
      if (stage.name) roots.set(stage.name, root);
      let workdir = '/';
      for (const { op, args } of stage.instructions) {
        const inRoot = (p: string): string => join(root, posix.isAbsolute(p) ? p : posix.join(workdir, p));
        if (op === 'WORKDIR') {
          workdir = posix.resolve(workdir, args);
          await mkdir(inRoot('.'), { recursive: true });
        } else if (op === 'RUN') {
          for (const command of args.split(/\s*&&\s*/)) {
            assert.match(command, KNOWN_RUN, `the image test cannot replay RUN ${command}; teach it (test/integration/image-content.test.ts)`);
            await sh(command, inRoot('.'));
          }
        } else if (op === 'COPY') {
          const parts = words(args);
          const from = parts[0]?.startsWith('--from=') ? parts.shift()?.slice('--from='.length) : undefined;
          const dest = parts.pop() ?? '';
          for (const src of parts) {
            const target = dest.endsWith('/') || parts.length > 1 ? posix.join(dest, posix.basename(src)) : dest;
            if (from !== undefined) {
              const fromRoot = roots.get(from);
              assert.ok(fromRoot, `COPY --from=${from}: no such stage`);
              await mkdir(dirname(inRoot(target)), { recursive: true });
              await cp(join(fromRoot, src), inRoot(target), { recursive: true });
            } else {
              // From the build context: only what .dockerignore lets through.
              const abs = join(repoRoot, src);
              const files = (await stat(abs)).isDirectory() ? await walk(abs) : [abs];
              for (const f of files) {
                const rel = relative(repoRoot, f);
                if (ignored(rel)) continue;
                const to = inRoot(posix.join(target, relative(abs, f)));
                await mkdir(dirname(to), { recursive: true });
                await cp(f, to);
              }
            }
          }
        }
      }
      if (stage === final) app = join(root, workdir);
    }
  });

  after(async () => {
    await operator?.stop();
    await target?.close();
    await env?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('is multi-stage, runs as numeric non-root user 65532, and starts node directly on the compiled entry point', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    const user = final.instructions.filter((i) => i.op === 'USER').at(-1);
    assert.equal(user?.args, '65532:65532');
    const entry = final.instructions.find((i) => i.op === 'ENTRYPOINT');
    assert.deepEqual(words(entry?.args ?? '[]'), ['/nodejs/bin/node', 'dist/cli/main.js']);
    assert.deepEqual(words(final.instructions.find((i) => i.op === 'CMD')?.args ?? '[]'), ['controller']);
    assert.ok(final.instructions.some((i) => i.op === 'ENV' && /NODE_ENV=production/.test(i.args)));
  });

  it('carries the OCI labels, filled from the build arguments', () => {
    const labels = new Map<string, string>();
    for (const i of final.instructions.filter((x) => x.op === 'LABEL')) {
      for (const m of i.args.matchAll(/([\w.-]+)="([^"]*)"/g)) if (m[1] !== undefined && m[2] !== undefined) labels.set(m[1], m[2]);
    }
    const args = new Set(final.instructions.filter((i) => i.op === 'ARG').map((i) => i.args.split('=')[0]));
    for (const a of ['VERSION', 'REVISION', 'SOURCE']) assert.ok(args.has(a), `ARG ${a} in the final stage`);
    assert.equal(labels.get('org.opencontainers.image.version'), '${VERSION}');
    assert.equal(labels.get('org.opencontainers.image.revision'), '${REVISION}');
    assert.equal(labels.get('org.opencontainers.image.source'), '${SOURCE}');
    assert.equal(labels.get('org.opencontainers.image.title'), 'ferry');
    assert.equal(labels.get('org.opencontainers.image.licenses'), 'Apache-2.0');
    assert.ok((labels.get('org.opencontainers.image.description') ?? '').length > 10);
  });

  it('.dockerignore is an allow-list: no .git, tests, .env files, secrets or local folders in the build context', () => {
    for (const p of ['.git/config', '.git', 'test/integration/cli.test.ts', 'test/env/pki.ts', '.env', '.env.local', 'config/.env.production', 'secrets/nats.creds', 'id_rsa', 'node_modules/pino/package.json', '.tools/node/bin/node', 'dist/cli/main.js', 'bench/run.ts', 'charts/ferry/values.yaml', 'src/cli/nats-flags.test.ts', 'src/api/crds.test.ts', 'README.md']) {
      assert.ok(ignored(p), `${p} must not reach the build context`);
    }
    for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src/cli/main.ts', 'src/runtime/transform-worker.ts']) {
      assert.ok(!ignored(p), `${p} is needed by the build`);
    }
  });

  it('holds package.json, production node_modules and dist/ only: no sources, tests or devDependencies', async () => {
    assert.deepEqual((await readdir(app)).sort(), ['dist', 'node_modules', 'package.json']);
    const pkg = JSON.parse(await readFile(join(app, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    // The lockfile marks every package only the dev dependencies need (`dev: true`): none may be in
    // the image. A devDependency that a production dependency also needs (@types/node, a runtime
    // dependency of @kubernetes/client-node) is in the lock without the mark and rightly stays.
    const lock = JSON.parse(await readFile(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const devOnly = Object.entries(lock.packages).filter(([path, p]) => path !== '' && p.dev === true).map(([path]) => path);
    assert.ok(devOnly.length > 50, 'the lockfile marks dev-only packages');
    const leaked = [];
    for (const path of devOnly) if (await stat(join(app, path)).then(() => true, () => false)) leaked.push(path);
    assert.deepEqual(leaked, [], 'dev-only packages in the image');
    for (const dev of ['typescript', 'eslint', 'typescript-eslint', '@peculiar/x509', 'wasmoon', 'standardwebhooks']) {
      assert.ok(dev in pkg.devDependencies);
      await assert.rejects(stat(join(app, 'node_modules', dev)), `devDependency ${dev} is in the image`);
    }
    for (const dep of Object.keys(pkg.dependencies)) await stat(join(app, 'node_modules', dep, 'package.json'));
    const dist = (await walk(join(app, 'dist'))).map((f) => relative(app, f));
    assert.ok(dist.includes('dist/cli/main.js') && dist.includes('dist/runtime/transform-worker.js'));
    assert.deepEqual(dist.filter((f) => /\.test\.|\.ts$/.test(f) && !f.endsWith('.d.ts')), []);
    assert.deepEqual(dist.filter((f) => !/\.js(\.map)?$/.test(f)), []);
  });

  it('runs from its WORKDIR: the operator makes an Integration Ready and delivers an event', async () => {
    env = await startControlPlane();
    await installCrds(env);
    await env.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'image' } } });
    const nc = await connect({ servers: env.natsUrl });
    try {
      await (await jetstreamManager(nc)).streams.add({ name: 'EVENTS', subjects: ['events.>'] });
      target = await startFaultTarget();
      const entry = words(final.instructions.find((i) => i.op === 'ENTRYPOINT')?.args ?? '[]');
      operator = await startOperator({
        env,
        identity: 'image',
        main: join(app, entry[1] ?? ''),
        cwd: app,
        args: ['--allow-cidrs=127.0.0.1/32'],
        envVars: { NODE_ENV: 'production' },
      });
      const ferry = new FerryClient(env.kubeConfig);
      await ferry.create('integrations', 'image', {
        kind: 'Integration',
        metadata: { name: 'from-image' },
        spec: {
          source: { stream: 'EVENTS', subjects: ['events.image'] },
          schema: { inline: { type: 'object', required: ['id'] } },
          // JSONata runs in worker threads: the compiled worker file must be in the image too.
          transform: { jsonata: '{ "externalId": id }' },
          target: { url: `${target.url}/image`, timeout: '2s' },
        },
      });
      await ferry.waitFor('integrations', 'image', 'from-image', (o) => isTrueNow(o, 'Ready'), 60_000);
      await jetstream(nc).publish('events.image', JSON.stringify({ id: 'img-1' }));
      const deadline = Date.now() + 30_000;
      while (!target.applied.some((a) => a.path === '/image' && a.body.includes('img-1'))) {
        if (Date.now() > deadline) throw new Error(`no delivery within 30 s\n${operator.process.tail()}`);
        await sleep(100);
      }
    } finally {
      await nc.close();
    }
  });
});
