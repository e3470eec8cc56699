import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fallbackStreamName, integrationConsumerName, parseFallbackStreamName, parseIntegrationConsumerName, syncFallbackStreamName } from './names.ts';

describe('parseFallbackStreamName', () => {
  it('inverts the fallback stream names of both kinds, dots in names included', () => {
    for (const ref of [
      { namespace: 'revops', name: 'deal-to-invoice' },
      { namespace: 'a', name: 'b.c.d' },
    ]) {
      assert.deepEqual(parseFallbackStreamName(fallbackStreamName(ref)), { kind: 'Integration', ...ref });
      assert.deepEqual(parseFallbackStreamName(syncFallbackStreamName(ref)), { kind: 'SyncSchedule', ...ref });
    }
  });

  it('ignores any other stream', () => {
    for (const name of ['CRM_EVENTS', 'KV_ferry_syncs', 'FERRY_FALLBACK_', 'FERRY_FALLBACK_ns', 'FERRY_FALLBACK__x', 'FERRY_FALLBACK_ns_']) {
      assert.equal(parseFallbackStreamName(name), undefined, name);
    }
  });
});

describe('parseIntegrationConsumerName', () => {
  it('inverts integrationConsumerName, dots in the name included', () => {
    for (const ref of [
      { namespace: 'revops', name: 'deal-to-invoice' },
      { namespace: 'a', name: 'b.c.d' },
    ]) {
      assert.deepEqual(parseIntegrationConsumerName(integrationConsumerName(ref)), ref);
    }
  });

  it('is undefined for any other consumer name', () => {
    for (const name of ['audit', 'ferry', 'ferry_', 'ferry_ns', 'ferry__x', 'ferry_ns_', 'oc_QfOW5ktWkk']) {
      assert.equal(parseIntegrationConsumerName(name), undefined, name);
    }
  });
});
