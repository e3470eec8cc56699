import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRegistry } from '../observability/index.ts';
import { IngressMetrics } from './metrics.ts';

describe('IngressMetrics', () => {
  it('forget removes every series of one Integration and keeps the others', async () => {
    const registry = createRegistry({ version: 'test' });
    const m = new IngressMetrics(registry);
    m.record('shop', 'orders', 'accepted', 0.01);
    m.record('shop', 'orders', 'unauthorized', 0.001);
    m.record('shop', 'orders-eu', 'accepted', 0.01);
    m.forget('shop', 'orders');
    const text = await registry.metrics();
    assert.doesNotMatch(text, /integration="orders"/);
    assert.match(text, /ferry_webhook_requests_total\{namespace="shop",integration="orders-eu",outcome="accepted"\} 1/);
    m.record('shop', 'orders', 'accepted', 0.01);
    assert.match(await registry.metrics(), /ferry_webhook_requests_total\{namespace="shop",integration="orders",outcome="accepted"\} 1/, 'a re-created Integration starts from zero');
  });
});
