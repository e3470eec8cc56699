import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_STARTING_DEADLINE_MS, MAX_COUNTED_MISSED, planSchedule, type Plan, type PlanInput } from './schedule-plan.ts';

const at = (iso: string): Date => new Date(iso);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function plan(input: Partial<PlanInput> & Pick<PlanInput, 'now'>): Plan {
  return planSchedule({
    schedule: '* * * * *',
    timeZone: 'UTC',
    lastSlot: undefined,
    notBefore: at('2026-01-01T00:00:00Z'),
    startingDeadlineMs: undefined,
    ...input,
  });
}

/**
 * Drives the planner as the runtime would, waking every `stepMs` from `from` to `to` and storing
 * each run or expired slot as the new lastSlot. Returns the slots that ran.
 */
function simulate(schedule: string, timeZone: string, from: Date, to: Date, stepMs: number): Date[] {
  const runs: Date[] = [];
  let lastSlot: Date | undefined;
  for (let t = from.getTime(); t <= to.getTime(); t += stepMs) {
    const p = planSchedule({ schedule, timeZone, now: new Date(t), lastSlot, notBefore: from, startingDeadlineMs: undefined });
    if (p.kind === 'run') {
      runs.push(p.slot);
      lastSlot = p.slot;
    } else if (p.expired) {
      lastSlot = p.expired.slot;
    }
  }
  return runs;
}

const iso = (dates: readonly Date[]): string[] => dates.map((d) => d.toISOString());

