import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import type { ResolvedWebhook } from '../api/index.ts';
import { deliveryId, signingKeys, verifySignature, type RequestHeaders, type Verdict } from './verify.ts';

const NOW = 1_750_000_000_000;
const TOLERANCE = 300_000;
const body = Buffer.from('{"id":"evt_1","amount":42}');
const SECRET_A = `whsec_${Buffer.from('first signing key, 32 bytes long').toString('base64')}`;
const SECRET_B = `whsec_${Buffer.from('second signing key, also 32 byte').toString('base64')}`;

function sig(scheme: ResolvedWebhook['signature']['scheme'], extra: Partial<ResolvedWebhook['signature']> = {}): ResolvedWebhook['signature'] {
  return { scheme, secrets: [], header: 'webhook-signature', algorithm: 'sha256', prefix: '', encoding: 'base64', ...extra };
}

function check(signature: ResolvedWebhook['signature'], headers: RequestHeaders, secrets: readonly string[], payload: Uint8Array = body, now = NOW): Verdict {
  return verifySignature(signature, headers, payload, signingKeys(signature.scheme, secrets), now, TOLERANCE);
}

describe('Standard Webhooks', () => {
  const standard = sig('standardWebhooks');
  const at = new Date(NOW);
  const signed = (secret: string, id = 'msg_1', when = at) => ({
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(when.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, when, body.toString()),
  });

  it('accepts what the reference library signs, by the current or the previous secret', () => {
    assert.deepEqual(check(standard, signed(SECRET_A), [SECRET_A, SECRET_B]), { ok: true, schemeId: 'msg_1', timestamp: String(NOW / 1000), keyIndex: 0 });
    const rotated = check(standard, signed(SECRET_B), [SECRET_A, SECRET_B]);
    assert.equal(rotated.ok, true, 'rotated: signed by the second secret');
    assert.equal(rotated.ok && rotated.keyIndex, 1, 'and it says which key signed (the server tries that one first next time)');
    assert.equal(check(standard, signed(SECRET_B), [SECRET_A]).ok, false, 'a secret not configured');
  });

  it('accepts a header with several signatures when one matches, and skips other versions', () => {
    const h = signed(SECRET_B);
    const several = { ...h, 'webhook-signature': `v1a,AAAA v1,${Buffer.alloc(32, 1).toString('base64')} ${h['webhook-signature']}` };
    assert.equal(check(standard, several, [SECRET_B]).ok, true);
  });

  it('refuses a changed body, id or timestamp, and a stale or far-future timestamp', () => {
    const h = signed(SECRET_A);
    assert.deepEqual(check(standard, h, [SECRET_A], Buffer.from('{"id":"evt_1","amount":43}')), { ok: false, outcome: 'unauthorized', detail: 'no v1 signature matches' });
    assert.equal(check(standard, { ...h, 'webhook-id': 'msg_2' }, [SECRET_A]).ok, false);
    const old = signed(SECRET_A, 'msg_1', new Date(NOW - TOLERANCE - 1_000));
    assert.deepEqual(check(standard, old, [SECRET_A]), { ok: false, outcome: 'unauthorized', detail: 'the signed timestamp is older than the tolerance (a replay?)' });
    const future = signed(SECRET_A, 'msg_1', new Date(NOW + TOLERANCE + 1_000));
    assert.equal((check(standard, future, [SECRET_A]) as { outcome: string }).outcome, 'unauthorized');
    assert.equal(check(standard, signed(SECRET_A, 'msg_1', new Date(NOW - TOLERANCE + 1_000)), [SECRET_A]).ok, true, 'inside the tolerance');
  });

  it('tells missing headers (400 or 401) and an unreadable timestamp apart', () => {
    const h = signed(SECRET_A);
    const without = (name: string) => Object.fromEntries(Object.entries(h).filter(([k]) => k !== name));
    assert.deepEqual(check(standard, without('webhook-id'), [SECRET_A]), { ok: false, outcome: 'malformed', detail: 'webhook-id header missing' });
    assert.deepEqual(check(standard, without('webhook-timestamp'), [SECRET_A]), { ok: false, outcome: 'malformed', detail: 'webhook-timestamp header missing' });
    assert.deepEqual(check(standard, without('webhook-signature'), [SECRET_A]), { ok: false, outcome: 'unauthorized', detail: 'webhook-signature header missing' });
    assert.equal((check(standard, { ...h, 'webhook-timestamp': '17e8' }, [SECRET_A]) as { outcome: string }).outcome, 'malformed');
    assert.equal(check(standard, { ...h, 'webhook-signature': 'v1,not base64!' }, [SECRET_A]).ok, false);
  });

  it('agrees with the reference verifier on what it accepts', () => {
    const h = signed(SECRET_A, 'msg_9', new Date());
    assert.doesNotThrow(() => new Webhook(SECRET_A).verify(body.toString(), h));
    assert.equal(check(standard, h, [SECRET_A], body, Date.now()).ok, true);
  });
});

