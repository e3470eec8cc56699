/**
 * The operator process ends, with the right exit code, whatever state its servers are in:
 * SIGTERM while nats-server is down, or while kube-apiserver is down or hung, exits 0 within a
 * bound;
 * a part that fails for good (a NATS server without JetStream: the shared KV buckets cannot be
 * created) ends the process with exit code 1 instead of leaving it running without leader,
 * controllers or delivery.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoordinationV1Api, CoreV1Api, V1MicroTime } from '@kubernetes/client-node';
import { freePort, startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { ManagedProcess } from '../env/managed-process.ts';
import { installCrds } from '../support/crds.ts';
import { FerryClient, integrationSpec, isTrueNow } from '../support/ferry-client.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';

const NS = 'exit';
const IG = 'integrations';
/**
 * The operator's stated bound on exiting after SIGTERM or a failure, whatever its servers do:
 * 15 s for the manager to stop every runnable, then at most 3 s (HTTP deliverer) + 3 s (NATS
 * drain, then close) + 1 s (endpoints) = 22 s, plus 3 s for a loaded test machine.
 */
const EXIT_BOUND_MS = 25_000;
const leaseArgs = ['--lease-duration=4', '--renew-deadline=3', '--retry-period=1'];

describe('operator process exit', { timeout: 300_000 }, () => {
  let env: ControlPlane;
  let ferry: FerryClient;
  const ops: OperatorProcess[] = [];
  const extra: ManagedProcess[] = [];

  before(async () => {
    env = await startControlPlane();
    await installCrds(env.kubeConfig);
    await env.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    const nc = await connect({ servers: env.natsUrl });
    await (await jetstreamManager(nc)).streams.add({ name: 'CRM_EVENTS', subjects: ['crm.>'] });
    await nc.close();
    ferry = new FerryClient(env.kubeConfig);
  });
  after(async () => {
    await Promise.all(ops.map((o) => o.kill()));
    await Promise.all(extra.map((p) => p.stop()));
    await env.stop();
  });

  async function runningOperator(identity: string): Promise<OperatorProcess> {
    const op = await startOperator({ env, identity, args: [`--lease-name=${identity}`] });
    ops.push(op);
    await op.waitForLog((l) => l.msg === 'acquired leadership');
    await ferry.create(IG, NS, { kind: 'Integration', metadata: { name: identity }, spec: integrationSpec() });
    await ferry.waitFor(IG, NS, identity, (o) => isTrueNow(o, 'Ready'));
    return op;
  }

  it('exits 0 on SIGTERM within the bound while nats-server is down', async () => {
    const op = await runningOperator('nats-down');
    await env.stopNats();
    try {
      await op.waitForLog((l) => l.msg === 'nats connection disconnect');
      const { code, ms } = await op.terminate(EXIT_BOUND_MS + 10_000);
      assert.equal(code, 0, `exit code (after ${ms} ms); log tail:\n${op.process.tail()}`);
      assert.ok(ms < EXIT_BOUND_MS, `exited after ${ms} ms`);
      // The Lease is released although NATS is gone: the API server is up.
      assert.ok(op.logs.some((l) => l.msg === 'released the lease'));
      process.stdout.write(`# SIGTERM with NATS down: exited ${code} after ${ms} ms\n`);
    } finally {
      await env.startNats();
    }
  });

  it('exits 0 on SIGTERM within the bound while kube-apiserver is down', async () => {
    const op = await runningOperator('api-down');
    await env.stopApiServer();
    try {
      await op.waitForLog((l) => l.msg === 'watch restarting');
      const { code, ms } = await op.terminate(EXIT_BOUND_MS + 10_000);
      assert.equal(code, 0, `exit code (after ${ms} ms); log tail:\n${op.process.tail()}`);
      assert.ok(ms < EXIT_BOUND_MS, `exited after ${ms} ms`);
      process.stdout.write(`# SIGTERM with kube-apiserver down: exited ${code} after ${ms} ms\n`);
    } finally {
      await env.startApiServer();
    }
  });

  it('exits 0 on SIGTERM within the bound while kube-apiserver hangs (SIGSTOP: requests get no answer)', async () => {
    const op = await runningOperator('api-hung');
    const pid = env.processes.apiServer?.pid;
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGSTOP');
    try {
      const { code, ms } = await op.terminate(EXIT_BOUND_MS + 10_000);
      assert.equal(code, 0, `exit code (after ${ms} ms); log tail:\n${op.process.tail()}`);
      assert.ok(ms < EXIT_BOUND_MS, `exited after ${ms} ms`);
      process.stdout.write(`# SIGTERM with kube-apiserver hung: exited ${code} after ${ms} ms\n`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });

  it('exits 0 on SIGTERM while still waiting for its first NATS connection', async () => {
    const nowhere = `nats://127.0.0.1:${await freePort()}`;
    const op = await startOperator({ env, identity: 'never-connected', args: ['--lease-name=never-connected'], natsUrl: nowhere });
    ops.push(op);
    const { code, ms } = await op.terminate(EXIT_BOUND_MS + 10_000);
    assert.equal(code, 0, `exit code (after ${ms} ms); log tail:\n${op.process.tail()}`);
    assert.ok(ms < EXIT_BOUND_MS, `exited after ${ms} ms`);
  });

  it('keeps leading and retries, loudly, when it wins the Lease while NATS is down; ensures the shared KV buckets once NATS is back', async () => {
    // Another replica holds the Lease (and stops renewing it): this one stands by.
    await env.kubeConfig.makeApiClient(CoordinationV1Api).createNamespacedLease({
      namespace: 'default',
      body: {
        metadata: { name: 'late-leader' },
        spec: { holderIdentity: 'ghost', leaseDurationSeconds: 4, acquireTime: new V1MicroTime(), renewTime: new V1MicroTime() },
      },
    });
    const op = await startOperator({ env, identity: 'late-leader', args: ['--lease-name=late-leader', ...leaseArgs] });
    ops.push(op);
    await op.waitForLog((l) => l.msg === 'new leader observed' && l.holder === 'ghost');
    await env.stopNats();
    let natsUp = false;
    try {
      await op.waitForLog((l) => l.msg === 'acquired leadership', 30_000);
      // A NATS outage is routine (a restart, an election): the leader waits it out, loudly.
      const failed = await op.waitForLog((l) => l.msg === 'could not ensure the shared KV buckets; retrying' && l.level === 'error', 60_000);
      assert.match(String(failed.err), /KV bucket|JetStream|NATS|timeout|connection/i);
      await env.startNats();
      natsUp = true;
      await op.waitForLog((l) => l.msg === 'shared KV buckets ready', 60_000);
      assert.ok(op.process.running, 'still running and leading');
      assert.ok(!op.logs.some((l) => l.msg === 'runnable failed'), 'no part failed');
    } finally {
      if (!natsUp) await env.startNats();
    }
  });

  it('exits 1 when a part fails for good (NATS without JetStream)', async () => {
    const port = await freePort();
    const plain = new ManagedProcess({
      name: 'nats-server-no-jetstream',
      command: env.binaries.natsServer,
      logFile: join(env.dir, 'nats-no-js.log'),
      args: ['-a', '127.0.0.1', '-p', String(port)],
    });
    plain.start();
    extra.push(plain);
    const op = await startOperator({ env, identity: 'no-jetstream', args: ['--lease-name=no-jetstream'], natsUrl: `nats://127.0.0.1:${port}` });
    ops.push(op);
    const code = await Promise.race([op.process.exited(), sleep(60_000, undefined, { ref: false }).then(() => 'still running' as const)]);
    assert.equal(code, 1, `exit code; log tail:\n${op.process.tail()}`);
    assert.ok(op.logs.some((l) => l.msg === 'runnable failed' && l.level === 'error'));
  });
});
