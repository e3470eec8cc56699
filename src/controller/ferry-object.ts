/**
 * The shape of Integration and SyncSchedule objects as the watch caches hold them: metadata the
 * controller reads, the raw (unparsed) spec, and the status it last wrote. The spec stays
 * `unknown` on purpose: it is parsed (and may be invalid) on every reconcile.
 */
import { isDeepStrictEqual } from 'node:util';
import { GROUP, VERSION, type Condition } from '../api/index.ts';
import type { KubeObject, ObjectMeta, ObjectRef, ResourceType } from '../kube/index.ts';

export interface FerryObjectStatus {
  readonly observedGeneration?: number;
  readonly conditions?: readonly Condition[];
  readonly [field: string]: unknown;
}

export interface FerryObject extends KubeObject {
  readonly metadata?: ObjectMeta & { readonly deletionTimestamp?: string };
  readonly spec?: unknown;
  readonly status?: FerryObjectStatus;
}

export function resourceType(plural: string): ResourceType {
  return { group: GROUP, version: VERSION, plural };
}

export function refOf(type: ResourceType, obj: FerryObject): ObjectRef & { readonly namespace: string } {
  return { ...type, namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '' };
}

/**
 * True when writing `next` would change nothing. Timestamps inside conditions only move when a
 * status flips (setCondition), so an unchanged outcome compares equal and no write happens.
 */
export function statusUnchanged(current: FerryObjectStatus | undefined, next: FerryObjectStatus): boolean {
  return Object.entries(next).every(([k, v]) => isDeepStrictEqual(normalise(current?.[k]), normalise(v)));
}

function normalise(value: unknown): unknown {
  // JSON round trip: drops `undefined` fields and readonly-array distinctions alike. A null is
  // how a merge patch removes a field: the same as absent.
  return value === undefined ? undefined : (JSON.parse(JSON.stringify(value), (_k, v: unknown) => (v === null ? undefined : v)) as unknown);
}
