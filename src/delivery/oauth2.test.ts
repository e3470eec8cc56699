import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../observability/index.ts';
import type { Deliverer, DeliveryRequest, DeliveryResponse } from './deliverer.ts';
import { AuthTokenError, DeliveryNetworkError, TargetDeniedError } from './errors.ts';
import { OAuth2ClientCredentials, parseTokenResponse } from './oauth2.ts';
import { TokenCache } from './token-cache.ts';

function response(status: number, body: unknown): DeliveryResponse {
  return { status, headers: {}, body: typeof body === 'string' ? body : JSON.stringify(body), truncated: false, durationMs: 1 };
}

function tokenEndpoint(answer: (n: number) => DeliveryResponse | Error): Deliverer & { requests: DeliveryRequest[] } {
  const requests: DeliveryRequest[] = [];
  return {
    requests,
    deliver(request) {
      requests.push(request);
      const a = answer(requests.length);
      return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
    },
  };
}

const options = { tokenUrl: 'https://auth.example.com/oauth/token', clientId: 'ferry client', clientSecret: 's3cr3t:&', scopes: ['invoices:write', 'customers:read'] };

describe('OAuth2ClientCredentials', () => {
  it('requests a token with client credentials (Basic, form-encoded) and sends it as a bearer token', async () => {
    const clock = new ManualClock(0);
    const endpoint = tokenEndpoint((n) => response(200, { access_token: `tok-${n}`, token_type: 'Bearer', expires_in: 3600 }));
    const auth = new OAuth2ClientCredentials({ ...options, audience: 'billing' }, { deliverer: endpoint, cache: new TokenCache(clock), clock });
    const a = await auth.authorize();
    assert.deepEqual(a, { headers: { authorization: 'Bearer tok-1' }, token: 'tok-1' });
    const [req] = endpoint.requests;
    assert.ok(req);
    assert.equal(req.method, 'POST');
    assert.equal(req.url, options.tokenUrl);
    assert.deepEqual(req.body, {
      encoding: 'form',
      value: { grant_type: 'client_credentials', scope: 'invoices:write customers:read', audience: 'billing' },
    });
    const basic = Buffer.from(req.headers?.authorization?.replace('Basic ', '') ?? '', 'base64').toString();
    assert.equal(basic, 'ferry+client:s3cr3t%3A%26'); // RFC 6749 §2.3.1: form-encoded, then Basic
  });

  it('can send the credentials in the body instead', async () => {
    const clock = new ManualClock(0);
    const endpoint = tokenEndpoint(() => response(200, { access_token: 't' }));
    const auth = new OAuth2ClientCredentials({ ...options, clientAuthentication: 'body' }, { deliverer: endpoint, cache: new TokenCache(clock), clock });
    await auth.authorize();
    const value = endpoint.requests[0]?.body?.value as Record<string, string>;
    assert.equal(value.client_id, 'ferry client');
    assert.equal(value.client_secret, 's3cr3t:&');
    assert.equal(endpoint.requests[0]?.headers?.authorization, undefined);
  });

  it('reuses the cached token until shortly before expiry, then fetches again', async () => {
    const clock = new ManualClock(0);
    const endpoint = tokenEndpoint((n) => response(200, { access_token: `tok-${n}`, expires_in: 120 }));
    const auth = new OAuth2ClientCredentials(options, { deliverer: endpoint, cache: new TokenCache(clock), clock });
    for (let i = 0; i < 5; i++) assert.equal((await auth.authorize()).token, 'tok-1');
    await clock.advance(90_000 - 1); // 120 s − 30 s margin
    assert.equal((await auth.authorize()).token, 'tok-1');
    await clock.advance(1);
    assert.equal((await auth.authorize()).token, 'tok-2');
    assert.equal(endpoint.requests.length, 2);
  });

  it('shares tokens between providers with the same endpoint, client and scopes', async () => {
    const clock = new ManualClock(0);
    const cache = new TokenCache(clock);
    const endpoint = tokenEndpoint((n) => response(200, { access_token: `tok-${n}` }));
    const a = new OAuth2ClientCredentials(options, { deliverer: endpoint, cache, clock });
    const b = new OAuth2ClientCredentials({ ...options, scopes: [...options.scopes].reverse() }, { deliverer: endpoint, cache, clock });
    const c = new OAuth2ClientCredentials({ ...options, scopes: ['other'] }, { deliverer: endpoint, cache, clock });
    assert.equal((await a.authorize()).token, (await b.authorize()).token);
    assert.notEqual((await c.authorize()).token, (await a.authorize()).token);
    assert.equal(endpoint.requests.length, 2);
  });

  it('drops a token refused with 401 and fetches a fresh one', async () => {
    const clock = new ManualClock(0);
    const endpoint = tokenEndpoint((n) => response(200, { access_token: `tok-${n}` }));
    const auth = new OAuth2ClientCredentials(options, { deliverer: endpoint, cache: new TokenCache(clock), clock });
    const first = await auth.authorize();
    assert.equal(auth.invalidate(first), true);
    assert.equal((await auth.authorize()).token, 'tok-2');
  });

  it('wraps transport errors, keeping whether they are retryable', async () => {
    const clock = new ManualClock(0);
    const down = tokenEndpoint(() => new DeliveryNetworkError('https://auth.example.com', 'ECONNREFUSED', 'refused'));
    await assert.rejects(
      new OAuth2ClientCredentials(options, { deliverer: down, cache: new TokenCache(clock), clock }).authorize(),
      (e: unknown) => e instanceof AuthTokenError && e.retryable && e.cause instanceof DeliveryNetworkError,
    );
    const denied = tokenEndpoint(() => new TargetDeniedError({ address: '10.0.0.1', hostname: 'auth', range: 'private', stage: 'lookup' }));
    await assert.rejects(
      new OAuth2ClientCredentials(options, { deliverer: denied, cache: new TokenCache(clock), clock }).authorize(),
      (e: unknown) => e instanceof AuthTokenError && !e.retryable,
    );
  });

  it('never shows the secret when serialised', () => {
    const clock = new ManualClock(0);
    const auth = new OAuth2ClientCredentials(options, { deliverer: tokenEndpoint(() => response(500, '')), cache: new TokenCache(clock), clock });
    assert.ok(!JSON.stringify(auth).includes('s3cr3t'));
  });
});

