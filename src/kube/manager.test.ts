import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, silentLogger } from '../observability/index.ts';
import type { LeaderCallbacks, LeaderElectionEnd } from './leader-election.ts';
import { Manager, type LeaderElection, type Runnable } from './manager.ts';

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open = (): void => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** A runnable that logs its start and stop; optionally becomes ready late or ignores stop. */
function runnable(name: string, log: string[], opts: { ready?: Promise<void>; ignoreStop?: boolean } = {}): Runnable {
  return {
    name,
    start(signal) {
      log.push(`start ${name}`);
      return new Promise<void>((resolve) => {
        signal.addEventListener(
          'abort',
          () => {
            log.push(`stop ${name}`);
            if (!opts.ignoreStop) resolve();
          },
          { once: true },
        );
      });
    },
    ...(opts.ready ? { ready: async () => opts.ready } : {}),
  };
}

/** A leader election the test drives by hand. */
class FakeElection implements LeaderElection {
  private callbacks: LeaderCallbacks = {};
  private leader: AbortController | undefined;
  private work: Promise<void> | void = undefined;
  private resolveEnd: (end: LeaderElectionEnd) => void = () => {};
  started = false;

  start(signal: AbortSignal, callbacks: LeaderCallbacks): Promise<LeaderElectionEnd> {
    this.started = true;
    this.callbacks = callbacks;
    return new Promise((resolve) => {
      this.resolveEnd = resolve;
      signal.addEventListener('abort', () => void this.end('stopped'), { once: true });
    });
  }

  elect(): void {
    this.leader = new AbortController();
    this.work = this.callbacks.onStartedLeading?.(this.leader.signal);
  }

  async end(end: LeaderElectionEnd): Promise<void> {
    this.leader?.abort();
    await this.work;
    this.resolveEnd(end);
  }
}

