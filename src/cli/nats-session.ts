/**
 * A short NATS session for one command: connect with a bounded timeout, run, drain. Any NATS
 * failure on the way becomes one line naming the server (cli-error.ts).
 */
import { connectNatsOnce, FallbackStore, FerryNatsError, NatsAuthError, NatsUnavailableError, type NatsConnection } from '../nats/index.ts';
import { CommandError, rootCause } from './command-error.ts';
import type { NatsTarget } from './nats-flags.ts';

/** How long a command waits for NATS to answer its first connection. */
export const NATS_CONNECT_TIMEOUT_MS = 5_000;

/** Connects to `target`; throws a CommandError when NATS cannot be reached in time or refuses the credentials. */
export async function openNats(target: NatsTarget): Promise<NatsConnection> {
  try {
    return await connectNatsOnce({ servers: target.servers, name: 'ferry-cli', timeoutMs: NATS_CONNECT_TIMEOUT_MS, security: target.security });
  } catch (err) {
    throw natsFailure(err, target.url);
  }
}

/** Runs `use` with a fallback store on a fresh connection, closed afterwards whatever happens. */
export async function withFallbackStore<T>(target: NatsTarget, use: (store: FallbackStore) => Promise<T>): Promise<T> {
  const nc = await openNats(target);
  try {
    return await use(new FallbackStore(nc));
  } catch (err) {
    throw natsFailure(err, target.url);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** A src/nats error as a CommandError naming the server; other errors unchanged. */
export function natsFailure(err: unknown, url: string): unknown {
  if (err instanceof NatsAuthError) return new CommandError(`NATS at ${url} refused the credentials (${rootCause(err)}); check --nats-creds, --nats-nkey, --nats-user/NATS_PASSWORD or --nats-token-file`, { cause: err });
  if (err instanceof NatsUnavailableError) return new CommandError(`cannot reach NATS at ${url}: ${rootCause(err)}`, { cause: err });
  if (err instanceof FerryNatsError) return new CommandError(`NATS at ${url}: ${err.message}`, { cause: err });
  return err;
}
