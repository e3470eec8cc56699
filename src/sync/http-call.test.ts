import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CircuitBreaker,
  DeliveryAbortedError,
  DeliveryNetworkError,
  InvalidTargetUrlError,
  type Deliverer,
  type DeliveryRequest,
  type DeliveryResponse,
} from '../delivery/index.ts';
import { ManualClock } from '../observability/index.ts';
import { RunBudgetExhaustedError, RunCancelledError, TargetUnavailableError } from './errors.ts';
import { HttpCaller, HttpCallFailed, SYNC_MAX_ATTEMPTS, type HttpCallerOptions } from './http-call.ts';

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;

interface Reply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/** A `Deliverer` answering from a script; remembers every request and when it was sent. */
class ScriptedDeliverer implements Deliverer {
  readonly sent: { readonly request: DeliveryRequest; readonly at: number }[] = [];
  private readonly clock: ManualClock;
  private readonly script: (request: DeliveryRequest, index: number) => Reply | Error;

  constructor(clock: ManualClock, script: (request: DeliveryRequest, index: number) => Reply | Error) {
    this.clock = clock;
    this.script = script;
  }

  deliver(request: DeliveryRequest): Promise<DeliveryResponse> {
    const index = this.sent.length;
    this.sent.push({ request, at: this.clock.now() });
    const reply = this.script(request, index);
    if (reply instanceof Error) return Promise.reject(reply);
    return Promise.resolve({ status: reply.status, headers: reply.headers ?? {}, body: reply.body ?? '', truncated: false, durationMs: 1 });
  }

  /** Send times relative to T0. */
  get times(): number[] {
    return this.sent.map((s) => s.at - T0);
  }

  get urls(): string[] {
    return this.sent.map((s) => s.request.url);
  }
}

/** Replies in order; the last reply repeats. */
function sequence(...replies: (Reply | Error)[]): (request: DeliveryRequest, index: number) => Reply | Error {
  return (_request, index) => {
    const reply = replies[Math.min(index, replies.length - 1)];
    assert.ok(reply);
    return reply;
  };
}

function setup(
  script: (request: DeliveryRequest, index: number) => Reply | Error,
  options: Partial<Omit<HttpCallerOptions, 'send' | 'clock'>> = {},
): { clock: ManualClock; send: ScriptedDeliverer; caller: HttpCaller; abort: AbortController } {
  const clock = new ManualClock(T0);
  const send = new ScriptedDeliverer(clock, script);
  const abort = new AbortController();
  const caller = new HttpCaller({ send, clock, deadline: T0 + HOUR, signal: abort.signal, random: () => 0.5, ...options });
  return { clock, send, caller, abort };
}

/** Advances the clock in steps until `promise` settles; then returns it (resolved or rejected). */
async function drive<T>(promise: Promise<T>, clock: ManualClock, stepMs = 10): Promise<T> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await clock.advance(0);
  for (let i = 0; !settled && i < 1_000_000; i++) await clock.advance(stepMs);
  assert.ok(settled, 'the call settles');
  return promise;
}

const get = { url: 'https://api.test/items', method: 'GET', timeoutMs: 5_000 } as const;

