/**
 * `npm run env:build`: builds (or finds in the cache) the pinned control-plane binaries and
 * prints their paths and versions. Tests, the demo and env:up call the same code on demand.
 */
import { execFileSync } from 'node:child_process';
import { ensureBinaries } from '../test/env/binaries.ts';

const bins = await ensureBinaries();
for (const [name, path] of Object.entries(bins) as [string, string][]) {
  const args = name === 'kubectl' ? ['version', '--client'] : ['--version'];
  const out = execFileSync(path, args, { encoding: 'utf8' }).trim().split('\n')[0] ?? '';
  console.log(`${name.padEnd(14)} ${out.padEnd(40)} ${path}`);
}
