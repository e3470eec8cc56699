/**
 * The webhook receiver: `POST /hooks/<namespace>/<name>` on its own port, in the operator
 * process, on every replica. A request is answered 202 only after JetStream acknowledged that
 * the stream stored it (or already had it: a resend with the same delivery id); any answer
 * other than 2xx means nothing was stored, so the sender's retry loses nothing.
 *
 * Order of checks, cheapest and least revealing first: path → method (405) → hook (404; "no such
 * Integration" and "no webhook" look the same) → declared length (413) → content type (415) →
 * body, read up to maxBodyBytes (413) → signature on the raw bytes (401, or 400 for an unreadable
 * header) → rate (429; only verified requests count) → JSON (400) → delivery id (400) → publish
 * (503 when NATS does not acknowledge in time) → 202.
 *
 * Logs carry namespace, integration, outcome and the delivery id, never a secret, a signature
 * or a body.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock, Logger } from '../observability/index.ts';
import type { HookTable, Hook } from './hooks.ts';
import type { IngressMetrics, Outcome } from './metrics.ts';
import { deliveryId, verifySignature } from './verify.ts';

/** Publishes with a message id and resolves with the PubAck (nats/'s FallbackPublisher fits). */
export interface WebhookPublisher {
  publish(
    message: { readonly subject: string; readonly msgId: string; readonly payload: Uint8Array; readonly headers: ReadonlyMap<string, readonly string[]> },
    timeoutMs: number,
    attempts: number,
  ): Promise<{ readonly seq: number; readonly duplicate: boolean }>;
}

export interface WebhookIngressOptions {
  readonly host: string;
  readonly port: number;
  readonly hooks: HookTable;
  readonly publisher: WebhookPublisher;
  /** False while the NATS connection is down: answer 503 at once instead of waiting out the timeout. */
  readonly natsConnected: () => boolean;
  /** False until the Integration and Secret caches hold their first full list: 503, not a false 404. */
  readonly cachesSynced: () => boolean;
  readonly metrics: IngressMetrics;
  readonly clock: Clock;
  readonly logger: Logger;
  /** How long to wait for the PubAck before answering 503 (default 5 s). */
  readonly publishTimeoutMs?: number;
  /** After close() stops accepting, how long open requests may finish before their sockets are cut (default 3 s). */
  readonly closeGraceMs?: number;
}

const STATUS: Readonly<Record<Outcome, number>> = {
  accepted: 202,
  duplicate: 202,
  unauthorized: 401,
  malformed: 400,
  not_found: 404,
  method_not_allowed: 405,
  too_large: 413,
  unsupported_media_type: 415,
  throttled: 429,
  unavailable: 503,
};
// Kubernetes object names: a DNS label for the namespace, a DNS subdomain for the name.
const HOOK_PATH = /^\/hooks\/([a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)\/([a-z0-9](?:[-.a-z0-9]{0,251}[a-z0-9])?)$/;
const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
/** Seconds a sender is asked to wait when NATS or the hook's configuration is not available. */
const RETRY_AFTER_UNAVAILABLE = 5;

class TooLarge extends Error {}

/** Reads the body, refusing (and no longer reading) past `max` bytes. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.off('data', onData);
        req.pause();
        reject(new TooLarge());
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      resolve(chunks.length === 1 ? (chunks[0] ?? Buffer.alloc(0)) : Buffer.concat(chunks, size));
    });
    req.once('error', reject);
  });
}

function isJsonText(body: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(body.toString('utf8')) as unknown };
  } catch {
    return { ok: false };
  }
}

interface Answer {
  readonly outcome: Outcome;
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly id?: string;
  /** Stop reading the request and close the connection after answering (oversized bodies). */
  readonly close?: boolean;
}

export class WebhookIngress {
  private readonly options: WebhookIngressOptions;
  private readonly log: Logger;
  private server: Server | undefined;

  constructor(options: WebhookIngressOptions) {
    this.options = options;
    this.log = options.logger.child({ component: 'webhook-ingress' });
  }

