/**
 * The SSRF address policy: which addresses a delivery may be sent to, and which URLs are
 * acceptable at all. Pure; the connect-time enforcement (DNS lookup, socket check) is in
 * guarded-connect.ts and calls into this.
 *
 * Policy, in order:
 * 1. an address in the operator's `denyCidrs` is denied (explicit deny wins);
 * 2. an address in the operator's `allowCidrs` is allowed (private targets, `127.0.0.1/32` in tests);
 * 3. otherwise only ipaddr.js's `unicast` range is allowed. IPv4-mapped IPv6 (`::ffff:a.b.c.d`,
 *    and `::a.b.c.d`, which ipaddr.js reads as mapped) is judged as the IPv4 address it maps to;
 *    IPv4-compatible IPv6 in hex form (`::7f00:1`, deprecated) is denied outright, since
 *    ipaddr.js calls it unicast but some stacks route it to IPv4.
 *
 * Uses ipaddr.js rather than the npm `ip` package, whose isPublic had bypass CVEs.
 */
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { DeliveryConfigError, InvalidTargetUrlError, TargetDeniedError, type DenyStage } from './errors.ts';

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Cidr = readonly [Address, number];

/** Operator configuration of the guard (flags or Helm values); both lists are empty by default. */
export interface AddressPolicyOptions {
  /** CIDRs allowed even though they are private, loopback, etc. (`10.20.0.0/16`, `127.0.0.1/32`). */
  readonly allowCidrs?: readonly string[];
  /** CIDRs denied even though they are public (pod and service ranges, a partner's network). */
  readonly denyCidrs?: readonly string[];
}

/** The verdict on one address. */
export type AddressVerdict =
  | { readonly allowed: true; readonly address: string }
  | { readonly allowed: false; readonly address: string; readonly range: string };

const ipv4Compatible = ipaddr.IPv6.parseCIDR('::/96');

/** An immutable allow/deny policy over IP addresses. Build once per process with {@link createAddressPolicy}. */
export interface AddressPolicy {
  /** Judges one address (any textual IPv4/IPv6 form; a zone id is ignored). Unparseable → denied. */
  check(address: string): AddressVerdict;
}

/**
 * Builds the policy from operator configuration.
 * @throws DeliveryConfigError naming the first CIDR that does not parse.
 */
export function createAddressPolicy(options: AddressPolicyOptions = {}): AddressPolicy {
  const allow = parseCidrs(options.allowCidrs ?? [], 'allowCidrs');
  const deny = parseCidrs(options.denyCidrs ?? [], 'denyCidrs');
  return {
    check(text) {
      let parsed: Address;
      try {
        parsed = ipaddr.process(text);
      } catch {
        return { allowed: false, address: text, range: 'invalid' };
      }
      const address = parsed.toString();
      const denied = deny.find((c) => matches(parsed, c));
      if (denied) return { allowed: false, address, range: `denyCidrs ${denied.source}` };
      if (allow.some((c) => matches(parsed, c))) return { allowed: true, address };
      const range = parsed.range();
      if (range !== 'unicast') return { allowed: false, address, range };
      if (parsed instanceof ipaddr.IPv6 && parsed.match(ipv4Compatible)) {
        return { allowed: false, address, range: 'ipv4Compatible' };
      }
      return { allowed: true, address };
    },
  };
}

/**
 * Throws {@link TargetDeniedError} unless `policy` allows `address`. `hostname` is what the URL
 * named (for the message); `stage` says where the check ran.
 */
export function assertAddressAllowed(policy: AddressPolicy, address: string, hostname: string, stage: DenyStage): void {
  const verdict = policy.check(address);
  if (!verdict.allowed) {
    throw new TargetDeniedError({ address: verdict.address, hostname, range: verdict.range, stage });
  }
}

/**
 * Checks a target URL before anything is dialled: it must parse, be http(s), carry no userinfo,
 * and — when its host is an IP literal, which never reaches the DNS lookup — name an allowed
 * address. Host names are checked later, on the addresses they resolve to. Called before every
 * attempt (so a redrive re-checks under the current policy). Returns the parsed URL.
 *
 * WHATWG URL parsing already turns `http://2130706433/` and `http://0x7f.1/` into `127.0.0.1`,
 * so obfuscated literals are judged in canonical form.
 * @throws InvalidTargetUrlError for a malformed URL, another scheme, or userinfo.
 * @throws TargetDeniedError (stage `url`) for a denied IP literal.
 */
export function checkTargetUrl(url: string | URL, policy: AddressPolicy): URL {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : url;
  } catch (error) {
    throw new InvalidTargetUrlError(redactUserinfo(String(url)), 'unparseable', { cause: error });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidTargetUrlError(safeUrl(parsed), 'scheme');
  }
  if (parsed.username !== '' || parsed.password !== '') throw new InvalidTargetUrlError(safeUrl(parsed), 'userinfo');
  const host = unbracket(parsed.hostname);
  // net.isIP, not ipaddr.isValid (~10 µs on a host name, and this runs on every event): the URL
  // parser has already normalised IPv4 literals (hex, octal, short forms) to dotted decimal and
  // bracketed IPv6. Host names are checked on the addresses they resolve to, at connect time.
  if (isIP(host) !== 0) assertAddressAllowed(policy, host, host, 'url');
  return parsed;
}

/** `[::1]` → `::1`: URL keeps brackets around IPv6 hosts, addresses do not have them. */
export function unbracket(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

function parseCidrs(cidrs: readonly string[], option: string): (Cidr & { source: string })[] {
  return cidrs.map((source, i) => {
    try {
      const [address, bits] = ipaddr.parseCIDR(source.trim());
      return Object.assign([address, bits] as const, { source: source.trim() });
    } catch (error) {
      throw new DeliveryConfigError(`${option}[${i}]`, `${JSON.stringify(source)} is not a CIDR`, { cause: error });
    }
  });
}

function matches(address: Address, [network, bits]: Cidr): boolean {
  // ipaddr.js throws when the kinds differ; an IPv4 CIDR also covers that address mapped into IPv6,
  // but process() has already unmapped those.
  return address.kind() === network.kind() && address.match(network, bits);
}

function safeUrl(url: URL): string {
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
}

function redactUserinfo(text: string): string {
  return text.replace(/\/\/[^/@]*@/, '//');
}
