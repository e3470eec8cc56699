/**
 * Writes records to the target: one request per record (the key templated in the URL), or
 * batches to a batch endpoint judged per record (DESIGN rules 7 and 13), and deletes.
 *
 * Guarantees:
 * - Every write carries an idempotency key derived from the record's key and content hash, so a
 *   write repeated after a crash (acknowledged, hash not yet stored) is replayed by a target that
 *   honours keys, and one whose content changed is a new write.
 * - A batch answered 2xx is judged per record from its results; a batch refused as a whole (4xx)
 *   is split in halves until the bad records are isolated; a succeeded batch is never resent.
 * - A record-level failure is returned, never thrown: one bad record never fails the run. Only
 *   target-wide conditions (breaker, credentials, budget, cancellation) are thrown.
 */
import { createHash } from 'node:crypto';
import { renderTemplate, TemplateValueError, TemplatePointerMissingError, type CompiledTemplate } from '../api/index.ts';
import type { BodyEncoding, DeliveryResponse, HttpMethod } from '../delivery/index.ts';
import type { FallbackReason } from '../nats/index.ts';
import { HttpCallFailed, type HttpCaller } from './http-call.ts';
import { pointer, valueAt, type Pointer } from './records.ts';

export interface WriteItem {
  readonly key: string;
  /** The transformed record: the request body. */
  readonly body: unknown;
  readonly hash: string;
  /** The source record (URL templates read from it). */
  readonly source: unknown;
  /**
   * Makes the idempotency key differ from the record's first write. A repair rewrites content the
   * target already acknowledged once (then lost or changed): under the same key a target that
   * honours keys would replay its old answer and apply nothing.
   */
  readonly keySalt?: string | undefined;
}

export type WriteResult =
  | { readonly ok: true; readonly status: number; readonly skipped?: 'absent' | 'exists' }
  | { readonly ok: false; readonly reason: FallbackReason; readonly error: string; readonly status?: number | undefined; readonly body?: string | undefined };

export interface TargetConfig {
  readonly url: CompiledTemplate;
  readonly deleteUrl: CompiledTemplate;
  readonly method: HttpMethod;
  readonly encoding: BodyEncoding;
  readonly headers: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly successCodes: readonly number[];
  readonly batch: { readonly size: number; readonly itemsPath: string; readonly resultsPath: string; readonly itemStatusPath: string };
  readonly mode: 'upsert' | 'update' | 'insert' | 'mirror';
  /** `<namespace>/<name>`: idempotency keys of two SyncSchedules never collide. */
  readonly scope: string;
}

const MAX_KEY = 255;

/** `sync:<scope>:<key>:<hash>`, or its SHA-256 when that is longer than targets accept. */
export function writeKey(scope: string, key: string, hash: string): string {
  const plain = `sync:${scope}:${key}:${hash}`;
  return plain.length <= MAX_KEY ? plain : `sync:${createHash('sha256').update(plain).digest('base64url')}`;
}

function setAt(tokens: Pointer, value: unknown): unknown {
  if (tokens.length === 0) return value;
  const root: Record<string, unknown> = {};
  let node = root;
  tokens.forEach((t, i) => {
    if (i === tokens.length - 1) node[t] = value;
    else node = node[t] = {} as Record<string, unknown>;
  });
  return root;
}

export class TargetWriter {
  private readonly c: TargetConfig;
  private readonly caller: HttpCaller;
  private readonly resultsAt: Pointer;
  private readonly statusAt: Pointer;

  constructor(config: TargetConfig, caller: HttpCaller) {
    this.c = config;
    this.caller = caller;
    this.resultsAt = pointer(config.batch.resultsPath);
    this.statusAt = pointer(config.batch.itemStatusPath);
  }

  get batchSize(): number {
    return this.c.batch.size;
  }

  /** Writes one record. */
  async write(item: WriteItem): Promise<WriteResult> {
    let url: string;
    try {
      url = renderTemplate(this.c.url, item.source, 'url');
    } catch (err) {
      if (err instanceof TemplateValueError || err instanceof TemplatePointerMissingError) return { ok: false, reason: 'rejected', error: `target.url: ${err.message}` };
      throw err;
    }
    return this.judge(await this.send(url, this.c.method, item.body, writeKey(this.c.scope, item.key, item.keySalt === undefined ? item.hash : `${item.hash}:${item.keySalt}`)));
  }

