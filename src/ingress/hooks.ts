/**
 * Which Integrations have a webhook, read from the operator's watch caches on each request and
 * compiled once per generation and Secret version: the resolved webhook settings, the signing
 * keys (from Secrets of the Integration's own namespace only) and its rate limiter.
 */
import type { KeyObject } from 'node:crypto';
import { parseIntegrationSpec, resolveIntegrationConfig, type ReferenceLookup, type ResolvedWebhook } from '../api/index.ts';
import type { Clock } from '../observability/index.ts';
import { RequestBucket } from './admission.ts';
import { signingKeys } from './verify.ts';

/** The part of an Integration the ingress reads (the watch cache's objects fit it). */
export interface IntegrationObject {
  readonly metadata?: { readonly uid?: string; readonly generation?: number; readonly deletionTimestamp?: unknown };
  readonly spec?: unknown;
}

/** Read access to the Integration watch cache, by `namespace/name`. */
export interface IntegrationLookup {
  get(key: string): IntegrationObject | undefined;
}

/**
 * A hook ready to verify requests. Holds signing keys: memory only, never logged. `keys` is kept
 * in the order to try them: the key that signed the last verified request first, so during a
 * rotation (both keys listed) each request costs one HMAC, not two.
 */
export interface Hook {
  readonly webhook: ResolvedWebhook;
  readonly format: 'json' | 'cloudevents';
  readonly keys: KeyObject[];
  readonly bucket: RequestBucket | undefined;
}

export type HookLookup =
  | { readonly kind: 'found'; readonly hook: Hook }
  /** No such Integration, being deleted, or it declares no webhook: one answer (404) for all. */
  | { readonly kind: 'absent' }
  /** It declares a webhook that cannot run now (invalid spec, Secret missing): the sender should retry. */
  | { readonly kind: 'unavailable'; readonly detail: string };

interface Entry {
  readonly uid: string;
  readonly generation: number;
  /** resourceVersion of each signing Secret when compiled. */
  readonly versions: readonly (string | undefined)[];
  readonly result: HookLookup;
}

function declaresWebhook(spec: unknown): boolean {
  const source = (spec as { source?: { webhook?: unknown } } | undefined)?.source;
  return source?.webhook !== undefined && source.webhook !== null;
}

export class HookTable {
  private readonly integrations: IntegrationLookup;
  private readonly references: ReferenceLookup;
  private readonly clock: Clock;
  private readonly entries = new Map<string, Entry>();

  constructor(options: { readonly integrations: IntegrationLookup; readonly references: ReferenceLookup; readonly clock: Clock }) {
    this.integrations = options.integrations;
    this.references = options.references;
    this.clock = options.clock;
  }

  /** The hook of `namespace/name`, recompiled only when its generation or a signing Secret changed. */
  lookup(namespace: string, name: string): HookLookup {
    const key = `${namespace}/${name}`;
    const obj = this.integrations.get(key);
    if (!obj || obj.metadata?.deletionTimestamp || !declaresWebhook(obj.spec)) {
      this.entries.delete(key);
      return { kind: 'absent' };
    }
    const uid = obj.metadata?.uid ?? '';
    const generation = obj.metadata?.generation ?? 0;
    const cached = this.entries.get(key);
    if (cached?.uid === uid && cached.generation === generation && this.sameVersions(namespace, cached)) return cached.result;
    const entry = this.compile(namespace, uid, generation, obj.spec);
    this.entries.set(key, entry);
    return entry.result;
  }

  private secretVersion(namespace: string, name: string): string | undefined {
    return this.references.version?.('Secret', namespace, name);
  }

  private sameVersions(namespace: string, entry: Entry): boolean {
    if (entry.result.kind !== 'found') return false;
    const secrets = entry.result.hook.webhook.signature.secrets;
    return secrets.every((ref, i) => this.secretVersion(namespace, ref.name) === entry.versions[i]);
  }

  private compile(namespace: string, uid: string, generation: number, spec: unknown): Entry {
    const parsed = parseIntegrationSpec(spec);
    if (!parsed.ok) return { uid, generation, versions: [], result: { kind: 'unavailable', detail: `the Integration's spec is invalid (${parsed.error.field})` } };
    const config = resolveIntegrationConfig(parsed.spec);
    const webhook = config.source.webhook;
    if (webhook === undefined) return { uid, generation, versions: [], result: { kind: 'absent' } };
    const secrets: string[] = [];
    for (const ref of webhook.signature.secrets) {
      const value = this.references.secretData(namespace, ref.name)?.[ref.key];
      if (value === undefined) return { uid, generation, versions: [], result: { kind: 'unavailable', detail: `signing Secret ${ref.name} key ${ref.key} not found` } };
      secrets.push(Buffer.from(value, 'base64').toString('utf8'));
    }
    const bucket = webhook.rateLimit === undefined ? undefined : new RequestBucket(webhook.rateLimit.perSecond, webhook.rateLimit.burst, this.clock);
    return {
      uid,
      generation,
      versions: webhook.signature.secrets.map((ref) => this.secretVersion(namespace, ref.name)),
      result: { kind: 'found', hook: { webhook, format: config.source.format, keys: signingKeys(webhook.signature.scheme, secrets), bucket } },
    };
  }
}
