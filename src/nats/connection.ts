/**
 * The operator's NATS connection. It reconnects forever: a NATS outage degrades Ferry, it never
 * ends the process, and every status change is logged.
 *
 * On a cluster: give one URL or several (`--nats-url a,b,c`, or the Service of the NATS Helm
 * chart); the client learns every other server from the cluster's INFO gossip and keeps the list
 * current, tries them in random order (so replicas spread over the nodes), and moves to another
 * one within a second (500 ms ± jitter between attempts) when its server goes away.
 *
 * The first connection is retried too, with a warning per failed round, because in a cluster the
 * operator often starts before NATS does (a fresh install, a node restart). Wrong credentials are
 * the exception: they are a NatsAuthError at once, since retrying cannot fix them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '../observability/index.ts';
import { describeSecurity, displayServer, natsConnectionOptions, NO_SECURITY, type NatsSecurity } from './auth.ts';
import { NatsAuthError, translateNatsError } from './errors.ts';

export type { NatsConnection };

export interface ConnectOptions {
  readonly servers: string | readonly string[];
  /** Shown in the server's connection list (`ferry-<pod>`). */
  readonly name: string;
  readonly logger: Logger;
  /** Credentials and TLS; default: none (TLS only if the server requires it). */
  readonly security?: NatsSecurity;
  /** Stops retrying the first connection (the promise then rejects with the signal's reason). */
  readonly signal?: AbortSignal;
  /** Pause after the first failed round of the first connection; doubles up to {@link FIRST_CONNECT_MAX_DELAY_MS}. */
  readonly retryDelayMs?: number;
}

/** Longest pause between two rounds of the first connection. */
export const FIRST_CONNECT_MAX_DELAY_MS = 5_000;

/**
 * Connects to NATS, retrying the first connection until a server answers (each failed round is a
 * warning naming the servers and the error), then reconnects forever.
 *
 * @throws NatsAuthError when a server refuses the credentials (no retry);
 *   the signal's reason when `signal` aborts before a connection is made.
 */
export async function connectNats(options: ConnectOptions): Promise<NatsConnection> {
  const security = options.security ?? NO_SECURITY;
  const servers = typeof options.servers === 'string' ? options.servers.split(',') : [...options.servers];
  const log = options.logger.child({ component: 'nats' });
  const shown = servers.map(displayServer);
  const settings: ConnectionOptions = {
    servers,
    name: options.name,
    ...natsConnectionOptions(security),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    reconnectJitter: 250,
    // Server discovery: the other cluster members' URLs come from the server (the default, said here).
    ignoreClusterUpdates: false,
    pingInterval: 10_000,
    // Ferry's own loop retries the first connection: the client's (waitOnFirstConnect) is silent
    // while it waits, and a NATS that is down for minutes must show up in the logs.
    waitOnFirstConnect: false,
    // Async traces capture a stack for every request (a KV put measured 85 µs of client CPU with
    // them, 37 µs without); Ferry's errors carry their own context (translateNatsError).
    noAsyncTraces: true,
  };
  let delay = options.retryDelayMs ?? 500;
  let nc: NatsConnection;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      nc = await connect(settings);
      break;
    } catch (err) {
      const failure = translateNatsError(err, 'connecting to NATS');
      if (failure instanceof NatsAuthError) {
        log.error({ servers: shown, security: describeSecurity(security), code: failure.code, err: failure.message }, 'NATS refused the credentials');
        throw failure;
      }
      log.warn({ servers: shown, attempt, retryInMs: delay, err: failure.message }, 'NATS not reachable yet; retrying');
    }
    await sleep(delay, undefined, options.signal === undefined ? undefined : { signal: options.signal });
    delay = Math.min(delay * 2, FIRST_CONNECT_MAX_DELAY_MS);
  }
  log.info({ server: nc.getServer(), security: describeSecurity(security) }, 'connected to NATS');
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
  /** Credentials and TLS; default: none. */
  readonly security?: NatsSecurity;
}

/**
 * A connection for a short-lived command (the CLI): one try per server, bounded by `timeoutMs`,
 * so a NATS that cannot be reached is one clear error instead of a command that hangs. Once
 * connected it reconnects briefly, as a command's life is short.
 *
 * @throws NatsUnavailableError when no server answers in time; NatsAuthError when the
 *   credentials are refused.
 */
export async function connectNatsOnce(options: ConnectOnceOptions): Promise<NatsConnection> {
  try {
    return await connect({
      servers: typeof options.servers === 'string' ? options.servers : [...options.servers],
      name: options.name,
      ...natsConnectionOptions(options.security ?? NO_SECURITY),
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
