/**
 * SyncSchedule runs under faults and drift (issue "SyncSchedule runtime", must-shows 4–6 and
 * 9–12, plus batch writes): the operator as a child process, a fake CRM and ERP that enforce
 * auth, idempotency keys and Retry-After, counted by the record id in the ERP's bodies.
 */
import assert from 'node:assert/strict';
import { CoreV1Api } from '@kubernetes/client-node';
import { before, describe, it } from 'node:test';
import { kubectl } from '../support/crds.ts';
import { condition } from '../support/ferry-client.ts';
import { NS, type RuntimeEnv } from '../support/runtime-harness.ts';
import { contacts, type CrmRecord, type Erp } from '../support/sync-apis.ts';
import { applySyncSchedule, assertMirrors, eventually, history, lastRun, runNow, syncSpec, syncSuite } from '../support/sync-harness.ts';

describe('SyncSchedule runs under faults', { timeout: 900_000 }, () => {
  let r: RuntimeEnv;
  const suite = syncSuite('sync-f', ['--sync-lock-ttl=3']);
  const apis = suite.apis;
  const appliedOnce = (erp: Erp): boolean => [...erp.stats().appliedById.values()].every((n) => n === 1);
  const oneBodyEach = (erp: Erp): boolean => [...erp.stats().distinctBodiesById.values()].every((n) => n === 1);
  const edit = (spec: (s: Record<string, unknown>) => void) => async (name: string) => {
    await r.ferry.editSpec('syncschedules', NS, name, spec);
  };

  before(() => {
    r = suite.env();
  });

  it('drift behind Ferry’s back: Report counts it and writes nothing, dryRun writes nothing, Repair fixes it, the next run finds none', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(1_000));
    const name = 'drift';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, spec: (s) => (s.reconcile = { mode: 'Report' }) }));
    const first = await runNow(r, name);
    assert.equal(first.written, 1_000);
    assert.deepEqual(first.mismatches, { missing: 0, extra: 0, different: 0, found: 0, repaired: 0 });
    for (const id of ['c00001', 'c00100', 'c00500', 'c00777', 'c01000']) erp.edit(id, { email: 'changed@example.com' });
    for (const id of ['c00002', 'c00300', 'c00900']) erp.remove(id);
    erp.resetCounters();
    const report = await runNow(r, name);
    assert.deepEqual(report.mismatches, { missing: 3, extra: 0, different: 5, found: 8, repaired: 0 });
    assert.equal(erp.stats().writesApplied, 0, 'Report writes nothing');
    let obj = await r.ferry.waitFor('syncschedules', NS, name, (o) => condition(o, 'Degraded')?.status === 'True');
    assert.equal(condition(obj, 'Degraded')?.reason, 'Mismatch');

    await edit((s) => (s.reconcile = { mode: 'Repair', dryRun: true }))(name);
    const dry = await runNow(r, name);
    assert.equal(dry.mismatches?.found, 8);
    assert.equal(dry.mismatches?.repaired, 0);
    assert.equal(erp.stats().writesApplied, 0, 'dryRun writes nothing');

    await edit((s) => (s.reconcile = { mode: 'Repair' }))(name);
    const repair = await runNow(r, name);
    assert.equal(repair.mismatches?.found, 8);
    assert.equal(repair.mismatches?.repaired, 8);
    assert.equal(erp.stats().writesApplied, 8);
    assert.equal(assertMirrors(crm, erp), undefined);
    const clean = await runNow(r, name);
    assert.equal(clean.mismatches?.found, 0);
    obj = await r.ferry.waitFor('syncschedules', NS, name, (o) => condition(o, 'Degraded')?.status === 'False');
    assert.equal(history(obj)[0]?.id, clean.id);
  });

  it('the target answers 429 with Retry-After on a share of requests: the run completes, no request breaks a Retry-After, nothing lost or doubled', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(400));
    erp.throttleShare(0.02, 1);
    const name = 'throttled';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp }));
    const run = await runNow(r, name);
    assert.equal(run.result, 'Succeeded', run.message);
    const s = erp.stats();
    assert.ok(s.throttled >= 5, `throttled ${s.throttled}`);
    assert.equal(s.retryAfterViolations, 0);
    assert.equal(assertMirrors(crm, erp), undefined);
    assert.ok(appliedOnce(erp));
  });

  it('the source fails mid-pagination: the run Fails, the watermark does not move; the next run completes the target', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(2_000));
    const name = 'source-fails';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, limit: 200 }));
    const first = await runNow(r, name);
    const watermark = first.watermark;
    assert.ok(watermark);
    // 500 records change; the source then fails on the third page of the next run.
    for (let i = 0; i < 2_000; i += 4) crm.update(`c${String(i + 1).padStart(5, '0')}`, { amount: 1 });
    crm.resetCounters();
    // Every request from the third on fails, retries included.
    crm.failPages((q) => (q.pageIndex >= 2 ? 500 : undefined));
    const failed = await runNow(r, name);
    assert.equal(failed.result, 'Failed');
    assert.match(failed.message ?? '', /source page 3 .*HTTP 500/);
    assert.equal(failed.watermark, watermark, 'watermark unchanged');
    crm.failPages(undefined);
    const next = await runNow(r, name);
    assert.equal(next.result, 'Succeeded', next.message);
    assert.equal(assertMirrors(crm, erp), undefined);
    assert.ok([...erp.stats().appliedById.values()].every((n) => n <= 2), 'each record at most once per version');
  });

  it('a source answer that is not what was declared fails the run naming the page and the pointer', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(300));
    crm.malformed((q) => q.pageIndex === 1);
    const name = 'malformed';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, limit: 100 }));
    const run = await runNow(r, name);
    assert.equal(run.result, 'Failed');
    assert.match(run.message ?? '', /source page 2 \(.*\): recordsPath "\/data" is not an array \(found object\)/);
    const obj = await r.ferry.waitFor('syncschedules', NS, name, (o) => condition(o, 'Degraded')?.reason === 'RunFailed');
    assert.match(condition(obj, 'Degraded')?.message ?? '', /recordsPath/);
  });

  it('300 records share one updatedAt across page boundaries and the runner is SIGKILLed between pages: the next run writes each exactly once', async () => {
    const { crm, erp } = await apis();
    const tie = '2026-12-01T12:00:00.000Z';
    const records: CrmRecord[] = [
      ...contacts(100, '2026-12-01T11:00:00.000Z', 'a'),
      ...contacts(300, tie, 't').map((c) => ({ ...c, updatedAt: tie })),
      ...contacts(100, '2026-12-01T13:00:00.000Z', 'z'),
    ];
    crm.seed(records);
    const name = 'ties';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, limit: 100 }));
    const op = await r.startOperator('sync-tie', ['--sync-lock-ttl=3']);
    // Both operators may take the run; the CRM holds the third page whichever does.
    crm.hangAfterPages(2);
    const before = lastRun(await r.ferry.get('syncschedules', NS, name))?.id;
    await kubectl(r.env.kubeconfigPath, ['annotate', '-n', NS, `syncschedule/${name}`, 'ferry.dev/run-now=kill-1', '--overwrite']);
    await crm.waitForHeld();
    const runner = r.operators.find((o) => o.logs.some((l) => l.msg === 'sync run started' && l.syncSchedule === name));
    assert.ok(runner, 'one operator started the run');
    await runner.kill();
    crm.hangAfterPages(undefined);
    crm.release();
    const written = erp.stats().writesApplied;
    assert.ok(written > 0 && written < 500, `some records written before the kill (${written})`);
    // The dead runner's lock holds until its TTL (3 s) passes: a trigger before that is Skipped
    // (Forbid), after it the run proceeds. The run it held never reports; trigger the next.
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    const next = await runNow(r, name);
    assert.equal(next.result, 'Succeeded', next.message);
    assert.notEqual(next.id, before);
    assert.equal(assertMirrors(crm, erp), undefined);
    assert.ok(appliedOnce(erp), 'each record applied exactly once');
    assert.ok(oneBodyEach(erp));
    assert.ok(r.operators.some((o) => o !== runner && o === op) || runner === op);
  });

  it('a record committed late within the lookback is picked up; one outside it is found by reconciliation', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(100));
    const name = 'late';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, spec: (s) => (s.reconcile = { mode: 'Report' }) }));
    const first = await runNow(r, name);
    const w = Date.parse(first.watermark ?? '');
    crm.upsert({ id: 'late-in', name: 'Late', email: 'l@example.com', amount: 1, updatedAt: new Date(w - 30_000).toISOString() });
    crm.upsert({ id: 'late-out', name: 'Later', email: 'o@example.com', amount: 2, updatedAt: new Date(w - 10 * 60_000).toISOString() });
    erp.resetCounters();
    const second = await runNow(r, name);
    assert.deepEqual([...erp.stats().appliedById.keys()], ['late-in']);
    assert.equal(second.mismatches?.missing, 1, 'the one outside the lookback is missing in the target');
    await edit((s) => (s.reconcile = { mode: 'Repair' }))(name);
    const third = await runNow(r, name);
    assert.equal(third.mismatches?.repaired, 1);
    assert.equal(assertMirrors(crm, erp), undefined);
  });

  it('rate budget exhausted before the next slot: Partial with state committed, the next runs continue from there', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(900));
    const name = 'budget';
    await applySyncSchedule(
      r,
      name,
      syncSpec({
        name,
        crm,
        erp,
        schedule: '*/15 * * * * *',
        spec: (s) => (s.rateLimit = { perSecond: 40 }),
      }),
    );
    // Runs follow each other at the slot boundaries; status may skip showing one of them as
    // lastRun, so the history tells the story.
    const done = await r.ferry.waitFor('syncschedules', NS, name, (o) => lastRun(o)?.result === 'Succeeded', 180_000);
    await edit((s) => (s.suspend = true))(name);
    const runs = history(done).reverse();
    const first = runs[0];
    assert.equal(first?.result, 'Partial', JSON.stringify(first));
    assert.match(first.message ?? '', /deadline/);
    assert.ok(first.watermark, 'W committed');
    assert.ok((first.written ?? 0) > 0 && (first.written ?? 0) < 900);
    const second = runs[1];
    assert.ok(second && (second.fetched ?? 0) < 900, 'the second run read from the committed watermark, not from the start');
    assert.equal(assertMirrors(crm, erp), undefined);
    assert.ok(appliedOnce(erp));
  });

  it('mirror: deletes within the thresholds happen; a source suddenly 40% smaller deletes nothing, Degraded and a Warning Event', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(1_000));
    const name = 'mirror';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, spec: (s) => {
      s.mode = 'Mirror';
      s.deletes = { maxCount: 50, maxPercent: 10 };
    } }));
    assert.equal((await runNow(r, name)).written, 1_000);
    for (const id of ['c00010', 'c00020', 'c00030']) crm.remove(id);
    const small = await runNow(r, name);
    assert.equal(small.deleted, 3);
    assert.deepEqual([...erp.stats().deletedIds].sort(), ['c00010', 'c00020', 'c00030']);
    for (let i = 100; i < 500; i++) crm.remove(`c${String(i + 1).padStart(5, '0')}`);
    erp.resetCounters();
    const big = await runNow(r, name);
    assert.equal(big.deleted, 0);
    assert.equal(erp.stats().deletes, 0, 'nothing deleted beyond the threshold');
    assert.equal(erp.all().size, 997);
    const obj = await r.ferry.waitFor('syncschedules', NS, name, (o) => condition(o, 'Degraded')?.reason === 'DeleteThresholdExceeded');
    assert.match(condition(obj, 'Degraded')?.message ?? '', /400 delete\(s\).*nothing was deleted/);
    await eventually('a DeleteThresholdExceeded Event', async () => {
      const events = await r.env.kubeConfig.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: NS });
      return events.items.some((e) => e.reason === 'DeleteThresholdExceeded' && e.involvedObject.name === name && e.type === 'Warning');
    });
  });

  it('batches: records go to a batch endpoint; one item rejected fails only that record', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(1_000));
    erp.rejectIds(['c00042']);
    const name = 'batches';
    await applySyncSchedule(
      r,
      name,
      syncSpec({
        name,
        crm,
        erp,
        spec: (s) => {
          s.target = { ...(s.target as Record<string, unknown>), url: `${erp.url}/batch`, method: 'POST' };
          s.batch = { size: 100 };
        },
      }),
    );
    const run = await runNow(r, name);
    assert.equal(run.result, 'Partial');
    assert.equal(run.written, 999);
    assert.equal(run.failed, 1);
    const batchRequests = erp.requests.filter((q) => q.path === '/batch').length;
    assert.ok(batchRequests <= 12, `${batchRequests} batch requests for 1,000 records`);
    assert.equal(erp.all().size, 999);
    assert.ok(appliedOnce(erp));
  });
  it('a source that ignores the incremental filter is reported (message and Warning Event), and nothing is rewritten', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(300));
    const name = 'filter-ignored';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp }));
    await runNow(r, name);
    crm.ignoreFilter = true;
    erp.resetCounters();
    const run = await runNow(r, name);
    assert.equal(run.fetched, 300);
    assert.equal(run.written, 0);
    assert.match(run.message ?? '', /older than the watermark minus lookback .* ignore updated_since/);
    await eventually('an IncrementalFilterIgnored Event', async () => {
      const events = await r.env.kubeConfig.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: NS });
      return events.items.some((e) => e.reason === 'IncrementalFilterIgnored' && e.involvedObject.name === name);
    });
  });

  it('a source that does not return records in cursor order: W moves only after a complete run', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(500));
    crm.reorderWithinPages = true;
    const name = 'unsorted';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, limit: 100 }));
    const run = await runNow(r, name);
    assert.equal(run.result, 'Succeeded', run.message);
    assert.equal(run.watermark, contacts(500).at(-1)?.updatedAt);
    assert.equal(assertMirrors(crm, erp), undefined);
  });
});