describe('Stripe', () => {
  const stripe = sig('stripe', { header: 'stripe-signature', encoding: 'hex' });
  const secret = 'whsec_stripe_test_secret';
  const sign = (t: number, key = secret) => createHmac('sha256', key).update(`${t}.`).update(body).digest('hex');
  const t = NOW / 1000;

  it('accepts t=…,v1=… with any matching v1, keyed by the whole secret', () => {
    assert.deepEqual(check(stripe, { 'stripe-signature': `t=${t},v1=${sign(t)},v0=abc` }, [secret]), { ok: true, schemeId: undefined, timestamp: String(t), keyIndex: 0 });
    assert.equal(check(stripe, { 'stripe-signature': `t=${t},v1=${'0'.repeat(64)},v1=${sign(t, 'old')}` }, [secret, 'old']).ok, true);
  });

  it('refuses a wrong signature, a stale t, and answers malformed without t', () => {
    assert.equal(check(stripe, { 'stripe-signature': `t=${t},v1=${sign(t, 'other')}` }, [secret]).ok, false);
    const old = t - 301;
    assert.equal((check(stripe, { 'stripe-signature': `t=${old},v1=${sign(old)}` }, [secret]) as { outcome: string }).outcome, 'unauthorized');
    assert.equal((check(stripe, { 'stripe-signature': `v1=${sign(t)}` }, [secret]) as { outcome: string }).outcome, 'malformed');
    assert.equal((check(stripe, {}, [secret]) as { outcome: string }).outcome, 'unauthorized');
  });
});

describe('plain HMAC headers', () => {
  const github = sig('hmac', { header: 'x-hub-signature-256', prefix: 'sha256=', encoding: 'hex' });
  const shopify = sig('hmac', { header: 'x-shopify-hmac-sha256', encoding: 'base64' });

  it('accepts GitHub (sha256=<hex>) and Shopify (base64), and SHA-1 / SHA-512 variants', () => {
    const hex = createHmac('sha256', 'gh-secret').update(body).digest('hex');
    assert.equal(check(github, { 'x-hub-signature-256': `sha256=${hex}` }, ['gh-secret\n']).ok, true, 'a trailing newline in the Secret is dropped');
    assert.equal(check(github, { 'x-hub-signature-256': hex }, ['gh-secret']).ok, false, 'prefix missing');
    assert.equal(check(github, { 'x-hub-signature-256': `sha256=${hex}00` }, ['gh-secret']).ok, false, 'longer digest');
    const b64 = createHmac('sha256', 'shop').update(body).digest('base64');
    assert.equal(check(shopify, { 'x-shopify-hmac-sha256': b64 }, ['shop']).ok, true);
    assert.equal(check(shopify, { 'x-shopify-hmac-sha256': b64 }, ['other']).ok, false);
    const sha1 = sig('hmac', { header: 'x-sig', algorithm: 'sha1', encoding: 'hex' });
    assert.equal(check(sha1, { 'x-sig': createHmac('sha1', 'k').update(body).digest('hex') }, ['k']).ok, true);
    const sha512 = sig('hmac', { header: 'x-sig', algorithm: 'sha512', encoding: 'base64' });
    assert.equal(check(sha512, { 'x-sig': createHmac('sha512', 'k').update(body).digest('base64') }, ['k']).ok, true);
    assert.deepEqual(check(github, {}, ['gh-secret']), { ok: false, outcome: 'unauthorized', detail: 'x-hub-signature-256 header missing' });
  });
});

describe('deliveryId', () => {
  const base: ResolvedWebhook = { subject: 's', signature: sig('hmac'), idHeader: undefined, toleranceMs: TOLERANCE, maxBodyBytes: 1024, rateLimit: undefined };
  const ok = { ok: true as const, schemeId: undefined, timestamp: undefined, keyIndex: 0 };

  it('takes the id header, else Stripe\'s event id, else a hash of timestamp and body', () => {
    assert.equal(deliveryId({ ...base, idHeader: 'x-github-delivery' }, { 'x-github-delivery': 'd-1' }, ok, body, undefined), 'd-1');
    assert.equal(deliveryId({ ...base, idHeader: 'x-github-delivery' }, {}, ok, body, undefined), undefined, 'configured header absent');
    assert.equal(deliveryId({ ...base, signature: sig('stripe') }, {}, { ...ok, timestamp: '1' }, body, { id: 'evt_1' }), 'evt_1');
    const a = deliveryId(base, {}, ok, body, undefined);
    assert.match(a ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal(deliveryId(base, {}, ok, body, undefined), a, 'same body, same id');
    assert.notEqual(deliveryId(base, {}, { ...ok, timestamp: '2' }, body, undefined), a, 'another timestamp, another id');
  });
});
