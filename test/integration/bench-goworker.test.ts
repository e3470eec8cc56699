/**
 * The pipeline benchmark's Go peer (test/env/go/goworker, issue 11 goal 2) does what it claims,
 * against a real nats-server and a local HTTP target: each valid event POSTed once as the
 * mapping's body with `<scope><Nats-Msg-Id>` as its Idempotency-Key and acked; an event the
 * schema refuses never POSTed and terminated; a 500 nak'ed and delivered again; the consumer
 * left with nothing pending.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { benchEvent, EVENT_SCHEMA, ferryLikeConsumer, mappedBody } from '../../bench/lib/pipeline-common.ts';
import { startGoWorker } from '../../bench/lib/pipeline-goworker.ts';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { ensureGoTool } from '../env/go-tools.ts';

interface Received {
  readonly key: string;
  readonly body: unknown;
  readonly status: number;
}

describe('the Go worker of the pipeline benchmark', () => {
  let env: ControlPlane;
  let nc: NatsConnection;
  let target: Server;
  let binary: string;
  const received: Received[] = [];

  before(async () => {
    [binary, env] = await Promise.all([ensureGoTool('goworker'), startControlPlane({ kube: false })]);
    nc = await connect({ servers: env.natsUrl });
    // Answers 500 to the first attempt of `ev:1`, 200 to everything else.
    target = createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => (text += chunk.toString()));
      req.on('end', () => {
        const key = String(req.headers['idempotency-key']);
        const status = key.endsWith('ev:1') && !received.some((r) => r.key === key) ? 500 : 200;
        received.push({ key, body: JSON.parse(text), status });
        res.writeHead(status, { 'content-type': 'application/json' }).end('{"id":"x"}');
      });
    });
    target.listen(0, '127.0.0.1');
    await once(target, 'listening');
  });
  after(async () => {
    target.close();
    await nc.close();
    await env.stop();
  });

  it('posts each valid event once as the mapping, terminates invalid ones, retries a 500, and drains', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'GOWORKER', subjects: ['gw.>'] });
    await jsm.consumers.add('GOWORKER', ferryLikeConsumer('gw', 'gw.events', 4, 2_000));
    const js = jetstream(nc);
    const events = [0, 1, 2].map((i) => benchEvent(`ev:${i}`, i));
    for (const event of events) await js.publish('gw.events', JSON.stringify(event), { msgID: String(event.id) });
    await js.publish('gw.events', JSON.stringify({ ...benchEvent('ev:bad', 3), currency: 'JPY' }), { msgID: 'ev:bad' });

    const { port } = target.address() as AddressInfo;
    const worker = startGoWorker({
      binary,
      natsUrl: env.natsUrl,
      stream: 'GOWORKER',
      consumer: 'gw',
      url: `http://127.0.0.1:${port}/v1/events`,
      schema: EVENT_SCHEMA,
      concurrency: 4,
      connections: 2,
      warmup: 0,
      // Three valid events, one invalid, one redelivery of the 500.
      count: 5,
      timeoutMs: 2_000,
      keyScope: 'ns/name/',
    });
    await worker.ready;
    const result = await worker.done;
    await worker.release();

    assert.equal(result.processed, 5);
    // The 500 and the invalid event.
    assert.equal(result.errors, 2);
    assert.deepEqual(received.map((r) => r.key).sort(), ['ns/name/ev:0', 'ns/name/ev:1', 'ns/name/ev:1', 'ns/name/ev:2']);
    for (const event of events) {
      const got = received.find((r) => r.key === `ns/name/${String(event.id)}` && r.status === 200);
      assert.deepEqual(got?.body, JSON.parse(mappedBody(event)));
    }
    const info = await jsm.consumers.info('GOWORKER', 'gw');
    assert.equal(info.num_pending, 0);
    assert.equal(info.num_ack_pending, 0);
  });
});
