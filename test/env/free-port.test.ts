import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ephemeralStart, freePort } from './free-port.ts';

describe('freePort', () => {
  it('hands out distinct ports below the ephemeral range that a server can bind', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    assert.equal(new Set(ports).size, ports.length);
    for (const p of ports) assert.ok(p >= 10_000 && p < ephemeralStart(), `port ${p}`);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(ports[0], '127.0.0.1', resolve);
    });
    await new Promise((resolve) => server.close(resolve));
  });

  it('reads the first port of ip_local_port_range, and falls back when the file is missing or odd', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ferry-port-'));
    const file = join(dir, 'range');
    await writeFile(file, '40000\t60999\n');
    assert.equal(ephemeralStart(file), 40_000);
    await writeFile(file, 'garbage');
    assert.equal(ephemeralStart(file), 32_768);
    assert.equal(ephemeralStart(join(dir, 'missing')), 32_768);
  });
});