describe('planSchedule', () => {
  it('runs an every-minute schedule once per minute', () => {
    assert.deepEqual(plan({ now: at('2026-01-01T12:00:30Z'), lastSlot: at('2026-01-01T11:59:00Z') }), {
      kind: 'run',
      slot: at('2026-01-01T12:00:00Z'),
      missed: 0,
      next: at('2026-01-01T12:01:00Z'),
    });
    // A slot exactly at now is due.
    assert.deepEqual(plan({ now: at('2026-01-01T12:01:00Z'), lastSlot: at('2026-01-01T12:00:00Z') }), {
      kind: 'run',
      slot: at('2026-01-01T12:01:00Z'),
      missed: 0,
      next: at('2026-01-01T12:02:00Z'),
    });
    const from = at('2026-01-01T12:00:10Z');
    const runs = simulate('* * * * *', 'UTC', from, new Date(from.getTime() + 10 * 60_000), 7_000);
    assert.deepEqual(iso(runs), Array.from({ length: 10 }, (_, i) => `2026-01-01T12:${String(i + 1).padStart(2, '0')}:00.000Z`));
  });

  it('never runs the stored lastSlot again', () => {
    assert.deepEqual(plan({ now: at('2026-01-01T12:00:59.999Z'), lastSlot: at('2026-01-01T12:00:00Z') }), {
      kind: 'wait',
      next: at('2026-01-01T12:01:00Z'),
    });
  });

  it('runs only the latest of the slots missed while down', () => {
    assert.deepEqual(plan({ now: at('2026-01-01T11:10:30Z'), lastSlot: at('2026-01-01T11:00:00Z') }), {
      kind: 'run',
      slot: at('2026-01-01T11:10:00Z'),
      missed: 9,
      next: at('2026-01-01T11:11:00Z'),
    });
  });

  it('runs no slot at or before notBefore', () => {
    const notBefore = at('2026-01-01T10:00:00Z');
    assert.deepEqual(plan({ now: at('2026-01-01T10:00:45Z'), notBefore }), { kind: 'wait', next: at('2026-01-01T10:01:00Z') });
    // Never run: missed counts from the creation time.
    assert.deepEqual(plan({ now: at('2026-01-01T10:05:10Z'), notBefore: at('2026-01-01T10:00:30Z') }), {
      kind: 'run',
      slot: at('2026-01-01T10:05:00Z'),
      missed: 4,
      next: at('2026-01-01T10:06:00Z'),
    });
  });

  it('does not run a slot past the starting deadline, and reports it as expired', () => {
    const input = { schedule: '0 2 * * *', now: at('2026-01-02T05:00:00Z'), lastSlot: at('2026-01-01T02:00:00Z') };
    assert.equal(DEFAULT_STARTING_DEADLINE_MS, HOUR);
    assert.deepEqual(plan(input), {
      kind: 'wait',
      next: at('2026-01-03T02:00:00Z'),
      expired: { slot: at('2026-01-02T02:00:00Z'), missed: 0 },
    });
    // Once recorded as skipped, it is not considered again.
    assert.deepEqual(plan({ ...input, lastSlot: at('2026-01-02T02:00:00Z') }), { kind: 'wait', next: at('2026-01-03T02:00:00Z') });
    // The deadline is inclusive, and a longer one runs the slot late.
    assert.equal(plan({ ...input, now: at('2026-01-02T03:00:00Z') }).kind, 'run');
    assert.equal(plan({ ...input, now: at('2026-01-02T03:00:00.001Z') }).kind, 'wait');
    assert.deepEqual(plan({ ...input, startingDeadlineMs: 4 * HOUR }), {
      kind: 'run',
      slot: at('2026-01-02T02:00:00Z'),
      missed: 0,
      next: at('2026-01-03T02:00:00Z'),
    });
    // Expired after several missed days: missed counts the earlier ones.
    assert.deepEqual(plan({ ...input, now: at('2026-01-05T12:00:00Z') }), {
      kind: 'wait',
      next: at('2026-01-06T02:00:00Z'),
      expired: { slot: at('2026-01-05T02:00:00Z'), missed: 3 },
    });
  });

  it('does not wake for slots that another replica already stored', () => {
    // A replica whose clock ran two minutes ahead stored 12:02.
    assert.deepEqual(plan({ now: at('2026-01-01T12:00:30Z'), lastSlot: at('2026-01-01T12:02:00Z') }), {
      kind: 'wait',
      next: at('2026-01-01T12:03:00Z'),
    });
  });

  it('has no next for a pattern that never fires again', () => {
    assert.deepEqual(plan({ schedule: '0 0 0 1 1 * 2025', now: at('2026-01-01T12:00:00Z') }), { kind: 'wait', next: undefined });
  });

  it('computes a per-second schedule missed for seven days cheaply, capping missed', () => {
    const now = at('2026-01-08T12:00:00.500Z');
    assert.deepEqual(
      plan({ schedule: '* * * * * *', timeZone: 'Europe/Berlin', now, lastSlot: new Date(now.getTime() - 7 * DAY) }),
      { kind: 'run', slot: at('2026-01-08T12:00:00Z'), missed: MAX_COUNTED_MISSED, next: at('2026-01-08T12:00:01Z') },
    );
    // Under the cap the count is exact.
    assert.deepEqual(plan({ schedule: '* * * * * *', now: at('2026-01-01T12:00:10Z'), lastSlot: at('2026-01-01T12:00:00Z') }), {
      kind: 'run',
      slot: at('2026-01-01T12:00:10Z'),
      missed: 9,
      next: at('2026-01-01T12:00:11Z'),
    });
  });

  describe('daylight saving time in Europe/Berlin', () => {
    const berlin = { schedule: '30 2 * * *', timeZone: 'Europe/Berlin' };

    it('runs 02:30 once on the spring-forward day, at 03:00 CEST when the clock jumps', () => {
      // 2026-03-29 02:00 CET becomes 03:00 CEST (01:00Z): 02:30 does not exist. croner runs the
      // fixed-time slot at the first valid time after the gap.
      assert.deepEqual(plan({ ...berlin, now: at('2026-03-29T01:00:30Z'), lastSlot: at('2026-03-28T01:30:00Z') }), {
        kind: 'run',
        slot: at('2026-03-29T01:00:00Z'),
        missed: 0,
        next: at('2026-03-30T00:30:00Z'), // 02:30 CEST
      });
      const runs = simulate(berlin.schedule, berlin.timeZone, at('2026-03-27T23:00:00Z'), at('2026-03-30T22:00:00Z'), 10 * 60_000);
      assert.deepEqual(iso(runs), ['2026-03-28T01:30:00.000Z', '2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
    });

    it('runs 02:30 once on the fall-back day, at the first of its two occurrences', () => {
      // 2026-10-25 03:00 CEST becomes 02:00 CET (01:00Z): 02:30 happens at 00:30Z and 01:30Z.
      // croner yields only the first for a fixed-time pattern, so no deduplication is needed.
      assert.deepEqual(plan({ ...berlin, now: at('2026-10-25T01:30:30Z'), lastSlot: at('2026-10-25T00:30:00Z') }), {
        kind: 'wait',
        next: at('2026-10-26T01:30:00Z'), // 02:30 CET
      });
      const runs = simulate(berlin.schedule, berlin.timeZone, at('2026-10-23T22:00:00Z'), at('2026-10-26T23:00:00Z'), 10 * 60_000);
      assert.deepEqual(iso(runs), ['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
    });

    it('keeps the elapsed-time pace of an interval pattern across both changes', () => {
      // Not fixed-time: the spring gap is skipped and the repeated autumn hour runs twice.
      const every30 = (from: string, to: string): string[] =>
        iso(simulate('0-59/30 2 * * *', 'Europe/Berlin', at(from), at(to), 10 * 60_000));
      assert.deepEqual(every30('2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z'), []);
      assert.deepEqual(every30('2026-10-24T22:00:00Z', '2026-10-25T22:00:00Z'), [
        '2026-10-25T00:00:00.000Z',
        '2026-10-25T00:30:00.000Z',
        '2026-10-25T01:00:00.000Z',
        '2026-10-25T01:30:00.000Z',
      ]);
      // The caveat in the module header: a list is an interval pattern too.
      assert.deepEqual(iso(simulate('30 2,14 * * *', 'Europe/Berlin', at('2026-10-24T22:00:00Z'), at('2026-10-25T10:00:00Z'), 10 * 60_000)), [
        '2026-10-25T00:30:00.000Z',
        '2026-10-25T01:30:00.000Z',
      ]);
    });
  });

  it('keeps 09:00 local in America/New_York across the spring change', () => {
    // DST starts Sunday 2026-03-08: 09:00 EST is 14:00Z, 09:00 EDT is 13:00Z.
    const ny = { schedule: '0 9 * * 1-5', timeZone: 'America/New_York' };
    assert.deepEqual(plan({ ...ny, now: at('2026-03-09T13:00:05Z'), lastSlot: at('2026-03-06T14:00:00Z') }), {
      kind: 'run',
      slot: at('2026-03-09T13:00:00Z'),
      missed: 0,
      next: at('2026-03-10T13:00:00Z'),
    });
    const runs = simulate(ny.schedule, ny.timeZone, at('2026-03-05T00:00:00Z'), at('2026-03-11T00:00:00Z'), 30 * 60_000);
    assert.deepEqual(iso(runs), [
      '2026-03-05T14:00:00.000Z',
      '2026-03-06T14:00:00.000Z',
      '2026-03-09T13:00:00.000Z',
      '2026-03-10T13:00:00.000Z',
    ]);
    const localHour = new Intl.DateTimeFormat('en-US', { timeZone: ny.timeZone, hour: 'numeric', hourCycle: 'h23' });
    assert.deepEqual(runs.map((d) => localHour.format(d)), ['09', '09', '09', '09']);
  });

  it('throws on an invalid pattern or time zone', () => {
    const now = at('2026-01-01T12:00:00Z');
    assert.throws(() => plan({ schedule: 'every minute', now }), TypeError);
    assert.throws(() => plan({ timeZone: 'Nowhere/Town', now }), TypeError);
  });
});
