/**
 * Leader election on a real Lease: exactly one of two candidates leads; a graceful stop releases
 * the Lease so the standby takes over at once; a leader that dies without releasing is replaced
 * only after the lease duration; the Lease's times are MicroTime.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { Registry, createLogger, silentLogger, systemClock } from '../../src/observability/index.ts';
import { LeaderElector, ObjectClient, type KubeObject, type LeaderElectionEnd, type LeaseRecord } from '../../src/kube/index.ts';

const NS = 'ferry-system';

interface Lease extends KubeObject {
  readonly spec?: LeaseRecord;
}

interface Candidate {
  readonly elector: LeaderElector;
  readonly ac: AbortController;
  readonly ended: Promise<LeaderElectionEnd>;
  readonly events: string[];
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return;
    await sleep(20);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

describe('kube leader election (real API server)', { timeout: 180_000 }, () => {
  let env: ControlPlane;
  let objects: ObjectClient;

  before(async () => {
    env = await startControlPlane({ nats: false });
    await env.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    objects = new ObjectClient({ kubeConfig: env.kubeConfig, clock: systemClock });
  });
  after(async () => {
    await env.stop();
  });

  function candidate(
    lease: string,
    identity: string,
    timings: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number; releaseOnCancel?: boolean },
  ): Candidate {
    const elector = new LeaderElector({
      lease: { namespace: NS, name: lease },
      identity,
      kubeConfig: env.kubeConfig,
      ...timings,
      clock: systemClock,
      logger: process.env.FERRY_TEST_LOG ? createLogger({ level: process.env.FERRY_TEST_LOG, name: identity }) : silentLogger(),
      registry: new Registry(),
    });
    const ac = new AbortController();
    const events: string[] = [];
    const ended = elector.start(ac.signal, {
      onStartedLeading: async (signal) => {
        events.push('started');
        await new Promise<void>((resolve) => { signal.addEventListener('abort', () => { resolve(); }, { once: true }); });
        events.push('work-stopped');
      },
      onStoppedLeading: () => events.push('stopped'),
    });
    return { elector, ac, ended, events };
  }

  const readLease = (name: string): Promise<Lease> =>
    objects.get<Lease>({ group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespace: NS, name });

  it('exactly one of two candidates leads; a graceful stop releases the Lease and the other takes over at once', async () => {
    const timings = { leaseDurationMs: 10_000, renewDeadlineMs: 5_000, retryPeriodMs: 500 };
    const a = candidate('graceful', 'replica-a', timings);
    const b = candidate('graceful', 'replica-b', timings);
    try {
      await waitFor('a leader', () => a.elector.isLeader || b.elector.isLeader);
      const [leader, standby] = a.elector.isLeader ? [a, b] : [b, a];
      // Several renewals and standby polls: never two leaders, never a change of leader.
      for (let i = 0; i < 30; i++) {
        assert.equal(leader.elector.isLeader, true);
        assert.equal(standby.elector.isLeader, false);
        await sleep(100);
      }
      assert.equal(standby.elector.leader, leader.elector.identity, 'the standby observed who leads');

      const held = await readLease('graceful');
      const micro = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
      assert.equal(held.spec?.holderIdentity, leader.elector.identity);
      assert.equal(held.spec.leaseDurationSeconds, 10);
      assert.match(held.spec.renewTime ?? '', micro);
      assert.match(held.spec.acquireTime ?? '', micro);
      const renewedAgo = Date.now() - Date.parse(held.spec.renewTime ?? '');
      assert.ok(renewedAgo >= 0 && renewedAgo < 2_000, `renewed ${renewedAgo} ms ago`);
      const transitions = held.spec.leaseTransitions ?? 0;

      const stoppedAt = Date.now();
      leader.ac.abort();
      assert.equal(await leader.ended, 'stopped');
      assert.deepEqual(leader.events, ['started', 'work-stopped', 'stopped'], 'leader work ended before the release');
      await waitFor('the standby to lead', () => standby.elector.isLeader, 10_000);
      const takeoverMs = Date.now() - stoppedAt;
      // Without the release the standby would wait the full 10 s lease duration.
      assert.ok(takeoverMs < 3_000, `took over after ${takeoverMs} ms`);

      const taken = await readLease('graceful');
      assert.equal(taken.spec?.holderIdentity, standby.elector.identity);
      assert.equal(taken.spec.leaseTransitions, transitions + 1);
    } finally {
      a.ac.abort();
      b.ac.abort();
      await Promise.all([a.ended, b.ended]);
    }
  });

  it('a leader that dies without releasing is replaced only after the lease duration', async () => {
    const timings = { leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500, releaseOnCancel: false };
    const a = candidate('crash', 'replica-a', timings);
    await waitFor('a leads', () => a.elector.isLeader);
    const b = candidate('crash', 'replica-b', timings);
    try {
      await sleep(1_500);
      assert.equal(b.elector.isLeader, false);

      const killedAt = Date.now();
      a.ac.abort(); // the loop ends; the Lease keeps naming replica-a
      assert.equal(await a.ended, 'stopped');
      assert.equal((await readLease('crash')).spec?.holderIdentity, 'replica-a');

      await waitFor('b leads', () => b.elector.isLeader, 15_000);
      const takeoverMs = Date.now() - killedAt;
      // b judges expiry from when it last saw the record change (a's last renewal, at most one
      // retry period before the kill), so the takeover comes close to the 4 s lease duration.
      assert.ok(takeoverMs >= 3_000, `took over too early: ${takeoverMs} ms`);
      assert.ok(takeoverMs < 8_000, `took over too late: ${takeoverMs} ms`);
      const lease = await readLease('crash');
      assert.equal(lease.spec?.holderIdentity, 'replica-b');
      assert.equal(lease.spec.leaseTransitions, 1);
    } finally {
      a.ac.abort();
      b.ac.abort();
      await Promise.all([a.ended, b.ended]);
    }
  });
});
