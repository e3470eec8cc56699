/**
 * `npm run gen:crds`: writes crds/*.yaml from the zod schemas in src/api, and the same files into
 * the Helm chart's charts/ferry/crds/ (Helm installs a chart's crds/ before its templates; a
 * chart cannot reach outside its folder, so it carries a copy).
 * `npm run gen:crds -- --check`: writes nothing; exits 1 and names every file that is stale or
 * missing, in both places (for CI and pre-commit).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crdFiles } from '../src/api/index.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

async function readOrEmpty(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') return '';
    throw err;
  }
}

/** Where the generated CRDs go: the repository's crds/ and the chart's copy. */
const CHART_CRDS = 'charts/ferry/crds';
const targets = crdFiles().flatMap((file) => [file, { path: join(CHART_CRDS, basename(file.path)), content: file.content }]);

let stale = 0;
for (const file of targets) {
  const path = join(root, file.path);
  const current = await readOrEmpty(path);
  if (current === file.content) {
    console.log(`${file.path}: up to date`);
    continue;
  }
  if (check) {
    stale++;
    console.error(`${file.path}: ${current === '' ? 'missing' : 'stale'}; run npm run gen:crds`);
    continue;
  }
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, file.content);
  console.log(`${file.path}: written`);
}
if (stale > 0) process.exit(1);
