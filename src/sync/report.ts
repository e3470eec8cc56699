/**
 * What a run tells the controller (the only writer of status), through the shared runs bucket
 * (`<namespace>.<name>.report`): the last run, a bounded history, the schedule times, the failed
 * index size, a Degraded verdict and the Events to emit. Written by whichever replica ran.
 */
import { SYNC_HISTORY_LIMIT, type SyncReport, type SyncReportEvent, type SyncRun } from '../api/index.ts';
import type { SharedKv } from '../nats/index.ts';

export type ReportEvent = SyncReportEvent;

export class ReportWriter {
  private readonly kv: SharedKv;
  private readonly key: string;
  private readonly uid: string;

  constructor(kv: SharedKv, keyPrefix: string, uid: string) {
    this.kv = kv;
    this.key = `${keyPrefix}.report`;
    this.uid = uid;
  }

  /** A run started (status shows it Running). */
  async started(run: SyncRun, scheduled: boolean): Promise<void> {
    await this.kv.update<SyncReport>(this.key, (c) => {
      const cur = c?.uid === this.uid ? c : undefined;
      return {
        ...this.base(cur),
        lastRun: run,
        ...(scheduled ? { lastScheduleTime: run.startedAt } : {}),
      };
    });
  }

  /** A run ended (or was skipped). */
  async finished(run: SyncRun, o: { scheduled: boolean; failedRecords?: number; degraded?: SyncReport['degraded'] | null; events: readonly ReportEvent[] }): Promise<void> {
    await this.kv.update<SyncReport>(this.key, (c) => {
      const cur = c?.uid === this.uid ? c : undefined;
      const base = this.base(cur);
      const history = [run, ...base.history.filter((h) => h.id !== run.id)].slice(0, SYNC_HISTORY_LIMIT);
      return {
        ...base,
        lastRun: run,
        history,
        ...(o.scheduled && run.result === 'Skipped' ? { lastScheduleTime: run.startedAt } : {}),
        ...(run.result === 'Succeeded' ? { lastSuccessfulTime: run.finishedAt } : {}),
        ...(o.failedRecords === undefined ? {} : { failedRecords: o.failedRecords }),
        ...(o.degraded === undefined ? {} : o.degraded === null ? { degraded: undefined } : { degraded: o.degraded }),
        events: [...o.events],
        eventsRunId: run.id,
      };
    });
  }

  private base(cur: SyncReport | undefined): SyncReport {
    return cur ?? { uid: this.uid, history: [], failedRecords: 0, events: [] };
  }
}