  /** Binds the port; resolves with it (useful with port 0). */
  async listen(): Promise<number> {
    const server = createServer((req, res) => {
      void this.serve(req, res);
    });
    // Bounds on slow senders: a request must arrive whole within these.
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.keepAliveTimeout = 5_000;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as AddressInfo).port;
  }

  /**
   * Stops accepting connections, lets open requests finish (their publishes are awaited, so an
   * answer always matches what was stored), and cuts what is still open after the grace period.
   */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => { resolve(); }));
    server.closeIdleConnections();
    const cancel = this.options.clock.setTimer(() => { server.closeAllConnections(); }, this.options.closeGraceMs ?? 3_000);
    await closed;
    cancel();
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = process.hrtime.bigint();
    let labels = { namespace: '', integration: '' };
    let answer: Answer;
    try {
      const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
      const m = HOOK_PATH.exec(path);
      if (!m) answer = { outcome: 'not_found', message: 'no such webhook' };
      else if (req.method !== 'POST') answer = { outcome: 'method_not_allowed', message: 'webhooks take POST', headers: { Allow: 'POST' } };
      else if (!this.options.cachesSynced()) answer = { outcome: 'unavailable', message: 'starting; retry later', headers: { 'Retry-After': String(RETRY_AFTER_UNAVAILABLE) } };
      else {
        const namespace = m[1] ?? '';
        const name = m[2] ?? '';
        const found = this.options.hooks.lookup(namespace, name);
        if (found.kind === 'absent') answer = { outcome: 'not_found', message: 'no such webhook' };
        else {
          labels = { namespace, integration: name };
          answer =
            found.kind === 'unavailable'
              ? { outcome: 'unavailable', message: 'webhook not available now; retry later', headers: { 'Retry-After': String(RETRY_AFTER_UNAVAILABLE) } }
              : await this.receive(req, namespace, name, found.hook);
          if (found.kind === 'unavailable') this.log.warn({ namespace, integration: name, detail: found.detail }, 'webhook refused: its Integration cannot take requests now');
        }
      }
    } catch (err) {
      this.log.error({ ...labels, err }, 'webhook request failed');
      answer = { outcome: 'unavailable', message: 'internal error; retry later', headers: { 'Retry-After': String(RETRY_AFTER_UNAVAILABLE) } };
    }
    this.respond(req, res, answer);
    this.options.metrics.record(labels.namespace, labels.integration, answer.outcome, Number(process.hrtime.bigint() - started) / 1e9);
    const fields = { ...labels, outcome: answer.outcome, status: STATUS[answer.outcome], webhookId: answer.id };
    if (answer.outcome === 'accepted' || answer.outcome === 'duplicate') this.log.debug(fields, 'webhook stored');
    else if (labels.namespace !== '') this.log.info({ ...fields, detail: answer.message }, 'webhook refused');
  }

  private respond(req: IncomingMessage, res: ServerResponse, answer: Answer): void {
    const status = STATUS[answer.outcome];
    const body = status === 202 ? '' : `${answer.message}\n`;
    res.writeHead(status, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': String(Buffer.byteLength(body)),
      ...(answer.close === true ? { Connection: 'close' } : {}),
      ...answer.headers,
    });
    res.end(body);
    // An unread (oversized) body: drop the connection once the answer is out instead of reading on.
    if (answer.close === true) res.once('finish', () => req.destroy());
  }

  private async receive(req: IncomingMessage, namespace: string, name: string, hook: Hook): Promise<Answer> {
    const { webhook } = hook;
    const declared = Number(req.headers['content-length'] ?? '0');
    const tooLarge: Answer = { outcome: 'too_large', message: `body larger than ${webhook.maxBodyBytes} bytes`, close: true };
    if (declared > webhook.maxBodyBytes) return tooLarge;
    const contentType = req.headers['content-type'] ?? '';
    const jsonType = JSON_TYPE.test(contentType);
    if (hook.format === 'json' && !jsonType) return { outcome: 'unsupported_media_type', message: 'Content-Type must be application/json' };
    let body: Buffer;
    try {
      body = await readBody(req, webhook.maxBodyBytes);
    } catch (err) {
      if (err instanceof TooLarge) return tooLarge;
      throw err;
    }
    const verdict = verifySignature(webhook.signature, req.headers, body, hook.keys, this.options.clock.now(), webhook.toleranceMs);
    if (!verdict.ok) return { outcome: verdict.outcome, message: verdict.detail };
    if (verdict.keyIndex > 0) hook.keys.unshift(...hook.keys.splice(verdict.keyIndex, 1));
    // Counted only for verified requests: a flood of unsigned ones cannot use up the sender's rate.
    if (hook.bucket) {
      const taken = hook.bucket.tryTake();
      if (!taken.ok) return { outcome: 'throttled', message: 'rate limit exceeded', headers: { 'Retry-After': String(taken.retryAfterSeconds) } };
    }
    let parsed: unknown;
    if (jsonType) {
      const json = isJsonText(body);
      if (!json.ok) return { outcome: 'malformed', message: 'body is not JSON' };
      parsed = json.value;
    }
    const id = deliveryId(webhook, req.headers, verdict, body, parsed);
    if (id === undefined) return { outcome: 'malformed', message: `${webhook.idHeader ?? 'id'} header missing or longer than 256 characters` };
    if (!this.options.natsConnected()) return { outcome: 'unavailable', message: 'event store unavailable; retry later', headers: { 'Retry-After': String(RETRY_AFTER_UNAVAILABLE) }, id };
    const headers = new Map<string, string[]>([['Ferry-Webhook-Id', [id]]]);
    if (hook.format === 'cloudevents') {
      // Binary-mode CloudEvents carry their attributes in ce- headers; the runtime reads them from the message.
      if (contentType !== '') headers.set('content-type', [contentType]);
      for (const [k, v] of Object.entries(req.headers)) if (k.startsWith('ce-') && typeof v === 'string') headers.set(k, [v]);
    }
    try {
      // Scoped by the Integration: two Integrations that share a stream never drop each other's deliveries.
      // One attempt: the answer must come while the sender still waits; a 503 makes it retry.
      const ack = await this.options.publisher.publish({ subject: webhook.subject, msgId: `${namespace}/${name}/${id}`, payload: body, headers }, this.options.publishTimeoutMs ?? 5_000, 1);
      return { outcome: ack.duplicate ? 'duplicate' : 'accepted', message: '', id };
    } catch (err) {
      this.log.warn({ namespace, integration: name, webhookId: id, err }, 'webhook not stored: JetStream did not acknowledge; the sender is asked to retry');
      return { outcome: 'unavailable', message: 'event store unavailable; retry later', headers: { 'Retry-After': String(RETRY_AFTER_UNAVAILABLE) }, id };
    }
  }
}
