/**
 * YAML that every reader reads the same. kubectl, Helm, Argo CD and Flux parse YAML 1.1, where
 * a plain `off`, `y` or `No` is a boolean, `010` is octal 8, `1:20` is the base-60 number 80 and
 * `2024-06-01` is a timestamp; YAML 1.2 readers (and this project's own) take most of those as
 * strings, and read `0o10` as a number where 1.1 readers see a string. A file written for one
 * and read by the other silently changes meaning — or, as with `default: off` in a CRD, is
 * refused by the API server with an error that names neither YAML nor the quote that is missing.
 */
import { Document, Schema, visit } from 'yaml';

const STRING_TAG = 'tag:yaml.org,2002:str';
const MERGE_TAG = 'tag:yaml.org,2002:merge';
const readers = [new Schema({ schema: 'yaml-1.1' }), new Schema({ schema: 'core' })];
// Plain scalars that YAML 1.1 types give a meaning the schemas above do not model: the merge
// key and PyYAML's value key.
const SPECIAL = new Set(['<<', '=']);

/**
 * True when `text`, written as a plain (unquoted) scalar, reads as that same string in YAML 1.1
 * and in YAML 1.2. Syntax (`: `, ` #`, leading indicators) is not judged here: the stringifier
 * quotes for syntax on its own; this is about what a reader's schema makes of the word.
 */
export function plainReadsAsString(text: string): boolean {
  if (SPECIAL.has(text)) return false;
  return readers.every((schema) => {
    // How a reader resolves a plain scalar: the first default tag whose pattern matches.
    const tag = schema.tags.find((t) => t.default !== undefined && t.default !== false && t.test?.test(text) === true);
    return tag === undefined || tag.tag === STRING_TAG;
  });
}

/**
 * Renders `value` (plain JSON data) as YAML that YAML 1.1 and YAML 1.2 readers both read back as
 * `value`: every string, key or value, that either would read as something else is
 * double-quoted. Deterministic; long strings are not folded.
 */
export function stringifyForEveryReader(value: unknown): string {
  // Without the merge tag: `<<` in the data is a string to quote, not a merge key to write.
  const doc = new Document(value, { version: '1.1', customTags: (tags) => tags.filter((t) => typeof t === 'string' || t.tag !== MERGE_TAG) });
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && !plainReadsAsString(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return doc.toString({ lineWidth: 0 });
}
