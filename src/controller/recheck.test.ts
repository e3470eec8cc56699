import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMPTY_STATS } from '../nats/index.ts';
import { StoreWriter } from '../kube/index.ts';
import type { FerryObject } from './ferry-object.ts';
import { concernsIntegration, integrationsConcerned, sourceStreamOf } from './integration-resources.ts';
import { INTEGRATION_RESYNC_MS, recheckAfter } from './reconcile-integration.ts';
import { CONTRACT_DRIFT_WINDOW_MS, msUntilTimedChange, runtimeStatusFields, degradation, type RuntimeView } from './runtime-view.ts';

const ref = { namespace: 'revops', name: 'good', sourceStream: 'CRM_EVENTS' };

describe('which Integrations a JetStream change concerns', () => {
  it('its own consumer on its source stream, its fallback stream, and its source stream', () => {
    assert.ok(concernsIntegration({ kind: 'consumer-deleted', stream: 'CRM_EVENTS', consumer: 'ferry_revops_good' }, ref));
    assert.ok(concernsIntegration({ kind: 'stream-deleted', stream: 'FERRY_FALLBACK_revops_good' }, ref));
    assert.ok(concernsIntegration({ kind: 'stream-updated', stream: 'FERRY_FALLBACK_revops_good' }, ref));
    for (const kind of ['stream-created', 'stream-deleted', 'stream-updated'] as const) assert.ok(concernsIntegration({ kind, stream: 'CRM_EVENTS' }, ref), kind);
  });

  it('not a namesake consumer on another stream, another Integration’s resources, or an unrelated stream', () => {
    assert.ok(!concernsIntegration({ kind: 'consumer-deleted', stream: 'OLD_SOURCE', consumer: 'ferry_revops_good' }, ref));
    assert.ok(!concernsIntegration({ kind: 'consumer-deleted', stream: 'CRM_EVENTS', consumer: 'ferry_revops_other' }, ref));
    assert.ok(!concernsIntegration({ kind: 'stream-deleted', stream: 'FERRY_FALLBACK_revops_other' }, ref));
    assert.ok(!concernsIntegration({ kind: 'stream-created', stream: 'ERP_EVENTS' }, ref));
    assert.ok(!concernsIntegration({ kind: 'stream-deleted', stream: 'CRM_EVENTS' }, { ...ref, sourceStream: undefined }));
  });

  it('reads spec.source.stream from an unparsed spec, and nothing from a malformed one', () => {
    assert.equal(sourceStreamOf({ source: { stream: 'CRM_EVENTS' } }), 'CRM_EVENTS');
    for (const spec of [undefined, null, 'x', {}, { source: null }, { source: { stream: 7 } }]) assert.equal(sourceStreamOf(spec), undefined);
  });
});

describe('the cached Integrations a JetStream change concerns', () => {
  const integration = (namespace: string, name: string, stream: unknown): FerryObject => ({
    apiVersion: 'ferry.dev/v1alpha1',
    kind: 'Integration',
    metadata: { namespace, name },
    spec: { source: { stream } },
  });
  const writer = new StoreWriter<FerryObject>();
  for (const obj of [integration('revops', 'good', 'CRM_EVENTS'), integration('revops', 'deal.to.invoice', 'CRM_EVENTS'), integration('billing', 'good', 'ERP_EVENTS'), integration('billing', 'broken', 42)]) writer.apply(obj);
  const store = writer.reader;

  it('a consumer or a fallback stream: its one owner, dots in the name included', () => {
    assert.deepEqual(integrationsConcerned({ kind: 'consumer-deleted', stream: 'CRM_EVENTS', consumer: 'ferry_revops_deal_to_invoice' }, store), ['revops/deal.to.invoice']);
    assert.deepEqual(integrationsConcerned({ kind: 'stream-deleted', stream: 'FERRY_FALLBACK_billing_good' }, store), ['billing/good']);
    // Ferry creating a fallback stream concerns nobody; neither does a SyncSchedule's.
    assert.deepEqual(integrationsConcerned({ kind: 'stream-created', stream: 'FERRY_FALLBACK_billing_good' }, store), []);
    assert.deepEqual(integrationsConcerned({ kind: 'stream-deleted', stream: 'FERRY_SYNC_FALLBACK_billing_good' }, store), []);
  });

  it('a source stream: every Integration reading it', () => {
    assert.deepEqual(integrationsConcerned({ kind: 'stream-updated', stream: 'CRM_EVENTS' }, store).sort(), ['revops/deal.to.invoice', 'revops/good']);
    assert.deepEqual(integrationsConcerned({ kind: 'stream-created', stream: 'ERP_EVENTS' }, store), ['billing/good']);
    assert.deepEqual(integrationsConcerned({ kind: 'stream-created', stream: 'OTHER' }, store), []);
  });

  it('nothing for a consumer that is not an Integration’s, on another stream, or of an object not cached', () => {
    for (const consumer of ['audit', 'ferry_', 'ferry_revops', 'ferry_revops_', 'ferry_gone_x']) assert.deepEqual(integrationsConcerned({ kind: 'consumer-deleted', stream: 'CRM_EVENTS', consumer }, store), [], consumer);
    assert.deepEqual(integrationsConcerned({ kind: 'consumer-deleted', stream: 'ERP_EVENTS', consumer: 'ferry_revops_good' }, store), []);
  });
});

describe('when the controller looks at an Integration again', () => {
  const now = Date.UTC(2026, 11, 3, 12);

  it('at the resync period when nothing in status depends on the time', () => {
    assert.equal(INTEGRATION_RESYNC_MS, 10 * 60_000);
    assert.equal(msUntilTimedChange(undefined, now), undefined);
    assert.equal(recheckAfter(undefined, now), INTEGRATION_RESYNC_MS);
    assert.equal(recheckAfter({ fallbackPending: 0 }, now), INTEGRATION_RESYNC_MS);
  });

  it('a second after a contract drift leaves its window, when Degraded turns False', () => {
    const view: RuntimeView = { stats: { ...EMPTY_STATS, delivered: 1, lastContractDrift: now - CONTRACT_DRIFT_WINDOW_MS + 30_000 } };
    assert.equal(msUntilTimedChange(view, now), 30_000);
    assert.equal(recheckAfter(view, now), 31_000);
    assert.equal(degradation(view, now).reason, 'ContractDrift');
    assert.equal(degradation(view, now + recheckAfter(view, now)).reason, 'Healthy');
    // Past the window: nothing left to wait for.
    assert.equal(msUntilTimedChange(view, now + 31_000), undefined);
  });

  it('a second after a throttle stops being shown, and at the earlier of two changes', () => {
    const throttled: RuntimeView = { throttle: { limitedUntil: now + 5_000, perSecond: 2, decreasedAt: now - 1_000 } };
    assert.equal(recheckAfter(throttled, now), 66_000);
    assert.ok('throttle' in runtimeStatusFields(throttled, now + 64_999));
    assert.ok(!('throttle' in runtimeStatusFields(throttled, now + 66_000)));
    const both: RuntimeView = { ...throttled, stats: { ...EMPTY_STATS, delivered: 1, lastContractDrift: now - CONTRACT_DRIFT_WINDOW_MS + 10_000 } };
    assert.equal(recheckAfter(both, now), 11_000);
  });
});
