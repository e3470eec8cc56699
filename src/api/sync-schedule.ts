/**
 * The SyncSchedule kind: on a cron schedule, read a source API incrementally, transform, write
 * to a target API in batches within a rate limit, and reconcile the two by key.
 * `syncScheduleSpecSchema` is the single source of the TypeScript types, the parser
 * (`parseSyncScheduleSpec`) and the CRD schema.
 */
import { z } from 'zod';
import { authSchema } from './auth.ts';
import { describe, withRules } from './crd-meta.ts';
import { conditionsSchema } from './conditions.ts';
import { API_VERSION, SYNC_SCHEDULE } from './constants.ts';
import { durationSchema, positiveDurationSchema } from './duration.ts';
import { fieldPointerSchema, headersSchema, httpUrlSchema, jsonPointerSchema, queryParamSchema, urlTemplateSchema } from './fields.ts';
import { DEFAULT_SUCCESS_CODES, encodingSchema, rateLimitSchema, successCodesSchema } from './http.ts';
import { objectMetaSchema } from './object-meta.ts';
import { fallbackSchema, schemaSourceSchema, transformSchema } from './pipeline.ts';
import { cronSchema, timeZoneSchema } from './schedule.ts';
import { countSchema, INITIAL_STATUS, observedGenerationSchema } from './status.ts';
import { timeSchema } from './time.ts';

/**
 * How to walk a paged response.
 * - `Cursor`: the next cursor is at `cursorPath` in the response and sent as `param`.
 * - `Page`: page numbers from `start` (default 1) in `param`.
 * - `Offset`: the number of records read so far in `param`.
 * - `LinkHeader`: follow the `Link: <…>; rel="next"` response header (RFC 8288).
 * - `NextUrl`: follow the next page's full URL, from the body (`nextUrlPath`, e.g.
 *   `/@odata.nextLink`, `/paging/next/link`, `/next`) or a header of its own (`nextUrlHeader`).
 */
const paginationSchema = describe(
  withRules(
    z.strictObject({
      type: describe(z.enum(['Cursor', 'Page', 'Offset', 'LinkHeader', 'NextUrl']), 'How the next page is found: Cursor, Page, Offset, LinkHeader or NextUrl.'),
      cursorPath: describe(jsonPointerSchema, 'JSON Pointer to the next cursor in a response (Cursor).').optional(),
      nextUrlPath: describe(fieldPointerSchema, 'JSON Pointer to the next page\'s URL in a response (NextUrl), such as /@odata.nextLink.').optional(),
      nextUrlHeader: describe(z.string().max(64).regex(/^[A-Za-z0-9-]{1,64}$/, 'must be an HTTP header name'), 'Response header that carries the next page\'s URL (NextUrl).').optional(),
      param: describe(queryParamSchema, 'Query parameter that carries the cursor, page number or offset.').optional(),
      sizeParam: describe(queryParamSchema, 'Query parameter that carries size.').optional(),
      size: describe(z.int().min(1).max(10_000), 'Records per page to ask for.').optional(),
      start: describe(z.int().min(0).max(1_000_000), 'First page number or offset (default 1 for Page, 0 for Offset).').optional(),
      maxPages: describe(z.int().min(1).max(1_000_000), 'Safety bound on pages read in one run.').default(10_000),
    }),
    [
      {
        rule: "self.type != 'Cursor' || (has(self.cursorPath) && has(self.param))",
        message: 'Cursor pagination needs cursorPath and param',
        holds: (p) => p.type !== 'Cursor' || (p.cursorPath !== undefined && p.param !== undefined),
      },
      {
        rule: "!(self.type in ['Page', 'Offset']) || has(self.param)",
        message: 'Page and Offset pagination need param',
        fieldPath: '.param',
        reason: 'FieldValueRequired',
        holds: (p) => (p.type !== 'Page' && p.type !== 'Offset') || p.param !== undefined,
      },
      {
        rule: "self.type != 'NextUrl' || (has(self.nextUrlPath) != has(self.nextUrlHeader))",
        message: 'NextUrl pagination needs exactly one of nextUrlPath or nextUrlHeader',
        holds: (p) => p.type !== 'NextUrl' || (p.nextUrlPath !== undefined) !== (p.nextUrlHeader !== undefined),
      },
    ],
  ),
  'Pagination: Cursor (cursorPath + param), Page (param), Offset (param), LinkHeader (the Link rel="next" header) or NextUrl (nextUrlPath or nextUrlHeader). A next URL or cursor already followed, or a page identical to the previous one, fails the run.',
);

