/**
 * The 3-node JetStream cluster harness (test/env/nats-cluster.ts) against real nats-servers: it
 * starts ready for R3 assets, and each fault it offers does what a test relies on — a SIGKILLed
 * leader is replaced without losing messages, a returning node catches up, two nodes down means no
 * quorum, a rolling restart keeps the data, and nothing outlives `stop()`. Then the same cluster
 * behind `startControlPlane({ natsCluster: 3 })`.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startControlPlane } from '../env/control-plane.ts';
import { NatsClusterError, startNatsCluster, type NatsCluster } from '../env/nats-cluster.ts';
import { publishRetrying } from '../support/js-publish.ts';

const STREAM = 'ORDERS';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits for a condition the servers reach on their own timers; fails with `what` after 15 s. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`not reached within ${timeoutMs} ms: ${what}`);
    await sleep(200);
  }
}

describe('3-node JetStream cluster harness', () => {
  let dir: string;
  let cluster: NatsCluster;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;

  const payloads = async (): Promise<string[]> => {
    const info = await jsm.streams.info(STREAM);
    const out: string[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const msg = await jsm.streams.getMessage(STREAM, { seq });
      if (msg) out.push(msg.string());
    }
    return out;
  };

  before(async () => {
    dir = await mkdtemp(join(process.env.FERRY_TMP_DIR ?? tmpdir(), 'ferry-nats-cluster-'));
    cluster = await startNatsCluster({ dir });
    nc = await connect({ servers: [...cluster.urls], name: 'nats-cluster-test', maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    js = jetstream(nc, { timeout: 5_000 });
    jsm = await jetstreamManager(nc, { timeout: 5_000 });
  });
  after(async () => {
    await nc.close();
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts three routed nodes that agree on a meta leader and place an R3 stream on all of them', async () => {
    assert.equal(cluster.nodes.length, 3);
    assert.equal(cluster.quorum, 2);
    assert.ok(cluster.nodes.every((n) => n.running));
    assert.equal(new Set(cluster.urls).size, 3);
    assert.equal(cluster.url, cluster.urls.join(','));
    assert.ok([0, 1, 2].includes(await cluster.metaLeader()));

    const info = await jsm.streams.add({ name: STREAM, subjects: ['orders.>'], num_replicas: 3 });
    const leader = info.cluster?.leader;
    assert.ok(leader, 'an R3 stream has a leader as soon as it is created');
    const members = [leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)].sort();
    assert.deepEqual(members, ['n0', 'n1', 'n2']);
    assert.equal(await cluster.leaderOf(STREAM), cluster.indexOf(leader));
  });

  it('an R3 stream survives the SIGKILL of its leader: a new leader, every message readable, publishing works', async (t) => {
    const sent = Array.from({ length: 20 }, (_, i) => `order-${i}`);
    // Right after the stream was created, the node this client is on may not have heard of its
    // subject yet (interest travels over the routes): no responders, so the first publish retries;
    // the message id keeps a retry after a lost reply from storing a second copy.
    for (const p of sent) await publishRetrying(js, 'orders.created', p, { msgID: p });
    const old = await cluster.leaderOf(STREAM);

    await cluster.kill(old);
    assert.equal(cluster.nodes[old]?.running, false);
    const started = Date.now();
    const next = await cluster.waitForLeader(STREAM);
    t.diagnostic(`new leader ${cluster.nodes[next]?.name} ${Date.now() - started} ms after the SIGKILL of ${cluster.nodes[old]?.name}`);

    assert.notEqual(next, old);
    try {
      assert.deepEqual(await payloads(), sent);
      const ack = await publishRetrying(js, 'orders.created', 'after-failover', { msgID: 'after-failover' });
      assert.equal(ack.seq, sent.length + 1);
      assert.equal(await cluster.leaderOf(STREAM), next);
    } finally {
      // A node left down would turn every later case into a quorum failure.
      await cluster.start(old);
    }
  });

  it('a node killed while messages arrive rejoins when started and its own copy catches up', async () => {
    const leader = await cluster.leaderOf(STREAM);
    const follower = [0, 1, 2].find((i) => i !== leader)!;
    const name = cluster.nodes[follower]!.name;
    const before = await cluster.localStreamState(follower, STREAM);
    assert.ok(before, `${name} holds a copy of ${STREAM}`);

    await cluster.kill(follower);
    let state;
    try {
      // The client may have been on the killed node: a request written to its socket just before
      // the kill is lost and times out, so each publish retries, and its message id keeps one copy.
      for (let i = 0; i < 10; i++) await publishRetrying(js, 'orders.paid', `paid-${i}`, { msgID: `paid-${i}` });
      ({ state } = await jsm.streams.info(STREAM));
      assert.equal(state.last_seq, before.lastSeq + 10);
    } finally {
      await cluster.start(follower);
    }
    assert.ok(cluster.nodes[follower]!.running);
    assert.deepEqual(await cluster.localStreamState(follower, STREAM), {
      messages: state.messages,
      bytes: state.bytes,
      firstSeq: state.first_seq,
      lastSeq: state.last_seq,
    });
    // The leader's view catches up with the follower's own a heartbeat later.
    await eventually(`the leader reports ${name} current with no lag`, async () => {
      const replica = (await jsm.streams.info(STREAM)).cluster?.replicas?.find((r) => r.name === name);
      return replica?.current === true && (replica.lag ?? 0) === 0;
    });
  });

  it('leaderOf names the node that leads a KV bucket (stream KV_<bucket>): killing it moves the leadership, values stay', async (t) => {
    const kv = await new Kvm(nc).create('settings', { replicas: 3 });
    await kv.put('region', 'eu-west');
    await kv.put('limit', '42');
    const old = await cluster.leaderOf('KV_settings');

    await cluster.kill(old);
    try {
      const started = Date.now();
      const next = await cluster.waitForLeader('KV_settings');
      t.diagnostic(`KV leader moved to ${cluster.nodes[next]?.name} ${Date.now() - started} ms after the SIGKILL of ${cluster.nodes[old]?.name}`);

      assert.notEqual(next, old);
      // Read through the stream leader: the bucket allows direct gets, which any replica answers,
      // and a follower a few milliseconds behind answers with the value before the last put.
      const onLeader = async (key: string): Promise<string | undefined> =>
        (await jsm.streams.getMessage('KV_settings', { last_by_subj: `$KV.settings.${key}` }))?.string();
      assert.equal(await onLeader('region'), 'eu-west');
      assert.equal(await onLeader('limit'), '42');
      await kv.put('limit', '43');
      assert.equal(await onLeader('limit'), '43');
    } finally {
      await cluster.start(old);
    }
  });

  it('with two of three nodes down the R3 stream takes no publish; once one returns it does, and a retry with the same msgID stores it once', async () => {
    await cluster.waitForQuorum();
    const leader = await cluster.leaderOf(STREAM);
    const [a, b] = [0, 1, 2].filter((i) => i !== leader) as [number, number];
    const before = (await jsm.streams.info(STREAM)).state.messages;

    await cluster.kill(a);
    await cluster.kill(b);
    try {
      await assert.rejects(cluster.waitForQuorum(), (err) => err instanceof NatsClusterError && err.code === 'NO_QUORUM');
      // The leader is alive but cannot commit: the publish gets no acknowledgement.
      await assert.rejects(js.publish('orders.created', 'during-outage', { msgID: 'outage-1', timeout: 2_000 }));

      await cluster.start(a);
      await cluster.waitForLeader(STREAM);
      // Retried, as a client's reply can be lost while it moves between nodes; counted below by payload.
      await publishRetrying(js, 'orders.created', 'after-outage', { msgID: 'after-1' });
      // An unacknowledged publish may still be committed once the quorum is back (it was in the
      // leader's log), so only a retry with the same msgID is exactly-once.
      await publishRetrying(js, 'orders.created', 'during-outage', { msgID: 'outage-1' });
      const all = await payloads();
      assert.equal(all.filter((p) => p === 'during-outage').length, 1);
      assert.equal(all.filter((p) => p === 'after-outage').length, 1);
      assert.equal(all.length, before + 2);
    } finally {
      for (const i of [a, b]) if (!cluster.nodes[i]!.running) await cluster.start(i);
    }
    await cluster.waitForQuorum();
  });

  it('a rolling restart replaces every node process and keeps the stream, its messages and a leader', async () => {
    const pids = cluster.nodes.map((n) => n.process.pid);
    const before = await payloads();

    await cluster.rollingRestart();

    const after = cluster.nodes.map((n) => n.process.pid);
    assert.ok(cluster.nodes.every((n) => n.running));
    assert.ok(after.every((pid, i) => pid !== pids[i]), 'every node is a new process');
    await cluster.waitForLeader(STREAM);
    assert.deepEqual(await payloads(), before);
    // The client may still be moving to a restarted node: a timeout or no responders retries.
    const ack = await publishRetrying(js, 'orders.created', 'after-rolling-restart', { msgID: 'after-rolling-restart' });
    assert.equal(ack.seq, (await jsm.streams.info(STREAM)).state.last_seq);
  });

  it('stop() ends every node and leaves no process or pid file behind', async () => {
    const pids = cluster.nodes.map((n) => n.process.pid!);
    assert.ok(pids.every(alive));

    await cluster.stop();

    assert.ok(cluster.nodes.every((n) => !n.running));
    assert.deepEqual(pids.filter(alive), []);
    const pidDir = process.env.FERRY_PID_DIR;
    if (pidDir) assert.deepEqual(pids.filter((pid) => existsSync(join(pidDir, String(pid)))), []);
  });
});

describe('startControlPlane({ natsCluster: 3 })', () => {
  it('gives every node URL as natsUrl, exposes the cluster, and stopNats/startNats act on all nodes', async () => {
    const env = await startControlPlane({ kube: false, natsCluster: 3 });
    let nc: NatsConnection | undefined;
    try {
      const cluster = env.natsCluster;
      assert.ok(cluster, 'the cluster is exposed');
      assert.equal(env.natsUrl, cluster.urls.join(','));
      assert.equal(env.natsUrl.split(',').length, 3);
      assert.equal(env.processes.nats, undefined, 'no single server besides the cluster');

      // What the operator does with --nats-url: split on commas.
      nc = await connect({ servers: env.natsUrl.split(','), maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      const jsm = await jetstreamManager(nc, { timeout: 5_000 });
      await jsm.streams.add({ name: 'EVENTS', subjects: ['events.>'], num_replicas: 3 });
      // Interest in the new stream's subjects reaches the client's node over the routes: retry.
      await publishRetrying(jetstream(nc), 'events.x', 'kept', { msgID: 'kept' });

      await env.stopNats();
      assert.ok(cluster.nodes.every((n) => !n.running));
      await env.startNats();
      assert.ok(cluster.nodes.every((n) => n.running));
      await cluster.waitForLeader('EVENTS');
      assert.equal((await jsm.streams.getMessage('EVENTS', { seq: 1 }))?.string(), 'kept');
    } finally {
      await nc?.close();
      await env.stop();
    }
    assert.ok(env.natsCluster?.nodes.every((n) => !n.running));
    assert.equal(existsSync(env.dir), false, 'the temp dir is removed');
  });
});