describe('HttpCaller', () => {
  it('returns a 2xx answer at once, with the run signal on the request', async () => {
    const { send, caller, abort } = setup(sequence({ status: 200, body: '[]' }));
    const r = await caller.call(get);
    assert.equal(r.status, 200);
    assert.equal(r.body, '[]');
    assert.equal(send.sent.length, 1);
    assert.equal(send.sent[0]?.request.signal, abort.signal);
    assert.equal(caller.requests, 1);
  });

  it('returns other 4xx answers as they are, without retrying', async () => {
    for (const status of [400, 404, 409, 422]) {
      const { send, caller } = setup(sequence({ status, body: 'nope' }));
      const r = await caller.call(get);
      assert.equal(r.status, status);
      assert.equal(send.sent.length, 1, `HTTP ${status} is not retried`);
    }
  });

  describe('Retry-After', () => {
    it('a 429 with Retry-After: 2 holds the retry AND any other request for 2 s', async () => {
      const { clock, send, caller } = setup((request, index) =>
        index === 0 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 200, body: request.url },
      );
      const first = caller.call({ ...get, url: 'https://api.test/a' });
      await clock.advance(0);
      assert.equal(send.sent.length, 1, 'the first attempt was answered 429');
      // A different request, started while the hold is on.
      const second = caller.call({ ...get, url: 'https://api.test/b' });
      await clock.advance(1_999);
      assert.equal(send.sent.length, 1, 'nothing is sent before the hint has passed');
      await clock.advance(1);
      assert.equal((await first).body, 'https://api.test/a');
      assert.equal((await second).body, 'https://api.test/b');
      assert.deepEqual(send.times, [0, 2_000, 2_000]);
      assert.deepEqual(send.urls.slice(1).sort(), ['https://api.test/a', 'https://api.test/b']);
      assert.equal(caller.throttled, 1);
      assert.equal(caller.requests, 3);
    });

    it('the hold outlives the call: a request started after a throttled call gave up still waits', async () => {
      const throttle = (seconds: number): Reply => ({ status: 429, headers: { 'retry-after': String(seconds) } });
      const { clock, send, caller } = setup(sequence(throttle(1), throttle(1), throttle(1), throttle(1), throttle(1), throttle(10), { status: 200 }));
      await assert.rejects(drive(caller.call(get), clock, 100), HttpCallFailed);
      assert.equal(send.sent.length, SYNC_MAX_ATTEMPTS);
      const gaveUpAt = clock.now();
      const lastAttempt = send.times[SYNC_MAX_ATTEMPTS - 1] ?? Number.NaN;
      // The 6th answer said "10 s"; the next request, a new call, honours it.
      const next = caller.call({ ...get, url: 'https://api.test/other' });
      await clock.advance(lastAttempt + 10_000 - (gaveUpAt - T0) - 1);
      assert.equal(send.sent.length, SYNC_MAX_ATTEMPTS, 'not sent before the hint has passed');
      await clock.advance(1);
      assert.equal((await next).status, 200);
      assert.equal(send.times[SYNC_MAX_ATTEMPTS], lastAttempt + 10_000);
    });

    it('a 503 with Retry-After is a throttle too (hold, counter, callback)', async () => {
      let throttledCalls = 0;
      const { clock, send, caller } = setup(sequence({ status: 503, headers: { 'retry-after': '7' } }, { status: 200 }), {
        onThrottled: () => throttledCalls++,
      });
      const r = await drive(caller.call(get), clock);
      assert.equal(r.status, 200);
      assert.deepEqual(send.times, [0, 7_000]);
      assert.equal(throttledCalls, 1);
      assert.equal(caller.throttled, 1);
    });

    it('Retry-After: 0 cannot shorten our own backoff', async () => {
      const { clock, send, caller } = setup(sequence({ status: 429, headers: { 'retry-after': '0' } }, { status: 200 }));
      await drive(caller.call(get), clock, 1);
      // backoff of attempt 1: ceiling 500 ms × random 0.5.
      assert.deepEqual(send.times, [0, 250]);
    });

    it('a Retry-After is capped at 5 minutes', async () => {
      const { clock, send, caller } = setup(sequence({ status: 429, headers: { 'retry-after': '86400' } }, { status: 200 }));
      await drive(caller.call(get), clock, 1_000);
      assert.deepEqual(send.times, [0, 300_000]);
    });

    it('a Retry-After wait that would cross the deadline is not waited: RunBudgetExhaustedError', async () => {
      const { clock, send, caller } = setup(sequence({ status: 429, headers: { 'retry-after': '2' } }, { status: 200 }), {
        deadline: T0 + 1_500,
      });
      const call = caller.call(get);
      await clock.advance(0);
      await assert.rejects(call, RunBudgetExhaustedError);
      assert.equal(send.sent.length, 1);
      assert.equal(clock.now(), T0, 'it failed at once instead of waiting');
      // The hold stays: the next request of the run is refused too, without being sent.
      await assert.rejects(caller.call({ ...get, url: 'https://api.test/other' }), RunBudgetExhaustedError);
      assert.equal(send.sent.length, 1);
    });

    it('a 429 on every attempt ends in HttpCallFailed with status 429', async () => {
      const { clock, send, caller } = setup(sequence({ status: 429, headers: { 'retry-after': '1' } }));
      const err = await drive(caller.call(get), clock, 100).then(
        () => assert.fail('expected a rejection'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof HttpCallFailed);
      assert.equal(err.status, 429);
      assert.equal(send.sent.length, SYNC_MAX_ATTEMPTS);
    });
  });

  describe('retries', () => {
    it('retries a 503 with exponential backoff, then fails after SYNC_MAX_ATTEMPTS without a last wait', async () => {
      const { clock, send, caller } = setup(sequence({ status: 503, body: 'down' }));
      const err = await drive(caller.call(get), clock, 10).then(
        () => assert.fail('expected a rejection'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof HttpCallFailed);
      assert.equal(err.status, 503);
      assert.equal(err.attempts, SYNC_MAX_ATTEMPTS);
      assert.match(err.message, /HTTP 503 after 6 attempts/);
      assert.equal(SYNC_MAX_ATTEMPTS, 6);
      // Ceilings 500, 1000, 2000, 4000, 8000 ms × random 0.5.
      assert.deepEqual(send.times, [0, 250, 750, 1_750, 3_750, 7_750]);
      assert.equal(clock.pending, 0, 'no timer left behind');
      assert.equal(caller.requests, 6);
    });

    it('a 5xx that recovers returns the good answer', async () => {
      const { clock, send, caller } = setup(sequence({ status: 500 }, { status: 502 }, { status: 200, body: 'ok' }));
      const r = await drive(caller.call(get), clock);
      assert.equal(r.body, 'ok');
      assert.deepEqual(send.times, [0, 250, 750]);
    });

    it('retries 408 and 425 by default, and what retryStatus names', async () => {
      for (const status of [408, 425]) {
        const { clock, send, caller } = setup(sequence({ status }, { status: 200 }));
        assert.equal((await drive(caller.call(get), clock)).status, 200);
        assert.equal(send.sent.length, 2, `HTTP ${status} is retried`);
      }
      const { clock, send, caller } = setup(sequence({ status: 409 }, { status: 201 }));
      const r = await drive(
        caller.call(get, (s) => s === 409),
        clock,
      );
      assert.equal(r.status, 201);
      assert.equal(send.sent.length, 2);
    });

    it('retries network errors with backoff', async () => {
      const { clock, send, caller } = setup(sequence(new DeliveryNetworkError('https://api.test', 'ECONNRESET', 'socket hang up'), { status: 200 }));
      const r = await drive(caller.call(get), clock);
      assert.equal(r.status, 200);
      assert.deepEqual(send.times, [0, 250]);
    });

    it('a refused request (bad URL) fails at once, without retries', async () => {
      const { send, caller } = setup(sequence(new InvalidTargetUrlError('ftp://x', 'scheme')));
      const err = await caller.call(get).then(
        () => assert.fail('expected a rejection'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof HttpCallFailed);
      assert.equal(err.status, undefined);
      assert.equal(err.attempts, 1);
      assert.equal(send.sent.length, 1);
    });

    it(
      'network errors on every attempt: HttpCallFailed right after the last attempt, without a further backoff wait',
      async () => {
        const { clock, send, caller } = setup(sequence(new DeliveryNetworkError('https://api.test', 'ECONNREFUSED', 'refused')), {
          // Room for the five waits between the six attempts (7.75 s), not for a sixth wait.
          deadline: T0 + 8_000,
        });
        const err = await drive(caller.call(get), clock).then(
          () => assert.fail('expected a rejection'),
          (e: unknown) => e,
        );
        assert.equal(send.sent.length, SYNC_MAX_ATTEMPTS);
        assert.ok(err instanceof HttpCallFailed, `expected HttpCallFailed, got ${String(err)}`);
        assert.equal(clock.now(), T0 + 7_750);
      },
    );
  });

  describe('target-wide failures', () => {
    it('401 and 403 are TargetUnavailableError at once, with the status', async () => {
      for (const status of [401, 403]) {
        const { send, caller } = setup(sequence({ status }));
        const err = await caller.call(get).then(
          () => assert.fail('expected a rejection'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof TargetUnavailableError);
        assert.equal(err.status, status);
        assert.equal(send.sent.length, 1);
      }
    });

    it('an open circuit breaker stops the call before sending', async () => {
      const clock = new ManualClock(T0);
      const send = new ScriptedDeliverer(clock, sequence({ status: 500 }));
      const breaker = new CircuitBreaker({ key: 'test', clock, failures: 2, windowMs: 60_000, openForMs: 60_000 });
      const caller = new HttpCaller({ send, clock, breaker, deadline: T0 + HOUR, signal: new AbortController().signal, random: () => 0.5 });
      const err = await drive(caller.call(get), clock).then(
        () => assert.fail('expected a rejection'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof TargetUnavailableError);
      assert.match(err.message, /circuit open/);
      assert.equal(send.sent.length, 2, 'the third attempt is never sent');
    });
  });

  describe('cancellation', () => {
    it('an abort during a backoff wait is RunCancelledError', async () => {
      const { clock, send, caller, abort } = setup(sequence({ status: 503 }));
      const call = caller.call(get);
      await clock.advance(100);
      abort.abort(new Error('replaced'));
      await assert.rejects(call, RunCancelledError);
      assert.equal(send.sent.length, 1);
    });

    it('an abort while the request is in flight is RunCancelledError, not a retry', async () => {
      const clock = new ManualClock(T0);
      const abort = new AbortController();
      let sent = 0;
      const send: Deliverer = {
        deliver: () => {
          sent++;
          abort.abort(new Error('shutdown'));
          return Promise.reject(new DeliveryAbortedError('https://api.test'));
        },
      };
      const caller = new HttpCaller({ send, clock, deadline: T0 + HOUR, signal: abort.signal, random: () => 0.5 });
      await assert.rejects(caller.call(get), RunCancelledError);
      assert.equal(sent, 1);
    });
  });

  describe('rate limit', () => {
    it('spaces requests by the token bucket', async () => {
      const { clock, send, caller } = setup(sequence({ status: 200 }), { perSecond: { perSecond: 2, burst: 1 } });
      const calls = [caller.call(get), caller.call(get), caller.call(get)];
      await drive(Promise.all(calls), clock);
      assert.deepEqual(send.times, [0, 500, 1_000]);
    });

    it('a token wait past the deadline is RunBudgetExhaustedError', async () => {
      const { clock, send, caller } = setup(sequence({ status: 200 }), { perSecond: { perSecond: 1, burst: 1 }, deadline: T0 + 500 });
      await caller.call(get);
      const second = caller.call(get);
      await clock.advance(0);
      await assert.rejects(second, RunBudgetExhaustedError);
      assert.equal(send.sent.length, 1);
    });
  });
});
