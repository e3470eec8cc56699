/**
 * How many replicas Ferry gives the streams and KV buckets it creates itself (fallback streams,
 * shared state), and whether the JetStream domain is a cluster at all. Source streams belong to
 * the user and are never changed.
 *
 * `auto` decides once per process, from what the server says:
 * - the server is not part of a cluster (its INFO names no cluster): 1;
 * - JetStream places a 3-replica probe stream (memory, one message, deleted at once): 3;
 * - the server refuses replicas outright ("replicas > 1 not supported in non-clustered mode"): 1;
 * - the probe cannot be placed now, but the cluster advertises at least 3 servers (a node is
 *   down or restarting): 3 — the cluster is one of 3, and creating a resource with fewer
 *   replicas now would leave it under-replicated for good;
 * - otherwise (a cluster of 2): 1.
 * A failure to ask (no connection, a timeout) is not an answer: it is thrown, and asked again next time.
 */
import { JetStreamApiError, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';
import { translateNatsError } from './errors.ts';

export interface Replication {
  /** Replicas of every stream and bucket Ferry creates. */
  readonly replicas: number;
  /** True when the JetStream domain is a cluster (source streams with one replica are a risk there). */
  readonly clustered: boolean;
  /** Why, for the log line that reports the decision. */
  readonly reason: string;
}

/** "replicas > 1 not supported in non-clustered mode". */
const REPLICAS_NOT_SUPPORTED = 10074;

export async function detectReplication(nc: NatsConnection, jsm: JetStreamManager, configured: number | 'auto'): Promise<Replication> {
  const info = nc.info;
  const clusterName = info?.cluster;
  const servers = info?.connect_urls?.length ?? 0;
  if (configured !== 'auto') {
    return { replicas: configured, clustered: clusterName !== undefined, reason: `--nats-replicas=${configured}` };
  }
  if (clusterName === undefined) return { replicas: 1, clustered: false, reason: 'the NATS server is not part of a cluster' };
  const suffix = randomBytes(6).toString('hex');
  const name = `FERRY_REPLICAS_PROBE_${suffix}`;
  try {
    await jsm.streams.add({ name, subjects: [`ferry.probe.${suffix}`], num_replicas: 3, storage: StorageType.Memory, max_msgs: 1 });
    await jsm.streams.delete(name).catch(() => undefined);
    return { replicas: 3, clustered: true, reason: `JetStream cluster ${clusterName} placed a 3-replica probe stream` };
  } catch (err) {
    if (err instanceof JetStreamApiError) {
      if (err.code === REPLICAS_NOT_SUPPORTED) return { replicas: 1, clustered: false, reason: 'JetStream runs without clustering' };
      if (servers >= 3) {
        return { replicas: 3, clustered: true, reason: `cluster ${clusterName} has ${servers} servers; a 3-replica probe could not be placed now (${err.message})` };
      }
      return { replicas: 1, clustered: true, reason: `cluster ${clusterName} has fewer than 3 JetStream servers (${err.message})` };
    }
    throw translateNatsError(err, 'detecting how many replicas JetStream can place');
  }
}
