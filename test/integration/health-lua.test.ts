/**
 * The Argo CD health check (deploy/argocd/health.lua) on every fixture of health_test.yaml, run
 * by gopher-lua (Argo CD's Lua 5.1) and by Lua 5.4, with kstatus's verdict on the same objects;
 * and the install snippets generated from the script are the script. No servers: interpreters only.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { argocdFilesFrom, HEALTH_KEYS } from '../../scripts/argocd-health.ts';
import { integrationResourceSchema, syncScheduleResourceSchema } from '../../src/api/index.ts';
import { repoRoot } from '../support/crds.ts';
import { kstatus } from '../support/kstatus.ts';
import { gopherLuaHealth, lua54Health, lua54Version, luaHealth } from '../support/lua-health.ts';

const dir = join(repoRoot, 'deploy', 'argocd');

interface Fixture {
  readonly healthStatus: { readonly status: string; readonly message: string };
  readonly kstatus: string;
  readonly inputPath: string;
}

describe('Argo CD health check (Lua) and kstatus on the fixtures', () => {
  let script: string;
  let fixtures: Fixture[];
  let objects: Map<string, Record<string, unknown>>;
  before(async () => {
    script = await readFile(join(dir, 'health.lua'), 'utf8');
    fixtures = (parse(await readFile(join(dir, 'health_test.yaml'), 'utf8')) as { tests: Fixture[] }).tests;
    objects = new Map();
    for (const f of fixtures) objects.set(f.inputPath, parse(await readFile(join(dir, f.inputPath), 'utf8')) as Record<string, unknown>);
  });

  it('covers both kinds and every Argo CD status, with at least 8 fixtures', () => {
    assert.ok(fixtures.length >= 8, `${fixtures.length} fixtures`);
    const kinds = new Set([...objects.values()].map((o) => o.kind));
    assert.deepEqual([...kinds].sort(), ['Integration', 'SyncSchedule']);
    assert.deepEqual([...new Set(fixtures.map((f) => f.healthStatus.status))].sort(), ['Degraded', 'Healthy', 'Progressing', 'Suspended']);
    assert.deepEqual([...new Set(fixtures.map((f) => f.kstatus))].sort(), ['Current', 'Failed', 'InProgress']);
  });

  it('every fixture is a valid object of its kind (the zod schemas the CRDs are generated from)', () => {
    for (const [path, obj] of objects) {
      const parsed = (obj.kind === 'Integration' ? integrationResourceSchema : syncScheduleResourceSchema).safeParse(obj);
      assert.ok(parsed.success, `${path}: ${parsed.error?.message ?? ''}`);
    }
  });

  it('the second interpreter is Lua 5.4', async () => {
    assert.equal(await lua54Version(), 'Lua 5.4');
  });

  it('gopher-lua and Lua 5.4 both return the expected status and message for every fixture', async () => {
    for (const f of fixtures) {
      const got = await luaHealth(script, objects.get(f.inputPath));
      assert.deepEqual(got.gopherLua, f.healthStatus, `gopher-lua on ${f.inputPath}`);
      assert.deepEqual(got.lua54, f.healthStatus, `Lua 5.4 on ${f.inputPath}`);
    }
  });

  it('kstatus computes the expected status for every fixture', async () => {
    const got = await kstatus(fixtures.map((f) => objects.get(f.inputPath)));
    assert.deepEqual(
      got.map((r) => r.status),
      fixtures.map((f) => f.kstatus),
    );
  });

  it('the harness gives the script what Argo CD gives it: no string or math library, no string methods', async () => {
    for (const body of ['return { status = string.upper("healthy") }', 'return { status = math.floor(1) }', 'local s = "x"; return { status = s:upper() }']) {
      // Both refuse, as Argo CD would: a check that needs these fails in its tests, not in Argo CD.
      await assert.rejects(gopherLuaHealth(body, {}), /gopher-lua failed: .*(attempt to (index|call)|cannot index)/s, `gopher-lua: ${body}`);
      await assert.rejects(lua54Health(body, {}), /attempt to (index|call)/, `Lua 5.4: ${body}`);
    }
    await assert.rejects(luaHealth('return "Healthy"', {}), /returned a string, not a table/);
    assert.deepEqual(await luaHealth('return { status = "Healthy", message = obj.metadata.name .. " " .. obj.metadata.generation }', { metadata: { name: 'a', generation: 3 } }), {
      gopherLua: { status: 'Healthy', message: 'a 3' },
      lua54: { status: 'Healthy', message: 'a 3' },
    });
  });

  it('argocd-cm.yaml and argo-cd-values.yaml are generated from health.lua and hold it byte for byte', async () => {
    for (const file of await argocdFilesFrom(repoRoot)) {
      assert.equal(await readFile(join(repoRoot, file.path), 'utf8'), file.content, `${file.path} is stale: run npm run gen:argocd`);
    }
    const cm = parse(await readFile(join(dir, 'argocd-cm.yaml'), 'utf8')) as { data: Record<string, string> };
    const values = parse(await readFile(join(dir, 'argo-cd-values.yaml'), 'utf8')) as { configs: { cm: Record<string, string> } };
    for (const key of HEALTH_KEYS) {
      assert.equal(cm.data[key], script, `argocd-cm ${key}`);
      assert.equal(values.configs.cm[key], script, `values ${key}`);
    }
  });
});
