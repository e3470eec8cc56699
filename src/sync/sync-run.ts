/**
 * One run of a SyncSchedule, on the replica that holds its lock (DESIGN, SyncSchedule rules).
 *
 * read pages → per record: key, cursor, schema, transform, content hash → unchanged records are
 * skipped → changed ones written (per record or in batches) → hashes stored after the target's
 * acknowledgement → failed records to the failed-key index (retried on later runs, parked in
 * the fallback stream after `failedRecords.maxAttempts`) → deletes (Mirror) within thresholds →
 * reconciliation against `target.lookup` → W committed → report.
 *
 * Guarantees:
 * - W moves only at the end of a run that did not fail (Succeeded or Partial), to the highest
 *   complete group of cursor values whose records are all resolved, never past
 *   `run start − safetyLag`; a failed, cancelled or killed run leaves W where it was. What such
 *   a run wrote is remembered by its hashes, so the next run re-reads it but does not rewrite it.
 * - One record's failure (schema, transform, a 4xx, retries exhausted) never fails the run: the
 *   run ends `Partial` and the record is in the failed-key index.
 * - A wait past the run's deadline (the rate budget) ends the run `Partial`, state committed.
 * - Deletes above `deletes.maxCount` or `maxPercent` delete nothing and report Degraded.
 */
import { describeValidationErrors, type CompiledSyncScheduleSpec, type CompiledTransform, type SyncReport, type SyncRun } from '../api/index.ts';
import { fallbackHeaders, type FallbackPublisher, type FallbackReason } from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';
import { FerrySyncError, RunBudgetExhaustedError, RunCancelledError, RunLockLostError } from './errors.ts';
import type { HttpCaller } from './http-call.ts';
import type { SyncMetrics } from './metrics.ts';
import { canonicalJson, contentHash, cursorMs, orderedContentHash, formatCursor, keyOf, pointer, projectLike, type Pointer } from './records.ts';
import type { ReportEvent, ReportWriter } from './report.ts';
import { readPages, type CollectionSpec } from './source-reader.ts';
import type { FailedRecord, SyncState } from './state.ts';
import { TargetWriter, writeKey, type WriteItem, type WriteResult } from './target-writer.ts';
import { WatermarkTracker, type Observed } from './watermark.ts';

/** Applies a compiled transform to one record (mapping in place, JSONata in the worker pool). */
/**
 * Applies a compiled transform to one record: a mapping returns at once (no promise hop per
 * record), JSONata a promise from the worker pool.
 */
export type RecordTransformer = (transform: CompiledTransform, record: unknown, timeoutMs: number, scope: string) => unknown;

/** Writes in flight at once within a run. */
const WRITE_CONCURRENCY = 16;

export interface RunDeps {
  readonly ref: { readonly namespace: string; readonly name: string; readonly uid: string };
  readonly spec: CompiledSyncScheduleSpec;
  readonly state: SyncState;
  /**
   * Makes sure the SyncSchedule's bucket and fallback stream exist; the run's first step, as the
   * run can come before the leader's reconcile that also creates them.
   */
  ensureStores(): Promise<void>;
  readonly report: ReportWriter;
  readonly source: HttpCaller;
  readonly target: HttpCaller;
  readonly transform: RecordTransformer;
  readonly publisher: FallbackPublisher;
  readonly fallbackSubject: string;
  readonly metrics: SyncMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly runId: string;
  /** True for a scheduled slot, false for `ferry.dev/run-now`. */
  readonly scheduled: boolean;
  readonly signal: AbortSignal;
  /**
   * This replica's copy of the hashes from its last run of this SyncSchedule, kept with the
   * bucket's version: reused when nothing wrote to the bucket since, instead of reading every
   * hash again (100,000 keys: about 1.5 s).
   */
  readonly hashCache?: HashCache;
}

