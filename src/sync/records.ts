/**
 * Pure record helpers: reading keys and change cursors by JSON Pointer, turning cursor values
 * into comparable instants, and the content hash of a transformed record (stable under key
 * order, so `{a,b}` and `{b,a}` are one content).
 */
import { hash } from 'node:crypto';
import { parsePointer, resolvePointer } from '../api/index.ts';

export type CursorFormat = 'rfc3339' | 'unixSeconds' | 'unixMillis';

/** A compiled JSON Pointer. */
export type Pointer = readonly string[];

export function pointer(text: string): Pointer {
  // Pointers come from a validated spec.
  return parsePointer(text) ?? [];
}

export function valueAt(document: unknown, at: Pointer): unknown {
  const r = resolvePointer(document, at);
  return r.found ? r.value : undefined;
}

/** A record's key as a string, or undefined when it has none usable. */
export function keyOf(record: unknown, at: Pointer): string | undefined {
  const v = valueAt(record, at);
  if (typeof v === 'string') return v.length > 0 ? v : undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/** The change cursor as epoch milliseconds, or undefined when missing or unreadable. */
export function cursorMs(record: unknown, at: Pointer, format: CursorFormat): number | undefined {
  const v = valueAt(record, at);
  if (format === 'rfc3339') {
    if (typeof v !== 'string') return undefined;
    const ms = Date.parse(v);
    return Number.isNaN(ms) ? undefined : ms;
  }
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n)) return undefined;
  return format === 'unixSeconds' ? n * 1000 : n;
}

/** How a watermark instant goes into the source's query parameter. */
export function formatCursor(ms: number, format: CursorFormat): string {
  if (format === 'rfc3339') return new Date(ms).toISOString();
  return format === 'unixSeconds' ? String(Math.floor(ms / 1000)) : String(Math.floor(ms));
}

/** JSON with object keys sorted at every level: one text per content. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  // undefined (and functions) have no JSON text; they are left out of objects above.
  return value === undefined ? 'null' : JSON.stringify(value);
}

/**
 * Content hash of a transformed record: 128 bits of SHA-256 over its canonical JSON, base64url
 * (22 characters). Short, since one is kept per key; collisions are out of reach at any size.
 */
export function contentHash(value: unknown): string {
  return hashText(canonicalJson(value));
}

/**
 * The content hash of a record whose JSON text is already canonical for its spec: a `mapping`
 * builds its output in the mapping's order, the same for every record, so sorting keys (half the
 * cost of a hash) adds nothing. A reordered mapping changes every hash once: one idempotent rewrite.
 */
export function orderedContentHash(value: unknown): string {
  return hashText(value === undefined ? 'null' : JSON.stringify(value));
}

function hashText(text: string): string {
  // One-shot hash: no Hash object per record.
  return hash('sha256', text, 'base64url').slice(0, 22);
}

/** A key as a KV key token: base64url, so any key (slashes, dots, spaces) is a valid subject token. */
export function keyToken(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url') || '_';
}

export function tokenKey(token: string): string {
  return token === '_' ? '' : Buffer.from(token, 'base64url').toString('utf8');
}

/** The mapped fields of a target record: only the fields the transform produces are compared. */
export function projectLike(target: unknown, shape: unknown): unknown {
  if (shape === null || typeof shape !== 'object' || Array.isArray(shape)) return target;
  if (target === null || typeof target !== 'object' || Array.isArray(target)) return target;
  const out: Record<string, unknown> = {};
  const t = target as Record<string, unknown>;
  for (const [k, v] of Object.entries(shape as Record<string, unknown>)) {
    if (v === undefined) continue;
    out[k] = projectLike(t[k], v);
  }
  return out;
}
