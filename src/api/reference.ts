/**
 * `docs/reference.md`, generated from the CRDs' OpenAPI schemas — which are generated from the
 * zod schemas — so the reference, `kubectl explain` and the API server's validation say the same
 * thing. `npm run gen:docs` writes it; a unit test fails when the file is stale.
 *
 * Every field of `spec` and `status` of both kinds gets one row: path, type, whether it is
 * required, its default, its bounds (lengths, item counts, ranges, enums, patterns, formats) and
 * its description; every CEL rule is listed with the field it is declared on, the field the API
 * server reports it at, and its message. The annotations the operator reads are listed too.
 */
import { FINALIZER, REDRIVE_ANNOTATION, RUN_NOW_ANNOTATION } from './constants.ts';
import type { StructuralSchema } from './crd-schema.ts';
import { buildCrds, type CustomResourceDefinition } from './crds.ts';
import {
  FALLBACK_REASONS,
  REDRIVE_ID_MAX_LENGTH,
  REDRIVE_NEWER_THAN_ANNOTATION,
  REDRIVE_OLDER_THAN_ANNOTATION,
  REDRIVE_REASONS_ANNOTATION,
  REDRIVE_SEQUENCES_ANNOTATION,
} from './redrive.ts';

/** One field of a kind, as its reference row shows it. */
export interface ReferenceField {
  /** Dotted path from the object root: `spec.source.subjects[]`, `spec.target.headers.<name>`. */
  readonly path: string;
  readonly type: string;
  readonly required: boolean;
  /** The schema default as JSON, when there is one. */
  readonly default?: string;
  /** Constraints as Markdown, e.g. `length 1–255`, ``one of: `POST`, `PUT` ``. */
  readonly bounds: readonly string[];
  readonly description: string;
}

/** One CEL rule (`x-kubernetes-validations`), with where it is declared and reported. */
export interface ReferenceRule {
  /** The field whose schema declares the rule (`self`). */
  readonly field: string;
  /** The field the API server names in its error: `field` plus the rule's `fieldPath`. */
  readonly reportedAt: string;
  readonly message: string;
}

/** Everything the reference says about one kind. */
export interface KindReference {
  readonly kind: string;
  readonly description: string;
  readonly fields: readonly ReferenceField[];
  readonly rules: readonly ReferenceRule[];
}

/** An annotation the operator reads, for the reference's annotation table. */
export interface ReferenceAnnotation {
  readonly name: string;
  readonly kind: string;
  /** Markdown. */
  readonly value: string;
  /** Markdown. */
  readonly meaning: string;
}