/**
 * Incremental reads: only records changed since the watermark W (kept in KV). A run asks for
 * `param >= W - lookback` and never moves W past `its start - safetyLag`.
 */
const incrementalSchema = describe(
  z.strictObject({
    param: describe(queryParamSchema, 'Query parameter that carries the lower bound.'),
    field: describe(fieldPointerSchema, 'JSON Pointer to the change cursor in each record (e.g. /updatedAt).'),
    format: describe(z.enum(['RFC3339', 'UnixSeconds', 'UnixMillis']), 'How the cursor value is written.').default('RFC3339'),
    lookback: describe(durationSchema, 'Overlap re-read on every run, for late commits and clock skew.').default('1m'),
    safetyLag: describe(durationSchema, 'Records newer than run start minus this wait for the next run.').default('30s'),
  }),
  'Read only what changed since the last run.',
);

const sourceSchema = describe(z.strictObject({
  url: describe(httpUrlSchema, 'The source collection, such as https://crm.example.com/api/contacts.'),
  headers: headersSchema.optional(),
  auth: authSchema.optional(),
  timeout: describe(positiveDurationSchema, 'Time limit for one request.').default('30s'),
  rateLimit: describe(rateLimitSchema, 'Requests per second to the source, shared by all replicas.').optional(),
  pagination: paginationSchema.optional(),
  incremental: incrementalSchema.optional(),
  recordsPath: describe(jsonPointerSchema, 'JSON Pointer to the array of records in a response ("" = the whole body).').default(''),
}), 'The API records are read from.');

const lookupSchema = describe(
  z.strictObject({
    url: describe(httpUrlSchema, 'URL that lists the target records.'),
    recordsPath: describe(jsonPointerSchema, 'JSON Pointer to the array of records in a response ("" = the whole body).').default(''),
    key: describe(fieldPointerSchema, 'JSON Pointer to the key in each target record.'),
    pagination: paginationSchema.optional(),
  }),
  'How to list the target, for reconciliation.',
);

const targetSchema = describe(z.strictObject({
  url: urlTemplateSchema,
  method: describe(z.enum(['POST', 'PUT', 'PATCH']), 'PUT to upsert by key, or POST to a batch endpoint with batch.size.').default('PUT'),
  encoding: encodingSchema.default('JSON'),
  headers: headersSchema.optional(),
  auth: authSchema.optional(),
  timeout: describe(positiveDurationSchema, 'Time limit for one request.').default('30s'),
  successCodes: successCodesSchema.default(DEFAULT_SUCCESS_CODES),
  deleteUrl: describe(urlTemplateSchema, 'Where a record is deleted (mode Mirror), with DELETE; default target.url, which then must template the key.').optional(),
  lookup: lookupSchema.optional(),
}), 'The API records are written to.');

/** Delete propagation for mode Mirror; exported so that its defaults have one source. */
export const deletesSchema = describe(
  z.strictObject({
    softDeleteField: describe(fieldPointerSchema, 'Records whose value here is true are deleted in the target.').optional(),
    maxCount: describe(z.int().min(0).max(1_000_000), 'Most deletes one run may make.').default(100),
    maxPercent: describe(z.number().min(0).max(100), 'Most deletes one run may make, in percent of the target records.').default(10),
  }),
  'Deletes (mode Mirror): stop and report Degraded above maxCount deletes or maxPercent of the target in one run.',
);

