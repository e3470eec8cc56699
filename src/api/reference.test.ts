import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { REDRIVE_ANNOTATIONS } from './redrive.ts';
import { RUN_NOW_ANNOTATION } from './constants.ts';
import type { StructuralSchema } from './crd-schema.ts';
import { buildCrds, type CustomResourceDefinition } from './crds.ts';
import { kindReference, referenceFile, renderReference } from './reference.ts';

const repoRoot = new URL('../../', import.meta.url);

function root(crd: CustomResourceDefinition): StructuralSchema {
  const schema = crd.spec.versions[0]?.schema.openAPIV3Schema;
  assert.ok(schema);
  return schema;
}

/** Every property under spec and status (what `kubectl explain` lists), and every CEL message. */
function inventory(schema: StructuralSchema, path: string, paths: string[], messages: string[]): void {
  paths.push(path);
  const visit = (node: StructuralSchema, at: string): void => {
    for (const rule of node['x-kubernetes-validations'] ?? []) messages.push(`${at}: ${rule.message}`);
    if (node['x-kubernetes-preserve-unknown-fields']) return;
    for (const [name, child] of Object.entries(node.properties ?? {})) inventory(child, `${at}.${name}`, paths, messages);
    if (node.items) visit(node.items, `${at}[]`);
    if (node.additionalProperties) visit(node.additionalProperties, `${at}.<name>`);
  };
  visit(schema, path);
}

/** Cells of a Markdown table row, splitting on pipes that are not escaped. */
function cells(line: string): string[] {
  return line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim());
}

describe('docs/reference.md', () => {
  it('matches the zod schemas (run npm run gen:docs when this fails)', () => {
    const file = referenceFile();
    let onDisk: string;
    try {
      onDisk = readFileSync(new URL(file.path, repoRoot), 'utf8');
    } catch {
      assert.fail(`${file.path} is missing: run npm run gen:docs`);
    }
    assert.ok(onDisk === file.content, `${file.path} is stale: run npm run gen:docs`);
  });

  it('has a row for every field of spec and status and every CEL rule of both kinds, nothing more', () => {
    for (const crd of buildCrds()) {
      const paths: string[] = [];
      const messages: string[] = [];
      for (const part of ['spec', 'status'] as const) {
        const node = root(crd).properties?.[part];
        assert.ok(node);
        inventory(node, part, paths, messages);
      }
      const ref = kindReference(crd);
      assert.deepEqual(ref.fields.map((f) => f.path), paths, crd.spec.names.kind);
      assert.deepEqual(ref.rules.map((r) => `${r.field}: ${r.message}`), messages, crd.spec.names.kind);
      assert.ok(ref.rules.length > 10);
    }
  });

  it('shows type, required, default, bounds and the field a cross-field rule reports at', () => {
    const [integration, syncSchedule] = buildCrds().map(kindReference);
    assert.ok(integration && syncSchedule);
    const field = (path: string) => {
      const f = integration.fields.find((x) => x.path === path) ?? syncSchedule.fields.find((x) => x.path === path);
      assert.ok(f, path);
      return f;
    };
    assert.deepEqual(field('spec.target.method'), { ...field('spec.target.method'), type: 'string', required: false, default: '"POST"', bounds: ['one of: `POST`, `PUT`, `PATCH`, `DELETE`'] });
    assert.equal(field('spec.delivery.maxAttempts').default, '5');
    assert.match(field('spec.delivery.maxAttempts').bounds.join(), /^value 1–\d+$/);
    assert.equal(field('spec.source').required, true);
    assert.equal(field('spec.source.subjects').type, 'array of string');
    assert.deepEqual(field('spec.source.subjects').bounds, ['items 1–16', 'each: length 1–255']);
    assert.equal(field('spec.target.headers').type, 'map of string');
    assert.equal(field('spec.schema.inline').type, 'object (free-form)');
    assert.equal(field('status.observedGeneration').default, undefined);
    assert.equal(field('status').default, '{"observedGeneration":-1}');
    assert.ok(integration.rules.some((r) => r.field === 'spec.delivery.backoff' && r.reportedAt === 'spec.delivery.backoff.initial' && r.message === 'initial must not be greater than max'));
    assert.ok(syncSchedule.rules.some((r) => r.field === 'spec' && r.reportedAt === 'spec.deletes' && r.message === 'deletes applies only to mode Mirror'));
  });

  it('keeps every table row to its columns and escapes prose (pipes, emphasis, HTML)', () => {
    const doc = renderReference();
    let header = 0;
    for (const line of doc.split('\n')) {
      if (!line.startsWith('|')) {
        header = 0;
        continue;
      }
      if (header === 0) header = cells(line).length;
      assert.equal(cells(line).length, header, line);
    }
    assert.match(doc, /Bearer &lt;token>/);
    assert.match(doc, /such as \\\*\/15 \\\* \\\* \\\* \\\*/);
  });

  it('lists every annotation users set', () => {
    const doc = renderReference();
    for (const name of [...REDRIVE_ANNOTATIONS, RUN_NOW_ANNOTATION]) assert.match(doc, new RegExp(`^\\| \`${name}\` \\|`, 'm'));
  });

  it('links only to headings and files that exist (docs/*.md and the README)', () => {
    const read = (path: string): string => readFileSync(new URL(path, repoRoot), 'utf8');
    // GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes.
    const anchors = (markdown: string): Set<string> =>
      new Set([...markdown.matchAll(/^#+ (.+)$/gm)].map((m) => (m[1] ?? '').toLowerCase().replaceAll(/[^\p{L}\p{N} _-]/gu, '').replaceAll(' ', '-')));
    const broken: string[] = [];
    for (const file of ['docs/reference.md', 'docs/operations.md', 'README.md']) {
      const text = file === 'docs/reference.md' ? renderReference() : read(file);
      // Code spans (patterns, PromQL) hold brackets that are not links.
      const prose = text.replaceAll(/``.*?``|`[^`\n]*`/g, '');
      for (const m of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
        const link = m[1] ?? '';
        if (/^[a-z]+:/.test(link)) continue;
        const [path = '', hash] = link.split('#');
        if (file === 'README.md' && !path.startsWith('docs/')) continue;
        const target = path === '' ? file : new URL(path, new URL(file, 'file:///')).pathname.slice(1);
        let body: string;
        try {
          body = target === 'docs/reference.md' ? renderReference() : read(target);
        } catch {
          broken.push(`${file}: ${link} (no such file)`);
          continue;
        }
        if (hash !== undefined && target.endsWith('.md') && !anchors(body).has(hash)) broken.push(`${file}: ${link} (no such heading)`);
      }
    }
    assert.deepEqual(broken, []);
  });

  it('is deterministic and starts with the "generated, do not edit" header', () => {
    assert.equal(renderReference(), renderReference());
    assert.match(renderReference(), /^<!-- Generated by `npm run gen:docs` .* Do not edit/);
  });
});
