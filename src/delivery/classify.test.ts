import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classify, outcomeOfError, type ClassifyPolicy, type DeliveryOutcome } from './classify.ts';
import {
  AuthTokenError,
  BodyEncodingError,
  DeliveryAbortedError,
  DeliveryNetworkError,
  DeliveryTimeoutError,
  TargetDeniedError,
  TargetResolutionError,
} from './errors.ts';

const policy: ClassifyPolicy = { successCodes: [200, 201, 202, 204], retryOn: [408, 425, 429, '5xx', 'network', 'timeout'] };
const status = (s: number, retryAfterMs?: number): DeliveryOutcome => ({ kind: 'status', status: s, retryAfterMs });

describe('classify', () => {
  it('follows the failure contract table', () => {
    const table: [DeliveryOutcome, string, boolean | undefined, string][] = [
      // outcome, action, throttle, breaker
      [status(200), 'success', undefined, 'success'],
      [status(204), 'success', undefined, 'success'],
      [status(206), 'reject', undefined, 'success'], // 2xx not listed as success
      [status(301), 'reject', undefined, 'success'], // redirects are never followed
      [status(302), 'reject', undefined, 'success'],
      [status(400), 'reject', undefined, 'success'],
      [status(401), 'unauthorized', undefined, 'failure'], // credentials refused: the target's problem, not the event's
      [status(403), 'unauthorized', undefined, 'failure'],
      [status(404), 'reject', undefined, 'success'],
      [status(409), 'reject', undefined, 'success'],
      [status(422), 'reject', undefined, 'success'],
      [status(408), 'retry', false, 'failure'],
      [status(425), 'retry', false, 'failure'],
      [status(429), 'retry', true, 'neutral'], // throttle, not a breaker failure
      [status(429, 5000), 'retry', true, 'neutral'],
      [status(500), 'retry', false, 'failure'],
      [status(502), 'retry', false, 'failure'],
      [status(503), 'retry', false, 'failure'], // 503 without Retry-After: plain failure
      [status(503, 2000), 'retry', true, 'neutral'], // 503 with Retry-After: throttle
      [status(599), 'retry', false, 'failure'],
      [{ kind: 'network' }, 'retry', false, 'failure'],
      [{ kind: 'timeout' }, 'retry', false, 'failure'],
      [{ kind: 'contract', status: 200 }, 'contract', undefined, 'success'],
      [{ kind: 'refused' }, 'reject', undefined, 'neutral'],
      [{ kind: 'aborted' }, 'retry', false, 'neutral'],
    ];
    for (const [outcome, action, throttle, breaker] of table) {
      const c = classify(outcome, policy);
      const label = JSON.stringify(outcome);
      assert.equal(c.action, action, label);
      assert.equal(c.breaker, breaker, label);
      if (c.action === 'retry') assert.equal(c.throttle, throttle, label);
      if (c.action === 'reject') assert.equal(c.fallbackReason, 'rejected', label);
      if (c.action === 'contract') assert.equal(c.fallbackReason, 'contract', label);
    }
  });

  it('passes the Retry-After on for the delay', () => {
    const c = classify(status(429, 7000), policy);
    assert.equal(c.action === 'retry' && c.retryAfterMs, 7000);
  });

  it('rejects what retryOn does not list, but still counts unhealthy outcomes as breaker failures', () => {
    const narrow: ClassifyPolicy = { successCodes: [200], retryOn: [503] };
    assert.deepEqual(classify(status(500), narrow), { action: 'reject', fallbackReason: 'rejected', breaker: 'failure' });
    assert.equal(classify(status(503), narrow).action, 'retry');
    assert.equal(classify(status(429), narrow).action, 'reject');
    assert.deepEqual(classify({ kind: 'network' }, narrow), { action: 'reject', fallbackReason: 'rejected', breaker: 'failure' });
    assert.equal(classify({ kind: 'timeout' }, narrow).action, 'reject');
  });

  it('retries any status listed explicitly', () => {
    assert.equal(classify(status(409), { successCodes: [200], retryOn: [409] }).action, 'retry');
  });

  it('lets successCodes win, even for a 3xx someone listed', () => {
    assert.equal(classify(status(303), { successCodes: [200, 303], retryOn: [] }).action, 'success');
  });
});

describe('outcomeOfError', () => {
  it('maps typed errors to outcomes and anything else to refused', () => {
    const cases: [unknown, DeliveryOutcome['kind']][] = [
      [new DeliveryTimeoutError('http://x', 100, 'attempt'), 'timeout'],
      [new DeliveryNetworkError('http://x', 'ECONNRESET', 'reset'), 'network'],
      [new TargetResolutionError('x.invalid', 'ENOTFOUND'), 'network'],
      [new AuthTokenError({ tokenUrl: 'http://t', retryable: true, detail: 'HTTP 503' }), 'network'],
      [new AuthTokenError({ tokenUrl: 'http://t', retryable: false, detail: 'HTTP 401' }), 'refused'],
      [new DeliveryAbortedError('http://x'), 'aborted'],
      [new TargetDeniedError({ address: '10.0.0.1', hostname: '10.0.0.1', range: 'private', stage: 'url' }), 'refused'],
      [new BodyEncodingError('form', '', 'no'), 'refused'],
      [new TypeError('bug'), 'refused'],
      ['a string', 'refused'],
    ];
    for (const [error, kind] of cases) assert.equal(outcomeOfError(error).kind, kind, String(error));
  });
});
