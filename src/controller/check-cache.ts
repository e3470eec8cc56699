/**
 * Remembers a spec check per object until its inputs change (generation, or the version of a
 * referenced Secret or ConfigMap). Reconciles repeat for reasons that do not touch the spec —
 * runtime status every few seconds, periodic resyncs — and compiling JSON Schemas on each of them
 * would dominate the controller's CPU.
 */
import { inputsKey, type ReferenceLookup, type SpecCheck } from '../api/index.ts';
import type { FerryObject } from './ferry-object.ts';

export class CheckCache<T> {
  private readonly entries = new Map<string, { readonly inputs: string; readonly check: SpecCheck<T> }>();

  get(key: string, obj: FerryObject, lookup: ReferenceLookup, compute: () => SpecCheck<T>): SpecCheck<T> {
    const ns = obj.metadata?.namespace ?? '';
    const version = lookup.version;
    // Without versions there is no safe key: check every time.
    if (!version) return compute();
    const inputs = inputsKey(obj.metadata?.uid, obj.metadata?.generation ?? 0, obj.spec, (kind, name) => version(kind, ns, name));
    const hit = this.entries.get(key);
    if (hit?.inputs === inputs) return hit.check;
    const check = compute();
    this.entries.set(key, { inputs, check });
    return check;
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}
