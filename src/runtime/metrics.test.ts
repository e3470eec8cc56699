import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from '../observability/index.ts';
import { RuntimeMetrics } from './metrics.ts';

function series(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('RuntimeMetrics (counted locally, handed over at scrape)', () => {
  it('shows every outcome and the inflight count at the next scrape, and counts only what is new after it', async () => {
    const registry = new Registry();
    const m = new RuntimeMetrics(registry);
    const p = m.forIntegration('ns', 'orders');
    for (let i = 0; i < 3; i++) p.outcome('delivered');
    p.outcome('retry');
    p.inflight.inc();
    p.inflight.inc();
    p.inflight.dec();
    let text = await registry.metrics();
    assert.equal(series(text, 'ferry_events_total', 'namespace="ns",integration="orders",outcome="delivered"'), 3);
    assert.equal(series(text, 'ferry_events_total', 'namespace="ns",integration="orders",outcome="retry"'), 1);
    assert.equal(series(text, 'ferry_inflight_events', 'namespace="ns",integration="orders"'), 1);
    p.outcome('delivered');
    text = await registry.metrics();
    assert.equal(series(text, 'ferry_events_total', 'namespace="ns",integration="orders",outcome="delivered"'), 4);
  });

  it('adds up two pipelines of one Integration (a swap in progress)', async () => {
    const registry = new Registry();
    const m = new RuntimeMetrics(registry);
    const a = m.forIntegration('ns', 'orders');
    const b = m.forIntegration('ns', 'orders');
    a.inflight.inc();
    b.inflight.inc();
    a.outcome('delivered');
    b.outcome('delivered');
    const text = await registry.metrics();
    assert.equal(series(text, 'ferry_inflight_events', 'namespace="ns",integration="orders"'), 2);
    assert.equal(series(text, 'ferry_events_total', 'namespace="ns",integration="orders",outcome="delivered"'), 2);
  });

  it('a forgotten Integration starts from zero: what its old pipeline counts later is dropped', async () => {
    const registry = new Registry();
    const m = new RuntimeMetrics(registry);
    const old = m.forIntegration('ns', 'orders');
    old.outcome('delivered');
    await registry.metrics();
    m.forget('ns', 'orders');
    old.outcome('delivered');
    const fresh = m.forIntegration('ns', 'orders');
    fresh.outcome('delivered');
    const text = await registry.metrics();
    assert.equal(series(text, 'ferry_events_total', 'namespace="ns",integration="orders",outcome="delivered"'), 1);
  });

  it('has no inflight series for a pipeline that never handled an event', async () => {
    const registry = new Registry();
    new RuntimeMetrics(registry).forIntegration('ns', 'idle');
    assert.equal(series(await registry.metrics(), 'ferry_inflight_events', 'namespace="ns",integration="idle"'), undefined);
  });
});
