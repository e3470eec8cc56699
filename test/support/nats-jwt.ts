/**
 * NATS decentralized auth for tests: an operator, an account with JetStream and a user, as JWTs
 * signed with nkeys, and the user's .creds file — what `nsc` would write — so a real nats-server in
 * operator mode can check `--nats-creds` end to end.
 *
 * Written here because the only JWT library for Node (@nats-io/jwt) is a 0.0.x pre-release; the
 * format is small: base64url(header).base64url(claims).base64url(ed25519 signature), signed by the
 * issuer's nkey (operator → account → user). Keys come from the nkeys the NATS client ships.
 */
import { createHash } from 'node:crypto';
import { nkeys } from '@nats-io/transport-node';

type KeyPair = ReturnType<typeof nkeys.createUser>;

const b64url = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** RFC 4648 base32 without padding, as the Go jwt library encodes a claim's `jti`. */
function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31] ?? '';
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31] ?? '';
  return out;
}

function encodeJwt(issuer: KeyPair, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = { jti: '', iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats: { ...nats, version: 2 } };
  claims.jti = base32(createHash('sha512-256').update(JSON.stringify(claims)).digest());
  const signing = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))}.${b64url(JSON.stringify(claims))}`;
  return `${signing}.${b64url(issuer.sign(new TextEncoder().encode(signing)))}`;
}

export interface OperatorSetup {
  /** nats-server configuration lines for operator mode with the account preloaded. */
  readonly serverConfig: string;
  /** The user's .creds file content. */
  readonly creds: string;
  /** A .creds file of a user signed by a different account key: the server refuses it. */
  readonly foreignCreds: string;
  /** The user's seed (a secret that must not be logged). */
  readonly userSeed: string;
}

function credsFile(jwt: string, seed: string): string {
  return `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\nNKEYs are sensitive and should be treated as secrets.\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n\n*************************************************************\n`;
}

/** A fresh operator, one JetStream-enabled account and one user in it. */
export function operatorSetup(): OperatorSetup {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const system = nkeys.createAccount();
  const user = nkeys.createUser();
  const unlimited = { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 };
  const operatorJwt = encodeJwt(operator, operator.getPublicKey(), 'ferry-test', { type: 'operator', system_account: system.getPublicKey() });
  const accountJwt = encodeJwt(operator, account.getPublicKey(), 'ferry', {
    limits: { ...unlimited, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
    default_permissions: { pub: {}, sub: {} },
    type: 'account',
  });
  const systemJwt = encodeJwt(operator, system.getPublicKey(), 'SYS', { limits: unlimited, default_permissions: { pub: {}, sub: {} }, type: 'account' });
  const userNats = { pub: {}, sub: {}, subs: -1, data: -1, payload: -1, type: 'user' };
  const userSeed = text(user.getSeed());
  const foreign = nkeys.createAccount();
  return {
    serverConfig: [
      `operator: ${JSON.stringify(operatorJwt)}`,
      `system_account: ${system.getPublicKey()}`,
      'resolver: MEMORY',
      `resolver_preload: { ${account.getPublicKey()}: ${JSON.stringify(accountJwt)}, ${system.getPublicKey()}: ${JSON.stringify(systemJwt)} }`,
    ].join('\n'),
    creds: credsFile(encodeJwt(account, user.getPublicKey(), 'ferry', userNats), userSeed),
    foreignCreds: credsFile(encodeJwt(foreign, user.getPublicKey(), 'ferry', userNats), userSeed),
    userSeed,
  };
}
