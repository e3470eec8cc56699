/**
 * The verdicts of {@link checkTargetUrl} for the target URLs seen recently, so an unchanged URL is
 * parsed and judged once, not on every attempt (a pipeline sends thousands of events a second to
 * the same URL; parsing and judging it cost several µs each time).
 *
 * Exact, not approximate: `checkTargetUrl` is a pure function of the URL text and the policy,
 * and a cache belongs to one immutable policy. Only passes are kept — a refused URL is judged
 * again on every attempt and throws the same error. What a URL names is still judged where it
 * can change: a host name's resolved addresses and the socket's peer address are checked by the
 * guarded connector on every connection (guarded-connect.ts), so DNS rebinding stays closed.
 */
import { checkTargetUrl, type AddressPolicy } from './ssrf-guard.ts';

/** What a request needs of a URL that passed. */
export interface CheckedUrl {
  readonly origin: string;
  /** Path and query, as sent on the request line. */
  readonly path: string;
}

/** Default bound: templated URLs (one per customer, say) must not grow it without limit. */
const DEFAULT_MAX_ENTRIES = 1_024;

export class CheckedUrls {
  private readonly policy: AddressPolicy;
  private readonly maxEntries: number;
  private readonly passed = new Map<string, CheckedUrl>();

  constructor(policy: AddressPolicy, maxEntries = DEFAULT_MAX_ENTRIES) {
    this.policy = policy;
    this.maxEntries = maxEntries;
  }

  /**
   * The URL's origin and path once it passed the check.
   * @throws InvalidTargetUrlError or TargetDeniedError exactly as {@link checkTargetUrl} does.
   */
  check(url: string): CheckedUrl {
    const known = this.passed.get(url);
    if (known) return known;
    const parsed = checkTargetUrl(url, this.policy);
    const checked: CheckedUrl = { origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` };
    // Dropping everything at the bound is enough: the common case is a handful of URLs, and a
    // workload with more distinct URLs than the bound only pays the check it paid before.
    if (this.passed.size >= this.maxEntries) this.passed.clear();
    this.passed.set(url, checked);
    return checked;
  }

  /** URLs remembered now (for tests). */
  get size(): number {
    return this.passed.size;
  }
}
