import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, Registry, silentLogger } from '../observability/index.ts';
import { AlreadyExistsError, ConflictError, UnavailableError } from './errors.ts';
import { LeaderElector, type LeaderElectionEnd } from './leader-election.ts';
import { decideLease, observe, releaseRecord, renewDeadlinePassed, type LeaseClient, type LeaseRecord, type LeaseSnapshot } from './lease.ts';
import { microTime } from './object.ts';

const info = { method: 'PUT', path: '/lease' };

/** An in-memory Lease with the API server's optimistic concurrency. */
class MemoryLease implements LeaseClient {
  readonly description = 'memory';
  stored: LeaseSnapshot | undefined;
  writes = 0;
  /** While true, every call fails as if the API server were unreachable. */
  down = false;
  private rv = 0;

  get(): Promise<LeaseSnapshot | undefined> {
    if (this.down) return Promise.reject(new UnavailableError('down', info));
    return Promise.resolve(this.stored);
  }

  create(record: LeaseRecord): Promise<LeaseSnapshot> {
    if (this.down) return Promise.reject(new UnavailableError('down', info));
    if (this.stored) return Promise.reject(new AlreadyExistsError('exists', info));
    return Promise.resolve(this.write(record));
  }

  update(record: LeaseRecord, previous: LeaseSnapshot): Promise<LeaseSnapshot> {
    if (this.down) return Promise.reject(new UnavailableError('down', info));
    if (this.stored?.resourceVersion !== previous.resourceVersion) return Promise.reject(new ConflictError('conflict', info));
    return Promise.resolve(this.write(record));
  }

  private write(record: LeaseRecord): LeaseSnapshot {
    this.writes++;
    this.stored = { record, resourceVersion: String(++this.rv) };
    return this.stored;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Advances the clock in small steps, letting async work run between them. */
async function advance(clock: ManualClock, ms: number, step = 100): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    await clock.advance(Math.min(step, ms - done));
    await settle();
  }
}

interface Candidate {
  elector: LeaderElector;
  stop: AbortController;
  ended: Promise<LeaderElectionEnd>;
  events: string[];
}

function candidate(
  identity: string,
  lease: LeaseClient,
  clock: ManualClock,
  options: { releaseOnCancel?: boolean } = {},
): Candidate {
  const elector = new LeaderElector({
    lease: { namespace: 'ferry', name: 'ferry-operator' },
    identity,
    leaseClient: lease,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    releaseOnCancel: options.releaseOnCancel ?? true,
    clock,
    logger: silentLogger(),
    registry: new Registry(),
    random: () => 0, // no jitter: candidates retry exactly every retryPeriod
  });
  const stop = new AbortController();
  const events: string[] = [];
  const ended = elector.start(stop.signal, {
    onStartedLeading: async (signal) => {
      events.push('started');
      await new Promise<void>((resolve) => { signal.addEventListener('abort', () => { resolve(); }, { once: true }); });
      events.push('work-stopped');
    },
    onStoppedLeading: () => events.push('stopped'),
  });
  return { elector, stop, ended, events };
}

