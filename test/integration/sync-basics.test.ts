/**
 * SyncSchedule runs end to end (issue "SyncSchedule runtime", must-shows 1–3 and 14): the operator
 * as a child process, a fake CRM (paged, `updated_since`) and ERP (upsert by key, idempotency keys,
 * bearer auth), SyncSchedules applied and triggered with kubectl. Effects are counted by the
 * record id in the ERP's bodies, never by idempotency keys.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { kubectl } from '../support/crds.ts';
import { NS, type RuntimeEnv } from '../support/runtime-harness.ts';
import { contacts } from '../support/sync-apis.ts';
import { applySyncSchedule, assertMirrors, lastRun, runNow, syncFallbackMessages, syncSpec, syncSuite } from '../support/sync-harness.ts';

describe('SyncSchedule runs', { timeout: 600_000 }, () => {
  let r: RuntimeEnv;
  const suite = syncSuite('sync-a');
  const apis = suite.apis;

  before(() => {
    r = suite.env();
  });

  for (const style of ['cursor', 'page', 'offset', 'link'] as const) {
    it(`copies 5,000 records across 10 pages (${style} pagination); a second run writes nothing`, async () => {
      const { crm, erp } = await apis();
      crm.seed(contacts(5_000));
      const name = `first-${style}`;
      await applySyncSchedule(r, name, syncSpec({ name, crm, erp, style, limit: 500 }));
      const first = await runNow(r, name);
      assert.equal(first.result, 'Succeeded', first.message);
      assert.equal(first.fetched, 5_000);
      assert.equal(first.written, 5_000);
      assert.equal(assertMirrors(crm, erp), undefined);
      const s = erp.stats();
      assert.ok([...s.appliedById.values()].every((n) => n === 1), 'each record applied once');
      assert.ok(crm.requests.filter((q) => q.path.endsWith('/contacts')).length >= 10, 'at least 10 pages read');
      assert.equal(first.watermark, contacts(5_000).at(-1)?.updatedAt);

      erp.resetCounters();
      const second = await runNow(r, name);
      assert.equal(second.result, 'Succeeded', second.message);
      assert.equal(second.written, 0);
      // The lookback re-reads the last minute: 60 records, all unchanged.
      assert.equal(second.unchanged, second.fetched);
      assert.equal(erp.stats().writesApplied, 0);
    });
  }

  it('kubectl get ss shows Last run, Result and Next run; metrics count runs and records', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(50));
    const name = 'columns';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp }));
    await runNow(r, name);
    const out = await kubectl(r.env.kubeconfigPath, ['get', 'ss', '-n', NS, name]);
    const [header, row] = out.stdout.trim().split('\n');
    assert.match(header ?? '', /NAME\s+READY\s+REASON\s+LAST RUN\s+RESULT\s+NEXT RUN\s+FALLBACK\s+AGE/);
    assert.match(row ?? '', new RegExp(`^${name}\\s+True\\s+Scheduled\\s+\\S+\\s+Succeeded\\s+\\S+\\s+0\\s+`));
    const metrics = await r.operators[0]?.metrics();
    assert.match(metrics ?? '', new RegExp(`ferry_sync_runs_total\\{namespace="${NS}",syncschedule="${name}",result="Succeeded"\\} 1`));
    assert.match(metrics ?? '', new RegExp(`ferry_sync_records_total\\{namespace="${NS}",syncschedule="${name}",outcome="written"\\} 50`));
    assert.match(metrics ?? '', new RegExp(`ferry_sync_seconds_since_last_success\\{namespace="${NS}",syncschedule="${name}"\\} \\d`));
    assert.match(metrics ?? '', new RegExp(`ferry_sync_run_duration_seconds_count\\{namespace="${NS}",syncschedule="${name}",result="Succeeded"\\} 1`));
  });

  it('a full (non-incremental) re-sync reports unchanged: N; 1% changed → exactly those are written', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(5_000));
    const name = 'changes';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, spec: (s) => delete (s.source as Record<string, unknown>).incremental }));
    assert.equal((await runNow(r, name)).written, 5_000);
    erp.resetCounters();
    const again = await runNow(r, name);
    assert.equal(again.unchanged, 5_000);
    assert.equal(again.written, 0);
    const changed = new Set<string>();
    for (let i = 0; i < 5_000; i += 100) {
      const id = `c${String(i + 1).padStart(5, '0')}`;
      crm.update(id, { amount: 999_999 });
      changed.add(id);
    }
    erp.resetCounters();
    const third = await runNow(r, name);
    assert.equal(third.written, 50);
    assert.equal(third.unchanged, 4_950);
    assert.deepEqual(new Set(erp.stats().appliedById.keys()), changed);
    assert.equal(assertMirrors(crm, erp), undefined);
  });

  it('one bad record (schema, or a 422 from the target): the others are written, Partial, retried, parked after maxAttempts', async () => {
    const { crm, erp } = await apis();
    const records = contacts(200);
    records[10] = { ...records[10]!, email: 'not-an-email' };
    crm.seed(records);
    erp.rejectIds(['c00020']);
    const name = 'bad-records';
    await applySyncSchedule(
      r,
      name,
      syncSpec({
        name,
        crm,
        erp,
        spec: (s) => {
          s.schema = { inline: { type: 'object', required: ['email'], properties: { email: { type: 'string', pattern: '@' } } } };
          s.failedRecords = { maxAttempts: 2 };
        },
      }),
    );
    const first = await runNow(r, name);
    assert.equal(first.result, 'Partial', first.message);
    assert.equal(first.failed, 2);
    assert.equal(first.written, 198);
    let obj = await r.ferry.get('syncschedules', NS, name);
    assert.equal(obj.status?.failedRecords, 2);
    const second = await runNow(r, name);
    assert.equal(second.result, 'Partial');
    assert.equal(second.failed, 2, 'both retried on the next run');
    obj = await r.ferry.waitFor('syncschedules', NS, name, (o) => o.status?.fallbackPending === 2);
    assert.equal(obj.status?.failedRecords, 0, 'parked ones leave the failed-key index');
    const parked = await syncFallbackMessages(r, name);
    const byKey = new Map(parked.map((m) => [m.header?.get('Ferry-Record-Key'), m]));
    assert.equal(byKey.get('c00011')?.header?.get('Ferry-Reason'), 'invalid');
    assert.match(byKey.get('c00011')?.header?.get('Ferry-Error') ?? '', /email/);
    assert.equal(byKey.get('c00020')?.header?.get('Ferry-Reason'), 'rejected');
    assert.equal(byKey.get('c00020')?.header?.get('Ferry-Http-Status'), '422');
    assert.equal(byKey.get('c00020')?.header?.get('Ferry-Attempts'), '2');
    assert.equal(byKey.get('c00020')?.header?.get('Ferry-Sync-Schedule'), `${NS}/${name}`);
    assert.equal((JSON.parse(new TextDecoder().decode(byKey.get('c00011')?.data)) as { id: string }).id, 'c00011', 'the source record, untouched');
    assert.equal(erp.all().size, 198);
    assert.ok(lastRun(obj));
  });
});