describe('Manager', { timeout: 10_000 }, () => {
  it('starts groups in order, waiting for caches to sync, and stops them in reverse', async () => {
    const log: string[] = [];
    const synced = gate();
    const m = new Manager({ logger: silentLogger(), clock: new ManualClock() });
    m.add(runnable('controller', log), 'leader');
    m.add(runnable('pipelines', log), 'others');
    m.add(runnable('watcher', log, { ready: synced.promise }), 'caches');
    m.add(runnable('health', log), 'http');
    const stop = new AbortController();
    const exit = m.start(stop.signal);
    await settle();
    assert.deepEqual(log, ['start health', 'start watcher'], 'nothing after the caches until they are synced');
    assert.equal(m.ready, false);

    synced.open();
    await settle();
    assert.deepEqual(log, ['start health', 'start watcher', 'start pipelines', 'start controller']);
    assert.equal(m.ready, true);

    stop.abort();
    assert.deepEqual(await exit, { reason: 'stopped', timedOut: [] });
    assert.deepEqual(log.slice(4), ['stop controller', 'stop pipelines', 'stop watcher', 'stop health']);
  });

  it('runs leader runnables only while elected, and exits when leadership is lost', async () => {
    const log: string[] = [];
    const election = new FakeElection();
    const m = new Manager({ logger: silentLogger(), clock: new ManualClock(), leaderElection: election });
    m.add(runnable('controller', log), 'leader');
    m.add(runnable('pipelines', log), 'others');
    const exit = m.start(new AbortController().signal);
    await settle();
    assert.equal(election.started, true);
    assert.deepEqual(log, ['start pipelines'], 'not elected yet');

    election.elect();
    await settle();
    assert.deepEqual(log, ['start pipelines', 'start controller']);

    await election.end('lost');
    assert.deepEqual(await exit, { reason: 'leadership-lost', timedOut: [] });
    assert.deepEqual(log, ['start pipelines', 'start controller', 'stop controller', 'stop pipelines']);
  });

  it('with onLeadershipLost: recampaign, stops only leader work on a lost Lease and campaigns again', async () => {
    const log: string[] = [];
    const election = new FakeElection();
    let starts = 0;
    const counting: LeaderElection = {
      start: (signal, callbacks) => {
        starts += 1;
        return election.start(signal, callbacks);
      },
    };
    const m = new Manager({ logger: silentLogger(), clock: new ManualClock(), leaderElection: counting, onLeadershipLost: 'recampaign' });
    m.add(runnable('controller', log), 'leader');
    m.add(runnable('pipelines', log), 'others');
    const stop = new AbortController();
    const exit = m.start(stop.signal);
    await settle();
    election.elect();
    await settle();
    await election.end('lost');
    await settle();
    assert.deepEqual(log, ['start pipelines', 'start controller', 'stop controller'], 'pipelines kept running');
    assert.equal(starts, 2, 'campaigning again');
    assert.equal(m.ready, true);

    election.elect();
    await settle();
    assert.deepEqual(log.slice(3), ['start controller'], 'leader work resumes in the new term');
    stop.abort();
    assert.deepEqual(await exit, { reason: 'stopped', timedOut: [] });
    assert.deepEqual(log.slice(4), ['stop controller', 'stop pipelines']);
  });

  it('with recampaign, leader work that ignores the end of its term stops the process instead of blocking every later term', async () => {
    const log: string[] = [];
    const clock = new ManualClock(0);
    const election = new FakeElection();
    const m = new Manager({ logger: silentLogger(), clock, leaderElection: election, onLeadershipLost: 'recampaign', gracefulShutdownMs: 5_000 });
    m.add(runnable('controller', log), 'leader');
    m.add(runnable('stuck watch', log, { ignoreStop: true }), 'leader');
    m.add(runnable('pipelines', log), 'others');
    const exit = m.start(new AbortController().signal);
    await settle();
    election.elect();
    await settle();
    const ended = election.end('lost');
    await settle();
    assert.deepEqual(log, ['start pipelines', 'start controller', 'start stuck watch', 'stop controller', 'stop stuck watch']);
    await clock.advance(4_999);
    await settle();
    assert.equal(m.ready, true, 'still waiting within the budget');
    await clock.advance(1);
    await ended;
    await clock.advance(5_000);
    const result = await exit;
    assert.ok(result.reason === 'failed');
    assert.equal(result.runnable, 'stuck watch', 'names the runnable that did not stop');
    assert.match(result.error.message, /leader runnables did not stop: stuck watch/);
  });

  it('stops everything when a runnable fails', async () => {
    const log: string[] = [];
    const m = new Manager({ logger: silentLogger(), clock: new ManualClock() });
    m.add(runnable('health', log), 'http');
    m.add({ name: 'broken', start: () => Promise.reject(new Error('port in use')) }, 'others');
    const exit = await m.start(new AbortController().signal);
    assert.ok(exit.reason === 'failed');
    assert.equal(exit.runnable, 'broken');
    assert.equal(exit.error.message, 'port in use');
    assert.deepEqual(log, ['start health', 'stop health']);
  });

  it('a stop while caches sync does not start later groups', async () => {
    const log: string[] = [];
    const m = new Manager({ logger: silentLogger(), clock: new ManualClock() });
    m.add(runnable('watcher', log, { ready: new Promise(() => {}) }), 'caches');
    m.add(runnable('controller', log), 'leader');
    const stop = new AbortController();
    const exit = m.start(stop.signal);
    await settle();
    stop.abort();
    assert.equal((await exit).reason, 'stopped');
    assert.deepEqual(log, ['start watcher', 'stop watcher']);
  });

  it('abandons a group that does not stop within the grace period', async () => {
    const log: string[] = [];
    const clock = new ManualClock();
    const m = new Manager({ logger: silentLogger(), clock, gracefulShutdownMs: 5_000 });
    m.add(runnable('stuck', log, { ignoreStop: true }), 'others');
    m.add(runnable('health', log), 'http');
    const stop = new AbortController();
    const exit = m.start(stop.signal);
    await settle();
    stop.abort();
    await settle();
    assert.deepEqual(log, ['start health', 'start stuck', 'stop stuck'], 'health still serving while others stop');
    await clock.advance(5_000);
    assert.deepEqual(await exit, { reason: 'stopped', timedOut: ['stuck'] });
    assert.deepEqual(log.at(-1), 'stop health');
  });

  it('bounds the whole stop, not each group: two stuck groups are both abandoned within one budget', async () => {
    const log: string[] = [];
    const clock = new ManualClock(0);
    const m = new Manager({ logger: silentLogger(), clock, gracefulShutdownMs: 5_000 });
    m.add(runnable('stuck watcher', log, { ignoreStop: true }), 'caches');
    m.add(runnable('stuck runtime', log, { ignoreStop: true }), 'others');
    m.add(runnable('health', log), 'http');
    const stop = new AbortController();
    const exit = m.start(stop.signal);
    await settle();
    stop.abort();
    await settle();
    await clock.advance(5_000);
    await settle();
    // The second stuck group gets only the minimum once the budget is spent.
    await clock.advance(100);
    assert.deepEqual(await exit, { reason: 'stopped', timedOut: ['stuck runtime', 'stuck watcher'] });
    assert.equal(clock.now(), 5_100);
    assert.deepEqual(log.at(-1), 'stop health');
  });
});
