/**
 * A TCP port on 127.0.0.1 that was free a moment ago. Between this call and the server's bind
 * another process could take it; on a test machine that window is small enough, and a server
 * that loses the race fails to start loudly rather than silently sharing a port.
 */
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}
