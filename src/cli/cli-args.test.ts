import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { choiceFlag, durationFlag, intFlag, natsUrl, parseCommand, reasonsFlag } from './cli-args.ts';
import { programName } from './commands/command.ts';
import { fallbackTarget, selection } from './commands/fallback-target.ts';
import { renderTable, shortAge } from './output.ts';
import { UsageError } from './usage-error.ts';

describe('cli arguments', () => {
  it('parses strictly: unknown flags, missing values and extra positionals are usage errors', () => {
    const options = { output: { type: 'string', short: 'o' } } as const;
    assert.deepEqual(parseCommand(['x', '-o', 'json'], options, 1)?.values.output, 'json');
    assert.equal(parseCommand(['--help'], options, 0), undefined);
    assert.throws(() => parseCommand(['--nope'], options, 0), UsageError);
    assert.throws(() => parseCommand(['-o'], options, 0), UsageError);
    assert.throws(() => parseCommand(['a', 'b'], options, 1), /unexpected argument "b"/);
  });

  it('reads typed flag values and refuses malformed ones', () => {
    assert.equal(intFlag('limit', '25'), 25);
    assert.equal(intFlag('limit', undefined), undefined);
    for (const bad of ['0', '-1', '1.5', 'ten', '']) assert.throws(() => intFlag('limit', bad), UsageError, bad);
    assert.equal(durationFlag('older-than', '1h'), 3_600_000);
    assert.throws(() => durationFlag('older-than', 'soon'), /--older-than must be a duration/);
    assert.deepEqual(reasonsFlag(['exhausted,rejected', 'exhausted']), ['exhausted', 'rejected']);
    assert.throws(() => reasonsFlag(['bored']), /--reason must be one of/);
    assert.equal(choiceFlag('output', 'yaml', ['json', 'yaml']), 'yaml');
    assert.throws(() => choiceFlag('output', 'xml', ['json', 'yaml']), UsageError);
    assert.equal(natsUrl(undefined, {}), 'nats://127.0.0.1:4222');
    assert.equal(natsUrl(undefined, { NATS_URL: 'nats://n:1' }), 'nats://n:1');
    assert.equal(natsUrl('nats://f:2', { NATS_URL: 'nats://n:1' }), 'nats://f:2');
  });

  it('names itself after the executable: kubectl ferry as a kubectl plugin', () => {
    assert.equal(programName('/usr/local/bin/kubectl-ferry'), 'kubectl ferry');
    assert.equal(programName('/repo/src/cli/main.ts'), 'ferry');
    assert.equal(programName(undefined), 'ferry');
  });
});

describe('fallback targets and selections', () => {
  it('maps NAME and kind/NAME to the fallback stream of the right kind', () => {
    assert.deepEqual(fallbackTarget('orders', 'ops'), { kind: 'Integration', namespace: 'ops', name: 'orders', stream: 'FERRY_FALLBACK_ops_orders' });
    assert.equal(fallbackTarget('ss/contacts.v2', 'ops').stream, 'FERRY_SYNC_FALLBACK_ops_contacts_v2');
    assert.throws(() => fallbackTarget('deployment/x', 'ops'), UsageError);
    assert.throws(() => fallbackTarget('Not_A_Name', 'ops'), UsageError);
  });

  it('turns --seq into a one-message range and refuses contradictions', () => {
    assert.deepEqual(selection({ seq: '7' }), { fromSequence: 7, toSequence: 7, reasons: undefined, limit: undefined });
    assert.throws(() => selection({ seq: '7', 'to-seq': '9' }), UsageError);
    assert.throws(() => selection({ 'from-seq': '9', 'to-seq': '7' }), /--from-seq must not be greater/);
  });
});

describe('output', () => {
  it('aligns table columns and shortens ages as kubectl does', () => {
    assert.equal(renderTable(['A', 'LONG'], [['xyz', '1'], ['q', '22']]), 'A     LONG\nxyz   1\nq     22\n');
    assert.deepEqual([5_000, 300_000, 3 * 3_600_000, 3 * 86_400_000].map(shortAge), ['5s', '5m', '3h', '3d']);
  });
});
