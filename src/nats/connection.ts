/**
 * The operator's NATS connection. It reconnects forever: a NATS outage degrades Ferry, it never
 * ends the process, and every status change is logged.
 *
 * On a cluster: give one URL or several (`--nats-url a,b,c`, or the Service of the NATS Helm
 * chart); the client learns every other server from the cluster's INFO gossip and keeps the list
 * current, tries them in random order (so replicas spread over the nodes), and moves to another
 * one within a second (500 ms ± jitter between attempts) when its server goes away.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../observability/index.ts';
import { translateNatsError } from './errors.ts';

export type { NatsConnection };

export interface ConnectOptions {
  readonly servers: string | readonly string[];
  /** Shown in the server's connection list (`ferry-<pod>`). */
  readonly name: string;
  readonly logger: Logger;
}

export async function connectNats(options: ConnectOptions): Promise<NatsConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: typeof options.servers === 'string' ? options.servers : [...options.servers],
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      reconnectJitter: 250,
      // Server discovery: the other cluster members' URLs come from the server (the default, said here).
      ignoreClusterUpdates: false,
      pingInterval: 10_000,
      waitOnFirstConnect: true,
      // Async traces capture a stack for every request (a KV put measured 85 µs of client CPU with
      // them, 37 µs without); Ferry's errors carry their own context (translateNatsError).
      noAsyncTraces: true,
    });
  } catch (err) {
    throw translateNatsError(err, 'connecting to NATS');
  }
  const log = options.logger.child({ component: 'nats' });
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'ping') continue;
      const level = status.type === 'disconnect' || status.type === 'error' ? 'warn' : 'info';
      log[level]({ status: status.type }, `nats connection ${status.type}`);
    }
  })();
  return nc;
}

export interface ConnectOnceOptions {
  readonly servers: string | readonly string[];
  readonly name: string;
  /** How long the first connection may take before giving up. */
  readonly timeoutMs: number;
}

/**
 * A connection for a short-lived command (the CLI): one try per server, bounded by `timeoutMs`,
 * so a NATS that cannot be reached is one clear error instead of a command that hangs. Once
 * connected it reconnects briefly, as a command's life is short.
 *
 * @throws NatsUnavailableError when no server answers in time.
 */
export async function connectNatsOnce(options: ConnectOnceOptions): Promise<NatsConnection> {
  try {
    return await connect({
      servers: typeof options.servers === 'string' ? options.servers : [...options.servers],
      name: options.name,
      timeout: options.timeoutMs,
      waitOnFirstConnect: false,
      maxReconnectAttempts: 10,
      reconnectTimeWait: 500,
      noAsyncTraces: true,
    });
  } catch (err) {
    throw translateNatsError(err, 'connecting');
  }
}