describe('leader election decisions (pure)', () => {
  const now = 1_700_000_000_000;

  it('creates the lease when there is none', () => {
    const d = decideLease({ identity: 'a', current: undefined, observation: undefined, now, leaseDurationSeconds: 15 });
    assert.equal(d.kind, 'create');
    assert.deepEqual(d.record, {
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    });
    assert.match(d.record.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('does not steal a lease that is live by our own observation, whatever its timestamps say', () => {
    // The holder's clock is a day behind: its renewTime looks ancient, but we saw it change just now.
    const current = { holderIdentity: 'b', leaseDurationSeconds: 15, renewTime: microTime(now - 86_400_000), leaseTransitions: 3 };
    const observation = observe(undefined, current, now);
    const d = decideLease({ identity: 'a', current, observation, now: now + 14_999, leaseDurationSeconds: 15 });
    assert.deepEqual(d, { kind: 'held', holder: 'b', expiresAt: now + 15_000 });
  });

  it('takes over a lease that has not changed for its duration', () => {
    const current = { holderIdentity: 'b', leaseDurationSeconds: 15, acquireTime: 'x', renewTime: 'y', leaseTransitions: 3 };
    let observation = observe(undefined, current, now);
    // Seeing the same record again does not restart its clock.
    observation = observe(observation, { ...current }, now + 10_000);
    assert.equal(observation.at, now);
    const d = decideLease({ identity: 'a', current, observation, now: now + 15_000, leaseDurationSeconds: 15 });
    assert.ok(d.kind === 'update');
    assert.equal(d.takeover, true);
    assert.equal(d.record.holderIdentity, 'a');
    assert.equal(d.record.leaseTransitions, 4);
    assert.equal(d.record.acquireTime, microTime(now + 15_000));
  });

  it('a changed record restarts the expiry clock', () => {
    const first = { holderIdentity: 'b', leaseDurationSeconds: 15, renewTime: 't1' };
    const renewed = { ...first, renewTime: 't2' };
    const observation = observe(observe(undefined, first, now), renewed, now + 10_000);
    assert.equal(observation.at, now + 10_000);
    const d = decideLease({ identity: 'a', current: renewed, observation, now: now + 20_000, leaseDurationSeconds: 15 });
    assert.equal(d.kind, 'held');
  });

  it('renews its own lease keeping acquireTime and transitions', () => {
    const current = { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: 'acq', renewTime: 'old', leaseTransitions: 2 };
    const d = decideLease({ identity: 'a', current, observation: observe(undefined, current, now), now, leaseDurationSeconds: 15 });
    assert.ok(d.kind === 'update');
    assert.equal(d.takeover, false);
    assert.equal(d.record.acquireTime, 'acq');
    assert.equal(d.record.leaseTransitions, 2);
    assert.equal(d.record.renewTime, microTime(now));
  });

  it('a released lease (empty holder) can be taken at once', () => {
    const released = releaseRecord({ holderIdentity: 'b', leaseTransitions: 5 }, now);
    assert.equal(released.holderIdentity, '');
    assert.equal(released.leaseDurationSeconds, 1);
    assert.equal(released.leaseTransitions, 5);
    const d = decideLease({ identity: 'a', current: released, observation: observe(undefined, released, now), now, leaseDurationSeconds: 15 });
    assert.equal(d.kind, 'update');
    assert.equal(d.record.leaseTransitions, 6);
  });

  it('gives up once the renew deadline has passed since the last renewal', () => {
    assert.equal(renewDeadlinePassed(now, now + 9_999, 10_000), false);
    assert.equal(renewDeadlinePassed(now, now + 10_000, 10_000), true);
  });

  it('rejects timings that break client-go’s rules', () => {
    const base = { lease: { namespace: 'n', name: 'l' }, identity: 'a', leaseClient: new MemoryLease(), clock: new ManualClock(), logger: silentLogger(), registry: new Registry() };
    assert.throws(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }), /greater than renewDeadlineMs/);
    assert.throws(() => new LeaderElector({ ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }), /1.2/);
    assert.throws(() => new LeaderElector({ ...base, leaseDurationMs: 15_500 }), /whole number of seconds/);
  });
});

describe('LeaderElector (ManualClock, in-memory Lease)', () => {
  it('acquires an absent lease, and a second candidate does not steal it while it is renewed', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    const a = candidate('a', lease, clock);
    await settle();
    assert.equal(a.elector.isLeader, true);
    assert.deepEqual(a.events, ['started']);
    assert.equal(lease.stored?.record.holderIdentity, 'a');

    const b = candidate('b', lease, clock);
    await advance(clock, 60_000);
    assert.equal(b.elector.isLeader, false, 'b never leads while a renews');
    assert.equal(a.elector.isLeader, true);
    assert.equal(lease.stored.record.holderIdentity, 'a');
    assert.equal(lease.stored.record.leaseTransitions, 0);
    assert.equal(b.elector.leader, 'a');

    b.stop.abort();
    assert.equal(await b.ended, 'stopped');
    a.stop.abort();
    await advance(clock, 100);
    assert.equal(await a.ended, 'stopped');
  });

  it('takes over an expired lease only after its full duration since it last changed', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    const a = candidate('a', lease, clock, { releaseOnCancel: false });
    await settle();
    const b = candidate('b', lease, clock);
    await settle(); // b observes a's record now (t = 0)

    // a dies without releasing: its last renewal stays in the Lease.
    a.stop.abort();
    assert.equal(await a.ended, 'stopped');
    assert.equal(lease.stored?.record.holderIdentity, 'a', 'not released');

    await advance(clock, 14_000);
    assert.equal(b.elector.isLeader, false, 'still within the lease duration');
    await advance(clock, 2_000);
    assert.equal(b.elector.isLeader, true, 'took over after the lease duration');
    assert.equal(lease.stored.record.holderIdentity, 'b');
    assert.equal(lease.stored.record.leaseTransitions, 1);
    b.stop.abort();
    await advance(clock, 100);
    await b.ended;
  });

  it('a graceful stop stops leader work first, then releases; a standby takes over within a retry period', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    const a = candidate('a', lease, clock);
    await settle();
    const b = candidate('b', lease, clock);
    await advance(clock, 5_000);

    a.stop.abort();
    assert.equal(await a.ended, 'stopped');
    assert.deepEqual(a.events, ['started', 'work-stopped', 'stopped']);
    assert.equal(lease.stored?.record.holderIdentity, '');
    assert.equal(lease.stored.record.leaseDurationSeconds, 1);

    await advance(clock, 2_000);
    assert.equal(b.elector.isLeader, true, 'no need to wait 15 s');
    b.stop.abort();
    await advance(clock, 100);
    await b.ended;
  });

  it('gives up leadership when it cannot renew within the renew deadline', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    const a = candidate('a', lease, clock);
    await settle();
    assert.equal(a.elector.isLeader, true);
    let endedAt: number | undefined;
    void a.ended.then(() => {
      endedAt = clock.now();
    });
    const t0 = clock.now();

    lease.down = true;
    await advance(clock, 9_000);
    assert.equal(a.elector.isLeader, true, 'still within the renew deadline');
    await advance(clock, 3_000);
    assert.equal(await a.ended, 'lost');
    assert.equal(a.elector.isLeader, false);
    assert.deepEqual(a.events, ['started', 'work-stopped', 'stopped']);
    // Renewals run every 2 s: the first attempt at or past 10 s without success gives up, well
    // before the 15 s after which another replica may take over.
    assert.ok(endedAt !== undefined && endedAt - t0 >= 10_000 && endedAt - t0 < 15_000, String(endedAt && endedAt - t0));
  });

  it('stops leading at once when it sees another holder', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    const a = candidate('a', lease, clock);
    await settle();
    // Someone overwrote the Lease (e.g. an operator by hand).
    const current = lease.stored;
    assert.ok(current);
    await lease.update({ ...current.record, holderIdentity: 'intruder' }, current);
    await advance(clock, 2_000);
    assert.equal(await a.ended, 'lost');
  });

  it('exactly one of several candidates leads', async () => {
    const clock = new ManualClock();
    const lease = new MemoryLease();
    const all = ['a', 'b', 'c'].map((id) => candidate(id, lease, clock));
    for (let i = 0; i < 20; i++) {
      await advance(clock, 1_000);
      assert.equal(all.filter((x) => x.elector.isLeader).length, 1);
    }
    for (const x of all) x.stop.abort();
    await advance(clock, 100);
    await Promise.all(all.map((x) => x.ended));
  });
});
