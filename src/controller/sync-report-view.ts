/**
 * Leader-only: keeps the latest run report of every SyncSchedule (from the shared runs bucket,
 * written by whichever replica ran) and enqueues the SyncSchedule when it changes. Like the
 * runtime view, it never writes status itself: the reconciler stays the single writer.
 */
import { syncReportSchema, type SyncReport } from '../api/index.ts';
import type { Runnable, Store, WorkQueue } from '../kube/index.ts';
import { syncRunsKeyPrefix, type SharedKv } from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import type { FerryObject } from './ferry-object.ts';

export interface SyncReportViewDeps {
  readonly syncSchedules: Store<FerryObject>;
  readonly queue: WorkQueue;
  /** SYNC_RUNS_BUCKET. */
  readonly runs: SharedKv;
  readonly clock: Clock;
  readonly logger: Logger;
}

export class SyncReportView implements Runnable {
  readonly name = 'sync report view';
  private readonly d: SyncReportViewDeps;
  private readonly log: Logger;
  private readonly reports = new Map<string, SyncReport>();

  constructor(deps: SyncReportViewDeps) {
    this.d = deps;
    this.log = deps.logger.child({ component: 'sync-report-view' });
  }

  /** The latest report of a SyncSchedule (`namespace`, `name`), if it is for this uid. */
  report(namespace: string, name: string, uid: string | undefined): SyncReport | undefined {
    const r = this.reports.get(syncRunsKeyPrefix({ namespace, name }));
    return r && r.uid === uid ? r : undefined;
  }

  async start(signal: AbortSignal): Promise<void> {
    await this.d.runs.watchUntilAborted(
      '*.*.report',
      (key, value) => {
        const prefix = key.slice(0, -'.report'.length);
        const parsed = value === undefined ? undefined : syncReportSchema.safeParse(value);
        if (parsed && !parsed.success) {
          this.log.warn({ key, err: parsed.error.message }, 'ignoring a sync run report that does not match its schema');
          return;
        }
        if (parsed) this.reports.set(prefix, parsed.data);
        else this.reports.delete(prefix);
        for (const obj of this.d.syncSchedules.list()) {
          const meta = obj.metadata;
          if (meta?.namespace && meta.name && syncRunsKeyPrefix({ namespace: meta.namespace, name: meta.name }) === prefix) this.d.queue.add(`${meta.namespace}/${meta.name}`);
        }
      },
      signal,
      (ms, s) => this.d.clock.sleep(ms, s),
      (err) => {
        this.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'sync report watch failed; retrying');
      },
    );
  }
}
