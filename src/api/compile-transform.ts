/**
 * Compiles a spec's transform: a `mapping` of output fields to JSON Pointers into the event, or
 * a JSONata expression. Pure; shared by the controller (is this generation valid?) and the
 * runtime (the function it runs per event).
 */
import jsonata from 'jsonata';
import type { CompileResult } from './compile-schema.ts';

export interface CompiledMapping {
  readonly kind: 'mapping';
  /** Output path segments and the event pointer's segments, in spec order. */
  readonly entries: readonly { readonly to: readonly string[]; readonly from: readonly string[] }[];
}

export interface CompiledJsonata {
  readonly kind: 'jsonata';
  readonly expression: jsonata.Expression;
  readonly source: string;
}

export type CompiledTransform = CompiledMapping | CompiledJsonata;

/** Parses an RFC 6901 JSON Pointer; undefined when malformed. `""` is the whole document. */
export function parsePointer(pointer: string): string[] | undefined {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  const parts = pointer.slice(1).split('/');
  // `~` must be followed by 0 or 1.
  if (parts.some((p) => /~(?![01])/.test(p))) return undefined;
  return parts.map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
}

export function compileMapping(mapping: Readonly<Record<string, string>>, field: string): CompileResult<CompiledMapping> {
  const entries: { to: string[]; from: string[] }[] = [];
  for (const [out, pointer] of Object.entries(mapping)) {
    const from = parsePointer(pointer);
    if (!from) {
      return {
        ok: false,
        field: `${field}.${out}`,
        message: `${JSON.stringify(pointer)} is not a JSON Pointer (RFC 6901), such as "/customer/id"`,
      };
    }
    // An output key that is itself a pointer builds nested objects (`/customer/ref`).
    const to = out.startsWith('/') ? parsePointer(out) : [out];
    if (!to || to.length === 0) {
      return { ok: false, field: `${field}.${out}`, message: 'output key must be a property name or a JSON Pointer to a field' };
    }
    entries.push({ to, from });
  }
  return { ok: true, value: { kind: 'mapping', entries } };
}

interface JsonataError {
  readonly code?: string;
  readonly position?: number;
  readonly message?: string;
}

export function compileJsonata(source: string, field: string): CompileResult<CompiledJsonata> {
  try {
    return { ok: true, value: { kind: 'jsonata', expression: jsonata(source), source } };
  } catch (err) {
    const e = err as JsonataError;
    const at = typeof e.position === 'number' ? ` at position ${e.position}` : '';
    const code = e.code ? ` (${e.code})` : '';
    return { ok: false, field, message: `${e.message ?? 'invalid JSONata expression'}${at}${code}` };
  }
}
