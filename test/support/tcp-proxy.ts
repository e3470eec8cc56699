/**
 * A TCP proxy between a client and a server on loopback that injects the network faults a real
 * link has: latency (each chunk delayed, order kept) and outages (every connection cut, new ones
 * refused until `up()`). Tests put it between the operator and nats-server.
 */
import { createServer, connect as connectTcp, type AddressInfo, type Socket } from 'node:net';

export interface TcpProxy {
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** Delays every chunk in both directions by `ms` from now on (0: none). */
  setLatency(ms: number): void;
  /** Cuts every connection and refuses new ones until `up()`. */
  down(): void;
  up(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(upstreamHost: string, upstreamPort: number): Promise<TcpProxy> {
  let latencyMs = 0;
  let refusing = false;
  const sockets = new Set<Socket>();
  const track = (s: Socket): void => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  // Writes `chunk` to `to` after the current latency, never overtaking an earlier chunk.
  const relay = (from: Socket, to: Socket): void => {
    let releaseAt = 0;
    from.on('data', (chunk: Buffer) => {
      if (latencyMs === 0 && releaseAt <= Date.now()) {
        if (!to.destroyed) to.write(chunk);
        return;
      }
      releaseAt = Math.max(releaseAt, Date.now() + latencyMs);
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, releaseAt - Date.now());
    });
  };
  const server = createServer((client) => {
    track(client);
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = connectTcp(upstreamPort, upstreamHost);
    track(upstream);
    relay(client, upstream);
    relay(upstream, client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    setLatency(ms) {
      latencyMs = ms;
    },
    down() {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    up() {
      refusing = false;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => { resolve(); }));
    },
  };
}
