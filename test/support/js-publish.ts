/**
 * A test's JetStream publish on a cluster, where elections make a publish fail for a moment:
 * no responders, a timeout, or — for a retry with the same `Nats-Msg-Id` while the first try is
 * still being replicated — "duplicate message id is in process" (API code 10158). Each of those is
 * retried; with a message id the stream keeps one copy whichever try it stored.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { JetStreamClient, JetStreamPublishOptions, PubAck } from '@nats-io/jetstream';
import { isDuplicateInProcess } from '../../src/nats/index.ts';

const TRIES = 20;
const PAUSE_MS = 250;

export async function publishRetrying(js: JetStreamClient, subject: string, payload: string | Uint8Array, options: Partial<JetStreamPublishOptions> = {}): Promise<PubAck> {
  for (let i = 1; ; i++) {
    try {
      return await js.publish(subject, payload, { retries: TRIES, ...options });
    } catch (err) {
      if (!isDuplicateInProcess(err) || i >= TRIES) throw err;
      // A test harness waiting on a server's replication; there is no event to wait on.
      await sleep(PAUSE_MS);
    }
  }
}
