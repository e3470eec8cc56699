import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { LocalHistogram } from './local-histogram.ts';

const BUCKETS = [0.001, 0.005, 0.01, 0.1, 1];
const VALUES = [0, 0.0005, 0.001, 0.0011, 0.004, 0.05, 0.5, 1, 2, 30, 0.007];

function pair(): { theirs: Histogram<'namespace' | 'integration'>; ours: LocalHistogram<'namespace' | 'integration'>; a: Registry; b: Registry } {
  const a = new Registry();
  const b = new Registry();
  const options = { name: 'ferry_test_seconds', help: 'A test histogram.', labelNames: ['namespace', 'integration'] as const, buckets: BUCKETS };
  return { theirs: new Histogram({ ...options, labelNames: [...options.labelNames], registers: [a] }), ours: new LocalHistogram({ ...options, registers: [b] }), a, b };
}

describe('LocalHistogram', () => {
  it('writes the exposition prom-client writes for the same observations, series by series', async () => {
    const { theirs, ours, a, b } = pair();
    for (const [i, v] of VALUES.entries()) {
      const labels = { namespace: 'shop', integration: i % 3 === 0 ? 'orders' : 'refunds' };
      theirs.observe(labels, v);
      ours.series(labels).observe(v);
    }
    assert.equal(await b.metrics(), await a.metrics());
    assert.match(await b.metrics(), /ferry_test_seconds_bucket\{.*le="\+Inf".*integration="orders".*\} 4/);
    assert.deepEqual((await b.getMetricsAsJSON())[0]?.values.length, (await a.getMetricsAsJSON())[0]?.values.length);
  });

  it('shares a series between callers with the same labels, and shows none before its first observation', async () => {
    const { ours, b } = pair();
    const first = ours.series({ namespace: 'shop', integration: 'orders' });
    assert.doesNotMatch(await b.metrics(), /ferry_test_seconds_count/);
    first.observe(0.002);
    ours.series({ integration: 'orders', namespace: 'shop' }).observe(0.003);
    assert.match(await b.metrics(), /ferry_test_seconds_count\{namespace="shop",integration="orders"\} 2/);
  });

  it('forgets a removed series: a later one with the same labels starts from zero; a non-finite value is ignored', async () => {
    const { ours, b } = pair();
    const labels = { namespace: 'shop', integration: 'orders' };
    ours.series(labels).observe(0.5);
    ours.remove(labels);
    assert.doesNotMatch(await b.metrics(), /ferry_test_seconds_count/);
    const again = ours.series(labels);
    again.observe(Number.NaN);
    again.observe(Number.POSITIVE_INFINITY);
    again.observe(0.02);
    assert.match(await b.metrics(), /ferry_test_seconds_count\{namespace="shop",integration="orders"\} 1\n/);
    assert.match(await b.metrics(), /ferry_test_seconds_sum\{namespace="shop",integration="orders"\} 0.02\n/);
  });
});
