import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { manifestLookup, type Manifest } from './manifests.ts';

function manifest(kind: string, name: string, body: Record<string, unknown> = {}): Manifest {
  return { file: 'f.yaml', index: 1, apiVersion: 'v1', kind, name, namespace: 'ns', metadata: { name }, body: { kind, metadata: { name }, ...body } };
}

describe('manifestLookup', () => {
  it('serves Secrets as the API does (stringData base64-encoded) and ConfigMaps as written', () => {
    const { lookup, assumed } = manifestLookup([manifest('Secret', 's', { data: { a: 'eA==' }, stringData: { b: 'y' } }), manifest('ConfigMap', 'c', { data: { k: 'v' } })]);
    assert.deepEqual(lookup.secretData('ns', 's'), { a: 'eA==', b: 'eQ==' });
    assert.deepEqual(lookup.configMapData('ns', 'c'), { k: 'v' });
    assert.equal(lookup.secretData('other', 's'), undefined);
    assert.deepEqual(assumed, []);
  });

  it('assumes only the referenced keys of Secrets that are not given, and says which', () => {
    const spec = { target: { auth: { bearer: { secretKeyRef: { name: 'missing', key: 'token' } } } } };
    const { lookup, assumed } = manifestLookup([manifest('Secret', 'given', { stringData: { t: 'x' } })], { namespace: 'ns', spec });
    assert.deepEqual(assumed, ['missing']);
    assert.deepEqual(lookup.secretData('ns', 'missing'), { token: '' });
    assert.deepEqual(lookup.secretData('ns', 'given'), { t: 'eA==' });
  });
});
