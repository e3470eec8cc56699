import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { nkeys } from '@nats-io/transport-node';
import { credsProblem, describeSecurity, displayServer, natsConnectionOptions, nkeySeedProblem, SecretValue } from './auth.ts';

const td = new TextDecoder();

/** A .creds file as nsc writes it; the JWT need not verify for the client to send it. */
function credsText(jwt: string, seed: string): string {
  return `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
}

describe('NATS auth options', () => {
  it('SecretValue never prints its value', () => {
    const s = new SecretValue('hunter2');
    assert.equal(s.reveal(), 'hunter2');
    assert.equal(String(s), '[redacted]');
    assert.equal(JSON.stringify({ password: s }), '{"password":"[redacted]"}');
    assert.doesNotMatch(inspect({ deep: { s } }), /hunter2/);
  });

  it('builds a user/password authenticator', () => {
    const o = natsConnectionOptions({ auth: { kind: 'userPassword', user: 'ferry', password: new SecretValue('pw') } });
    assert.deepEqual(o.authenticator && !Array.isArray(o.authenticator) ? o.authenticator(undefined) : undefined, { user: 'ferry', pass: 'pw' });
    assert.equal(o.tls, undefined);
  });

  it('builds a token authenticator', () => {
    const o = natsConnectionOptions({ auth: { kind: 'token', token: new SecretValue('t0k') } });
    assert.deepEqual(o.authenticator && !Array.isArray(o.authenticator) ? o.authenticator(undefined) : undefined, { auth_token: 't0k' });
  });

  it('builds an nkey authenticator that signs the server nonce with the seed', () => {
    const user = nkeys.createUser();
    const seed = td.decode(user.getSeed());
    const o = natsConnectionOptions({ auth: { kind: 'nkey', seed: new SecretValue(`${seed}\n`) } });
    assert.ok(o.authenticator && !Array.isArray(o.authenticator));
    const auth = o.authenticator('nonce-1') as { nkey: string; sig: string };
    assert.equal(auth.nkey, user.getPublicKey());
    const sig = Buffer.from(auth.sig, 'base64url');
    assert.ok(nkeys.fromPublic(user.getPublicKey()).verify(new TextEncoder().encode('nonce-1'), sig));
  });

  it('builds a creds authenticator that sends the JWT and signs with its seed', () => {
    const user = nkeys.createUser();
    const seed = td.decode(user.getSeed());
    const o = natsConnectionOptions({ auth: { kind: 'creds', creds: new SecretValue(credsText('aaa.bbb.ccc', seed)) } });
    assert.ok(o.authenticator && !Array.isArray(o.authenticator));
    const auth = o.authenticator('n') as { jwt: string; nkey: string; sig: string };
    assert.equal(auth.jwt, 'aaa.bbb.ccc');
    assert.equal(auth.nkey, user.getPublicKey());
  });

  it('maps TLS: the CA alone, or with a client certificate and key', () => {
    assert.deepEqual(natsConnectionOptions({ auth: { kind: 'none' }, tls: { ca: 'CA' } }), { tls: { ca: 'CA' } });
    assert.deepEqual(natsConnectionOptions({ auth: { kind: 'none' }, tls: { client: { cert: 'C', key: new SecretValue('K') } } }), { tls: { cert: 'C', key: 'K' } });
    assert.deepEqual(natsConnectionOptions({ auth: { kind: 'none' } }), {});
  });

  it('checks a .creds file and an nkey seed file before they are used', () => {
    const seed = td.decode(nkeys.createUser().getSeed());
    assert.equal(credsProblem(credsText('a.b.c', seed)), undefined);
    assert.match(credsProblem('just text') ?? '', /no NATS USER JWT block/);
    assert.match(credsProblem(credsText('nojwt', seed)) ?? '', /does not hold a JWT/);
    assert.match(credsProblem(credsText('a.b.c', td.decode(nkeys.createAccount().getSeed()))) ?? '', /user seed/);
    assert.equal(nkeySeedProblem(`${seed}\n`), undefined);
    assert.match(nkeySeedProblem(nkeys.createUser().getPublicKey()) ?? '', /not an nkey user seed/);
  });

  it('shows a server URL without the credentials it may carry', () => {
    assert.equal(displayServer('nats://ferry:pw@nats.svc:4222'), 'nats://[redacted]@nats.svc:4222');
    assert.equal(displayServer('tls://tok@n:4222'), 'tls://[redacted]@n:4222');
    assert.equal(displayServer('nats://nats.svc:4222'), 'nats://nats.svc:4222');
    assert.equal(displayServer('n:4222'), 'n:4222');
  });

  it('describes the security without a secret', () => {
    assert.equal(describeSecurity({ auth: { kind: 'userPassword', user: 'ferry', password: new SecretValue('pw') }, tls: { ca: 'x' } }), 'user ferry, TLS');
    assert.equal(describeSecurity({ auth: { kind: 'none' } }), 'no auth, no TLS');
    assert.equal(describeSecurity({ auth: { kind: 'token', token: new SecretValue('t') }, tls: { client: { cert: 'c', key: new SecretValue('k') } } }), 'token, mutual TLS');
  });
});
