/**
 * Which watch events are worth a reconcile, and which Ferry objects a Secret or ConfigMap
 * change concerns. Pure functions used by the wiring between watchers and work queues.
 */
import { FINALIZER, specReferences } from '../api/index.ts';
import type { FerryObject } from './ferry-object.ts';

/**
 * Skips status-only updates: our own status writes would otherwise requeue every object once
 * more after each reconcile. A change of generation (spec), of finalizers, of the deletion
 * timestamp or of annotations (a redrive request) is worth a reconcile; so is every add, delete
 * and resync — except Ferry's own finalizer being added with nothing else changed: the reconcile
 * that added it went on to do the rest (ReconcileSteps.withFinalizer). Its removal still counts.
 */
export function shouldEnqueue(type: 'added' | 'modified' | 'deleted' | 'resync', obj: FerryObject, old?: FerryObject): boolean {
  if (type !== 'modified' || !old) return true;
  const a = obj.metadata;
  const b = old.metadata;
  return (
    a?.generation !== b?.generation ||
    a?.deletionTimestamp !== b?.deletionTimestamp ||
    JSON.stringify(withoutAddedFinalizer(a?.finalizers, b?.finalizers)) !== JSON.stringify(b?.finalizers ?? []) ||
    JSON.stringify(a?.annotations ?? {}) !== JSON.stringify(b?.annotations ?? {})
  );
}

/** `now` without Ferry's finalizer when `before` did not have it: that addition is our own write. */
function withoutAddedFinalizer(now: readonly string[] | undefined, before: readonly string[] | undefined): readonly string[] {
  const list = now ?? [];
  return before?.includes(FINALIZER) ? list : list.filter((f) => f !== FINALIZER);
}

/** The Secrets and ConfigMaps (by name, in the object's namespace) that an object's spec references. */
export function referencedObjects(obj: FerryObject): { readonly secrets: ReadonlySet<string>; readonly configMaps: ReadonlySet<string> } {
  return specReferences(obj.spec);
}
