/**
 * A short NATS session for one command: connect with a bounded timeout, run, drain. Any NATS
 * failure on the way becomes one line naming the server (cli-error.ts).
 */
import { connectNatsOnce, FallbackStore, FerryNatsError, NatsUnavailableError, type NatsConnection } from '../nats/index.ts';
import { CommandError, rootCause } from './command-error.ts';

/** How long a command waits for NATS to answer its first connection. */
export const NATS_CONNECT_TIMEOUT_MS = 5_000;

/** Connects to `url`; throws a CommandError when NATS cannot be reached in time. */
export async function openNats(url: string): Promise<NatsConnection> {
  try {
    return await connectNatsOnce({ servers: url.split(','), name: 'ferry-cli', timeoutMs: NATS_CONNECT_TIMEOUT_MS });
  } catch (err) {
    throw natsFailure(err, url);
  }
}

/** Runs `use` with a fallback store on a fresh connection, closed afterwards whatever happens. */
export async function withFallbackStore<T>(url: string, use: (store: FallbackStore) => Promise<T>): Promise<T> {
  const nc = await openNats(url);
  try {
    return await use(new FallbackStore(nc));
  } catch (err) {
    throw natsFailure(err, url);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** A src/nats error as a CommandError naming the server; other errors unchanged. */
export function natsFailure(err: unknown, url: string): unknown {
  if (err instanceof NatsUnavailableError) return new CommandError(`cannot reach NATS at ${url}: ${rootCause(err)}`, { cause: err });
  if (err instanceof FerryNatsError) return new CommandError(`NATS at ${url}: ${err.message}`, { cause: err });
  return err;
}
