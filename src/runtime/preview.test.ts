import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileIntegrationSpec, type CompiledIntegrationSpec } from '../api/index.ts';
import { previewEvent } from './preview.ts';

function compiled(overrides: Record<string, unknown>): CompiledIntegrationSpec {
  const check = compileIntegrationSpec(
    'ops',
    {
      source: { stream: 'EVENTS', subjects: ['e.>'] },
      schema: { inline: { type: 'object', required: ['id'], properties: { id: { type: 'string' }, amount: { type: 'number' } } } },
      target: { url: 'https://api.example.com/orders/{{/id}}' },
      ...overrides,
    },
    { secretData: () => undefined, configMapData: () => undefined },
  );
  assert.ok(check.ok, check.ok ? '' : check.message);
  return check.config;
}

const bytes = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

describe('previewEvent', () => {
  it('maps the body, renders the URL and derives the key as the pipeline does', async () => {
    const spec = compiled({ transform: { mapping: { externalId: '/id', total: '/amount' } }, target: { url: 'https://api.example.com/orders/{{/id}}', idempotency: { key: '{{/id}}-x' } } });
    const r = await previewEvent(spec, 'ops/orders', { payload: bytes({ id: 'a b', amount: 3 }) });
    assert.deepEqual(r, { ok: true, preview: { body: { externalId: 'a b', total: 3 }, url: 'https://api.example.com/orders/a%20b', idempotencyKey: { key: 'a b-x', source: 'template' } } });
  });

  it('runs JSONata and scopes a default key by the Integration', async () => {
    const r = await previewEvent(compiled({ transform: { jsonata: '{"n": amount * 2}' } }), 'ops/orders', { payload: bytes({ id: 'a', amount: 3 }), headers: { 'Nats-Msg-Id': 'm-1' } });
    assert.ok(r.ok);
    // JSONata builds its own objects; what is sent is their JSON.
    assert.equal(JSON.stringify(r.preview.body), '{"n":6}');
    assert.deepEqual(r.preview.idempotencyKey, { key: 'ops/orders/m-1', source: 'nats-msg-id' });
  });

  it('says at which step and field an event would be parked', async () => {
    const spec = compiled({});
    assert.deepEqual(await previewEvent(spec, 's', { payload: bytes({ id: 'a', amount: 'ten' }) }), {
      ok: false,
      reason: 'invalid',
      step: 'schema',
      message: '/amount: must be number',
    });
    assert.equal((await previewEvent(spec, 's', { payload: new TextEncoder().encode('{not json') })).ok, false);
    const failed = await previewEvent(compiled({ schema: undefined }), 's', { payload: bytes({ amount: 1 }) });
    assert.equal(failed.ok ? undefined : failed.step, 'url');
  });
});