/** The desired state of a SyncSchedule. */
export const syncScheduleSpecSchema = describe(withRules(
  z.strictObject({
    schedule: cronSchema,
    timeZone: timeZoneSchema.optional(),
    suspend: describe(z.boolean(), 'Skip scheduled runs; a running run finishes.').default(false),
    startingDeadline: describe(
      positiveDurationSchema,
      'A run missed while no operator ran is still started (once, however many were missed) if it is at most this late; default 1h.',
    ).optional(),
    concurrencyPolicy: describe(
      z.enum(['Forbid', 'Replace']),
      'When a run is due while the previous one still runs: Forbid skips it, Replace cancels the old run.',
    ).default('Forbid'),
    source: sourceSchema,
    key: describe(fieldPointerSchema, 'JSON Pointer to the identity of a record, the same in both systems.'),
    schema: schemaSourceSchema.optional(),
    transform: transformSchema.optional(),
    target: targetSchema,
    mode: describe(
      z.enum(['Upsert', 'Update', 'Insert', 'Mirror']),
      'Upsert writes every changed record; Update only existing ones; Insert only new ones; Mirror also propagates deletes.',
    ).default('Upsert'),
    deletes: deletesSchema.optional(),
    batch: describe(
      z.strictObject({
        size: describe(z.int().min(1).max(1_000), 'Records per request; above 1 needs a batch endpoint.').default(1),
        itemsPath: describe(jsonPointerSchema, 'Where the records go in the batch request body ("" = the body is the array).').default('/records'),
        resultsPath: describe(jsonPointerSchema, 'Where the per-record results are in a batch response, in request order; absent: the HTTP status judges the whole batch.').default('/results'),
        itemStatusPath: describe(fieldPointerSchema, 'The HTTP-like status of one record in its result.').default('/status'),
      }),
      'Records per target request, and how a batch endpoint reports each record.',
    ).prefault({}),
    rateLimit: describe(rateLimitSchema, 'Requests per second to the target, shared by all replicas.').optional(),
    reconcile: describe(
      withRules(
        z.strictObject({
          mode: describe(z.enum(['None', 'Report', 'Repair']), 'None, Report (count mismatches) or Repair (also fix them).').default('None'),
          dryRun: describe(z.boolean(), 'With Repair: report what repair would do, change nothing.').default(false),
        }),
        [
          {
            rule: "!has(self.dryRun) || !self.dryRun || (has(self.mode) && self.mode == 'Repair')",
            message: 'dryRun applies only to mode Repair',
            fieldPath: '.dryRun',
            holds: (r) => !r.dryRun || r.mode === 'Repair',
          },
        ],
      ),
      'Compare target to source by key after each run: report mismatches, or repair them (dryRun: only say what repair would do).',
    ).prefault({}),
    failedRecords: describe(
      z.strictObject({ maxAttempts: describe(z.int().min(1).max(100), 'Runs that retry a failed record before it is parked.').default(5) }),
      'Failed records are retried on later runs, then parked in the fallback stream.',
    ).prefault({}),
    fallback: fallbackSchema.prefault({}),
  }),
  [
    {
      rule: "!has(self.batch) || !has(self.batch.size) || self.batch.size <= 1 || !self.target.url.contains('{{')",
      message: 'batch.size above 1 needs a batch endpoint: target.url must not template from the record',
      fieldPath: '.batch.size',
      holds: (s) => s.batch.size <= 1 || !s.target.url.includes('{{'),
    },
    {
      rule: "self.mode != 'Mirror' || has(self.target.lookup) || (has(self.deletes) && has(self.deletes.softDeleteField))",
      message: 'mode Mirror needs target.lookup (to find records gone from the source) or deletes.softDeleteField',
      fieldPath: '.mode',
      holds: (s) => s.mode !== 'Mirror' || s.target.lookup !== undefined || s.deletes?.softDeleteField !== undefined,
    },
    {
      rule: "self.mode != 'Mirror' || self.target.url.contains('{{') || has(self.target.deleteUrl)",
      message: 'mode Mirror deletes one record at a time: target.url must template the key, or set target.deleteUrl',
      fieldPath: '.target.deleteUrl',
      reason: 'FieldValueRequired',
      holds: (s) => s.mode !== 'Mirror' || s.target.url.includes('{{') || s.target.deleteUrl !== undefined,
    },
    {
      rule: "!has(self.deletes) || self.mode == 'Mirror'",
      message: 'deletes applies only to mode Mirror',
      fieldPath: '.deletes',
      reason: 'FieldValueForbidden',
      holds: (s) => s.deletes === undefined || s.mode === 'Mirror',
    },
    {
      rule: "!has(self.reconcile) || !has(self.reconcile.mode) || self.reconcile.mode == 'None' || has(self.target.lookup)",
      message: 'reconcile needs target.lookup to read the target',
      fieldPath: '.target.lookup',
      reason: 'FieldValueRequired',
      holds: (s) => s.reconcile.mode === 'None' || s.target.lookup !== undefined,
    },
  ],
), 'Desired state: when to run, where records come from, how they are written, and how the two sides are reconciled.');

