/**
 * src/api — Ferry's custom resources: zod schemas (the single source of the TypeScript types,
 * the spec parser and the CRD schemas), spec parsing with field paths, resolution into runtime
 * configuration, CRD generation and status-condition helpers. Pure: no I/O, no other Ferry folder.
 */
export { API_VERSION, CATEGORY, FINALIZER, GROUP, INTEGRATION, REDRIVE_ANNOTATION, RUN_NOW_ANNOTATION, SYNC_SCHEDULE, VERSION, type FerryKind } from './constants.ts';
export {
  ConditionInvalidError,
  CrdSchemaError,
  DurationInvalidError,
  RedriveRequestInvalidError,
  SpecInvalidError,
  TemplatePointerMissingError,
  TemplateSyntaxError,
  TemplateValueError,
  type SpecIssue,
} from './errors.ts';
export { DURATION_MESSAGE, DURATION_PATTERN, durationSchema, parseDuration, positiveDurationSchema, tryParseDuration } from './duration.ts';
export { formatKubeTime } from './time.ts';
export {
  FALLBACK_REASONS,
  parseRedriveRequest,
  REDRIVE_ANNOTATIONS,
  REDRIVE_ID_MAX_LENGTH,
  REDRIVE_NEWER_THAN_ANNOTATION,
  REDRIVE_OLDER_THAN_ANNOTATION,
  REDRIVE_REASONS_ANNOTATION,
  REDRIVE_SEQUENCES_ANNOTATION,
  redriveAnnotations,
  redriveFilterSchema,
  redriveSelects,
  type ParkedMessageFacts,
  type ParkedReason,
  type RedriveFilter,
  type RedriveRequest,
} from './redrive.ts';

export {
  integrationResourceSchema,
  integrationRuntimeSchema,
  integrationSpecSchema,
  pipelineReplicasOf,
  integrationStatusSchema,
  slaSchema,
  type IntegrationResource,
  type IntegrationSpec,
  type IntegrationSpecInput,
  type IntegrationStatus,
} from './integration.ts';
export {
  SYNC_HISTORY_LIMIT,
  syncRunSchema,
  syncScheduleResourceSchema,
  syncScheduleSpecSchema,
  syncScheduleStatusSchema,
  type SyncRun,
  type SyncScheduleResource,
  type SyncScheduleSpec,
  type SyncScheduleSpecInput,
  type SyncScheduleStatus,
} from './sync-schedule.ts';
export { syncReportEventSchema, syncReportSchema, type SyncReport, type SyncReportEvent } from './sync-report.ts';
export type { Auth, ConfigMapKeyRef, SecretKeyRef } from './auth.ts';
export type { SchemaSource, Transform } from './pipeline.ts';
export type { RateLimit } from './http.ts';
export type { ObjectMeta } from './object-meta.ts';
export { INITIAL_STATUS } from './status.ts';

export { formatFieldPath, parseIntegrationSpec, parseSyncScheduleSpec, type SpecParseResult } from './parse.ts';
export {
  DEFAULT_TRANSFORM_TIMEOUT_MS,
  resolveIntegrationConfig,
  resolveSla,
  resolveSyncScheduleConfig,
  type ResolvedAuth,
  type ResolvedIntegrationConfig,
  type ResolvedWebhook,
  type ResolvedRateLimit,
  type ResolvedRetryOn,
  type ResolvedSchemaSource,
  type ResolvedSla,
  type ResolvedStartAt,
  type ResolvedSyncScheduleConfig,
  type ResolvedTransform,
} from './resolve.ts';

export {
  ConditionStatus,
  ConditionType,
  Reason,
  conditionSchema,
  findCondition,
  isConditionCurrent,
  isConditionTrue,
  removeCondition,
  setCondition,
  type Condition,
  type ConditionUpdate,
} from './conditions.ts';

export {
  buildCrds,
  buildIntegrationCrd,
  buildSyncScheduleCrd,
  crdFiles,
  renderCrdYaml,
  type CrdFile,
  type CustomResourceDefinition,
  type PrinterColumn,
} from './crds.ts';
export type { StructuralSchema } from './crd-schema.ts';
export { ANNOTATIONS, kindReference, referenceFile, renderReference, type KindReference, type ReferenceAnnotation, type ReferenceField, type ReferenceRule } from './reference.ts';

export { compileJsonSchema, describeValidationErrors, pointerToField, type CompileResult, type ValidateFunction } from './compile-schema.ts';
export { JsonSchemaCache } from './schema-cache.ts';
export { compileJsonata, compileMapping, parsePointer, type CompiledJsonata, type CompiledMapping, type CompiledTransform } from './compile-transform.ts';
export { subjectCaptured, subjectMatches } from './subjects.ts';
export { findSecretRefs, inputsKey, referencesKey, specReferences, type FoundSecretRef, type SpecReferences } from './references.ts';
export { compileTemplate, renderTemplate, resolvePointer, type CompiledTemplate, type TemplateEscape } from './template.ts';
export {
  checkSyncScheduleSpec,
  compileIntegrationSpec,
  nextRun,
  type AuthCredentials,
  type CompiledIntegrationSpec,
  type CompiledSyncScheduleSpec,
  type ReferenceLookup,
  type SchemaCompiler,
  type SpecCheck,
  type SpecProblem,
} from './compile-spec.ts';
