/**
 * A cross-process lock on a directory: `mkdir` is atomic, so exactly one process creates it.
 * The owner writes its pid inside; a lock whose owner is gone (crashed build, Ctrl-C) is taken
 * over instead of waited on forever.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function withFileLock<T>(lockDir: string, log: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  await mkdir(join(lockDir, '..'), { recursive: true });
  let waitingLogged = false;
  for (;;) {
    try {
      await mkdir(lockDir);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && !alive(owner)) {
      log(`taking over ${lockDir} from exited process ${owner}`);
      await rm(lockDir, { recursive: true, force: true });
      continue;
    }
    if (!waitingLogged) {
      log(`waiting for process ${Number.isInteger(owner) ? owner : '?'} holding ${lockDir}`);
      waitingLogged = true;
    }
    // Real time is right here: the other party is a separate process doing a multi-minute build.
    await sleep(500);
  }
  try {
    await writeFile(join(lockDir, 'pid'), String(process.pid));
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}