describe('parseTokenResponse', () => {
  const url = 'https://auth.example.com/oauth/token';

  it('reads access_token and expires_in (number or numeric string)', () => {
    assert.deepEqual(parseTokenResponse(url, response(200, { access_token: 'a', expires_in: '100' }), 0), { accessToken: 'a', usableUntil: 70_000 });
    assert.deepEqual(parseTokenResponse(url, response(200, { access_token: 'a', token_type: 'bearer', expires_in: 100 }), 0), { accessToken: 'a', usableUntil: 70_000 });
  });

  it('classifies endpoint errors: 4xx is not retryable, 5xx and 429 are; the OAuth error code is kept', () => {
    const cases: [number, unknown, boolean, string | undefined][] = [
      [400, { error: 'invalid_client', error_description: 'secret s3cr3t wrong' }, false, 'invalid_client'],
      [401, 'nope', false, undefined],
      [429, {}, true, undefined],
      [503, '<html>', true, undefined],
    ];
    for (const [status, body, retryable, oauthError] of cases) {
      assert.throws(
        () => parseTokenResponse(url, response(status, body), 0),
        (e: unknown) =>
          e instanceof AuthTokenError && e.status === status && e.retryable === retryable && e.oauthError === oauthError && !e.message.includes('s3cr3t'),
        String(status),
      );
    }
  });

  it('refuses answers that are not a bearer token', () => {
    for (const body of ['not json', '[]', { token_type: 'bearer' }, { access_token: '' }, { access_token: 'a', token_type: 'mac' }]) {
      assert.throws(() => parseTokenResponse(url, response(200, body), 0), (e: unknown) => e instanceof AuthTokenError && !e.retryable);
    }
  });
});
