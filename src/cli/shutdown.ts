/**
 * Bounded steps for the end of the operator process. Every close here can hang on a server that
 * is gone (a NATS drain never completes while the client reconnects; a socket waits for a peer
 * that does not answer), and a process that does not exit on SIGTERM is SIGKILLed by the kubelet
 * without having released anything. So each step gets a deadline, and after the last one the
 * caller exits explicitly rather than waiting for the event loop to empty.
 */
import type { NatsConnection } from '../nats/index.ts';
import type { Clock, Logger } from '../observability/index.ts';

/** Resolves true if `work` settles (either way) within `ms`, false when the deadline came first. */
export async function settlesWithin(clock: Clock, work: Promise<unknown>, ms: number): Promise<boolean> {
  let cancel = (): void => {};
  const deadline = new Promise<false>((resolve) => {
    cancel = clock.setTimer(() => {
      resolve(false);
    }, ms);
  });
  try {
    return await Promise.race([work.then(() => true, () => true), deadline]);
  } finally {
    cancel();
  }
}

/**
 * Drains the connection (pending publishes and subscriptions flushed) within `drainMs`; when the
 * drain fails or does not finish — the server is gone and the client would reconnect forever —
 * closes it, which stops the reconnect timers and the socket.
 */
export async function closeNats(nc: NatsConnection, clock: Clock, logger: Logger, drainMs: number): Promise<void> {
  // Already closed by the client (credentials refused on reconnect): nothing to drain, and a
  // "draining failed" warning would only blur the error that ended the process.
  if (nc.isClosed()) return;
  let failure: unknown;
  const drained = await settlesWithin(
    clock,
    nc.drain().catch((err: unknown) => {
      failure = err;
      throw err;
    }),
    drainMs,
  );
  if (drained && failure === undefined) return;
  logger.warn({ err: failure, drainMs, timedOut: !drained }, 'draining NATS failed; closing the connection');
  if (!(await settlesWithin(clock, nc.close(), 1_000))) logger.warn('closing the NATS connection timed out');
}

/** Runs `close` within `ms`; a timeout or failure is logged, never thrown (the process is ending). */
export async function closeWithin(clock: Clock, logger: Logger, what: string, ms: number, close: () => Promise<unknown>): Promise<void> {
  let failure: unknown;
  const done = await settlesWithin(
    clock,
    close().catch((err: unknown) => {
      failure = err;
    }),
    ms,
  );
  if (!done) logger.warn({ what, ms }, 'close timed out');
  else if (failure !== undefined) logger.warn({ what, err: failure }, 'close failed');
}
