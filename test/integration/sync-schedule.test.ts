/**
 * When SyncSchedule runs happen, end to end (issue "SyncSchedule runtime", scheduling): cron slots
 * in the spec's time zone, `suspend` against `ferry.dev/run-now`, `concurrencyPolicy` Forbid and
 * Replace on a run slower than the slot interval, two replicas sharing the run lock, a run due
 * while the leader (frozen) has not yet reconciled the new object, and a runner killed mid-run
 * whose lock expires. Real kube-apiserver, NATS and operators as child processes;
 * a fake CRM (source) and ERP (target) that count effects by the record id in the ERP's bodies.
 *
 * Times are judged against wall-clock slot boundaries with generous bounds (the scheduler looks
 * once a second); the only fixed waits are the "nothing happens for more than two slots" checks.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { CoordinationV1Api } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { syncFallbackStreamName, syncStateBucketName } from '../../src/nats/index.ts';
import { kubectl } from '../support/crds.ts';
import { condition, type FerryObj } from '../support/ferry-client.ts';
import type { LogLine, OperatorProcess } from '../support/operator-process.ts';
import { eventually, NS, type RuntimeEnv } from '../support/runtime-harness.ts';
import { contacts } from '../support/sync-apis.ts';
import { applySyncSchedule, assertMirrors, kubectlApplySyncSchedule, history, lastRun, runNow, type SyncRunStatus, syncSpec, syncSuite, waitRunAfter } from '../support/sync-harness.ts';

/** The scheduler looks once a second; a run's startedAt is this close after its slot. */
const START_BOUND_MS = 3_000;
const LOCK_TTL_ARGS = ['--sync-lock-ttl=3'];

interface LockRecord {
  readonly owner?: string;
  readonly runId?: string;
  readonly expiresAt?: number;
  readonly lastSlot?: number;
  readonly lastManual?: string;
}

/** Wall-clock fields of an instant in a time zone, computed by Intl (not by croner). */
function zoned(at: number, timeZone: string): { year: number; month: number; day: number; hour: number; minute: number } {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', hourCycle: 'h23' }).formatToParts(new Date(at));
  const part = (type: Intl.DateTimeFormatPartTypes): number => Number(parts.find((p) => p.type === type)?.value);
  return { year: part('year'), month: part('month'), day: part('day'), hour: part('hour'), minute: part('minute') };
}

/** The first instant after `now` at which the wall clock in `timeZone` reads `hour`:00. */
function nextWallClock(now: number, timeZone: string, hour: number): number {
  let best = Infinity;
  for (let day = 0; day <= 2; day++) {
    const d = zoned(now + day * 86_400_000, timeZone);
    for (let offsetMin = -14 * 60; offsetMin <= 14 * 60; offsetMin += 15) {
      const t = Date.UTC(d.year, d.month - 1, d.day, hour, 0) - offsetMin * 60_000;
      const w = zoned(t, timeZone);
      if (t > now && w.hour === hour && w.minute === 0 && w.day === d.day) best = Math.min(best, t);
    }
  }
  return best;
}

/** History oldest first. */
function chronological(obj: FerryObj | undefined): SyncRunStatus[] {
  return [...history(obj)].sort((a, b) => Date.parse(a.startedAt) - Date.parse(b.startedAt));
}

/** Run ids an operator logged as started for one SyncSchedule. */
function startedRunIds(op: OperatorProcess, name: string): string[] {
  return op.logs.filter((l) => l.msg === 'sync run started' && l.syncSchedule === name).map((l) => String(l.runId));
}

function allOnce(counts: ReadonlyMap<string, number>): boolean {
  return [...counts.values()].every((n) => n === 1);
}

