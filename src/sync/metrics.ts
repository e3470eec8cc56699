/**
 * SyncSchedule metrics (DESIGN.md, Observability), on the process registry; labels are the
 * namespace and the SyncSchedule name. The replica that ran a run reports it.
 */
import { Counter, Gauge, Histogram, type Registry } from '../observability/index.ts';

export type RecordOutcome = 'fetched' | 'unchanged' | 'written' | 'failed' | 'deleted' | 'parked';
type L = 'namespace' | 'syncschedule';

export class SyncMetrics {
  readonly runs: Counter<L | 'result'>;
  readonly duration: Histogram<L | 'result'>;
  readonly records: Counter<L | 'outcome'>;
  readonly mismatches: Gauge<L | 'kind'>;
  readonly lastSuccess: Gauge<L>;
  readonly sinceSuccess: Gauge<L>;
  private readonly successAt = new Map<string, { namespace: string; syncschedule: string; at: number }>();

  constructor(registry: Registry, now: () => number) {
    const registers = [registry];
    this.runs = new Counter({ name: 'ferry_sync_runs_total', help: 'Sync runs by result.', labelNames: ['namespace', 'syncschedule', 'result'], registers });
    this.duration = new Histogram({
      name: 'ferry_sync_run_duration_seconds',
      help: 'Duration of one sync run.',
      labelNames: ['namespace', 'syncschedule', 'result'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers,
    });
    this.records = new Counter({ name: 'ferry_sync_records_total', help: 'Records by outcome.', labelNames: ['namespace', 'syncschedule', 'outcome'], registers });
    this.mismatches = new Gauge({ name: 'ferry_sync_mismatches', help: 'Mismatches the last reconciliation found, by kind.', labelNames: ['namespace', 'syncschedule', 'kind'], registers });
    this.lastSuccess = new Gauge({ name: 'ferry_sync_last_success_timestamp_seconds', help: 'When a run last succeeded.', labelNames: ['namespace', 'syncschedule'], registers });
    const successAt = this.successAt;
    this.sinceSuccess = new Gauge({
      name: 'ferry_sync_seconds_since_last_success',
      help: 'Seconds since a run last succeeded (on the replica that ran it).',
      labelNames: ['namespace', 'syncschedule'],
      registers,
      collect() {
        this.reset();
        for (const s of successAt.values()) this.set({ namespace: s.namespace, syncschedule: s.syncschedule }, Math.max(0, (now() - s.at) / 1000));
      },
    });
  }

  succeeded(namespace: string, syncschedule: string, at: number): void {
    this.successAt.set(`${namespace}/${syncschedule}`, { namespace, syncschedule, at });
    this.lastSuccess.set({ namespace, syncschedule }, at / 1000);
  }

  count(namespace: string, syncschedule: string, outcome: RecordOutcome, n: number): void {
    if (n > 0) this.records.inc({ namespace, syncschedule, outcome }, n);
  }

  forget(namespace: string, syncschedule: string): void {
    this.successAt.delete(`${namespace}/${syncschedule}`);
    this.lastSuccess.remove({ namespace, syncschedule });
  }
}
