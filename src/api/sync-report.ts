/**
 * What a SyncSchedule run reports to the controller (the only writer of status) through the
 * shared runs bucket: the runner writes it, the controller validates it with this schema and
 * turns it into status, conditions and Events. One schema, so the two cannot drift apart.
 */
import { z } from 'zod';
import { syncRunSchema } from './sync-schedule.ts';

export const syncReportEventSchema = z.object({
  type: z.enum(['Normal', 'Warning']),
  reason: z.string(),
  message: z.string(),
});
export type SyncReportEvent = z.output<typeof syncReportEventSchema>;

export const syncReportSchema = z.object({
  /** The SyncSchedule's uid: a re-created object never shows the old one's runs. */
  uid: z.string(),
  lastRun: syncRunSchema.optional(),
  history: z.array(syncRunSchema),
  lastScheduleTime: z.string().optional(),
  lastSuccessfulTime: z.string().optional(),
  failedRecords: z.number().int().min(0),
  /** Set by a run that found something an SRE must look at; cleared by a clean run. */
  degraded: z.object({ reason: z.string(), message: z.string() }).optional(),
  /** Events of the last finished run (the controller emits each run's once). */
  events: z.array(syncReportEventSchema),
  /** The run that produced `events`. */
  eventsRunId: z.string().optional(),
});
export type SyncReport = z.output<typeof syncReportSchema>;