  /** Writes records in one batch request (or splits it); one result per item, in order. */
  async writeBatch(items: readonly WriteItem[]): Promise<WriteResult[]> {
    if (items.length === 1 && this.c.batch.size === 1) {
      const only = items[0];
      return only ? [await this.write(only)] : [];
    }
    const url = renderTemplate(this.c.url, {}, 'url');
    const key = writeKey(this.c.scope, 'batch', createHash('sha256').update(items.map((i) => `${i.key}\u0000${i.hash}\u0000${i.keySalt ?? ''}`).join('\u0001')).digest('base64url'));
    const sent = await this.send(url, this.c.method, setAt(pointer(this.c.batch.itemsPath), items.map((i) => i.body)), key);
    if ('failed' in sent) return items.map(() => sent.failed);
    const r = sent.response;
    if (this.c.successCodes.includes(r.status)) {
      let results: unknown;
      try {
        results = valueAt(JSON.parse(r.body || 'null'), this.resultsAt);
      } catch {
        results = undefined;
      }
      if (!Array.isArray(results)) return items.map(() => ({ ok: true, status: r.status }));
      return items.map((_, i) => {
        const res: unknown = results[i];
        const status = valueAt(res, this.statusAt);
        if (typeof status === 'number' && status >= 200 && status <= 299) return { ok: true, status };
        const skipped = typeof status === 'number' ? this.skippedByMode(status) : undefined;
        if (skipped) return skipped;
        const error = valueAt(res, ['error']);
        return {
          ok: false,
          reason: 'rejected',
          status: typeof status === 'number' ? status : undefined,
          error: `batch item ${i}: ${typeof error === 'string' ? error : `status ${JSON.stringify(status ?? null)}`}`,
          body: JSON.stringify(res ?? null).slice(0, 1024),
        };
      });
    }
    // Refused as a whole: isolate the bad records by halves (a batch of one is judged alone).
    if (items.length === 1) return [this.judge(sent)];
    const mid = Math.ceil(items.length / 2);
    return [...(await this.writeBatch(items.slice(0, mid))), ...(await this.writeBatch(items.slice(mid)))];
  }

  /**
   * Deletes one record by key (mode Mirror). A 404 is a success: it is gone either way. `salt`
   * (the run id) keeps a later delete of a re-created record from replaying an old answer.
   */
  async delete(key: string, source: unknown, salt: string): Promise<WriteResult> {
    const url = renderTemplate(this.c.deleteUrl, source, 'url');
    const sent = await this.send(url, 'DELETE', undefined, writeKey(this.c.scope, key, `delete:${salt}`));
    if ('response' in sent && sent.response.status === 404) return { ok: true, status: 404 };
    return this.judge(sent);
  }

  private async send(url: string, method: HttpMethod, body: unknown, idempotencyKey: string): Promise<{ response: DeliveryResponse } | { failed: WriteResult & { ok: false } }> {
    try {
      const response = await this.caller.call({
        url,
        method,
        headers: this.c.headers,
        ...(body === undefined ? {} : { body: { encoding: this.c.encoding, value: body } }),
        idempotencyKey,
        timeoutMs: this.c.timeoutMs,
      });
      return { response };
    } catch (err) {
      if (err instanceof HttpCallFailed) return { failed: { ok: false, reason: 'exhausted', error: err.message, status: err.status, body: err.body } };
      throw err;
    }
  }

  /** Mode Update: 404 means "not in the target", skipped. Mode Insert: 409 means "already there". */
  private skippedByMode(status: number): WriteResult | undefined {
    if (this.c.mode === 'update' && status === 404) return { ok: true, status: 404, skipped: 'absent' };
    if (this.c.mode === 'insert' && status === 409) return { ok: true, status: 409, skipped: 'exists' };
    return undefined;
  }

  private judge(sent: { response: DeliveryResponse } | { failed: WriteResult & { ok: false } }): WriteResult {
    if ('failed' in sent) return sent.failed;
    const r = sent.response;
    if (this.c.successCodes.includes(r.status)) return { ok: true, status: r.status };
    const skipped = this.skippedByMode(r.status);
    if (skipped) return skipped;
    return { ok: false, reason: 'rejected', status: r.status, error: `HTTP ${r.status}`, body: r.body.slice(0, 1024) };
  }
}
