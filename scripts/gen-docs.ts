/**
 * `npm run gen:docs`: writes docs/reference.md from the zod schemas in src/api (through the CRDs'
 * OpenAPI schemas, so it says what `kubectl explain` and the API server say).
 * `npm run gen:docs -- --check`: writes nothing; exits 1 when the file is stale or missing.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { referenceFile } from '../src/api/index.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');
const file = referenceFile();
const path = join(root, file.path);

let current = '';
try {
  current = await readFile(path, 'utf8');
} catch (err) {
  if (!(err instanceof Error && 'code' in err && err.code === 'ENOENT')) throw err;
}
if (current === file.content) {
  console.log(`${file.path}: up to date`);
} else if (check) {
  console.error(`${file.path}: ${current === '' ? 'missing' : 'stale'}; run npm run gen:docs`);
  process.exit(1);
} else {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, file.content);
  console.log(`${file.path}: written`);
}