describe('SyncSchedule scheduling', { timeout: 600_000 }, () => {
  let r: RuntimeEnv;
  let opA: OperatorProcess;
  const suite = syncSuite('sched-a', LOCK_TTL_ARGS);
  const apis = suite.apis;
  const status = (name: string): Promise<FerryObj> => r.ferry.get('syncschedules', NS, name);
  /** Stops a SyncSchedule from firing for the rest of the file. */
  const remove = async (name: string): Promise<void> => {
    await r.ferry.delete('syncschedules', NS, name);
  };
  const readLock = async (name: string): Promise<LockRecord | undefined> => {
    const kv = await new Kvm(r.nc).open('ferry_syncs');
    const e = await kv.get(`${NS}.${name}.lock`);
    return e && e.operation === 'PUT' && e.value.length > 0 ? e.json<LockRecord>() : undefined;
  };
  /** `kubectl annotate … ferry.dev/run-now=<new value>` without waiting for the run. */
  const annotateRunNow = async (name: string): Promise<void> => {
    await kubectl(r.env.kubeconfigPath, ['annotate', '-n', NS, `syncschedule/${name}`, `ferry.dev/run-now=t${Date.now()}-${randomBytes(2).toString('hex')}`, '--overwrite']);
  };

  before(() => {
    r = suite.env();
    opA = suite.operator();
  });

  it('a seconds cron fires on its slots in its time zone; a 5-field schedule gets the next 09:00 in its zone', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(20));

    // 09:00 in Berlin is 07:00Z in summer and 08:00Z in winter; in Kolkata always 03:30Z.
    await applySyncSchedule(r, 'berlin', syncSpec({ name: 'berlin', crm, erp, schedule: '0 9 * * *', spec: (s) => (s.timeZone = 'Europe/Berlin') }));
    await applySyncSchedule(r, 'kolkata-daily', syncSpec({ name: 'kolkata-daily', crm, erp, schedule: '0 9 * * *', spec: (s) => (s.timeZone = 'Asia/Kolkata') }));
    const berlin = await status('berlin');
    const berlinNext = Date.parse(berlin.status?.nextScheduleTime ?? '');
    assert.equal(berlinNext, nextWallClock(Date.now(), 'Europe/Berlin', 9), `Berlin next: ${berlin.status?.nextScheduleTime}`);
    assert.ok([7, 8].includes(new Date(berlinNext).getUTCHours()) && new Date(berlinNext).getUTCMinutes() === 0);
    const kolkataNext = (await status('kolkata-daily')).status?.nextScheduleTime ?? '';
    assert.match(kolkataNext, /T03:30:00(\.000)?Z$/);
    assert.ok(Date.parse(kolkataNext) > Date.now() && Date.parse(kolkataNext) <= Date.now() + 86_400_000);

    // Every 10 s, but only in the next four minutes of Kolkata's wall clock (UTC+05:30): read in
    // UTC the same minutes are half an hour away, so a run at all shows the zone is honoured.
    const zone = 'Asia/Kolkata';
    const m = zoned(Date.now(), zone).minute;
    const minutes = new Set([0, 1, 2, 3].map((i) => (m + i) % 60));
    const name = 'kolkata-10s';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, schedule: `*/10 ${[...minutes].join(',')} * * * *`, spec: (s) => (s.timeZone = zone) }));
    const obj = await r.ferry.waitFor('syncschedules', NS, name, (o) => history(o).length >= 3, 90_000);
    const runs = chronological(obj);
    const slots = runs.map((run) => {
      const at = Date.parse(run.startedAt);
      assert.equal(run.result, 'Succeeded', run.message);
      assert.ok(at % 10_000 < START_BOUND_MS, `run ${run.id} started at ${run.startedAt}: not just after a 10 s slot`);
      const slot = at - (at % 10_000);
      assert.ok(minutes.has(zoned(slot, zone).minute), `slot ${new Date(slot).toISOString()} is outside the Kolkata minutes ${[...minutes].join(',')}`);
      return slot;
    });
    assert.equal(new Set(slots).size, slots.length, 'one run per slot');
    assert.equal(runs[0]?.written, 20, 'the first run copies everything');
    const next = Date.parse(obj.status?.nextScheduleTime ?? '');
    assert.equal(next % 10_000, 0, `nextScheduleTime ${obj.status?.nextScheduleTime} is a slot`);
    assert.ok(minutes.has(zoned(next, zone).minute), `nextScheduleTime ${obj.status?.nextScheduleTime} is in a Kolkata minute of the schedule`);
    assert.ok(typeof obj.status?.lastScheduleTime === 'string' && Date.parse(obj.status.lastScheduleTime) >= (slots.at(-1) ?? Infinity));
    assert.equal(assertMirrors(crm, erp), undefined);
    await Promise.all([remove(name), remove('berlin'), remove('kolkata-daily')]);
  });

  it('suspend stops scheduled runs while run-now still runs one; resuming schedules again', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(20));
    const name = 'suspended';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, schedule: '*/5 * * * * *' }));
    const first = await waitRunAfter(r, name, undefined, 30_000);
    assert.equal(first.result, 'Succeeded', first.message);

    await r.ferry.editSpec('syncschedules', NS, name, (s) => (s.suspend = true));
    const suspended = await r.ferry.waitFor('syncschedules', NS, name, (o) => {
      const ready = condition(o, 'Ready');
      return ready?.reason === 'Suspended' && ready.observedGeneration === o.metadata.generation && lastRun(o)?.result !== 'Running';
    });
    assert.equal(suspended.status?.nextScheduleTime, undefined, 'no next run while suspended');
    // A slot the scheduler took just before it saw the edit may still finish: let it land.
    await sleep(2_000);
    const before = new Set(history(await status(name)).map((h) => h.id));

    const manual = await runNow(r, name);
    assert.equal(manual.result, 'Succeeded', manual.message);
    // More than two slots of `*/5`.
    await sleep(12_000);
    const during = await status(name);
    const added = history(during).filter((h) => !before.has(h.id));
    assert.deepEqual(added.map((h) => h.id), [manual.id], 'only the run-now run happened while suspended');

    await r.ferry.editSpec('syncschedules', NS, name, (s) => (s.suspend = false));
    const resumed = await waitRunAfter(r, name, manual.id, 30_000);
    assert.equal(resumed.result, 'Succeeded', resumed.message);
    const after = await r.ferry.waitFor('syncschedules', NS, name, (o) => o.status?.nextScheduleTime !== undefined);
    assert.equal(Date.parse(after.status?.nextScheduleTime ?? '') % 5_000, 0);
    assert.ok(Date.parse(String(after.status?.lastScheduleTime)) > Date.parse(manual.startedAt), 'a scheduled run after resuming');
    assert.equal(assertMirrors(crm, erp), undefined);
    await remove(name);
  });

  it('Forbid: a slot due while a slow run runs is recorded Skipped; the slow run still succeeds; nothing written twice', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(60));
    // Six source pages of 2 s each: a run takes over 12 s, more than two 5 s slots.
    crm.delayMs = 2_000;
    const name = 'forbid';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, schedule: '*/5 * * * * *', limit: 10 }));
    const obj = await r.ferry.waitFor(
      'syncschedules',
      NS,
      name,
      (o) => history(o).some((h) => h.written === 60) && history(o).some((h) => h.result === 'Skipped'),
      60_000,
    );
    crm.delayMs = 0;
    const runs = history(obj);
    const slow = runs.find((h) => h.written === 60);
    assert.equal(slow?.result, 'Succeeded', slow?.message);
    assert.equal(slow.fetched, 60);
    const skipped = runs.filter((h) => h.result === 'Skipped');
    assert.ok(skipped.length >= 1);
    for (const s of skipped) assert.match(s.message ?? '', /Forbid/);
    const during = skipped.filter((s) => Date.parse(s.startedAt) > Date.parse(slow.startedAt) && Date.parse(s.startedAt) < Date.parse(slow.finishedAt ?? ''));
    assert.ok(during.length >= 1, `a slot during the slow run (${slow.startedAt} … ${slow.finishedAt}) was skipped: ${JSON.stringify(skipped)}`);
    assert.equal(runs.filter((h) => h.result === 'Failed').length, 0, JSON.stringify(runs));
    // Skips and runs alike happen on slots: a skipped slot is not run late when the slow run ends.
    for (const h of runs) assert.ok(Date.parse(h.startedAt) % 5_000 < START_BOUND_MS, `${h.result} ${h.id} at ${h.startedAt} is off its slot`);
    await remove(name);
    assert.equal(assertMirrors(crm, erp), undefined);
    assert.ok(allOnce(erp.stats().appliedById), 'each record applied once');
  });

  it('Replace: a slot due while a slow run runs cancels it; the new run starts; the target ends complete', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(60));
    crm.delayMs = 2_000;
    const name = 'replace';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, schedule: '*/5 * * * * *', limit: 10, spec: (s) => (s.concurrencyPolicy = 'Replace') }));
    const replacedObj = await r.ferry.waitFor('syncschedules', NS, name, (o) => history(o).some((h) => h.result === 'Failed'), 60_000);
    // From now on runs are fast, so one gets to finish before the next slot.
    crm.delayMs = 0;
    const replaced = history(replacedObj).find((h) => h.result === 'Failed');
    assert.ok(replaced?.finishedAt !== undefined);
    assert.match(replaced.message ?? '', /cancelled: .*replaced/, JSON.stringify(replaced));
    // It ended at the next slot, well before the 12 s its six slow pages would take.
    const oldSlot = Date.parse(replaced.startedAt) - (Date.parse(replaced.startedAt) % 5_000);
    const ended = Date.parse(replaced.finishedAt);
    assert.ok(ended >= oldSlot + 5_000 && ended < oldSlot + 5_000 + START_BOUND_MS, `the replaced run ended at ${replaced.finishedAt}`);
    const done = await r.ferry.waitFor('syncschedules', NS, name, (o) => history(o).some((h) => h.result === 'Succeeded' && Date.parse(h.startedAt) > ended), 60_000);
    const seen = [...history(done), lastRun(done)];
    // The run that replaced it started on the next slot (and is named in the message when the
    // lock watch saw it first).
    const replacing = seen.find((h) => h !== undefined && h.id !== replaced.id && Date.parse(h.startedAt) >= oldSlot + 5_000 && Date.parse(h.startedAt) < oldSlot + 5_000 + START_BOUND_MS);
    assert.ok(replacing, `a run started on the slot after ${new Date(oldSlot).toISOString()}: ${JSON.stringify(seen)}`);
    const by = /replaced by run (\S+)/.exec(replaced.message ?? '')?.[1];
    if (by !== undefined) assert.equal(by, replacing.id);
    await remove(name);
    assert.equal(assertMirrors(crm, erp), undefined);
    assert.ok(allOnce(erp.stats().distinctBodiesById), 'no record applied with two different bodies');
  });

  it('two replicas: each slot runs exactly once, on one replica', async (t) => {
    const opB = await r.startOperator('sched-b', LOCK_TTL_ARGS);
    const { crm, erp } = await apis();
    crm.seed(contacts(30));
    const name = 'two-replicas';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, schedule: '*/5 * * * * *' }));
    const obj = await r.ferry.waitFor('syncschedules', NS, name, (o) => history(o).length >= 6, 90_000);
    const runs = chronological(obj);
    const slots = runs.map((run) => {
      const at = Date.parse(run.startedAt);
      assert.equal(run.result, 'Succeeded', run.message);
      assert.ok(at % 5_000 < START_BOUND_MS, `run ${run.id} started at ${run.startedAt}`);
      return at - (at % 5_000);
    });
    assert.equal(new Set(slots).size, slots.length, `one run per slot: ${runs.map((h) => h.startedAt).join(', ')}`);
    for (let i = 1; i < slots.length; i++) assert.equal((slots[i] ?? 0) - (slots[i - 1] ?? 0), 5_000, `no slot missed: ${runs.map((h) => h.startedAt).join(', ')}`);

    const onA = startedRunIds(opA, name);
    const onB = startedRunIds(opB, name);
    assert.equal(new Set(onA).size, onA.length);
    assert.equal(new Set(onB).size, onB.length);
    assert.deepEqual(onA.filter((id) => onB.includes(id)), [], 'no run started on both replicas');
    for (const run of runs) assert.ok(onA.includes(run.id) !== onB.includes(run.id), `run ${run.id} started on exactly one replica`);
    t.diagnostic(`runs started on sched-a: ${onA.length}, on sched-b: ${onB.length}`);
    await remove(name);
    const s = erp.stats();
    assert.ok(allOnce(s.distinctBodiesById), 'no record applied with two different bodies');
    assert.ok(allOnce(s.appliedById), 'each record applied once');
    assert.equal(assertMirrors(crm, erp), undefined);
  });

  it('a run due before the leader reconciled the new object (leader frozen) creates its own bucket and fallback stream, and succeeds', async () => {
    const lease = await r.env.kubeConfig.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'ferry-operator', namespace: 'default' });
    const leader = r.operators.find((op) => op.process.running && op.identity === lease.spec?.holderIdentity);
    const standby = r.operators.find((op) => op.process.running && op !== leader);
    assert.ok(leader && standby, `a leader (${String(lease.spec?.holderIdentity)}) and a standby run`);
    const { crm, erp } = await apis();
    crm.seed(contacts(20));
    const name = 'before-reconcile';
    const jsm = await jetstreamManager(r.nc);
    const exists = async (stream: string): Promise<boolean> => jsm.streams.info(stream).then(() => true, () => false);

    // Frozen for less than the Lease (15 s): the standby does not take over, so nothing reconciles
    // the new SyncSchedule while the standby's scheduler sees it, due at once (run-now at creation).
    leader.pause();
    let run: LogLine;
    try {
      await kubectlApplySyncSchedule(r, name, syncSpec({ name, crm, erp }), { 'ferry.dev/run-now': 'at-creation' });
      // The run's last line ("sync run succeeded" / "failed" / …), which carries its result.
      run = await standby.waitForLog((l) => l.syncSchedule === name && typeof l.result === 'string' && l.msg?.startsWith('sync run ') === true, 10_000);
      assert.equal((await status(name)).status?.conditions, undefined, 'the frozen leader wrote no status yet');
    } finally {
      leader.resume();
    }
    assert.equal(run.result, 'Succeeded', JSON.stringify(run));
    assert.ok(await exists(`KV_${syncStateBucketName({ namespace: NS, name })}`), 'the run created its state bucket');
    assert.ok(await exists(syncFallbackStreamName({ namespace: NS, name })), 'the run created its fallback stream');
    assert.equal(assertMirrors(crm, erp), undefined);
    assert.ok(allOnce(erp.stats().appliedById), 'each record applied once');

    // The leader, back, reconciles on top of what the run created and reports that run.
    const obj = await r.ferry.waitFor('syncschedules', NS, name, (o) => lastRun(o)?.id === run.runId && condition(o, 'Ready')?.status === 'True', 30_000);
    assert.equal(lastRun(obj)?.result, 'Succeeded');
    assert.deepEqual(history(obj).map((h) => h.result), ['Succeeded']);
    await remove(name);
  });

  it('a runner killed mid-run: its lock expires after the TTL, the next run completes on the other replica, nothing lost', async () => {
    const { crm, erp } = await apis();
    crm.seed(contacts(3_000));
    const name = 'killed-runner';
    await applySyncSchedule(r, name, syncSpec({ name, crm, erp, limit: 100 }));
    crm.hangAfterPages(3);
    await annotateRunNow(name);
    await crm.waitForHeld();
    const runners = r.operators.filter((op) => op.process.running && startedRunIds(op, name).length > 0);
    assert.equal(runners.length, 1, 'one replica runs it');
    const runner = runners[0]!;
    const killedRun = startedRunIds(runner, name)[0];
    await runner.kill();
    crm.release();
    assert.ok(erp.all().size < 3_000, 'the run was cut short');

    // The dead runner's lock is still there, and lapses within the TTL (3 s) without renewal.
    const held = await readLock(name);
    assert.equal(held?.runId, killedRun);
    assert.equal(held?.owner, runner.identity);
    await eventually('the dead runner’s lock expired', async () => ((await readLock(name))?.expiresAt ?? 0) < Date.now(), 10_000);

    const next = await runNow(r, name, 120_000);
    assert.equal(next.result, 'Succeeded', next.message);
    assert.notEqual(next.id, killedRun);
    const survivor = r.operators.find((op) => op !== runner && op.process.running);
    assert.ok(survivor && startedRunIds(survivor, name).includes(next.id), 'the other replica ran it');
    assert.equal(assertMirrors(crm, erp), undefined);
    assert.ok(allOnce(erp.stats().distinctBodiesById), 'no record applied with two different bodies');
    await remove(name);
  });
});
