/**
 * A local OAuth2 token endpoint (client credentials grant, RFC 6749 §4.4) for tests: checks the
 * client's HTTP Basic credentials, issues opaque tokens that expire after `ttlSeconds`, and tells
 * a target whether a presented token is valid now — so a target can require tokens that expire,
 * the way real APIs do.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OAuth2TokenServer {
  /** `http://127.0.0.1:<port>/oauth/token`. */
  readonly tokenUrl: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Tokens issued so far. */
  readonly issued: number;
  /** True when `token` was issued by this server and has not expired or been revoked. */
  valid(token: string): boolean;
  /** Every token issued so far stops being valid (a key rotation at the provider). */
  revokeAll(): void;
  close(): Promise<void>;
}

export async function startOAuth2Server(options: { clientId?: string; clientSecret?: string; ttlSeconds?: number } = {}): Promise<OAuth2TokenServer> {
  const clientId = options.clientId ?? 'ferry';
  const clientSecret = options.clientSecret ?? randomBytes(12).toString('hex');
  const ttlSeconds = options.ttlSeconds ?? 3600;
  const tokens = new Map<string, number>();
  let issued = 0;
  const expected = `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`;

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const reply = (status: number, body: unknown): void => {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(text);
      };
      if (req.method !== 'POST' || req.url !== '/oauth/token') {
        reply(404, { error: 'not_found' });
        return;
      }
      if (req.headers.authorization !== expected) {
        reply(401, { error: 'invalid_client' });
        return;
      }
      if (form.get('grant_type') !== 'client_credentials') {
        reply(400, { error: 'unsupported_grant_type' });
        return;
      }
      const token = randomBytes(16).toString('hex');
      tokens.set(token, Date.now() + ttlSeconds * 1000);
      issued++;
      reply(200, { access_token: token, token_type: 'Bearer', expires_in: ttlSeconds });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    tokenUrl: `http://127.0.0.1:${port}/oauth/token`,
    clientId,
    clientSecret,
    get issued() {
      return issued;
    },
    valid(token) {
      const until = tokens.get(token);
      return until !== undefined && Date.now() < until;
    },
    revokeAll() {
      tokens.clear();
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => { resolve(); }));
    },
  };
}
