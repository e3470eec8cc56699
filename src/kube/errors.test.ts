import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type {
  KubeError} from './errors.ts';
import {
  AlreadyExistsError,
  ConflictError,
  ForbiddenError,
  GoneError,
  InvalidError,
  NotFoundError,
  TerminalError,
  UnavailableError,
  UnexpectedStatusError,
  errorFromStatus,
  isRetryable,
} from './errors.ts';
import { parseRetryAfter } from './http.ts';
import { microTime, objectKey, parseKey, resourcePath } from './object.ts';

const req = { method: 'PATCH', path: '/apis/ferry.dev/v1alpha1/namespaces/a/integrations/b/status' };

describe('errorFromStatus', () => {
  it('maps status codes and reasons to typed errors with the right retryable flag', () => {
    const cases: [number, string | undefined, new (...args: never[]) => KubeError, boolean][] = [
      [404, 'NotFound', NotFoundError, false],
      [409, 'Conflict', ConflictError, true],
      [409, 'AlreadyExists', AlreadyExistsError, false],
      [410, 'Expired', GoneError, true],
      [422, 'Invalid', InvalidError, false],
      [403, 'Forbidden', ForbiddenError, false],
      [429, 'TooManyRequests', UnavailableError, true],
      [503, 'ServiceUnavailable', UnavailableError, true],
      [504, 'Timeout', UnavailableError, true],
      [418, undefined, UnexpectedStatusError, false],
      [507, undefined, UnexpectedStatusError, true],
    ];
    for (const [code, reason, cls, retryable] of cases) {
      const err = errorFromStatus(code, reason ? { kind: 'Status', reason, code, message: 'm' } : undefined, req);
      assert.ok(err instanceof cls, `${code} ${reason} → ${err.name}`);
      assert.equal(err.retryable, retryable, `${code} retryable`);
      assert.equal(err.httpStatus, code);
      assert.equal(err.path, req.path);
      assert.equal(err.name, cls.name);
    }
  });

  it('never looks at the message text', () => {
    const err = errorFromStatus(409, { kind: 'Status', reason: 'Conflict', message: 'object already exists' }, req);
    assert.ok(err instanceof ConflictError);
  });

  it('carries Retry-After, from the header or the Status details', () => {
    const fromHeader = errorFromStatus(429, undefined, req, parseRetryAfter('3'));
    assert.ok(fromHeader instanceof UnavailableError);
    assert.equal(fromHeader.retryAfterMs, 3_000);
    const fromBody = errorFromStatus(429, { kind: 'Status', details: { retryAfterSeconds: 2 } }, req);
    assert.ok(fromBody instanceof UnavailableError);
    assert.equal(fromBody.retryAfterMs, 2_000);
  });

  it('has stable codes and a retryable verdict for unknown errors', () => {
    assert.equal(new TerminalError('x').code, 'RECONCILE_TERMINAL');
    assert.equal(new TerminalError('x').retryable, false);
    assert.equal(isRetryable(new Error('who knows')), true);
    assert.equal(isRetryable(new InvalidError('bad', req)), false);
  });
});

describe('object helpers', () => {
  it('builds resource paths', () => {
    assert.equal(resourcePath({ group: '', version: 'v1', plural: 'secrets' }), '/api/v1/secrets');
    assert.equal(
      resourcePath({ group: 'ferry.dev', version: 'v1alpha1', plural: 'integrations' }, 'ns', 'x', 'status'),
      '/apis/ferry.dev/v1alpha1/namespaces/ns/integrations/x/status',
    );
  });

  it('formats MicroTime with exactly six fractional digits', () => {
    assert.equal(microTime(Date.UTC(2024, 0, 2, 3, 4, 5, 67)), '2024-01-02T03:04:05.067000Z');
    assert.equal(microTime(Date.UTC(2024, 0, 2, 3, 4, 5, 0)), '2024-01-02T03:04:05.000000Z');
  });

  it('round-trips keys', () => {
    assert.equal(objectKey({ metadata: { namespace: 'a', name: 'b' } }), 'a/b');
    assert.deepEqual(parseKey('a/b'), { namespace: 'a', name: 'b' });
    assert.deepEqual(parseKey('node-1'), { namespace: undefined, name: 'node-1' });
    assert.throws(() => objectKey({ metadata: {} }), TypeError);
  });
});
