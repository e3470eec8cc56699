import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once, type EventEmitter } from 'node:events';
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { ManualClock } from './clock.ts';
import { createLogDestination } from './log-destination.ts';
import { createLogger } from './logger.ts';

/**
 * A real pipe (a FIFO) whose other end nobody reads unless the test does. Opened read-write so
 * that opening does not wait for a reader (Linux), non-blocking as Node leaves a piped stdout.
 */
function pipe(): { fd: number; fill(): void; read(): string; close(closeFd?: boolean): void } {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-log-'));
  const path = join(dir, 'stdout');
  execFileSync('mkfifo', [path]);
  const fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  const untilEagain = (step: () => number): void => {
    try {
      while (step() > 0);
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAGAIN') throw err;
    }
  };
  return {
    fd,
    fill: () => {
      const chunk = Buffer.alloc(4096, 0x20);
      untilEagain(() => writeSync(fd, chunk));
    },
    read: () => {
      const chunks: Buffer[] = [];
      const buf = Buffer.alloc(65536);
      untilEagain(() => {
        const n = readSync(fd, buf);
        chunks.push(Buffer.from(buf.subarray(0, n)));
        return n;
      });
      return Buffer.concat(chunks).toString('utf8');
    },
    close: (closeFd = true) => {
      if (closeFd) closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('createLogDestination', () => {
  const cleanup: (() => void)[] = [];
  afterEach(() => {
    for (const c of cleanup.splice(0)) c();
  });

  it('drops lines beyond the buffer limit when the pipe is never read, counts them and says so at most once per interval', async () => {
    const p = pipe();
    // Closing the destination closes its fd (any but 1 and 2).
    cleanup.push(() => {
      p.close(false);
    });
    p.fill();
    const clock = new ManualClock();
    const notices: string[] = [];
    let counted = 0;
    const dest = createLogDestination({
      fd: p.fd,
      clock,
      maxBufferBytes: 4096,
      noticeIntervalMs: 30_000,
      onDrop: () => {
        counted++;
      },
      notice: (line) => {
        notices.push(line);
      },
    });
    // A failed assertion must not leave SonicBoom retrying the full pipe every 100 ms, which
    // keeps this file's process alive for ever.
    cleanup.push(() => {
      dest.flushSync(0);
    });
    const logger = createLogger({ destination: dest.stream });
    for (let i = 0; i < 1000; i++) logger.info({ i }, 'a line of about one hundred bytes');

    // Only what fits in 4 KiB is kept (lines are > 100 bytes); all the rest is dropped and counted.
    assert.ok(dest.droppedLines > 1000 - 4096 / 100, `dropped ${dest.droppedLines}`);
    assert.ok(dest.droppedLines < 1000);
    assert.equal(counted, dest.droppedLines);
    assert.equal(notices.length, 1);
    assert.match(notices[0] ?? '', /1 log line\(s\) dropped \(1 in all/);

    await clock.advance(30_000);
    // Longer than any line of the loop: whatever room the kept lines left (it depends on the
    // lengths of pid and time), this one cannot fit.
    logger.info({ padding: 'x'.repeat(200) }, 'one more');
    assert.equal(counted, dest.droppedLines);
    assert.equal(notices.length, 2);
    assert.match(notices[1] ?? '', new RegExp(`${dest.droppedLines - 1} log line\\(s\\) dropped \\(${dest.droppedLines} in all`));

    // At exit the flush gives up at once (budget 0) instead of waiting for a reader for ever.
    assert.equal(dest.flushSync(0), false);
    assert.equal(notices.length, 3);
    // The write SonicBoom had in flight fails once more (EAGAIN) and is not retried; the
    // destination closes.
    const stream = dest.stream as unknown as EventEmitter;
    await Promise.all([once(stream, 'error'), new Promise((resolve) => stream.once('close', resolve))]);
  });

  it('drops nothing while the reader keeps up, and writes the lines in order', async () => {
    const p = pipe();
    cleanup.push(() => {
      p.close();
    });
    const clock = new ManualClock();
    const notices: string[] = [];
    const dest = createLogDestination({ fd: p.fd, clock, maxBufferBytes: 60_000, notice: (line) => {
        notices.push(line);
      },
    });
    const logger = createLogger({ destination: dest.stream });
    for (let i = 0; i < 200; i++) logger.info({ i }, 'line');
    await once(dest.stream as unknown as EventEmitter, 'drain');
    assert.equal(dest.flushSync(1_000), true);

    const lines = p.read().trim().split('\n');
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { i: number }).i),
      Array.from({ length: 200 }, (_, i) => i),
    );
    assert.equal(dest.droppedLines, 0);
    assert.deepEqual(notices, []);
  });
});
