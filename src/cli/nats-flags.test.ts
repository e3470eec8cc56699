import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { createLogger } from '../observability/index.ts';
import { CommandError } from './command-error.ts';
import { parseControllerFlags } from './controller-flags.ts';
import { natsSecurity, natsServers, natsTarget, type ReadFile } from './nats-flags.ts';
import { UsageError } from './usage-error.ts';

const SEED = 'SUAM3OSKRBWC4MPE7G26CBYZRZ4XRPSNQYEQZY5HHLVMUTZCDTZFQ3WBN4';
const JWT = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.eyJzdWIiOiJVIn0.c2ln';
const CREDS = `-----BEGIN NATS USER JWT-----\n${JWT}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${SEED}\n------END USER NKEY SEED------\n`;
const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nTOPSECRETKEY\n-----END PRIVATE KEY-----\n';

/** Files by path; a missing one fails as fs does. */
function files(map: Record<string, string>): ReadFile {
  return (path) => {
    const text = map[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    return text;
  };
}

const FS = files({ '/c.creds': CREDS, '/seed': `${SEED}\n`, '/token': 's3cr3t-token\n', '/ca.pem': CERT, '/tls.crt': CERT, '/tls.key': KEY, '/garbage': 'TOPSECRET-not-a-seed' });

describe('NATS connection flags', () => {
  it('connects without credentials or TLS by default', () => {
    assert.deepEqual(natsSecurity({}, {}, FS), { auth: { kind: 'none' } });
    assert.deepEqual(natsServers(undefined, {}), ['nats://127.0.0.1:4222']);
    assert.deepEqual(natsServers(undefined, { NATS_URL: 'nats://a:1, tls://b:2' }), ['nats://a:1', 'tls://b:2']);
    assert.throws(() => natsServers('http://x/y', {}), UsageError);
  });

  it('reads each method from its flag, else its FERRY_NATS_* variable; the flag wins', () => {
    const creds = natsSecurity({ 'nats-creds': '/c.creds' }, {}, FS).auth;
    assert.equal(creds.kind === 'creds' && creds.creds.reveal(), CREDS);
    const nkey = natsSecurity({}, { FERRY_NATS_NKEY: '/seed' }, FS).auth;
    assert.equal(nkey.kind === 'nkey' && nkey.seed.reveal(), SEED);
    const token = natsSecurity({ 'nats-token-file': '/token' }, { FERRY_NATS_TOKEN_FILE: '/missing' }, FS).auth;
    assert.equal(token.kind === 'token' && token.token.reveal(), 's3cr3t-token');
    const user = natsSecurity({}, { FERRY_NATS_USER: 'ferry', NATS_PASSWORD: 'pw' }, FS).auth;
    assert.equal(user.kind === 'userPassword' && `${user.user}:${user.password.reveal()}`, 'ferry:pw');
  });

  it('refuses two methods at once, naming both flags (flags and variables alike)', () => {
    assert.throws(() => natsSecurity({ 'nats-creds': '/c.creds', 'nats-token-file': '/token' }, {}, FS), (e: unknown) => e instanceof UsageError && /--nats-creds, --nats-token-file/.test(e.message));
    assert.throws(() => natsSecurity({ 'nats-user': 'u' }, { FERRY_NATS_NKEY: '/seed', NATS_PASSWORD: 'p' }, FS), (e: unknown) => e instanceof UsageError && /--nats-nkey, --nats-user/.test(e.message));
  });

  it('takes the password only from NATS_PASSWORD', () => {
    assert.throws(() => natsSecurity({ 'nats-user': 'ferry' }, {}, FS), (e: unknown) => e instanceof UsageError && /NATS_PASSWORD/.test(e.message));
  });

  it('wants the TLS certificate and key together', () => {
    assert.throws(() => natsSecurity({ 'nats-tls-cert': '/tls.crt' }, {}, FS), (e: unknown) => e instanceof UsageError && /--nats-tls-cert needs --nats-tls-key/.test(e.message));
    assert.throws(() => natsSecurity({}, { FERRY_NATS_TLS_KEY: '/tls.key' }, FS), (e: unknown) => e instanceof UsageError && /--nats-tls-key needs --nats-tls-cert/.test(e.message));
    const s = natsSecurity({ 'nats-tls-ca': '/ca.pem', 'nats-tls-cert': '/tls.crt', 'nats-tls-key': '/tls.key' }, {}, FS);
    assert.equal(s.tls?.ca, CERT);
    assert.equal(s.tls?.client?.cert, CERT);
    assert.equal(s.tls?.client?.key.reveal(), KEY);
    assert.deepEqual(natsSecurity({}, { FERRY_NATS_TLS_CA: '/ca.pem' }, FS).tls, { ca: CERT });
  });

  it('names the flag and the path of a file it cannot use, never its content', () => {
    const failsWith = (values: Record<string, string>, pattern: RegExp) => {
      assert.throws(() => natsSecurity(values, {}, FS), (e: unknown) => e instanceof CommandError && pattern.test(e.message) && !/TOPSECRET/.test(e.message));
    };
    failsWith({ 'nats-creds': '/nope' }, /^--nats-creds: cannot read \/nope \(ENOENT\)$/);
    failsWith({ 'nats-creds': '/garbage' }, /^--nats-creds: \/garbage is not a \.creds file/);
    failsWith({ 'nats-nkey': '/garbage' }, /^--nats-nkey: \/garbage is not an nkey user seed/);
    failsWith({ 'nats-tls-ca': '/garbage' }, /^--nats-tls-ca: \/garbage holds no PEM certificate/);
    failsWith({ 'nats-tls-cert': '/tls.crt', 'nats-tls-key': '/garbage' }, /^--nats-tls-key: \/garbage holds no PEM private key/);
  });

  it('is shared by ferry controller, whose usage lists every flag', () => {
    const c = parseControllerFlags(['--nats-url=tls://n:4222', '--nats-user=ferry', '--nats-tls-ca=/ca.pem'], { NATS_PASSWORD: 'pw' }, FS);
    assert.deepEqual(c.natsServers, ['tls://n:4222']);
    assert.equal(c.natsSecurity.auth.kind, 'userPassword');
    assert.throws(() => parseControllerFlags(['--nats-creds=/c.creds', '--nats-nkey=/seed'], {}, FS), UsageError);
    assert.throws(() => parseControllerFlags(['--nats-password=pw'], {}, FS), UsageError);
  });

  it('builds the whole target for a CLI command', () => {
    const t = natsTarget({ 'nats-url': 'nats://a:1,nats://b:2', 'nats-token-file': '/token' }, {}, FS);
    assert.deepEqual(t.servers, ['nats://a:1', 'nats://b:2']);
    assert.equal(t.url, 'nats://a:1,nats://b:2');
    assert.equal(t.security.auth.kind, 'token');
  });

  it('never lets a secret reach a log line, even when the whole config is logged', () => {
    let out = '';
    const destination = new Writable({ write(chunk: Buffer, _enc, done) { out += chunk.toString(); done(); } });
    const logger = createLogger({ level: 'info', destination });
    const security = natsSecurity({ 'nats-user': 'ferry', 'nats-tls-cert': '/tls.crt', 'nats-tls-key': '/tls.key' }, { NATS_PASSWORD: 'pw-TOPSECRET' }, FS);
    logger.info({ security, config: { pass: 'TOPSECRET', auth_token: 'TOPSECRET', creds: 'TOPSECRET' } }, `config ${String(security.auth.kind === 'userPassword' ? security.auth.password : '')}`);
    assert.match(out, /"user":"ferry"/);
    assert.doesNotMatch(out, /TOPSECRET/);
  });
});