export interface HashCache {
  take(): { readonly version: number; readonly hashes: Map<string, string> } | undefined;
  put(version: number, hashes: Map<string, string>): void;
}

interface Counts {
  fetched: number;
  unchanged: number;
  written: number;
  failed: number;
  deleted: number;
  parked: number;
}

type Prepared =
  | { readonly kind: 'write'; readonly item: WriteItem }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'delete'; readonly key: string; readonly source: unknown }
  | { readonly kind: 'failed'; readonly key: string; readonly source: unknown; readonly reason: FallbackReason; readonly error: string };

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Runs `work` over `items` with at most `limit` at once; stops starting new ones after a throw. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const lane = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await work(item);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (failure) throw failure.err;
}

export class SyncRunner {
  private readonly d: RunDeps;
  private readonly log: Logger;
  private readonly keyAt: Pointer;
  private readonly softDeleteAt: Pointer | undefined;
  private readonly writer: TargetWriter;
  private readonly counts: Counts = { fetched: 0, unchanged: 0, written: 0, failed: 0, deleted: 0, parked: 0 };
  private readonly events: ReportEvent[] = [];
  private hashes = new Map<string, string>();
  private failedIndex = new Map<string, FailedRecord>();
  /** Failed-index changes of this run. */
  private readonly failedNow = new Map<string, FailedRecord>();
  private readonly recovered = new Set<string>();
  private readonly seen = new Set<string>();
  /** key → mapped body, hash and source, when reconciliation or mirror needs the full picture. */
  private readonly mapped = new Map<string, { body: unknown; hash: string; source: unknown }>();
  private degraded: SyncReport['degraded'] | null = null;
  private staleRecords = 0;
  private readonly scope: string;

  constructor(deps: RunDeps) {
    this.d = deps;
    this.log = deps.logger.child({ namespace: deps.ref.namespace, syncSchedule: deps.ref.name, runId: deps.runId });
    const s = deps.spec;
    this.keyAt = pointer(s.key);
    this.scope = `${deps.ref.namespace}/${deps.ref.name}`;
    this.softDeleteAt = s.deletes?.softDeleteField === undefined ? undefined : pointer(s.deletes.softDeleteField);
    this.writer = new TargetWriter(
      {
        url: s.url,
        deleteUrl: s.deleteUrlTemplate,
        method: s.target.method,
        encoding: s.target.encoding,
        headers: s.target.headers,
        timeoutMs: s.target.timeoutMs,
        successCodes: s.target.successCodes,
        batch: s.batch,
        mode: s.mode,
        scope: `${deps.ref.namespace}/${deps.ref.name}`,
      },
      deps.target,
    );
  }

  private get needsFullPicture(): boolean {
    return this.d.spec.reconcile.mode !== 'none' || (this.d.spec.mode === 'mirror' && this.d.spec.target.lookup !== undefined);
  }

