/**
 * Spec parsing for the controller, the runtime and `ferry validate`: a raw `spec` (from the API
 * server or a file) → a typed spec with every default applied, or a {@link SpecInvalidError}
 * that names the exact field, in the form a `Stalled` condition shows:
 * `spec.delivery.backoff.initial: must be a duration such as 500ms, 30s or 5m`.
 */
import type { z } from 'zod';
import { INTEGRATION, SYNC_SCHEDULE, type FerryKind } from './constants.ts';
import { SpecInvalidError, type SpecIssue } from './errors.ts';
import { integrationSpecSchema, type IntegrationSpec } from './integration.ts';
import { syncScheduleSpecSchema, type SyncScheduleSpec } from './sync-schedule.ts';

/** The outcome of parsing a spec: never throws for bad input. */
export type SpecParseResult<T> = { readonly ok: true; readonly spec: T } | { readonly ok: false; readonly error: SpecInvalidError };

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `['delivery', 'retryOn', 2]` → `spec.delivery.retryOn[2]`; map keys go in brackets. */
export function formatFieldPath(path: readonly PropertyKey[], root = 'spec'): string {
  let out = root;
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && IDENTIFIER.test(segment)) out += `.${segment}`;
    else out += `[${String(segment)}]`;
  }
  return out;
}

function plural(n: number | bigint, word: string): string {
  return `${String(n)} ${word}${n === 1 || n === 1n ? '' : 's'}`;
}

// Messages for the issues zod reports with its own wording; schema-specific messages (patterns,
// rules) are written next to the schema and take precedence over this map.
const errorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? 'is required' : `must be ${issue.expected === 'object' ? 'an object' : `a ${issue.expected}`}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'too_small':
      if (issue.origin === 'string') return issue.minimum === 1 ? 'must not be empty' : `must be at least ${plural(issue.minimum, 'character')}`;
      if (issue.origin === 'array') return `must have at least ${plural(issue.minimum, 'item')}`;
      return `must be ${issue.inclusive === false ? 'greater than' : 'at least'} ${String(issue.minimum)}`;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${plural(issue.maximum, 'character')}`;
      if (issue.origin === 'array') return `must have at most ${plural(issue.maximum, 'item')}`;
      return `must be ${issue.inclusive === false ? 'less than' : 'at most'} ${String(issue.maximum)}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length === 1 ? '' : 's'} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    default:
      return undefined;
  }
};

function toIssue(issue: z.core.$ZodIssue): SpecIssue {
  // An unknown field is reported where it is, not at its parent, when there is only one.
  if (issue.code === 'unrecognized_keys' && issue.keys.length === 1) {
    return { field: formatFieldPath([...issue.path, ...issue.keys]), message: issue.message };
  }
  // A bad map key: say what is wrong with the key itself.
  if (issue.code === 'invalid_key') {
    const reason = issue.issues[0]?.message;
    return { field: formatFieldPath(issue.path), message: reason === undefined ? 'is not a valid key' : `key ${reason}` };
  }
  return { field: formatFieldPath(issue.path), message: issue.message };
}

function parseSpec<S extends z.ZodType>(schema: S, kind: FerryKind, raw: unknown): SpecParseResult<z.output<S>> {
  const result = schema.safeParse(raw, { error: errorMap });
  if (result.success) return { ok: true, spec: result.data };
  const [first, ...rest] = result.error.issues.map(toIssue);
  // zod never fails without an issue; the fallback keeps the type honest.
  return { ok: false, error: new SpecInvalidError(kind, [first ?? { field: 'spec', message: 'is invalid' }, ...rest]) };
}

/**
 * Parses an Integration's `spec`. On success every default is applied (the same defaults the
 * CRD applies). On failure the error names the first offending field and lists all of them.
 */
export function parseIntegrationSpec(raw: unknown): SpecParseResult<IntegrationSpec> {
  return parseSpec(integrationSpecSchema, INTEGRATION.kind, raw);
}

/**
 * Parses a SyncSchedule's `spec`. On success every default is applied (the same defaults the
 * CRD applies). On failure the error names the first offending field and lists all of them.
 */
export function parseSyncScheduleSpec(raw: unknown): SpecParseResult<SyncScheduleSpec> {
  return parseSpec(syncScheduleSpecSchema, SYNC_SCHEDULE.kind, raw);
}
