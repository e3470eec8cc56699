/**
 * Proves the local control plane is made of real servers: a real kube-apiserver (object
 * storage in etcd, watches, the pinned kubectl) and a real nats-server whose JetStream keeps a
 * file-backed stream across a restart.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CoreV1Api, VersionApi, Watch } from '@kubernetes/client-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { versions } from '../env/binaries.ts';

const execFileAsync = promisify(execFile);

describe('local control plane', () => {
  let env: ControlPlane;

  before(async () => {
    env = await startControlPlane();
  });
  after(async () => {
    await env.stop();
  });

  it('runs the pinned versions of every server', async () => {
    const apiserver = await execFileAsync(env.binaries.kubeApiserver, ['--version']);
    assert.equal(apiserver.stdout.trim(), `Kubernetes ${versions.kubernetes}`);
    const etcd = await execFileAsync(env.binaries.etcd, ['--version']);
    assert.match(etcd.stdout, new RegExp(`etcd Version: ${versions.etcd.slice(1).replaceAll('.', '\\.')}\\b`));
    const nats = await execFileAsync(env.binaries.natsServer, ['--version']);
    assert.match(nats.stdout, new RegExp(`v${versions.natsServer.slice(1).replaceAll('.', '\\.')}\\b`));
    // The running API server itself reports the stamped version, not v0.0.0-master.
    const info = await env.kubeConfig.makeApiClient(VersionApi).getCode();
    assert.equal(info.gitVersion, versions.kubernetes);
  });

  it('stores objects and streams watch events', async () => {
    const core = env.kubeConfig.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'smoke' } } });

    const watch = new Watch(env.kubeConfig);
    const added = new Promise<{ name: string; data: Record<string, string> }>((resolve, reject) => {
      void watch
        .watch(
          '/api/v1/namespaces/smoke/configmaps',
          {},
          (type, obj: { metadata?: { name?: string }; data?: Record<string, string> }) => {
            if (type === 'ADDED' && obj.metadata?.name === 'hello') resolve({ name: obj.metadata.name, data: obj.data ?? {} });
          },
          (err: unknown) => {
            if (err) reject(err instanceof Error ? err : new Error('watch ended with an error'));
          },
        )
        .then((req) => added.finally(() => {
          req.abort();
        }))
        .catch(reject);
    });

    await core.createNamespacedConfigMap({ namespace: 'smoke', body: { metadata: { name: 'hello' }, data: { greeting: 'hi' } } });
    const event = await added;
    assert.deepEqual(event, { name: 'hello', data: { greeting: 'hi' } });

    const read = await core.readNamespacedConfigMap({ namespace: 'smoke', name: 'hello' });
    assert.equal(read.data?.greeting, 'hi');
  });

  it('answers the pinned kubectl', async () => {
    const { stdout } = await execFileAsync(env.binaries.kubectl, ['--kubeconfig', env.kubeconfigPath, 'get', 'ns', '-o', 'name']);
    const names = stdout.trim().split('\n');
    assert.ok(names.includes('namespace/default'), stdout);
    assert.ok(names.includes('namespace/kube-system'), stdout);
  });

  it('keeps a file-backed JetStream stream across a nats-server restart', async () => {
    const count = 1_000;
    let nc = await connect({ servers: env.natsUrl });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'SMOKE', subjects: ['smoke.>'], storage: StorageType.File });
    const js = jetstream(nc);
    const acks = [];
    for (let i = 0; i < count; i++) acks.push(js.publish(`smoke.${i % 10}`, JSON.stringify({ i }), { msgID: `m-${i}` }));
    const seqs = (await Promise.all(acks)).map((a) => a.seq);
    assert.equal(new Set(seqs).size, count);

    await jsm.consumers.add('SMOKE', { durable_name: 'reader', ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All });
    const consumer = await js.consumers.get('SMOKE', 'reader');
    const seen = new Set<number>();
    const messages = await consumer.consume({ max_messages: 100 });
    for await (const m of messages) {
      seen.add((m.json<{ i: number }>()).i);
      if (seen.size === count) {
        // The last ack waits for the server's confirmation; JetStream applies acks in order.
        await m.ackAck();
        break;
      }
      m.ack();
    }
    assert.equal(seen.size, count);
    const info = await consumer.info(false);
    assert.equal(info.num_ack_pending, 0);
    await nc.close();

    await env.restartNats();

    nc = await connect({ servers: env.natsUrl });
    const after = await (await jetstreamManager(nc)).streams.info('SMOKE');
    assert.equal(after.state.messages, count);
    assert.equal(after.state.last_seq, count);
    const last = await (await jetstreamManager(nc)).streams.getMessage('SMOKE', { seq: count });
    assert.deepEqual(last?.json(), { i: count - 1 });
    // The durable consumer survived too, with every message acknowledged.
    const cinfo = await (await jetstream(nc).consumers.get('SMOKE', 'reader')).info(false);
    assert.equal(cinfo.delivered.stream_seq, count);
    assert.equal(cinfo.num_pending, 0);
    await nc.close();
  });

  it('recovers the API server after a restart with its data intact', async () => {
    await env.restartApiServer();
    const core = env.kubeConfig.makeApiClient(CoreV1Api);
    const read = await core.readNamespacedConfigMap({ namespace: 'smoke', name: 'hello' });
    assert.equal(read.data?.greeting, 'hi');
  });
});
