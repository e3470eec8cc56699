import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HealthRegistry } from './health.ts';

describe('HealthRegistry', () => {
  it('is ready only when every readiness check passes, and names the failing one', () => {
    const health = new HealthRegistry();
    let synced = false;
    health.addReadiness('informers', () => ({ ok: synced, detail: 'caches not synced' }));
    health.addReadiness('nats', () => ({ ok: true }));
    let r = health.ready();
    assert.equal(r.ok, false);
    assert.deepEqual(r.checks.filter((c) => !c.ok).map((c) => c.name), ['informers']);
    synced = true;
    r = health.ready();
    assert.equal(r.ok, true);
  });

  it('treats a throwing check as failed', () => {
    const health = new HealthRegistry();
    health.addLiveness('broken', () => {
      throw new Error('nope');
    });
    const r = health.live();
    assert.equal(r.ok, false);
    assert.equal(r.checks[0]?.detail, 'nope');
  });
});
