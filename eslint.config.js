// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Ferry's import rules (STYLE.md): which folder under src/ may import which.
 * Each entry lists the folders a folder must NOT import; `@nats-io/*` stays inside src/nats.
 */
const folders = ['api', 'observability', 'kube', 'nats', 'delivery', 'controller', 'runtime', 'sync', 'ingress', 'cli'];
const allowed = {
  api: [],
  observability: [],
  kube: ['observability'],
  nats: ['observability'],
  delivery: ['observability'],
  controller: ['api', 'kube', 'nats', 'observability'],
  runtime: ['api', 'kube', 'nats', 'delivery', 'observability'],
  sync: ['api', 'kube', 'nats', 'delivery', 'observability'],
  ingress: ['api', 'nats', 'observability'],
  cli: folders.filter((f) => f !== 'cli'),
};

// The package root loads every generated API class and model (about 45 MiB): values come from
// src/kube/client-node.ts, which imports their own modules (see src/cli/slim-kube-client.ts).
const clientNodeRoot = {
  name: '@kubernetes/client-node',
  allowTypeImports: true,
  message: 'Import client-node values through src/kube (client-node.ts): the package root loads every generated API.',
};

const layerRules = folders.map((folder) => {
  const forbidden = folders.filter((f) => f !== folder && !allowed[folder].includes(f));
  const patterns = [
    ...forbidden.map((f) => ({
      group: [`../${f}`, `../${f}/**`, `../../${f}`, `../../${f}/**`],
      message: `src/${folder} may not import src/${f} (see STYLE.md, "who may import whom").`,
    })),
    // No deep imports across folders: go through the folder's index.ts.
    ...allowed[folder].map((f) => ({
      group: [`../${f}/*`, `!../${f}/index.ts`],
      message: `Import src/${f} through its index.ts, not its internals.`,
    })),
  ];
  if (folder !== 'nats') {
    patterns.push({ group: ['@nats-io/*'], message: 'Only src/nats imports @nats-io/* packages.' });
  }
  return {
    files: [`src/${folder}/**/*.ts`],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { paths: [clientNodeRoot], patterns }] },
  };
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.tools/**', 'crds/**', 'charts/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
      // @kubernetes/client-node models are generated classes with no behaviour; object literals are
      // how its own docs build them.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
    },
  },
  {
    // Entry points, scripts, tests and benchmarks talk to a terminal.
    files: ['src/cli/**/*.ts', 'scripts/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: {
      // node:test's describe/it return promises that the runner awaits itself.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      // node:assert's assertion signatures narrow types, so a test's defensive `?.` after an
      // assert reads as "unnecessary"; in tests it is clearer to keep it.
      '@typescript-eslint/no-unnecessary-condition': 'off',
    },
  },
  { files: ['eslint.config.js'], ...tseslint.configs.disableTypeChecked },
  ...layerRules,
);
