/**
 * The Argo CD install snippets for Ferry's health check, generated from deploy/argocd/health.lua
 * so what users paste is always the script the tests run: an `argocd-cm` ConfigMap to merge into
 * Argo CD's, and the same keys as values for the argo-cd Helm chart (`configs.cm`). One script
 * serves both kinds, which write the same conditions.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export const ARGOCD_DIR = 'deploy/argocd';

/** The argocd-cm keys Argo CD reads a kind's health check from (`<group>_<kind>`). */
export const HEALTH_KEYS = ['resource.customizations.health.ferry.dev_Integration', 'resource.customizations.health.ferry.dev_SyncSchedule'] as const;

export interface GeneratedFile {
  /** Relative to the repository root. */
  readonly path: string;
  readonly content: string;
}

function block(script: string, indent: string): string {
  // A literal block scalar keeps the script byte for byte (one trailing newline, as the file has).
  return script
    .replace(/\n+$/, '')
    .split('\n')
    .map((line) => (line === '' ? '' : indent + line))
    .join('\n');
}

function keys(script: string, indent: string): string {
  return HEALTH_KEYS.map((k) => `${indent}${k}: |\n${block(script, indent + '  ')}\n`).join('');
}

const HEADER = '# Generated from deploy/argocd/health.lua by `npm run gen:argocd`: edit that file, then run it.\n';

/** The snippets for `script` (the contents of health.lua). */
export function argocdFiles(script: string): GeneratedFile[] {
  return [
    {
      path: `${ARGOCD_DIR}/argocd-cm.yaml`,
      content:
        HEADER +
        '# Merge into Argo CD\'s ConfigMap (namespace argocd here; use yours):\n' +
        '#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file deploy/argocd/argocd-cm.yaml\n' +
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\ndata:\n' +
        keys(script, '  '),
    },
    {
      path: `${ARGOCD_DIR}/argo-cd-values.yaml`,
      content:
        HEADER +
        '# Values for the argo-cd Helm chart (argo/argo-cd), which renders configs.cm into argocd-cm:\n' +
        '#   helm upgrade --install argocd argo/argo-cd -n argocd --reuse-values -f deploy/argocd/argo-cd-values.yaml\n' +
        'configs:\n  cm:\n' +
        keys(script, '    '),
    },
  ];
}

/** Reads health.lua under `root` and returns the snippets it generates. */
export async function argocdFilesFrom(root: string): Promise<GeneratedFile[]> {
  return argocdFiles(await readFile(join(root, ARGOCD_DIR, 'health.lua'), 'utf8'));
}