  /** Runs to the end and returns the run as status shows it; never throws. */
  async run(): Promise<SyncRun> {
    const { clock, spec } = this.d;
    const started = clock.now();
    const startedAt = new Date(started).toISOString();
    const base: SyncRun = { id: this.d.runId, startedAt, result: 'Running' };
    await this.d.report.started(base, this.d.scheduled).catch((err: unknown) => {
      this.log.warn({ err: message(err) }, 'could not report the run as started');
    });
    let result: SyncRun['result'] = 'Succeeded';
    let note: string | undefined;
    let watermark: number | undefined;
    let mismatches: SyncRun['mismatches'];
    try {
      await this.d.ensureStores();
      const stored = await this.d.state.watermark();
      watermark = stored?.value.value;
      // Loaded while the first page is fetched.
      const loading = Promise.all([this.loadHashes(), this.d.state.failed()]);
      loading.catch(() => undefined);
      const read = await this.readAndWrite(started, watermark, async () => {
        [this.hashes, this.failedIndex] = await loading;
      });
      if (read.partial) {
        result = 'Partial';
        note = read.partial;
      }
      if (read.commit !== undefined && (watermark === undefined || read.commit > watermark)) {
        watermark = await this.d.state.advanceWatermark(read.commit, this.d.runId, clock.now());
      }
      if (!read.partial) {
        await this.retryFailed();
        mismatches = await this.reconcile(read.complete);
      }
      await this.parkExhausted();
      if (this.counts.failed > 0 && result === 'Succeeded') {
        result = 'Partial';
        note = `${this.counts.failed} record(s) failed and are retried on the next runs`;
      }
    } catch (err) {
      if (err instanceof RunBudgetExhaustedError) {
        result = 'Partial';
        note = err.message;
      } else {
        result = 'Failed';
        const cancelled = err instanceof RunCancelledError || err instanceof RunLockLostError || this.d.signal.aborted;
        const reason: unknown = this.d.signal.reason;
        note = cancelled ? `cancelled: ${reason instanceof Error ? reason.message : message(err)}` : message(err);
        if (!(err instanceof FerrySyncError) && !cancelled) this.log.error({ err }, 'sync run failed');
        this.events.push({ type: 'Warning', reason: 'RunFailed', message: `run ${this.d.runId} failed: ${note}` });
      }
      // What was written is remembered (hashes and failed index), even when W does not move.
      await this.flushPending().catch((flushErr: unknown) => {
        this.log.warn({ err: message(flushErr) }, 'could not store the state of a failed run');
      });
    }
    if (this.staleRecords > 0) {
      const warn = `${this.staleRecords} record(s) older than the watermark minus lookback were returned: the source seems to ignore ${spec.source.incremental?.param ?? 'its filter'} (every run is a full read)`;
      note = note ? `${note}; ${warn}` : warn;
      this.events.push({ type: 'Warning', reason: 'IncrementalFilterIgnored', message: warn });
    }
    const finished = clock.now();
    const run: SyncRun = {
      ...base,
      finishedAt: new Date(finished).toISOString(),
      result,
      ...this.counts,
      ...(mismatches ? { mismatches } : {}),
      ...(watermark === undefined || !spec.source.incremental ? {} : { watermark: formatCursor(watermark, spec.source.incremental.format) }),
      ...(note ? { message: note.slice(0, 1024) } : {}),
    };
    this.observe(run, finished - started);
    if (result === 'Succeeded' || result === 'Partial') await this.keepHashes();
    const failedRecords = this.failedIndex.size;
    await this.d.report
      .finished(run, { scheduled: this.d.scheduled, failedRecords, degraded: result === 'Failed' ? undefined : this.degraded, events: this.events })
      .catch((err: unknown) => {
        this.log.error({ err: message(err) }, 'could not report the run');
      });
    this.log.info({ result, ...this.counts, durationMs: finished - started }, `sync run ${result.toLowerCase()}`);
    return run;
  }

  private observe(run: SyncRun, ms: number): void {
    const { namespace, name } = this.d.ref;
    const m = this.d.metrics;
    m.runs.inc({ namespace, syncschedule: name, result: run.result });
    m.duration.observe({ namespace, syncschedule: name, result: run.result }, ms / 1000);
    for (const o of ['fetched', 'unchanged', 'written', 'failed', 'deleted', 'parked'] as const) m.count(namespace, name, o, this.counts[o]);
    if (run.result === 'Succeeded') m.succeeded(namespace, name, this.d.clock.now());
    if (run.mismatches) {
      for (const kind of ['missing', 'extra', 'different'] as const) m.mismatches.set({ namespace, syncschedule: name, kind }, run.mismatches[kind] ?? 0);
    }
  }

  private async loadHashes(): Promise<Map<string, string>> {
    const cached = this.d.hashCache?.take();
    if (cached && cached.version === (await this.d.state.version())) return cached.hashes;
    return await this.d.state.hashes();
  }

