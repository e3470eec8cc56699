/**
 * The Secrets and ConfigMaps a spec references, found by walking the raw spec (it may not parse).
 * Shared by the controller (requeue an object when something it uses changes; report a missing
 * one with its field path) and the runtime (recompile a pipeline only when its inputs changed).
 */

export interface FoundSecretRef {
  readonly field: string;
  readonly name: string;
  readonly key: string;
}

const SECRET_REF_KEY = /(^secretKeyRef|SecretKeyRef|SecretRef|secretKeyRefs)$/;

/** Every secretKeyRef in a spec, with its field path, in spec order. */
export function findSecretRefs(value: unknown, path = 'spec'): FoundSecretRef[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => findSecretRefs(v, `${path}[${i}]`));
  if (typeof value !== 'object' || value === null) return [];
  const found: FoundSecretRef[] = [];
  for (const [k, v] of Object.entries(value)) {
    const field = `${path}.${k}`;
    if (SECRET_REF_KEY.test(k)) {
      const refs = Array.isArray(v) ? v.map((r, i) => [r, `${field}[${i}]`] as const) : [[v, field] as const];
      for (const [r, f] of refs) {
        const ref = r as { name?: unknown; key?: unknown };
        if (typeof ref.name === 'string' && typeof ref.key === 'string') found.push({ field: f, name: ref.name, key: ref.key });
      }
    } else {
      found.push(...findSecretRefs(v, field));
    }
  }
  return found;
}

export interface SpecReferences {
  /** Secret names (in the object's namespace). */
  readonly secrets: ReadonlySet<string>;
  /** ConfigMap names (in the object's namespace). */
  readonly configMaps: ReadonlySet<string>;
}

export function specReferences(spec: unknown): SpecReferences {
  const secrets = new Set(findSecretRefs(spec).map((r) => r.name));
  const configMaps = new Set<string>();
  const schemaRef = (spec as { schema?: { configMapKeyRef?: { name?: unknown } } } | undefined)?.schema?.configMapKeyRef?.name;
  if (typeof schemaRef === 'string') configMaps.add(schemaRef);
  return { secrets, configMaps };
}

/**
 * A key that changes exactly when a generation's inputs change: the object's generation and the
 * resourceVersion of every Secret and ConfigMap it references (absent ones included as "-").
 * Work derived from a spec (compiling schemas and transforms) is redone only when it changes.
 */
export function inputsKey(
  uid: string | undefined,
  generation: number,
  spec: unknown,
  versionOf: (kind: 'Secret' | 'ConfigMap', name: string) => string | undefined,
): string {
  return referencesKey(uid, generation, specReferences(spec), versionOf);
}

/**
 * {@link inputsKey} from references already found: a caller that looks at the same spec over and
 * over (the runtime's periodic pass over every Integration) walks each spec once, not per pass.
 */
export function referencesKey(
  uid: string | undefined,
  generation: number,
  refs: SpecReferences,
  versionOf: (kind: 'Secret' | 'ConfigMap', name: string) => string | undefined,
): string {
  const parts = [uid ?? '', String(generation)];
  for (const name of [...refs.secrets].sort()) parts.push(`s:${name}@${versionOf('Secret', name) ?? '-'}`);
  for (const name of [...refs.configMaps].sort()) parts.push(`c:${name}@${versionOf('ConfigMap', name) ?? '-'}`);
  return parts.join('|');
}
