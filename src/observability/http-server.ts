/**
 * The operator's own HTTP endpoints: /healthz, /readyz and /metrics (Prometheus text format).
 * Probes answer `ok` or the list of failing checks with 503, as kube-apiserver's own do.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { HealthRegistry, HealthReport } from './health.ts';
import type { Logger } from './logger.ts';

export interface OperatorEndpoints {
  readonly port: number;
  close(): Promise<void>;
}

function renderReport(r: HealthReport): string {
  return `${r.checks.map((c) => `[${c.ok ? '+' : '-'}]${c.name} ${c.ok ? 'ok' : `failed${c.detail ? `: ${c.detail}` : ''}`}`).join('\n')}\n${r.ok ? 'ok' : 'failed'}\n`;
}

export async function serveOperatorEndpoints(options: {
  readonly host: string;
  readonly port: number;
  readonly health: HealthRegistry;
  readonly registry: Registry;
  readonly logger: Logger;
}): Promise<OperatorEndpoints> {
  const { health, registry } = options;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      const r = path === '/readyz' ? health.ready() : health.live();
      res.writeHead(r.ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(renderReport(r));
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          options.logger.error({ err }, 'rendering metrics failed');
          res.writeHead(500).end();
        },
      );
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => {
        resolve();
      }));
    },
  };
}
