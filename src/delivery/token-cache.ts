/**
 * The OAuth2 access-token cache: tokens keyed by endpoint + client + scopes (+ audience), usable
 * until shortly before they expire, fetched at most once at a time per key. Pure logic over an
 * injected clock; the fetching itself is passed in.
 *
 * One cache per process, shared by every Integration, so Integrations using the same client share
 * one token instead of each fetching its own.
 */
import type { Clock } from '../observability/index.ts';

/** A token and the time until which Ferry will send it. */
export interface CachedToken {
  readonly accessToken: string;
  /** ms since the epoch; already includes the safety margin. */
  readonly usableUntil: number;
}

/** Lifetime settings for {@link tokenUsableUntil}. */
export interface TokenLifetimeOptions {
  /** Stop using a token this long before the endpoint says it expires (default 30 s). */
  readonly safetyMarginMs?: number;
  /** Lifetime assumed when the response has no `expires_in` (default 5 min). */
  readonly defaultLifetimeMs?: number;
}

/**
 * Until when a token received at `now` is used: `now + expires_in − margin`, where the margin is
 * at most half the lifetime so a short-lived token (`expires_in: 20`) is still used for a while
 * instead of being refetched per request. `expiresInSeconds` that is missing, negative or not a
 * finite number falls back to the default lifetime.
 */
export function tokenUsableUntil(now: number, expiresInSeconds: number | undefined, options: TokenLifetimeOptions = {}): number {
  const lifetime =
    expiresInSeconds !== undefined && Number.isFinite(expiresInSeconds) && expiresInSeconds >= 0
      ? expiresInSeconds * 1000
      : (options.defaultLifetimeMs ?? 5 * 60_000);
  const margin = Math.min(options.safetyMarginMs ?? 30_000, lifetime / 2);
  return now + lifetime - margin;
}

/**
 * The cache key of a token: which endpoint issued it, to which client, for which scopes (order
 * does not matter) and audience. The client secret is deliberately not part of it.
 */
export function tokenCacheKey(tokenUrl: string, clientId: string, scopes: readonly string[] = [], audience?: string): string {
  return JSON.stringify([tokenUrl, clientId, [...new Set(scopes)].sort(), audience ?? null]);
}

/**
 * Tokens by {@link tokenCacheKey}. Created once by the composition root and passed to every
 * OAuth2 provider; holds promises of in-flight fetches but does no I/O itself.
 */
export class TokenCache {
  private readonly clock: Clock;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inFlight = new Map<string, Promise<CachedToken>>();

  constructor(clock: Clock) {
    this.clock = clock;
  }

  /** The cached token for `key` if it is still usable now. */
  get(key: string): CachedToken | undefined {
    const token = this.tokens.get(key);
    if (!token) return undefined;
    if (this.clock.now() < token.usableUntil) return token;
    this.tokens.delete(key);
    return undefined;
  }

  /**
   * A usable token for `key`: the cached one, or the result of `fetch`. Concurrent callers for
   * the same key share one `fetch`; a failed fetch is not cached (the next call tries again) and
   * its error reaches every caller that waited on it.
   */
  async getOrFetch(key: string, fetch: () => Promise<CachedToken>): Promise<CachedToken> {
    const cached = this.get(key);
    if (cached) return cached;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = fetch().then(
        (token) => {
          this.tokens.set(key, token);
          this.inFlight.delete(key);
          return token;
        },
        (error: unknown) => {
          this.inFlight.delete(key);
          throw error;
        },
      );
      this.inFlight.set(key, pending);
    }
    return await pending;
  }

  /**
   * Drops `accessToken` after a target refused it (401). Only that exact token is dropped, so
   * when many attempts fail with the same stale token, the first forces one refresh and the
   * others reuse the refreshed token. Returns whether it was dropped.
   */
  invalidate(key: string, accessToken: string): boolean {
    if (this.tokens.get(key)?.accessToken !== accessToken) return false;
    this.tokens.delete(key);
    return true;
  }
}
