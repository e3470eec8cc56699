import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ReferenceLookup } from '../api/index.ts';
import { ManualClock } from '../observability/index.ts';
import { HookTable, type IntegrationObject } from './hooks.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

function spec(webhook: Record<string, unknown> | undefined): Record<string, unknown> {
  return { source: { stream: 'S', subjects: ['hooks.a'], ...(webhook ? { webhook } : {}) }, target: { url: 'https://example.com/x' } };
}
const hmac = { subject: 'hooks.a', signature: { scheme: 'HMAC', header: 'X-Sig', secretKeyRefs: [{ name: 'hook', key: 'k' }] } };

function table(objects: Record<string, IntegrationObject>, secrets: Record<string, { data: Record<string, string>; version: string }>) {
  const references: ReferenceLookup = {
    secretData: (ns, name) => (ns === 'ns' ? secrets[name]?.data : undefined),
    configMapData: () => undefined,
    version: (_kind, ns, name) => (ns === 'ns' ? secrets[name]?.version : undefined),
  };
  return new HookTable({ integrations: { get: (key) => objects[key] }, references, clock: new ManualClock() });
}

describe('HookTable', () => {
  it('finds a webhook with its keys; absent for no Integration, no webhook, or one being deleted', () => {
    const secrets = { hook: { data: { k: b64('s3cret\n') }, version: '1' } };
    const t = table(
      {
        'ns/a': { metadata: { uid: 'u', generation: 1 }, spec: spec(hmac) },
        'ns/plain': { metadata: { uid: 'p', generation: 1 }, spec: spec(undefined) },
        'ns/gone': { metadata: { uid: 'g', generation: 1, deletionTimestamp: '2024-01-01T00:00:00Z' }, spec: spec(hmac) },
      },
      secrets,
    );
    const found = t.lookup('ns', 'a');
    assert.equal(found.kind, 'found');
    assert.deepEqual(found.kind === 'found' && found.hook.keys.map((k) => k.export().toString()), ['s3cret']);
    assert.equal(found.kind === 'found' && found.hook.webhook.signature.header, 'x-sig');
    for (const name of ['plain', 'gone', 'missing']) assert.deepEqual(t.lookup('ns', name), { kind: 'absent' });
  });

  it('is unavailable (not absent) while the signing Secret is missing or the spec invalid, and recompiles when the Secret changes', () => {
    const secrets: Record<string, { data: Record<string, string>; version: string }> = {};
    const objects: Record<string, IntegrationObject> = {
      'ns/a': { metadata: { uid: 'u', generation: 1 }, spec: spec(hmac) },
      'ns/bad': { metadata: { uid: 'b', generation: 1 }, spec: { ...spec(hmac), delivery: { maxAttempts: 'many' } } },
    };
    const t = table(objects, secrets);
    assert.deepEqual(t.lookup('ns', 'a'), { kind: 'unavailable', detail: 'signing Secret hook key k not found' });
    assert.equal(t.lookup('ns', 'bad').kind, 'unavailable');
    secrets.hook = { data: { k: b64('one') }, version: '1' };
    const first = t.lookup('ns', 'a');
    assert.equal(first.kind === 'found' && first.hook.keys[0]?.export().toString(), 'one');
    assert.equal(t.lookup('ns', 'a'), first, 'cached while nothing changed');
    secrets.hook = { data: { k: b64('two') }, version: '2' };
    const second = t.lookup('ns', 'a');
    assert.equal(second.kind === 'found' && second.hook.keys[0]?.export().toString(), 'two');
  });
});