  private async keepHashes(): Promise<void> {
    if (!this.d.hashCache) return;
    try {
      const version = await this.d.state.version();
      if (version !== undefined) this.d.hashCache.put(version, this.hashes);
    } catch {
      // No copy kept: the next run reads the bucket.
    }
  }

  // ---- reading and writing -------------------------------------------------------------

  private pendingHashes: [string, string][] = [];

  private async readAndWrite(
    started: number,
    watermark: number | undefined,
    ready: () => Promise<void>,
  ): Promise<{ commit: number | undefined; partial: string | undefined; complete: boolean }> {
    const { spec } = this.d;
    const inc = spec.source.incremental;
    const upper = inc ? started - inc.safetyLagMs : undefined;
    const lower = inc && watermark !== undefined ? watermark - inc.lookbackMs : undefined;
    const query = inc && lower !== undefined ? { [inc.param]: formatCursor(lower, inc.format) } : {};
    const tracker = new WatermarkTracker();
    const cursorAt = inc ? pointer(inc.field) : undefined;
    let partial: string | undefined;
    let complete = false;
    const pages = readPages(this.collection(query), this.d.source);
    // The next page is fetched while this one is written, and a page's hashes are stored while
    // the next is processed: reading, writing and KV round trips overlap instead of adding up.
    let flushing: Promise<void> = Promise.resolve();
    try {
      let next = pages.next();
      next.catch(() => undefined);
      await ready();
      for (;;) {
        const step = await next;
        if (step.done) break;
        const page = step.value;
        next = pages.next();
        next.catch(() => undefined);
        const observed: Observed[] = [];
        const work: Prepared[] = [];
        for (const record of page.records) {
          if (inc && cursorAt) {
            const c = cursorMs(record, cursorAt, inc.format);
            if (c !== undefined && upper !== undefined && c > upper) continue;
            if (c !== undefined && lower !== undefined && c < lower) this.staleRecords++;
            observed.push(tracker.observe(c));
          }
          this.counts.fetched++;
          work.push(await this.prepare(record));
        }
        await this.apply(work);
        for (const o of observed) tracker.resolve(o);
        await flushing;
        flushing = this.flushPending();
        flushing.catch(() => undefined);
      }
      await flushing;
      complete = true;
    } catch (err) {
      // Not awaited: it waits for a prefetch in flight, which may take its full timeout.
      pages.return(undefined).catch(() => undefined);
      await flushing.catch(() => undefined);
      if (!(err instanceof RunBudgetExhaustedError)) throw err;
      partial = err.message;
      await this.flushPending();
    }
    let commit: number | undefined;
    if (inc) {
      commit = tracker.committable(complete);
      if (commit !== undefined && upper !== undefined) commit = Math.min(commit, upper);
      if (!tracker.inOrder && !complete) partial = `${partial ?? 'incomplete read'}; the source does not return records in ${inc.field} order, so the watermark moves only after a complete run`;
    }
    return { commit, partial, complete };
  }

  private collection(query: Readonly<Record<string, string>>): CollectionSpec {
    const s = this.d.spec.source;
    return { url: s.url, headers: s.headers, timeoutMs: s.timeoutMs, pagination: s.pagination, recordsPath: s.recordsPath, query };
  }

