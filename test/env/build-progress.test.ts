import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatElapsed, withProgress } from './build-progress.ts';

/** Lets the promise callbacks queued so far run (mocked timers do not advance microtasks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

describe('formatElapsed', () => {
  it('writes seconds, then minutes and two-digit seconds', () => {
    assert.equal(formatElapsed(0), '0s');
    assert.equal(formatElapsed(44_600), '45s');
    assert.equal(formatElapsed(60_000), '1m00s');
    assert.equal(formatElapsed(65_000), '1m05s');
    assert.equal(formatElapsed(754_000), '12m34s');
  });
});

describe('withProgress', () => {
  it('reports every 30 s while the step runs, then the total, and stops reporting', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 0 });
    const lines: string[] = [];
    let finish: (value: string) => void = () => undefined;
    const log = (line: string): void => {
      lines.push(line);
    };
    const running = withProgress<string>('building kube-apiserver v1.36.3', log, () => new Promise<string>((resolve) => (finish = resolve)));

    t.mock.timers.tick(29_999);
    assert.deepEqual(lines, [], 'nothing before the first interval');
    // One tick per interval: mocked Date reads the end of a tick inside its callbacks.
    t.mock.timers.tick(1);
    t.mock.timers.tick(30_000);
    t.mock.timers.tick(30_000);
    t.mock.timers.tick(5_000);
    assert.deepEqual(lines, [
      'building kube-apiserver v1.36.3: still running, 30s so far',
      'building kube-apiserver v1.36.3: still running, 1m00s so far',
      'building kube-apiserver v1.36.3: still running, 1m30s so far',
    ]);

    finish('binary');
    assert.equal(await running, 'binary');
    assert.equal(lines[lines.length - 1], 'building kube-apiserver v1.36.3: done in 1m35s');
    const count = lines.length;
    t.mock.timers.tick(120_000);
    await settle();
    assert.equal(lines.length, count, 'no report after the step ended');
  });

  it('says how long a failed step ran and rethrows its error', async (t) => {
    t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: 0 });
    const lines: string[] = [];
    let fail: (err: Error) => void = () => undefined;
    const running = withProgress('building etcd v3.6.16', (l) => lines.push(l), () =>
        new Promise<never>((_, reject) => {
          fail = reject;
        }));
    t.mock.timers.tick(30_000);
    t.mock.timers.tick(12_000);
    fail(new Error('go build failed'));
    await assert.rejects(running, /go build failed/);
    assert.deepEqual(lines, ['building etcd v3.6.16: still running, 30s so far', 'building etcd v3.6.16: failed after 42s']);
  });
});
