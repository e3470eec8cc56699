import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SpecInvalidError } from './errors.ts';
import type { IntegrationSpec, IntegrationSpecInput } from './integration.ts';
import { parseIntegrationSpec, parseSyncScheduleSpec } from './parse.ts';
import { DEFAULT_TRANSFORM_TIMEOUT_MS, resolveIntegrationConfig, resolveSyncScheduleConfig } from './resolve.ts';
import type { SyncScheduleSpecInput } from './sync-schedule.ts';

function integration(edit: (spec: IntegrationSpecInput) => void = () => undefined): IntegrationSpec {
  const spec: IntegrationSpecInput = {
    source: { stream: 'ORDERS', subjects: ['orders.created'] },
    transform: { mapping: { id: '/id' } },
    target: { url: 'https://example.com/orders' },
  };
  edit(spec);
  const result = parseIntegrationSpec(spec);
  if (!result.ok) assert.fail(result.error.message);
  return result.spec;
}

function syncSchedule(edit: (spec: SyncScheduleSpecInput) => void = () => undefined) {
  const spec: SyncScheduleSpecInput = {
    schedule: '0 * * * *',
    source: { url: 'https://crm.example.com/contacts' },
    key: '/id',
    target: { url: 'https://erp.example.com/customers/{{/id}}' },
  };
  edit(spec);
  const result = parseSyncScheduleSpec(spec);
  if (!result.ok) assert.fail(result.error.message);
  return result.spec;
}