/** The annotations users set (and the finalizer the operator sets), in the order they are documented. */
export const ANNOTATIONS: readonly ReferenceAnnotation[] = [
  {
    name: REDRIVE_ANNOTATION,
    kind: 'Integration',
    value: `any new value (at most ${REDRIVE_ID_MAX_LENGTH} characters), e.g. \`$(date +%s)\``,
    meaning: 'Requests a redrive of the fallback stream: a value not answered yet starts one; the same value is never run twice. The answer is `status.lastRedrive`.',
  },
  {
    name: REDRIVE_REASONS_ANNOTATION,
    kind: 'Integration',
    value: `comma-separated \`Ferry-Reason\`s: ${FALLBACK_REASONS.map((r) => `\`${r}\``).join(', ')}`,
    meaning: 'Redrive filter: only messages parked for these reasons (default all). Read together with the request id: changing only a filter starts nothing.',
  },
  {
    name: REDRIVE_SEQUENCES_ANNOTATION,
    kind: 'Integration',
    value: '`100-250`, `100-`, `-250` or one number (inclusive, from 1)',
    meaning: 'Redrive filter: fallback stream sequences.',
  },
  {
    name: REDRIVE_OLDER_THAN_ANNOTATION,
    kind: 'Integration',
    value: 'a duration such as `1h`',
    meaning: 'Redrive filter: messages parked at least this long before the redrive started.',
  },
  {
    name: REDRIVE_NEWER_THAN_ANNOTATION,
    kind: 'Integration',
    value: 'a duration such as `24h`',
    meaning: 'Redrive filter: messages parked at most this long before the redrive started.',
  },
  {
    name: RUN_NOW_ANNOTATION,
    kind: 'SyncSchedule',
    value: 'any new value',
    meaning: 'Runs the SyncSchedule once now, also while it is suspended (`kubectl annotate ss/NAME ferry.dev/run-now=$(date +%s) --overwrite`).',
  },
  {
    name: FINALIZER,
    kind: 'both (finalizer)',
    value: 'set by the operator',
    meaning: 'Lets the operator remove the consumer and shared KV state before the object goes; fallback streams are kept.',
  },
];

function typeOf(node: StructuralSchema): string {
  if (node['x-kubernetes-int-or-string']) return 'integer or string';
  if (node['x-kubernetes-preserve-unknown-fields']) return 'object (free-form)';
  if (node.type === 'array') return `array of ${node.items ? typeOf(node.items) : 'unknown'}`;
  if (node.type === 'object' && node.additionalProperties) return `map of ${typeOf(node.additionalProperties)}`;
  const type = node.type ?? 'unknown';
  return node.format === undefined ? type : `${type} (${node.format})`;
}

function range(min: number | undefined, max: number | undefined): string | undefined {
  if (min === undefined && max === undefined) return undefined;
  if (min === undefined) return `≤ ${String(max)}`;
  if (max === undefined) return `≥ ${String(min)}`;
  return min === max ? String(min) : `${String(min)}–${String(max)}`;
}

function boundsOf(node: StructuralSchema): string[] {
  const out: string[] = [];
  const push = (label: string, value: string | undefined): void => {
    if (value !== undefined) out.push(`${label} ${value}`);
  };
  if (node.enum) out.push(`one of: ${node.enum.map((v) => code(String(v))).join(', ')}`);
  push('value', range(node.minimum, node.maximum));
  push('length', range(node.minLength, node.maxLength));
  push('items', range(node.minItems, node.maxItems));
  push('entries', range(node.minProperties, node.maxProperties));
  if (node.pattern !== undefined) out.push(`pattern ${code(node.pattern)}`);
  const listType = node['x-kubernetes-list-type'];
  if (listType === 'map') out.push(`list keyed by ${(node['x-kubernetes-list-map-keys'] ?? []).join(', ')}`);
  else if (listType === 'set') out.push('unique items');
  // Bounds of a list's items or a map's values belong to the field that holds them.
  const inner = node.items ?? node.additionalProperties;
  if (inner && !inner.properties) {
    for (const b of boundsOf(inner)) out.push(`each: ${b}`);
  }
  return out;
}

function collect(node: StructuralSchema, path: string, required: boolean, fields: ReferenceField[], rules: ReferenceRule[]): void {
  fields.push({
    path,
    type: typeOf(node),
    required,
    ...(node.default === undefined ? {} : { default: JSON.stringify(node.default) }),
    bounds: boundsOf(node),
    description: node.description ?? '',
  });
  addRules(node, path, rules);
  walkChildren(node, path, fields, rules);
}

function addRules(node: StructuralSchema, path: string, rules: ReferenceRule[]): void {
  for (const rule of node['x-kubernetes-validations'] ?? []) {
    rules.push({ field: path, reportedAt: rule.fieldPath === undefined ? path : `${path}${rule.fieldPath}`, message: rule.message });
  }
}

function walkChildren(node: StructuralSchema, path: string, fields: ReferenceField[], rules: ReferenceRule[]): void {
  if (node['x-kubernetes-preserve-unknown-fields']) return;
  const required = new Set(node.required ?? []);
  for (const [name, child] of Object.entries(node.properties ?? {})) collect(child, `${path}.${name}`, required.has(name), fields, rules);
  // A list's items and a map's values are described by the field that holds them; their own
  // fields (a list of objects) get rows under `[]` / `.<name>`, their rules are listed here.
  if (node.items) {
    addRules(node.items, `${path}[]`, rules);
    walkChildren(node.items, `${path}[]`, fields, rules);
  }
  if (node.additionalProperties) {
    addRules(node.additionalProperties, `${path}.<name>`, rules);
    walkChildren(node.additionalProperties, `${path}.<name>`, fields, rules);
  }
}

/** What the reference says about one CRD's kind. Pure. */
export function kindReference(crd: CustomResourceDefinition): KindReference {
  const [version] = crd.spec.versions;
  if (!version) throw new TypeError(`${crd.metadata.name} has no version`);
  const root = version.schema.openAPIV3Schema;
  const fields: ReferenceField[] = [];
  const rules: ReferenceRule[] = [];
  const required = new Set(root.required ?? []);
  // apiVersion, kind and metadata are the API server's; only spec and status are Ferry's.
  for (const part of ['spec', 'status'] as const) {
    const node = root.properties?.[part];
    if (node) collect(node, part, required.has(part), fields, rules);
  }
  return { kind: crd.spec.names.kind, description: root.description ?? '', fields, rules };
}

/** Prose safe inside one Markdown table cell: shown as written, never read as emphasis, HTML or code. */
function cell(text: string): string {
  return text.replaceAll(/[\\`*_<|]/g, (c) => (c === '<' ? '&lt;' : `\\${c}`)).replaceAll(/\s*\n\s*/g, ' ').trim();
}

