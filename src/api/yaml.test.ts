import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { plainReadsAsString, stringifyForEveryReader } from './yaml.ts';

const repoRoot = new URL('../../', import.meta.url);

/** Every document of `text` as a YAML 1.1 reader (kubectl, Helm, Argo CD, Flux) and a YAML 1.2 reader see it. */
function readBoth(text: string): { v11: unknown[]; v12: unknown[] } {
  const read = (version: '1.1' | '1.2'): unknown[] =>
    parseAllDocuments(text, { version }).map((doc) => {
      assert.deepEqual(doc.errors, [], `YAML ${version} errors`);
      // JSON: what the API server receives; a 1.1 timestamp becomes a different string here too.
      return JSON.parse(JSON.stringify(doc.toJS())) as unknown;
    });
  return { v11: read('1.1'), v12: read('1.2') };
}

// Strings that YAML 1.1 or YAML 1.2 readers turn into something else when left unquoted.
const AMBIGUOUS = [
  ...['on', 'off', 'On', 'OFF', 'yes', 'No', 'Y', 'n', 'true', 'False'],
  ...['~', 'null', 'Null'],
  ...['010', '0o10', '0x1F', '0b101', '1_000', '+12', '1e3', '12.5', '.inf', '.NaN'],
  ...['1:20', '190:20:30'],
  ...['2001-12-14', '2001-12-14t21:59:43.10-05:00'],
  ...['=', '<<'],
];

describe('stringifyForEveryReader', () => {
  it('quotes every string a YAML 1.1 or 1.2 reader would read as something else, as a value and as a key', () => {
    const value = {
      values: Object.fromEntries(AMBIGUOUS.map((s, i) => [`v${i}`, s])),
      keys: Object.fromEntries(AMBIGUOUS.map((s) => [s, s])),
      list: AMBIGUOUS,
      plain: ['Repair', 'None', 'JSON', 'CloudEvents', '5xx', '1s', 'crm.deals.closed', '/customer/id'],
    };
    const text = stringifyForEveryReader(value);
    const { v11, v12 } = readBoth(text);
    assert.deepEqual(v11, [value]);
    assert.deepEqual(v12, [value]);
    for (const s of AMBIGUOUS) assert.ok(text.includes(`"${s}"`), `${s} is not quoted in:\n${text}`);
    // Nothing is quoted that need not be.
    assert.match(text, /^ {2}- Repair$/m);
    assert.match(text, /^ {2}- 5xx$/m);
  });

  it('leaves numbers, booleans and null as they are', () => {
    const value = { n: 10, f: 1.5, b: false, z: null };
    assert.deepEqual(readBoth(stringifyForEveryReader(value)), { v11: [value], v12: [value] });
  });
});

describe('plainReadsAsString', () => {
  it('knows the YAML 1.1 booleans in any case, and what only one version reads as a number', () => {
    for (const s of AMBIGUOUS) assert.equal(plainReadsAsString(s), false, s);
    for (const s of ['None', 'Repair', 'Upsert', 'HMAC', 'Base64', 'RFC3339', 'UnixMillis', 'Forbid', '5xx', '14d']) {
      assert.equal(plainReadsAsString(s), true, s);
    }
  });
});

describe('the YAML users apply with kubectl (crds/ and examples/)', () => {
  const files = ['crds', 'examples'].flatMap((dir) =>
    readdirSync(new URL(`${dir}/`, repoRoot))
      .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
      .map((f) => `${dir}/${f}`),
  );

  it('has files to check', () => {
    assert.ok(files.includes('crds/integrations.ferry.dev.yaml'));
    assert.ok(files.includes('crds/syncschedules.ferry.dev.yaml'));
    assert.ok(files.includes('examples/integration.yaml'));
  });

  for (const file of files) {
    it(`${file} reads the same in YAML 1.1 and YAML 1.2`, () => {
      const { v11, v12 } = readBoth(readFileSync(new URL(file, repoRoot), 'utf8'));
      assert.ok(v12.length > 0, 'no documents');
      assert.deepEqual(v11, v12, `${file}: quote the strings that differ`);
    });
  }

  it('catches an unquoted YAML 1.1 boolean such as `mode: off` (the check can fail)', () => {
    const { v11, v12 } = readBoth('spec:\n  reconcile:\n    mode: off\n');
    assert.notDeepEqual(v11, v12);
    assert.deepEqual(v11, [{ spec: { reconcile: { mode: false } } }]);
    assert.deepEqual(v12, [{ spec: { reconcile: { mode: 'off' } } }]);
  });
});
