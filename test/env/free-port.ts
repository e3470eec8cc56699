/**
 * A TCP port on 127.0.0.1 that was free a moment ago, chosen below the kernel's ephemeral range.
 *
 * Why below it: test servers restart on the same port (a nats-server node rejoining its cluster,
 * nats-server or the API server after a restart). A port from the ephemeral range can become the
 * local port of any outgoing connection on the machine while its server is down, and the restart
 * then fails with EADDRINUSE (a cluster node's monitor port did, in CI). Ports below the range are
 * only ever taken by an explicit bind.
 *
 * Between this call and the server's bind another process could still take the port; a server
 * that loses that race fails to start loudly rather than silently sharing a port.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const LOWEST = 10_000;
const CANDIDATES = 200;
// Linux's default range starts here; other systems have no file to read.
const DEFAULT_EPHEMERAL_START = 32_768;

/** Ports already handed out by this process: two calls in a row must not get the same one. */
const handedOut = new Set<number>();

/** The first port of the kernel's ephemeral range (`ip_local_port_range`). */
export function ephemeralStart(rangeFile = '/proc/sys/net/ipv4/ip_local_port_range'): number {
  try {
    const first = Number(readFileSync(rangeFile, 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 0 ? first : DEFAULT_EPHEMERAL_START;
  } catch {
    return DEFAULT_EPHEMERAL_START;
  }
}

/** Binds `port` (0: any) on 127.0.0.1 and releases it; the bound port, or undefined if taken. */
async function tryBind(port: number): Promise<number | undefined> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') resolve(undefined);
      else reject(err);
    });
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        resolve(address && typeof address === 'object' ? address.port : undefined);
      });
    });
  });
}

export async function freePort(): Promise<number> {
  const end = ephemeralStart();
  if (end - LOWEST >= CANDIDATES) {
    for (let i = 0; i < CANDIDATES; i++) {
      const candidate = LOWEST + Math.floor(Math.random() * (end - LOWEST));
      if (handedOut.has(candidate)) continue;
      const port = await tryBind(candidate);
      if (port !== undefined) {
        handedOut.add(port);
        return port;
      }
    }
  }
  // A machine whose ephemeral range leaves no room below it: let the kernel choose.
  const port = await tryBind(0);
  if (port === undefined) throw new Error('no free TCP port on 127.0.0.1');
  handedOut.add(port);
  return port;
}