  /** Key, schema, transform and hash of one record, and what to do with it. */
  private async prepare(source: unknown): Promise<Prepared> {
    const { spec } = this.d;
    const key = keyOf(source, this.keyAt);
    if (key === undefined) return { kind: 'failed', key: `<no key at ${spec.key}>`, source, reason: 'invalid', error: `record has no string or number key at ${spec.key}` };
    this.seen.add(key);
    if (this.softDeleteAt && this.softDeleteAt.length > 0) {
      let node: unknown = source;
      for (const t of this.softDeleteAt) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[t] : undefined;
      if (node === true) return { kind: 'delete', key, source };
    }
    if (spec.validate && !spec.validate(source)) {
      return { kind: 'failed', key, source, reason: 'invalid', error: describeValidationErrors(spec.validate.errors) };
    }
    let body: unknown = source;
    if (spec.compiledTransform) {
      try {
        const out = this.d.transform(spec.compiledTransform, source, spec.transform?.kind === 'jsonata' ? spec.transform.timeoutMs : 1_000, this.scope);
        body = out instanceof Promise ? ((await out) as unknown) : out;
      } catch (err) {
        return { kind: 'failed', key, source, reason: 'transform', error: message(err) };
      }
    }
    const hash = spec.compiledTransform?.kind === 'mapping' ? orderedContentHash(body) : contentHash(body);
    if (this.needsFullPicture) this.mapped.set(key, { body, hash, source });
    const known = this.hashes.get(key);
    if (known === hash) return { kind: 'unchanged' };
    if (spec.mode === 'insert' && known !== undefined) return { kind: 'unchanged' };
    return { kind: 'write', item: { key, body, hash, source } };
  }

  /** Writes, deletes and records failures of prepared records. */
  private async apply(prepared: readonly Prepared[]): Promise<void> {
    const writes: WriteItem[] = [];
    for (const p of prepared) {
      if (p.kind === 'unchanged') this.counts.unchanged++;
      else if (p.kind === 'failed') this.fail(p.key, p.source, { ok: false, reason: p.reason, error: p.error });
      else if (p.kind === 'delete') this.softDeletes.push({ key: p.key, source: p.source });
      else writes.push(p.item);
    }
    await this.write(writes);
  }

  private readonly softDeletes: { key: string; source: unknown }[] = [];

  private async write(items: readonly WriteItem[]): Promise<void> {
    const size = this.writer.batchSize;
    const chunks: WriteItem[][] = [];
    for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
    await pool(chunks, WRITE_CONCURRENCY, async (chunk) => {
      const results = size === 1 ? [await this.writer.write(chunk[0] as WriteItem)] : await this.writer.writeBatch(chunk);
      chunk.forEach((item, i) => {
        this.settle(item, results[i] ?? { ok: false, reason: 'rejected', error: 'no result for this record' });
      });
    });
  }

  private settle(item: WriteItem, r: WriteResult): void {
    if (!r.ok) {
      this.fail(item.key, item.source, r);
      return;
    }
    if (r.skipped === 'absent') {
      // Mode Update: the target does not have it; nothing to remember.
      this.counts.unchanged++;
    } else {
      if (r.skipped === 'exists') this.counts.unchanged++;
      else this.counts.written++;
      this.pendingHashes.push([item.key, item.hash]);
      this.hashes.set(item.key, item.hash);
    }
    if (this.failedIndex.has(item.key)) this.recovered.add(item.key);
  }

  private fail(key: string, source: unknown, r: WriteResult & { ok: false }): void {
    this.counts.failed++;
    const now = new Date(this.d.clock.now()).toISOString();
    const prev = this.failedIndex.get(key);
    const entry: FailedRecord = {
      key,
      record: source,
      reason: r.reason,
      error: r.error.slice(0, 1024),
      ...(r.status === undefined ? {} : { httpStatus: r.status }),
      ...(r.body === undefined ? {} : { responseBody: r.body.slice(0, 1024) }),
      attempts: (prev?.attempts ?? 0) + 1,
      firstFailure: prev?.firstFailure ?? now,
      lastFailure: now,
    };
    this.failedIndex.set(key, entry);
    this.failedNow.set(key, entry);
    this.recovered.delete(key);
  }

  /** Stores hashes of acknowledged writes and failed-index changes made so far. */
  private async flushPending(): Promise<void> {
    const hashes = this.pendingHashes;
    this.pendingHashes = [];
    const failed = [...this.failedNow.values()];
    this.failedNow.clear();
    const recovered = [...this.recovered].filter((k) => !this.failedNow.has(k));
    this.recovered.clear();
    await this.d.state.putHashes(hashes);
    await this.d.state.putFailed(failed);
    if (recovered.length > 0) {
      await this.d.state.clearFailed(recovered);
      for (const k of recovered) this.failedIndex.delete(k);
    }
  }

