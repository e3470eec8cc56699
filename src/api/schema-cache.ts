/**
 * Compiled JSON Schemas shared by content. Compiling is the expensive part of checking a spec
 * (a new ajv instance, the meta-schema check, code generation) and each compiled validator keeps
 * its ajv instance alive: N Integrations that carry the same schema — one team's many targets,
 * copies from one template — would otherwise cost N compilations on the controller and again on
 * the runtime, and N validators in memory. Keyed by the schema's JSON text and the CR field it
 * was found at (a failure names that field), so a different schema never gets another's result.
 *
 * Sharing a validator is safe because ajv validators are synchronous and every caller reads
 * `validate.errors` right after its own call, before anything else can run.
 *
 * Bounded: the least recently used entry is dropped past `capacity`; a dropped validator lives on
 * in the pipelines that use it, only a later compile of the same schema is no longer shared.
 */
import type { SchemaCompiler } from './compile-spec.ts';
import { compileJsonSchema, type CompileResult, type ValidateFunction } from './compile-schema.ts';

export class JsonSchemaCache {
  private readonly entries = new Map<string, CompileResult<ValidateFunction>>();
  private readonly capacity: number;

  constructor(capacity = 512) {
    this.capacity = capacity;
  }

  /**
   * {@link compileJsonSchema}, answered from the cache when the same schema was compiled at the
   * same field. A bound function, so it can be handed on as a {@link SchemaCompiler}.
   */
  readonly compile: SchemaCompiler = (schema, field) => {
    const key = `${field}\n${JSON.stringify(schema)}`;
    const hit = this.entries.get(key);
    if (hit) {
      // Re-inserted: Map order is the recency order the eviction below relies on.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const result = compileJsonSchema(schema, field);
    this.entries.set(key, result);
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    return result;
  };

  get size(): number {
    return this.entries.size;
  }
}
