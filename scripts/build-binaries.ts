/**
 * `npm run env:build`: builds (or finds in the cache) the pinned control-plane binaries and the
 * Go tools (helm 3 and 4, gopher-lua's glua, kstatus, and goworker — the pipeline benchmark's Go
 * peer) and prints their paths and versions.
 * Tests, the demo and env:up call the same code on demand.
 */
import { execFileSync } from 'node:child_process';
import { ensureBinaries } from '../test/env/binaries.ts';
import { ensureGoTools } from '../test/env/go-tools.ts';

const bins = await ensureBinaries();
for (const [name, path] of Object.entries(bins) as [string, string][]) {
  const args = name === 'kubectl' ? ['version', '--client'] : ['--version'];
  const out = execFileSync(path, args, { encoding: 'utf8' }).trim().split('\n')[0] ?? '';
  console.log(`${name.padEnd(14)} ${out.padEnd(40)} ${path}`);
}
const tools = await ensureGoTools();
for (const [name, path] of Object.entries(tools)) {
  const version = name.startsWith('helm') ? execFileSync(path, ['version', '--short'], { encoding: 'utf8' }).trim() : (/-(v[\d.]+)(-[0-9a-f]+)?$/.exec(path)?.[1] ?? '');
  console.log(`${name.padEnd(14)} ${version.padEnd(40)} ${path}`);
}