/** A code span for a table cell: pipes escaped (GFM), doubled fences around text with a backtick. */
function code(text: string): string {
  const t = text.replaceAll('|', '\\|').replaceAll(/\s*\n\s*/g, ' ');
  return text.includes('`') ? `\`\` ${t} \`\`` : `\`${t}\``;
}

/** GitHub's anchor of the heading `### <kind> <part>`. */
function anchor(kind: string, part: string): string {
  return `${kind} ${part}`.toLowerCase().replaceAll(' ', '-');
}

function renderKind(ref: KindReference, crd: CustomResourceDefinition): string {
  const lines: string[] = [];
  const names = crd.spec.names;
  lines.push(`## ${ref.kind}`, '');
  lines.push(`\`apiVersion: ${crd.spec.group}/${crd.spec.versions[0]?.name ?? ''}\`, \`kind: ${ref.kind}\`, namespaced; plural \`${names.plural}\`, short name${names.shortNames.length === 1 ? '' : 's'} ${names.shortNames.map((s) => `\`${s}\``).join(', ')}, category \`${names.categories.join(', ')}\`.`, '');
  lines.push(cell(ref.description), '');
  const columns = crd.spec.versions[0]?.additionalPrinterColumns ?? [];
  lines.push(`\`kubectl get ${names.plural}\` columns: ${columns.map((c) => `${c.name} (${code(c.jsonPath)}${c.priority ? ', with `-o wide`' : ''})`).join(', ')}.`, '');
  for (const part of ['spec', 'status'] as const) {
    const rows = ref.fields.filter((f) => f.path === part || f.path.startsWith(`${part}.`));
    lines.push(`### ${ref.kind} ${part}`, '');
    lines.push('| Field | Type | Required | Default | Bounds | Description |', '|---|---|---|---|---|---|');
    for (const f of rows) {
      lines.push(`| ${code(f.path)} | ${cell(f.type)} | ${f.required ? 'yes' : ''} | ${f.default === undefined ? '' : code(f.default)} | ${f.bounds.join('; ')} | ${cell(f.description)} |`);
    }
    lines.push('');
  }
  lines.push(`### ${ref.kind} validation rules`, '');
  lines.push('CEL rules the API server checks on create and update (and `ferry validate` offline); a violation is refused with the message, at the field named in "Reported at".', '');
  lines.push('| Declared on | Reported at | Message |', '|---|---|---|');
  for (const r of ref.rules) lines.push(`| ${code(r.field)} | ${code(r.reportedAt)} | ${cell(r.message)} |`);
  lines.push('');
  return lines.join('\n');
}

const HEADER = '<!-- Generated by `npm run gen:docs` from the zod schemas in src/api (the same source as crds/). Do not edit: edit src/api and regenerate. -->\n';

/** The whole reference document. Pure and deterministic. */
export function renderReference(crds: readonly CustomResourceDefinition[] = buildCrds()): string {
  const out: string[] = [HEADER, '# Ferry API reference', ''];
  out.push(
    'Every field of the two custom resources, generated from the same zod schemas as `crds/`: type, whether it is required, the default the API server fills in, bounds, and description; then the CEL rules with their messages. Durations are written like `500ms`, `30s`, `5m`, `1h`, `14d`. The operator reports what only it can check (a JSON Schema that does not compile, a missing Secret or stream) as `Stalled=True` with the field; see [operations.md](operations.md).',
    '',
  );
  out.push('Contents: ' + [...crds.flatMap((c) => ['spec', 'status', 'validation rules'].map((p) => `[${c.spec.names.kind} ${p}](#${anchor(c.spec.names.kind, p)})`)), '[Annotations](#annotations)'].join(' · '), '');
  for (const crd of crds) out.push(renderKind(kindReference(crd), crd));
  out.push('## Annotations', '');
  out.push('| Annotation | On | Value | Meaning |', '|---|---|---|---|');
  // value and meaning are Markdown written here (with code spans), not schema prose.
  for (const a of ANNOTATIONS) out.push(`| ${code(a.name)} | ${cell(a.kind)} | ${a.value} | ${a.meaning} |`);
  out.push('');
  return out.join('\n');
}

/** The file `npm run gen:docs` writes, with its content. */
export function referenceFile(): { readonly path: string; readonly content: string } {
  return { path: 'docs/reference.md', content: renderReference() };
}