/** A validated SyncSchedule spec with every default applied. */
export type SyncScheduleSpec = z.output<typeof syncScheduleSpecSchema>;
/** A SyncSchedule spec as written in a manifest (defaults may be missing). */
export type SyncScheduleSpecInput = z.input<typeof syncScheduleSpecSchema>;

/** One run of a SyncSchedule. */
export const syncRunSchema = z.object({
  id: describe(z.string().max(64), 'Run ID, as in logs and Events.'),
  startedAt: describe(timeSchema, 'When the run started.'),
  finishedAt: describe(timeSchema, 'When the run ended.').optional(),
  result: describe(z.enum(['Running', 'Succeeded', 'Partial', 'Failed', 'Skipped']), 'Running, Succeeded, Partial (state committed, work left), Failed or Skipped.'),
  fetched: describe(countSchema, 'Records read from the source.').optional(),
  unchanged: describe(countSchema, 'Records skipped because the target already has this content.').optional(),
  written: describe(countSchema, 'Records the target acknowledged.').optional(),
  failed: describe(countSchema, 'Records that failed to write (retried on later runs).').optional(),
  deleted: describe(countSchema, 'Records deleted in the target (mode Mirror).').optional(),
  mismatches: describe(
    z.object({
      missing: describe(countSchema, 'Source records absent from the target.').optional(),
      extra: describe(countSchema, 'Target records absent from the source.').optional(),
      different: describe(countSchema, 'Records whose mapped fields differ.').optional(),
      found: describe(countSchema, 'All mismatches found.').optional(),
      repaired: describe(countSchema, 'Mismatches repaired (mode Repair).').optional(),
    }),
    'What reconciliation found and repaired.',
  ).optional(),
  watermark: describe(z.string().max(256), 'The change cursor committed by the run; the next run reads from here.').optional(),
  message: describe(z.string().max(1_024), 'Details: why the run failed, or a warning.').optional(),
});
export type SyncRun = z.output<typeof syncRunSchema>;

/** How many runs `status.history` keeps. */
export const SYNC_HISTORY_LIMIT = 10;

/** What the controller reports about a SyncSchedule. */
export const syncScheduleStatusSchema = describe(z.object({
  observedGeneration: observedGenerationSchema.optional(),
  conditions: conditionsSchema.optional(),
  lastScheduleTime: describe(timeSchema, 'When a run was last started by the schedule.').optional(),
  lastSuccessfulTime: describe(timeSchema, 'When a run last succeeded.').optional(),
  nextScheduleTime: describe(timeSchema, 'When the next run is due.').optional(),
  lastRun: describe(syncRunSchema, 'The most recent run.').optional(),
  history: describe(z.array(syncRunSchema).max(SYNC_HISTORY_LIMIT), `The most recent runs (at most ${SYNC_HISTORY_LIMIT}).`).optional(),
  failedRecords: describe(countSchema, 'Records in the failed-key index, retried on later runs.').optional(),
  fallbackPending: describe(countSchema, 'Records waiting in the fallback stream.').optional(),
}), 'Observed state, written by the operator: conditions, schedule times and the recent runs.');
export type SyncScheduleStatus = z.output<typeof syncScheduleStatusSchema>;

/**
 * A whole SyncSchedule object. Its CRD schema is generated from this; `status` defaults to
 * `{observedGeneration: -1}` so that kstatus sees a new object as in progress, not current.
 */
export const syncScheduleResourceSchema = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(SYNC_SCHEDULE.kind),
  metadata: objectMetaSchema,
  spec: syncScheduleSpecSchema,
  status: syncScheduleStatusSchema.default(INITIAL_STATUS),
});
/** A SyncSchedule manifest as written by users (status and defaults optional). */
export type SyncScheduleResource = z.input<typeof syncScheduleResourceSchema>;
