/**
 * Runs an Argo CD resource health check (a Lua script) on an object the way Argo CD does, on two
 * real interpreters: gopher-lua's `glua` (the Lua 5.1 VM Argo CD embeds, v1.1.2 pinned in
 * test/env/versions.json) and Lua 5.4 (the official C sources compiled to WebAssembly, npm
 * `wasmoon`).
 *
 * What Argo CD does (util/lua/lua.go, ExecuteHealthLua): a fresh state per call with only the
 * package, base and table libraries and a reduced `os` (no `string`, no `math` unless
 * `useOpenLibs` is set for the kind), the object decoded from JSON into a global `obj` (JSON null
 * becomes nil, so the key is absent; numbers become Lua numbers), then the script runs as a chunk
 * and must `return` a table whose `status` and `message` are read back.
 *
 * Here the object is written as a Lua table constructor and the script wrapped in a function, so
 * both interpreters run the exact same source. Before the script runs, the libraries Argo CD does
 * not open are removed, and strings lose their methods (`s:upper()` fails in Argo CD too), so a
 * script that would fail in Argo CD fails here. Integers are written as integer literals: Lua 5.4
 * then prints them as gopher-lua prints its (float) numbers, `3` and not `3.0`.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LuaFactory } from 'wasmoon';
import { ensureGoTool } from '../env/go-tools.ts';

const execFileAsync = promisify(execFile);

/** What Argo CD reads back from the script's table (health.HealthStatus). */
export interface HealthStatus {
  readonly status: string;
  readonly message: string;
}

/** The result on each interpreter. */
export interface HealthResults {
  readonly gopherLua: HealthStatus;
  readonly lua54: HealthStatus;
}

/** A Lua string literal holding exactly `s` (its UTF-8 bytes; control characters as `\ddd`). */
function luaString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    // Three digits always, so a following digit is never read as part of the escape.
    else if (code < 0x20 || code === 0x7f) out += `\\${String(code).padStart(3, '0')}`;
    else out += ch;
  }
  return out + '"';
}

/** The Lua value Argo CD's decodeValue builds from a JSON value, as source text. */
export function luaLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'nil';
  if (typeof value === 'string') return luaString(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`luaLiteral: ${value} has no JSON form`);
    return Number.isInteger(value) ? value.toFixed(0) : String(value);
  }
  if (Array.isArray(value)) return `{${value.map(luaLiteral).join(', ')}}`;
  if (typeof value === 'object') {
    const fields = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => `[${luaString(k)}] = ${luaLiteral(v)}`);
    return `{${fields.join(', ')}}`;
  }
  throw new Error(`luaLiteral: cannot encode a ${typeof value}`);
}

/**
 * The program both interpreters run. `emit` is how the encoded result leaves the interpreter:
 * a call to the captured `io.write` for glua, a `return` for wasmoon. The result is
 * `status`, a newline, `message`, or `!` and the type when the script did not return a table.
 */
function program(script: string, obj: unknown, emit: 'write' | 'return'): string {
  return [
    'local __write = io.write',
    'local __type, __tostring = type, tostring',
    // Only what Argo CD opens stays: base, table, package (and a reduced os, which no check needs).
    'string, math, io, os, coroutine, debug, utf8 = nil, nil, nil, nil, nil, nil, nil',
    'getmetatable("").__index = nil',
    `obj = ${luaLiteral(obj)}`,
    'local __hs = (function()',
    script,
    'end)()',
    'local __out',
    'if __type(__hs) ~= "table" then __out = "!" .. __type(__hs)',
    'else __out = __tostring(__hs.status or "") .. "\\n" .. __tostring(__hs.message or "") end',
    emit === 'write' ? '__write(__out)' : 'return __out',
    '',
  ].join('\n');
}

function decode(interpreter: string, out: string): HealthStatus {
  if (out.startsWith('!')) throw new Error(`${interpreter}: the health script returned a ${out.slice(1)}, not a table`);
  const nl = out.indexOf('\n');
  if (nl < 0) throw new Error(`${interpreter}: unexpected output ${JSON.stringify(out)}`);
  return { status: out.slice(0, nl), message: out.slice(nl + 1) };
}

async function runGopherLua(source: string): Promise<HealthStatus> {
  const glua = await ensureGoTool('glua');
  const dir = await mkdtemp(join(tmpdir(), 'ferry-lua-'));
  try {
    const file = join(dir, 'health.lua');
    await writeFile(file, source);
    try {
      const { stdout } = await execFileAsync(glua, [file], { encoding: 'utf8', timeout: 10_000 });
      return decode('gopher-lua', stdout);
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string };
      throw new Error(`gopher-lua failed: ${e.stderr ?? ''}${e.stdout ?? ''}`, { cause: err });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const factory = new LuaFactory();

async function runLua54(source: string): Promise<HealthStatus> {
  // A fresh state per call, as Argo CD creates one per evaluation.
  const lua = await factory.createEngine({ openStandardLibs: true });
  try {
    const out: unknown = await lua.doString(source);
    if (typeof out !== 'string') throw new Error(`Lua 5.4: unexpected result ${String(out)}`);
    return decode('Lua 5.4', out);
  } finally {
    lua.global.close();
  }
}

/** The Lua 5.4 interpreter's `_VERSION` (so a test can show which interpreter it ran). */
export async function lua54Version(): Promise<string> {
  const lua = await factory.createEngine();
  try {
    return String(await lua.doString('return _VERSION'));
  } finally {
    lua.global.close();
  }
}

/** Runs `script` on `obj` in gopher-lua; throws when it fails or returns no table. */
export async function gopherLuaHealth(script: string, obj: unknown): Promise<HealthStatus> {
  return await runGopherLua(program(script, obj, 'write'));
}

/** Runs `script` on `obj` in Lua 5.4; throws when it fails or returns no table. */
export async function lua54Health(script: string, obj: unknown): Promise<HealthStatus> {
  return await runLua54(program(script, obj, 'return'));
}

/**
 * Runs `script` on `obj` in gopher-lua and in Lua 5.4, each in a fresh state.
 *
 * @throws Error when either interpreter fails to run the script or it returns no table.
 */
export async function luaHealth(script: string, obj: unknown): Promise<HealthResults> {
  const [gopherLua, lua54] = await Promise.all([gopherLuaHealth(script, obj), lua54Health(script, obj)]);
  return { gopherLua, lua54 };
}
