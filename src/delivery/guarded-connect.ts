/**
 * The SSRF guard on the connect path: an undici connector that only ever dials addresses the
 * {@link AddressPolicy} allows. Checking the address actually dialled (not an earlier, separate
 * lookup) is what defeats DNS rebinding.
 *
 * Three checks, each closing a gap the others leave:
 * - IP-literal hosts never reach a DNS lookup, so they are judged before `net.connect`;
 * - host names are resolved by our `lookup`, which fails closed: a DNS error, an empty answer or
 *   ANY denied address in the answer refuses the connection (an attacker's name returning one
 *   public and one private address must not get the private one dialled);
 * - after connecting, the socket's peer address is judged once more (defence in depth).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import { buildConnector } from 'undici';
import { FerryDeliveryError, TargetResolutionError } from './errors.ts';
import { assertAddressAllowed, unbracket, type AddressPolicy } from './ssrf-guard.ts';

/** Resolves a host name to all its addresses; injectable so tests can fake DNS. */
export type Resolver = (hostname: string) => Promise<readonly LookupAddress[]>;

/** The operating system's resolver (`dns.lookup`, which honours /etc/hosts), all addresses. */
export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => {
    dnsLookup(hostname, { all: true, order: 'verbatim' }, (error, addresses) => {
      if (error) reject(error);
      else resolve(addresses);
    });
  });

/**
 * A `lookup` for `net.connect`/`tls.connect` that resolves with `resolve` and hands back only
 * allowed addresses. Errors passed to the callback: `TargetDeniedError` (stage `lookup`)
 * or {@link TargetResolutionError}. Works for both callback shapes Node uses (`all: true` with
 * happy eyeballs, a single address otherwise).
 */
export function createGuardedLookup(policy: AddressPolicy, resolve: Resolver = systemResolver): LookupFunction {
  return (hostname, options, callback) => {
    // The callback runs outside the promise chain's error handling, so it is called exactly once.
    resolve(hostname).then(
      (all) => {
        let addresses: LookupAddress[];
        try {
          addresses = allowedAnswer(policy, hostname, all, options.family);
        } catch (error) {
          callback(asLookupError(hostname, error), '');
          return;
        }
        const [first] = addresses as [LookupAddress];
        if (options.all) callback(null, addresses);
        else callback(null, first.address, first.family);
      },
      (error: unknown) => {
        callback(asLookupError(hostname, error), '');
      },
    );
  };
}

/**
 * The addresses of a DNS answer that may be dialled: those of the wanted family, provided the
 * answer is not empty and not one of them is denied.
 * @throws TargetResolutionError for an empty answer; TargetDeniedError for any denied address.
 */
function allowedAnswer(
  policy: AddressPolicy,
  hostname: string,
  answer: readonly LookupAddress[],
  family: number | string | undefined,
): LookupAddress[] {
  const wanted = family === 4 || family === 6 ? family : undefined;
  const addresses = answer.filter((a) => wanted === undefined || a.family === wanted);
  if (addresses.length === 0) throw new TargetResolutionError(hostname, 'ENOTFOUND');
  for (const a of addresses) assertAddressAllowed(policy, a.address, hostname, 'lookup');
  return addresses;
}

/** Options of {@link createGuardedConnector}. */
export interface GuardedConnectorOptions {
  readonly policy: AddressPolicy;
  readonly resolve?: Resolver;
  /** Bound on TCP connect plus TLS handshake. */
  readonly connectTimeoutMs: number;
  /** TLS settings (extra CAs for a private PKI). Certificate verification stays on. */
  readonly tls?: Pick<ConnectionOptions, 'ca'>;
}

type Connector = ReturnType<typeof buildConnector>;

/**
 * An undici `connect` function enforcing the policy at connect time; pass it as the `connect`
 * option of every Pool that sends deliveries. Errors reach the request as
 * `TargetDeniedError` (stage `connect` or `lookup`) or {@link TargetResolutionError};
 * nothing is sent to a denied address.
 */
export function createGuardedConnector(options: GuardedConnectorOptions): Connector {
  const { policy } = options;
  const base = buildConnector({
    timeout: options.connectTimeoutMs,
    lookup: createGuardedLookup(policy, options.resolve),
    ...(options.tls?.ca === undefined ? {} : { ca: options.tls.ca }),
  });
  return (connectOptions, callback) => {
    const host = unbracket(connectOptions.hostname);
    try {
      if (isIP(host) !== 0) assertAddressAllowed(policy, host, host, 'connect');
    } catch (error) {
      callback(error as Error, null);
      return;
    }
    base(connectOptions, (error, socket) => {
      if (error) {
        callback(error, null);
        return;
      }
      try {
        if (socket.remoteAddress !== undefined) assertAddressAllowed(policy, socket.remoteAddress, host, 'connect');
      } catch (denied) {
        socket.destroy();
        callback(denied as Error, null);
        return;
      }
      callback(null, socket);
    });
  };
}

function asLookupError(hostname: string, error: unknown): Error {
  if (error instanceof FerryDeliveryError) return error;
  const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  return new TargetResolutionError(hostname, code, { cause: error });
}
