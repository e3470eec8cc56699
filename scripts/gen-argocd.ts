/**
 * `npm run gen:argocd`: writes deploy/argocd/argocd-cm.yaml and argo-cd-values.yaml from
 * deploy/argocd/health.lua.
 * `npm run gen:argocd -- --check`: writes nothing; exits 1 and names every file that is stale.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { argocdFilesFrom } from './argocd-health.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
if (args.some((a) => a !== '--check')) {
  console.error('usage: node scripts/gen-argocd.ts [--check]');
  process.exit(2);
}
const check = args.includes('--check');

let stale = 0;
for (const file of await argocdFilesFrom(root)) {
  const path = join(root, file.path);
  const current = await readFile(path, 'utf8').catch(() => '');
  if (current === file.content) {
    console.log(`${file.path}: up to date`);
  } else if (check) {
    stale++;
    console.error(`${file.path}: ${current === '' ? 'missing' : 'stale'}; run npm run gen:argocd`);
  } else {
    await writeFile(path, file.content);
    console.log(`${file.path}: written`);
  }
}
if (stale > 0) process.exit(1);
