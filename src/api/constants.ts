/**
 * Names of Ferry's two custom resources. Every folder that talks to the API server about them
 * takes the names from here, so a rename is one edit.
 */

/** API group of both custom resources. */
export const GROUP = 'ferry.dev';
/** The one served and stored version. */
export const VERSION = 'v1alpha1';
/** `apiVersion` of both kinds, as written in manifests. */
export const API_VERSION = `${GROUP}/${VERSION}` as const;
/** `kubectl get ferry` lists both kinds. */
export const CATEGORY = 'ferry';

/** Names of the Integration kind (event-driven delivery). */
export const INTEGRATION = {
  kind: 'Integration',
  listKind: 'IntegrationList',
  plural: 'integrations',
  singular: 'integration',
  shortNames: ['ig'],
  crdName: `integrations.${GROUP}`,
} as const;

/** Names of the SyncSchedule kind (scheduled incremental sync). */
export const SYNC_SCHEDULE = {
  kind: 'SyncSchedule',
  listKind: 'SyncScheduleList',
  plural: 'syncschedules',
  singular: 'syncschedule',
  shortNames: ['ss'],
  crdName: `syncschedules.${GROUP}`,
} as const;

/** Kind names, for values that may be either resource. */
export type FerryKind = typeof INTEGRATION.kind | typeof SYNC_SCHEDULE.kind;

/** Finalizer the controller puts on both kinds to clean up JetStream resources on delete. */
export const FINALIZER = `${GROUP}/cleanup`;

/**
 * Annotation that requests a redrive of an Integration's fallback messages. Any new value
 * triggers one redrive, so a GitOps commit can ask for it.
 */
export const REDRIVE_ANNOTATION = `${GROUP}/redrive`;

/** Annotation that runs a SyncSchedule once now: any new value triggers one run. */
export const RUN_NOW_ANNOTATION = `${GROUP}/run-now`;