  /** Failed records this run did not read again are retried with the version that failed. */
  private async retryFailed(): Promise<void> {
    const stale = [...this.failedIndex.values()].filter((f) => !this.seen.has(f.key) && !this.failedNow.has(f.key));
    if (stale.length === 0) return;
    const prepared: Prepared[] = [];
    for (const f of stale) {
      this.seen.delete(f.key);
      prepared.push(await this.prepare(f.record));
    }
    await this.apply(prepared);
    await this.flushPending();
  }

  /** Records that failed `maxAttempts` runs go to the fallback stream and leave the index. */
  private async parkExhausted(): Promise<void> {
    const max = this.d.spec.failedRecordsMaxAttempts;
    const done: string[] = [];
    for (const f of this.failedIndex.values()) {
      if (f.attempts < max) continue;
      const hash = contentHash(f.record);
      await this.d.publisher.publish({
        subject: this.d.fallbackSubject,
        msgId: `sync:${this.d.ref.namespace}/${this.d.ref.name}:${f.key}:${hash}:${f.attempts}`,
        payload: new TextEncoder().encode(JSON.stringify(f.record)),
        headers: fallbackHeaders(undefined, {
          syncSchedule: `${this.d.ref.namespace}/${this.d.ref.name}`,
          reason: f.reason,
          error: f.error,
          httpStatus: f.httpStatus,
          responseBody: f.responseBody,
          attempts: f.attempts,
          firstAttemptMs: Date.parse(f.firstFailure),
          lastAttemptMs: Date.parse(f.lastFailure),
          sourceUrl: this.d.spec.source.url,
          recordKey: f.key,
          idempotencyKey: writeKey(`${this.d.ref.namespace}/${this.d.ref.name}`, f.key, hash),
        }),
      });
      done.push(f.key);
      this.counts.parked++;
    }
    if (done.length === 0) return;
    await this.d.state.clearFailed(done);
    for (const k of done) this.failedIndex.delete(k);
    this.events.push({
      type: 'Warning',
      reason: 'RecordsParked',
      message: `${done.length} record(s) failed ${max} runs and were parked in the fallback stream (first key ${JSON.stringify(done[0])})`,
    });
  }

  // ---- deletes and reconciliation --------------------------------------------------------

