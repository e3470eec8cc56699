/**
 * The two CustomResourceDefinitions, generated from the zod schemas. `npm run gen:crds` writes
 * them to crds/; a unit test fails when those files are stale.
 */
import type { z } from 'zod';
import { CATEGORY, GROUP, INTEGRATION, SYNC_SCHEDULE, VERSION } from './constants.ts';
import { toStructuralSchema, type StructuralSchema } from './crd-schema.ts';
import { integrationResourceSchema } from './integration.ts';
import { syncScheduleResourceSchema } from './sync-schedule.ts';
import { stringifyForEveryReader } from './yaml.ts';

/** One `additionalPrinterColumns` entry. */
export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

/** A CustomResourceDefinition (apiextensions.k8s.io/v1) in wire format, as written to YAML. */
export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames: string[]; categories: string[] };
    scope: 'Namespaced';
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: PrinterColumn[];
      schema: { openAPIV3Schema: StructuralSchema };
    }[];
  };
}

const READY = '.status.conditions[?(@.type=="Ready")]';
const readyColumns: PrinterColumn[] = [
  { name: 'Ready', type: 'string', jsonPath: `${READY}.status` },
  { name: 'Reason', type: 'string', jsonPath: `${READY}.reason` },
];
const ageColumn: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

type Names = typeof INTEGRATION | typeof SYNC_SCHEDULE;

function buildCrd(names: Names, resource: z.ZodType, description: string, columns: PrinterColumn[]): CustomResourceDefinition {
  const schema = toStructuralSchema(resource);
  const properties = schema.properties ?? {};
  // The API server owns apiVersion, kind and metadata; the CRD may only say they exist.
  const openAPIV3Schema: StructuralSchema = {
    type: 'object',
    description,
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion of this object (ferry.dev/v1alpha1).' },
      kind: { type: 'string', description: `Kind of this object (${names.kind}).` },
      metadata: { type: 'object' },
      ...(properties.spec ? { spec: properties.spec } : {}),
      ...(properties.status ? { status: properties.status } : {}),
    },
    required: ['spec'],
  };
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: names.crdName, labels: { 'app.kubernetes.io/name': 'ferry', 'app.kubernetes.io/part-of': 'ferry' } },
    spec: {
      group: GROUP,
      names: {
        kind: names.kind,
        listKind: names.listKind,
        plural: names.plural,
        singular: names.singular,
        shortNames: [...names.shortNames],
        categories: [CATEGORY],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [...columns, ageColumn],
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

/** The Integration CRD. */
export function buildIntegrationCrd(): CustomResourceDefinition {
  return buildCrd(
    INTEGRATION,
    integrationResourceSchema,
    'Integration consumes events from a NATS JetStream stream, validates and transforms them, and delivers them over HTTP; what cannot be delivered is parked in a fallback stream with the reason.',
    [
      ...readyColumns,
      { name: 'Delivered', type: 'integer', jsonPath: '.status.stats.delivered' },
      { name: 'Fallback', type: 'integer', jsonPath: '.status.fallbackPending' },
      { name: 'Suspended', type: 'boolean', jsonPath: '.spec.suspend', priority: 1 },
    ],
  );
}

/** The SyncSchedule CRD. */
export function buildSyncScheduleCrd(): CustomResourceDefinition {
  return buildCrd(
    SYNC_SCHEDULE,
    syncScheduleResourceSchema,
    'SyncSchedule reads a source API incrementally on a cron schedule, writes changes to a target API in batches within a rate limit, and reconciles the two by key.',
    [
      ...readyColumns,
      { name: 'Last run', type: 'date', jsonPath: '.status.lastRun.startedAt' },
      { name: 'Result', type: 'string', jsonPath: '.status.lastRun.result' },
      { name: 'Next run', type: 'date', jsonPath: '.status.nextScheduleTime' },
      { name: 'Fallback', type: 'integer', jsonPath: '.status.fallbackPending' },
      { name: 'Schedule', type: 'string', jsonPath: '.spec.schedule', priority: 1 },
      { name: 'Suspended', type: 'boolean', jsonPath: '.spec.suspend', priority: 1 },
    ],
  );
}

/** Both CRDs: Integration, then SyncSchedule. Pure and deterministic. */
export function buildCrds(): readonly [CustomResourceDefinition, CustomResourceDefinition] {
  return [buildIntegrationCrd(), buildSyncScheduleCrd()];
}

/** One generated file under crds/. */
export interface CrdFile {
  /** Path relative to the repository root, e.g. `crds/integrations.ferry.dev.yaml`. */
  readonly path: string;
  readonly content: string;
}

const HEADER = '# Generated by `npm run gen:crds` from the zod schemas in src/api. Do not edit: edit src/api and regenerate.\n';

/**
 * Renders a CRD as the YAML written to crds/ (with the "generated" header). kubectl, Helm, Argo
 * CD and Flux read YAML 1.1: every string they would read as something else (`off`, `y`, `010`,
 * `1:20`, …) is quoted, so they get the document generated here.
 */
export function renderCrdYaml(crd: CustomResourceDefinition): string {
  return HEADER + stringifyForEveryReader(crd);
}

/** The files `npm run gen:crds` writes, with their content. */
export function crdFiles(): CrdFile[] {
  return buildCrds().map((crd) => ({ path: `crds/${crd.metadata.name}.yaml`, content: renderCrdYaml(crd) }));
}
