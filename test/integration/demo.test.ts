/**
 * The README's demo command works: `npm run demo -- --once` brings everything up, delivers the
 * good events to the sink, parks the malformed one with its reason, and exits cleanly.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

describe('npm run demo', () => {
  it('runs end to end with --once', async () => {
    const script = join(import.meta.dirname, '..', '..', 'scripts', 'demo.ts');
    const { stdout } = await execFileAsync(process.execPath, [script, '--once'], { timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });
    assert.match(stdout, /sink received POST \/v1\/accounts\/acme\/invoices {2}Idempotency-Key: deal-1001-invoice {2}\{"customer":"acme","externalId":"deal-1001","total":1200\}/);
    assert.equal(stdout.match(/sink received POST/g)?.length, 4);
    assert.match(stdout, /reason=invalid error="\/amount: must be number"/);
    assert.match(stdout, /payload kept byte for byte: \{"id":"deal-1003","amount":"a lot","customer":\{"id":"initech"\}\}/);
    assert.match(stdout, /deal-to-invoice\s+True\s+Delivering\s+4\s+1/);
    assert.match(stdout, /demo complete/);
  });
});