  private async reconcile(readComplete: boolean): Promise<SyncRun['mismatches']> {
    const { spec } = this.d;
    const lookup = spec.target.lookup;
    const deletes: { key: string; source: unknown }[] = [...this.softDeletes];
    let mismatches: SyncRun['mismatches'];
    if (lookup && this.needsFullPicture) {
      // An incremental read saw only what changed: the comparison needs every source record.
      if (spec.source.incremental || !readComplete) await this.readAllSource();
      const target = await this.readTarget();
      const missing: string[] = [];
      const different: string[] = [];
      const extra: string[] = [];
      for (const [key, m] of this.mapped) {
        const t = target.get(key);
        if (t === undefined) missing.push(key);
        else if (canonicalJson(projectLike(t, m.body)) !== canonicalJson(m.body)) different.push(key);
      }
      for (const key of target.keys()) if (!this.mapped.has(key)) extra.push(key);
      const found = missing.length + different.length + (spec.mode === 'mirror' ? 0 : extra.length);
      let repaired = 0;
      const mode = spec.reconcile.mode;
      if (mode === 'repair' && !spec.reconcile.dryRun) {
        const before = this.counts.written;
        const items = [...missing, ...different].map((k) => {
          const m = this.mapped.get(k);
          return m ? { key: k, body: m.body, hash: m.hash, source: m.source, keySalt: `repair-${this.d.runId}` } : undefined;
        });
        await this.write(items.filter((i) => i !== undefined));
        await this.flushPending();
        repaired = this.counts.written - before;
      }
      if (spec.mode === 'mirror') for (const key of extra) deletes.push({ key, source: target.get(key) });
      if (mode !== 'none') {
        mismatches = { missing: missing.length, extra: extra.length, different: different.length, found, repaired };
        const left = found - repaired;
        if (found > 0) {
          const what = `missing ${missing.length}, different ${different.length}, extra ${extra.length}`;
          const verb =
            mode === 'repair'
              ? spec.reconcile.dryRun
                ? 'dry run: repair would write them; set spec.reconcile.dryRun: false to repair'
                : `repaired ${repaired}${found - repaired > 0 ? `; ${found - repaired} remain: see status.lastRun and the sync fallback stream` : ''}`
              : 'report only: set spec.reconcile.mode: Repair to fix them, or find why the target changed outside the sync';
          this.events.push({ type: 'Warning', reason: 'MismatchesFound', message: `reconciliation found ${found} mismatch(es) (${what}); ${verb}` });
        }
        if (left > 0) this.degraded = { reason: 'Mismatch', message: `${left} mismatch(es) between source and target after reconciliation (missing ${missing.length}, different ${different.length}, extra ${extra.length})` };
      }
      await this.deleteWithin(deletes, target.size);
    } else {
      await this.deleteWithin(deletes, this.hashes.size);
    }
    return mismatches;
  }

  /** Deletes in the target, unless more than the thresholds: then none, and Degraded. */
  private async deleteWithin(deletes: readonly { key: string; source: unknown }[], targetSize: number): Promise<void> {
    const limits = this.d.spec.deletes;
    if (!limits || deletes.length === 0) return;
    const pct = targetSize === 0 ? 100 : (deletes.length / targetSize) * 100;
    if (deletes.length > limits.maxCount || pct > limits.maxPercent) {
      const msg = `${deletes.length} delete(s) (${pct.toFixed(1)}% of ${targetSize} target records) exceed deletes.maxCount ${limits.maxCount} or maxPercent ${limits.maxPercent}: nothing was deleted`;
      this.degraded = { reason: 'DeleteThresholdExceeded', message: msg };
      this.events.push({ type: 'Warning', reason: 'DeleteThresholdExceeded', message: msg });
      return;
    }
    if (this.d.spec.reconcile.dryRun) return;
    await pool(deletes, WRITE_CONCURRENCY, async (d) => {
      const r = await this.writer.delete(d.key, d.source ?? {}, this.d.runId);
      if (r.ok) {
        this.counts.deleted++;
        this.hashes.delete(d.key);
        await this.d.state.forgetHash(d.key);
      } else this.fail(d.key, d.source, r);
    });
    await this.flushPending();
  }

  private async readAllSource(): Promise<void> {
    this.mapped.clear();
    for await (const page of readPages(this.collection({}), this.d.source)) {
      for (const record of page.records) {
        const key = keyOf(record, this.keyAt);
        if (key === undefined) continue;
        const p = await this.prepare(record);
        if (p.kind === 'delete') this.mapped.delete(key);
      }
    }
  }

  private async readTarget(): Promise<Map<string, unknown>> {
    const lookup = this.d.spec.target.lookup;
    const out = new Map<string, unknown>();
    if (!lookup) return out;
    const keyAt = pointer(lookup.key);
    const spec: CollectionSpec = { url: lookup.url, headers: this.d.spec.target.headers, timeoutMs: this.d.spec.target.timeoutMs, pagination: lookup.pagination, recordsPath: lookup.recordsPath };
    for await (const page of readPages(spec, this.d.target)) {
      for (const record of page.records) {
        const key = keyOf(record, keyAt);
        if (key !== undefined) out.set(key, record);
      }
    }
    return out;
  }
}