describe('resolveIntegrationConfig', () => {
  it('turns every duration into milliseconds', () => {
    const config = resolveIntegrationConfig(
      integration((s) => {
        s.delivery = { backoff: { initial: '250ms', max: '1m30s' }, maxElapsed: '2h', retryAfterMax: '90s', circuitBreaker: { window: '45s', openFor: '2m' } };
        s.target.timeout = '1.5s';
        s.fallback = { retention: '7d' };
        s.sla = { deliverWithin: '5m' };
      }),
    );
    assert.deepEqual(config.delivery.backoff, { initialMs: 250, maxMs: 90_000, multiplier: 2, jitter: 'full' });
    assert.equal(config.delivery.maxElapsedMs, 7_200_000);
    assert.equal(config.delivery.retryAfterMaxMs, 90_000);
    assert.deepEqual(config.delivery.circuitBreaker, { failures: 5, windowMs: 45_000, openForMs: 120_000 });
    assert.equal(config.target.timeoutMs, 1_500);
    assert.equal(config.fallback.retentionMs, 604_800_000);
    assert.deepEqual(config.sla, { deliverWithinMs: 300_000, windowMs: 300_000, maxLatePercent: 1 }, 'window and maxLatePercent default to 5m and 1');
    const tuned = resolveIntegrationConfig(integration((s) => { s.sla = { deliverWithin: '200ms', window: '5s', maxLatePercent: 10 }; }));
    assert.deepEqual(tuned.sla, { deliverWithinMs: 200, windowMs: 5_000, maxLatePercent: 10 });
  });

  it('resolves the defaults of a minimal spec', () => {
    const config = resolveIntegrationConfig(integration());
    assert.equal(config.target.timeoutMs, 10_000);
    assert.deepEqual(config.target.idempotency, { header: 'Idempotency-Key', keyTemplate: undefined });
    assert.deepEqual(config.target.headers, {});
    assert.equal(config.target.auth, undefined);
    assert.equal(config.delivery.rateLimit, undefined);
    assert.equal(config.sla, undefined);
    assert.equal(config.schema, undefined);
    assert.deepEqual(config.delivery.retryOn, { statusCodes: [408, 425, 429], serverErrors: true, network: true, timeout: true });
    assert.deepEqual(config.transform, { kind: 'mapping', mapping: { id: '/id' } });
    assert.deepEqual(config.secretRefs, []);
  });

  it('splits retryOn into codes and classes', () => {
    const config = resolveIntegrationConfig(integration((s) => (s.delivery = { retryOn: [503, 429, 503, 'Timeout'] })));
    assert.deepEqual(config.delivery.retryOn, { statusCodes: [429, 503], serverErrors: false, network: false, timeout: true });
  });

  it('fills the burst with one second of requests, at least 1', () => {
    assert.deepEqual(resolveIntegrationConfig(integration((s) => (s.delivery = { rateLimit: { perSecond: 12.5 } }))).delivery.rateLimit, { perSecond: 12.5, burst: 13 });
    assert.deepEqual(resolveIntegrationConfig(integration((s) => (s.delivery = { rateLimit: { perSecond: 0.2 } }))).delivery.rateLimit, { perSecond: 0.2, burst: 1 });
    assert.deepEqual(resolveIntegrationConfig(integration((s) => (s.delivery = { rateLimit: { perSecond: 50, burst: 10 } }))).delivery.rateLimit, { perSecond: 50, burst: 10 });
  });

  it('gives a jsonata transform its time limit', () => {
    assert.deepEqual(resolveIntegrationConfig(integration((s) => (s.transform = { jsonata: 'x' }))).transform, { kind: 'jsonata', expression: 'x', timeoutMs: DEFAULT_TRANSFORM_TIMEOUT_MS });
    assert.deepEqual(resolveIntegrationConfig(integration((s) => (s.transform = { jsonata: 'x', timeout: '50ms' }))).transform, { kind: 'jsonata', expression: 'x', timeoutMs: 50 });
  });

  it('tags each auth kind and lists the Secrets it needs', () => {
    const ref = (key: string) => ({ name: 'api', key });
    const cases: [NonNullable<IntegrationSpecInput['target']['auth']>, unknown, unknown[]][] = [
      [{ bearer: { secretKeyRef: ref('token') } }, { kind: 'bearer', token: ref('token') }, [ref('token')]],
      [
        { basic: { usernameSecretKeyRef: ref('user'), passwordSecretKeyRef: ref('password') } },
        { kind: 'basic', username: ref('user'), password: ref('password') },
        [ref('user'), ref('password')],
      ],
      [{ apiKey: { header: 'X-Api-Key', secretKeyRef: ref('key') } }, { kind: 'apiKey', header: 'X-Api-Key', key: ref('key') }, [ref('key')]],
      [
        { oauth2ClientCredentials: { tokenUrl: 'https://auth.example.com/token', clientId: 'ferry', clientSecretRef: ref('secret') } },
        { kind: 'oauth2ClientCredentials', tokenUrl: 'https://auth.example.com/token', clientId: 'ferry', clientSecret: ref('secret'), scopes: [], audience: undefined },
        [ref('secret')],
      ],
    ];
    for (const [auth, expected, secrets] of cases) {
      const config = resolveIntegrationConfig(integration((s) => (s.target.auth = auth)));
      assert.deepEqual(config.target.auth, expected);
      assert.deepEqual(config.secretRefs, secrets);
    }
  });

  it('resolves webhook settings per signature scheme and lists their Secrets once', () => {
    const standard = resolveIntegrationConfig(
      integration((s) => {
        s.target.auth = { bearer: { secretKeyRef: { name: 'hook', key: 'current' } } };
        s.source.webhook = { subject: 'orders.created', signature: { secretKeyRefs: [{ name: 'hook', key: 'current' }, { name: 'hook', key: 'previous' }] } };
      }),
    );
    assert.deepEqual(standard.source.webhook, {
      subject: 'orders.created',
      signature: {
        scheme: 'standardWebhooks',
        secrets: [{ name: 'hook', key: 'current' }, { name: 'hook', key: 'previous' }],
        header: 'webhook-signature',
        algorithm: 'sha256',
        prefix: '',
        encoding: 'base64',
      },
      idHeader: 'webhook-id',
      toleranceMs: 300_000,
      maxBodyBytes: 1_048_576,
      rateLimit: undefined,
    });
    assert.deepEqual(standard.secretRefs, [{ name: 'hook', key: 'current' }, { name: 'hook', key: 'previous' }]);

    const hmac = resolveIntegrationConfig(
      integration((s) => {
        s.source.webhook = {
          subject: 'orders.created',
          signature: { scheme: 'HMAC', header: 'X-Hub-Signature-256', prefix: 'sha256=', secretKeyRefs: [{ name: 'gh', key: 'secret' }] },
          idHeader: 'X-GitHub-Delivery',
        };
      }),
    );
    assert.ok(hmac.source.webhook);
    assert.equal(hmac.source.webhook.signature.encoding, 'hex');
    assert.equal(hmac.source.webhook.signature.header, 'x-hub-signature-256');
    assert.equal(hmac.source.webhook.signature.algorithm, 'sha256');
    assert.equal(hmac.source.webhook.idHeader, 'x-github-delivery');

    const stripe = resolveIntegrationConfig(
      integration((s) => {
        s.source.webhook = { subject: 'orders.created', signature: { scheme: 'Stripe', secretKeyRefs: [{ name: 'st', key: 'secret' }] }, rateLimit: { perSecond: 2.5 } };
      }),
    );
    assert.ok(stripe.source.webhook);
    assert.deepEqual(
      { header: stripe.source.webhook.signature.header, encoding: stripe.source.webhook.signature.encoding, id: stripe.source.webhook.idHeader },
      { header: 'stripe-signature', encoding: 'hex', id: undefined },
    );
    assert.deepEqual(stripe.source.webhook.rateLimit, { perSecond: 2.5, burst: 3 });
  });

  it('translates the CRD enum values into the vocabulary the runtime and delivery code speak', () => {
    const config = resolveIntegrationConfig(
      integration((s) => {
        s.source.format = 'CloudEvents';
        s.target.encoding = 'Form';
        s.delivery = { backoff: { jitter: 'Equal' }, retryOn: ['Network', '5xx'] };
        s.source.webhook = { subject: 'orders.created', signature: { scheme: 'HMAC', header: 'X-Sig', encoding: 'Base64', secretKeyRefs: [{ name: 'h', key: 'k' }] } };
      }),
    );
    assert.equal(config.source.format, 'cloudevents');
    assert.equal(config.target.encoding, 'form');
    assert.equal(config.delivery.backoff.jitter, 'equal');
    assert.deepEqual(config.delivery.retryOn, { statusCodes: [], serverErrors: true, network: true, timeout: false });
    assert.equal(config.source.webhook?.signature.scheme, 'hmac');
    assert.equal(config.source.webhook.signature.encoding, 'base64');
    const defaults = resolveIntegrationConfig(integration());
    assert.equal(defaults.source.format, 'json');
    assert.equal(defaults.target.encoding, 'json');
    assert.equal(defaults.delivery.backoff.jitter, 'full');
    const none = resolveIntegrationConfig(integration((s) => (s.delivery = { backoff: { jitter: 'None' } })));
    assert.equal(none.delivery.backoff.jitter, 'none');
  });

  it('resolves startAt to where a new consumer starts, New by default', () => {
    assert.deepEqual(resolveIntegrationConfig(integration()).source.startAt, { kind: 'new' });
    assert.deepEqual(resolveIntegrationConfig(integration((s) => (s.source.startAt = 'Beginning'))).source.startAt, { kind: 'beginning' });
    assert.deepEqual(resolveIntegrationConfig(integration((s) => (s.source.startAt = '2024-06-01T14:00:00.250+02:00'))).source.startAt, {
      kind: 'time',
      timeMs: Date.UTC(2024, 5, 1, 12, 0, 0, 250),
    });
  });

  it('resolves an absent transform to undefined (the payload is delivered as is)', () => {
    const config = resolveIntegrationConfig(integration((s) => delete s.transform));
    assert.equal(config.transform, undefined);
  });

  it('lists the ConfigMap a schema comes from', () => {
    const config = resolveIntegrationConfig(integration((s) => (s.schema = { configMapKeyRef: { name: 'schemas', key: 'order.json' } })));
    assert.deepEqual(config.schema, { kind: 'configMap', ref: { name: 'schemas', key: 'order.json' } });
    assert.deepEqual(config.configMapRefs, [{ name: 'schemas', key: 'order.json' }]);
  });

  it('is pure: same spec, same config, input untouched', () => {
    const spec = integration((s) => (s.delivery = { rateLimit: { perSecond: 3 } }));
    const before = structuredClone(spec);
    assert.deepEqual(resolveIntegrationConfig(spec), resolveIntegrationConfig(spec));
    assert.deepEqual(spec, before);
  });

  it('refuses a spec that skipped parsing instead of guessing', () => {
    const spec = integration();
    const broken = { ...spec, transform: {} };
    assert.throws(() => resolveIntegrationConfig(broken), (err: unknown) => err instanceof SpecInvalidError && err.field === 'spec.transform');
  });
});

describe('resolveSyncScheduleConfig', () => {
  it('turns durations into milliseconds and fills pagination and time zone defaults', () => {
    const config = resolveSyncScheduleConfig(
      syncSchedule((s) => {
        s.source.incremental = { param: 'since', field: '/updatedAt', lookback: '5m', safetyLag: '10s' };
        s.source.pagination = { type: 'Page', param: 'page' };
        s.source.timeout = '45s';
      }),
    );
    assert.equal(config.timeZone, 'UTC');
    assert.equal(config.source.timeoutMs, 45_000);
    assert.equal(config.target.timeoutMs, 30_000);
    assert.deepEqual(config.source.incremental, { param: 'since', field: '/updatedAt', format: 'rfc3339', lookbackMs: 300_000, safetyLagMs: 10_000 });
    assert.equal(config.source.pagination?.start, 1);
    assert.equal(config.fallback.retentionMs, 1_209_600_000);
    assert.equal(config.transform, undefined);
    assert.equal(config.batchSize, 1);
  });

  it('translates the CRD enum values of a SyncSchedule', () => {
    const config = resolveSyncScheduleConfig(
      syncSchedule((s) => {
        s.mode = 'Mirror';
        s.target.encoding = 'Form';
        s.source.pagination = { type: 'LinkHeader' };
        s.source.incremental = { param: 'since', field: '/updatedAt', format: 'UnixMillis' };
        s.target.lookup = { url: 'https://erp.example.com/customers', key: '/id', pagination: { type: 'Cursor', cursorPath: '/next', param: 'c' } };
        s.reconcile = { mode: 'Repair', dryRun: true };
      }),
    );
    assert.equal(config.mode, 'mirror');
    assert.equal(config.target.encoding, 'form');
    assert.equal(config.source.pagination?.type, 'linkHeader');
    assert.equal(config.source.incremental?.format, 'unixMillis');
    assert.equal(config.target.lookup?.pagination?.type, 'cursor');
    assert.deepEqual(config.reconcile, { mode: 'repair', dryRun: true });
    const defaults = resolveSyncScheduleConfig(syncSchedule());
    assert.equal(defaults.mode, 'upsert');
    assert.deepEqual(defaults.reconcile, { mode: 'none', dryRun: false });
  });

  it('gives mirror mode delete thresholds even when deletes is left out', () => {
    assert.deepEqual(
      resolveSyncScheduleConfig(
        syncSchedule((s) => {
          s.mode = 'Mirror';
          s.target.lookup = { url: 'https://erp.example.com/customers', key: '/id' };
        }),
      ).deletes, { maxCount: 100, maxPercent: 10 });
    assert.equal(resolveSyncScheduleConfig(syncSchedule()).deletes, undefined);
  });

  it('lists the Secrets of source and target auth without duplicates', () => {
    const config = resolveSyncScheduleConfig(
      syncSchedule((s) => {
        s.source.auth = { bearer: { secretKeyRef: { name: 'shared', key: 'token' } } };
        s.target.auth = { bearer: { secretKeyRef: { name: 'shared', key: 'token' } } };
      }),
    );
    assert.deepEqual(config.secretRefs, [{ name: 'shared', key: 'token' }]);
  });
});
