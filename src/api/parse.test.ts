import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { SpecInvalidError } from './errors.ts';
import { pipelineReplicasOf, type IntegrationSpecInput } from './integration.ts';
import { formatFieldPath, parseIntegrationSpec, parseSyncScheduleSpec, type SpecParseResult } from './parse.ts';
import type { SyncScheduleSpecInput } from './sync-schedule.ts';

const minimalIntegration = (): IntegrationSpecInput => ({
  source: { stream: 'ORDERS', subjects: ['orders.created'] },
  transform: { mapping: { id: '/id' } },
  target: { url: 'https://example.com/orders' },
});

const START_AT_MESSAGE = 'must be Beginning, New or an RFC 3339 time such as 2024-06-01T12:00:00Z';

const minimalSyncSchedule = (): SyncScheduleSpecInput => ({
  schedule: '*/15 * * * *',
  source: { url: 'https://crm.example.com/contacts' },
  key: '/id',
  target: { url: 'https://erp.example.com/customers/{{/id}}' },
});

function withIntegration(edit: (spec: IntegrationSpecInput) => void): unknown {
  const spec = minimalIntegration();
  edit(spec);
  return spec;
}

function withSyncSchedule(edit: (spec: SyncScheduleSpecInput) => void): unknown {
  const spec = minimalSyncSchedule();
  edit(spec);
  return spec;
}

function issues<T>(result: SpecParseResult<T>): string[] {
  if (result.ok) assert.fail('expected the spec to be rejected');
  return result.error.issues.map((i) => `${i.field}: ${i.message}`);
}

function specOf<T>(result: SpecParseResult<T>): T {
  if (!result.ok) assert.fail(result.error.message);
  return result.spec;
}

describe('parseIntegrationSpec', () => {
  it('applies every default to a minimal spec', () => {
    const spec = specOf(parseIntegrationSpec(minimalIntegration()));
    assert.deepEqual(spec, {
      source: { stream: 'ORDERS', subjects: ['orders.created'], format: 'JSON', create: false, startAt: 'New' },
      transform: { mapping: { id: '/id' } },
      target: {
        url: 'https://example.com/orders',
        method: 'POST',
        encoding: 'JSON',
        timeout: '10s',
        idempotency: { header: 'Idempotency-Key' },
        successCodes: [200, 201, 202, 204],
      },
      delivery: {
        concurrency: 8,
        maxAttempts: 5,
        backoff: { initial: '1s', max: '5m', multiplier: 2, jitter: 'Full' },
        maxElapsed: '1h',
        retryAfterMax: '10m',
        retryOn: [408, 425, 429, '5xx', 'Network', 'Timeout'],
        circuitBreaker: { failures: 5, window: '30s', openFor: '60s' },
      },
      fallback: { retention: '14d' },
      suspend: false,
    });
  });

  it('takes spec.runtime.replicas as an integer from 1 to 1000 or All, and the runtime reads it from a raw spec', () => {
    for (const replicas of [1, 1000, 'All'] as const) {
      assert.deepEqual(specOf(parseIntegrationSpec({ ...minimalIntegration(), runtime: { replicas } })).runtime, { replicas });
    }
    for (const replicas of [0, 1001, 2.5, 'all', 'ALL', '2']) {
      const r = parseIntegrationSpec({ ...minimalIntegration(), runtime: { replicas } });
      assert.ok(!r.ok && /must be an integer from 1 to 1000, or All/.test(r.error.message), `${JSON.stringify(replicas)} accepted`);
    }
    assert.equal(pipelineReplicasOf({ runtime: { replicas: 'All' } }), 'all');
    assert.equal(pipelineReplicasOf({ runtime: { replicas: 3 } }), 3);
    assert.equal(pipelineReplicasOf({ runtime: {} }), undefined);
    assert.equal(pipelineReplicasOf({ runtime: { replicas: 0 } }), undefined, 'invalid: the operator default applies');
    assert.equal(pipelineReplicasOf(undefined), undefined);
  });

  it('takes an Integration without transform: the payload is delivered as is', () => {
    const spec = specOf(parseIntegrationSpec(withIntegration((s) => delete s.transform)));
    assert.equal(spec.transform, undefined);
  });

  it('gives each parse its own default objects', () => {
    const a = specOf(parseIntegrationSpec(minimalIntegration()));
    a.delivery.retryOn.push(500);
    a.target.successCodes.push(299);
    const b = specOf(parseIntegrationSpec(minimalIntegration()));
    assert.deepEqual(b.delivery.retryOn, [408, 425, 429, '5xx', 'Network', 'Timeout']);
    assert.deepEqual(b.target.successCodes, [200, 201, 202, 204]);
  });

  it('keeps what the user wrote over the defaults', () => {
    const spec = specOf(
      parseIntegrationSpec(
        withIntegration((s) => {
          s.delivery = { backoff: { initial: '200ms' }, retryOn: [503] };
          s.target.method = 'PUT';
        }),
      ),
    );
    assert.deepEqual(spec.delivery.backoff, { initial: '200ms', max: '5m', multiplier: 2, jitter: 'Full' });
    assert.deepEqual(spec.delivery.retryOn, [503]);
    assert.equal(spec.target.method, 'PUT');
  });

  it('names the field and says what is wrong, in the Stalled-condition format', () => {
    const result = parseIntegrationSpec(withIntegration((s) => (s.delivery = { backoff: { initial: '5 seconds' } })));
    if (result.ok) assert.fail('expected the spec to be rejected');
    assert.ok(result.error instanceof SpecInvalidError);
    assert.equal(result.error.code, 'FERRY_SPEC_INVALID');
    assert.equal(result.error.retryable, false);
    assert.equal(result.error.kind, 'Integration');
    assert.equal(result.error.field, 'spec.delivery.backoff.initial');
    assert.equal(result.error.detail, 'must be a duration such as 500ms, 30s or 5m');
    assert.equal(result.error.message, 'spec.delivery.backoff.initial: must be a duration such as 500ms, 30s or 5m');
  });

  it('lists every problem, with indexes and map keys in the path', () => {
    const spec = {
      source: { stream: 'BAD NAME', subjects: [] },
      transform: { mapping: { id: 'id' } },
      target: { url: 'ftp://example.com', headers: { 'bad header': 'x' } },
      delivery: { retryOn: [429, 200], concurrency: 0 },
      extra: true,
    };
    assert.deepEqual(issues(parseIntegrationSpec(spec)), [
      'spec.source.stream: must be a JetStream stream name (no whitespace, ".", "*", ">", "/" or "\\")',
      'spec.source.subjects: must have at least 1 item',
      'spec.transform.mapping.id: must be a JSON Pointer such as /id or /customer/id',
      'spec.target.url: must be an http(s) URL without user info; {{/pointer}} templates are allowed after the host',
      'spec.target.headers[bad header]: key must be an HTTP header name',
      'spec.delivery.concurrency: must be at least 1',
      'spec.delivery.retryOn[1]: must be an HTTP status code from 400 to 599, "5xx", "Network" or "Timeout"',
      'spec.extra: unknown field "extra"',
    ]);
  });

  it('reports missing required fields and wrong types', () => {
    assert.deepEqual(issues(parseIntegrationSpec({})), ['spec.source: is required', 'spec.target: is required']);
    assert.deepEqual(issues(parseIntegrationSpec(withIntegration((s) => Object.assign(s, { suspend: 'yes' })))), ['spec.suspend: must be a boolean']);
    assert.deepEqual(issues(parseIntegrationSpec(withIntegration((s) => Object.assign(s.target, { encoding: 'xml' })))), [
      'spec.target.encoding: must be one of "JSON", "Form"',
    ]);
  });

  it('never throws, whatever it is given', () => {
    for (const raw of [undefined, null, 42, 'spec', [], { source: null }]) {
      const result = parseIntegrationSpec(raw);
      if (result.ok) assert.fail(`accepted ${JSON.stringify(raw)}`);
      assert.match(result.error.message, /^spec/);
    }
  });

  describe('cross-field rules', () => {
    const cases: [string, (s: IntegrationSpecInput) => void, string][] = [
      ['both transforms', (s) => (s.transform = { mapping: {}, jsonata: 'x' }), 'spec.transform: transform must set exactly one of mapping or jsonata'],
      ['no transform kind', (s) => (s.transform = {}), 'spec.transform: transform must set exactly one of mapping or jsonata'],
      [
        'two schema sources',
        (s) => (s.schema = { inline: {}, configMapKeyRef: { name: 'schemas', key: 'a.json' } }),
        'spec.schema: schema must set exactly one of inline or configMapKeyRef',
      ],
      ['no auth kind', (s) => (s.target.auth = {}), 'spec.target.auth: auth must set exactly one of bearer, basic, apiKey or oauth2ClientCredentials'],
      ['backoff initial above max', (s) => (s.delivery = { backoff: { initial: '2d', max: '47h' } }), 'spec.delivery.backoff.initial: initial must not be greater than max'],
      ['success code 404', (s) => (s.target.successCodes = [201, 404]), 'spec.target.successCodes: must contain only 2xx status codes (200-299)'],
      ['Authorization header in any case', (s) => (s.target.headers = { AUTHORIZATION: 'x' }), 'spec.target.headers: must not set Authorization; use auth with a secretKeyRef'],
      ['zero timeout', (s) => (s.target.timeout = '0ms'), 'spec.target.timeout: must be greater than 0'],
      [
        'HMAC webhook without header',
        (s) => (s.source.webhook = { subject: 'orders.created', signature: { scheme: 'HMAC', secretKeyRefs: [{ name: 'hook', key: 'k' }] } }),
        'spec.source.webhook.signature.header: HMAC signatures need header (the request header that carries the signature)',
      ],
      [
        'Standard Webhooks signature with an HMAC-only field',
        (s) => (s.source.webhook = { subject: 'orders.created', signature: { prefix: 'sha256=', secretKeyRefs: [{ name: 'hook', key: 'k' }] } }),
        'spec.source.webhook.signature: header, algorithm, prefix and encoding apply only to scheme HMAC (StandardWebhooks and Stripe fix their own)',
      ],
      [
        'webhook subject with a wildcard',
        (s) => (s.source.webhook = { subject: 'orders.*', signature: { secretKeyRefs: [{ name: 'hook', key: 'k' }] } }),
        'spec.source.webhook.subject: must be a NATS subject without wildcards',
      ],
      ['templated host', (s) => (s.target.url = 'https://{{/host}}/x'), 'spec.target.url: must be an http(s) URL without user info; {{/pointer}} templates are allowed after the host'],
      ['user info in the URL', (s) => (s.target.url = 'https://user:pw@example.com/x'), 'spec.target.url: must be an http(s) URL without user info; {{/pointer}} templates are allowed after the host'],
      ['too many subjects', (s) => (s.source.subjects = Array.from({ length: 17 }, (_, i) => `s.${i}`)), 'spec.source.subjects: must have at most 16 items'],
      ['burst 0', (s) => (s.delivery = { rateLimit: { perSecond: 5, burst: 0 } }), 'spec.delivery.rateLimit.burst: must be at least 1'],
      ['secretKeyRef without key', (s) => (s.target.auth = { bearer: { secretKeyRef: { name: 'api' } as { name: string; key: string } } }), 'spec.target.auth.bearer.secretKeyRef.key: is required'],
      ['startAt that is neither Beginning, New nor a time', (s) => (s.source.startAt = 'Yesterday'), `spec.source.startAt: ${START_AT_MESSAGE}`],
      ['startAt as a date without a time', (s) => (s.source.startAt = '2024-06-01'), `spec.source.startAt: ${START_AT_MESSAGE}`],
      ['startAt without a time zone', (s) => (s.source.startAt = '2024-06-01T12:00:00'), `spec.source.startAt: ${START_AT_MESSAGE}`],
      ['startAt on a day that does not exist', (s) => (s.source.startAt = '2023-02-29T00:00:00Z'), `spec.source.startAt: ${START_AT_MESSAGE}`],
      ['startAt in lower case', (s) => (s.source.startAt = 'beginning'), `spec.source.startAt: ${START_AT_MESSAGE}`],
      ['a lower-case enum value from before the CamelCase rename', (s) => (s.delivery = { backoff: { jitter: 'full' as 'Full' } }), 'spec.delivery.backoff.jitter: must be one of "Full", "Equal", "None"'],
    ];
    for (const [name, edit, expected] of cases) {
      it(`rejects ${name}`, () => {
        assert.deepEqual(issues(parseIntegrationSpec(withIntegration(edit))), [expected]);
      });
    }

    it('accepts the valid neighbours of those cases', () => {
      const spec = specOf(
        parseIntegrationSpec(
          withIntegration((s) => {
            s.transform = { jsonata: '{ "id": id }', timeout: '250ms' };
            s.schema = { configMapKeyRef: { name: 'schemas', key: 'order.json' } };
            s.target.url = 'https://example.com/accounts/{{/account/id}}/orders?src={{/source}}';
            s.target.auth = { basic: { usernameSecretKeyRef: { name: 'api', key: 'user' }, passwordSecretKeyRef: { name: 'api', key: 'password' } } };
            s.target.headers = { 'X-Api-Version': '2024-06-01' };
            s.delivery = { backoff: { initial: '1d', max: '1d' }, retryOn: [500, '5xx'] };
            s.source.webhook = {
              subject: 'orders.created',
              signature: { scheme: 'HMAC', header: 'X-Hub-Signature-256', prefix: 'sha256=', secretKeyRefs: [{ name: 'hook', key: 'new' }, { name: 'hook', key: 'old' }] },
            };
          }),
        ),
      );
      assert.ok(spec.source.webhook);
      assert.equal(spec.source.webhook.tolerance, '5m');
      for (const startAt of ['Beginning', 'New', '2024-06-01T12:00:00Z', '2024-02-29T23:59:59.5+02:00']) {
        assert.equal(specOf(parseIntegrationSpec(withIntegration((s) => (s.source.startAt = startAt)))).source.startAt, startAt);
      }
      assert.equal(spec.source.webhook.maxBodyBytes, 1_048_576);
    });
  });
});

describe('parseSyncScheduleSpec', () => {
  it('applies every default to a minimal spec', () => {
    assert.deepEqual(specOf(parseSyncScheduleSpec(minimalSyncSchedule())), {
      schedule: '*/15 * * * *',
      suspend: false,
      concurrencyPolicy: 'Forbid',
      source: { url: 'https://crm.example.com/contacts', timeout: '30s', recordsPath: '' },
      key: '/id',
      target: { url: 'https://erp.example.com/customers/{{/id}}', method: 'PUT', encoding: 'JSON', timeout: '30s', successCodes: [200, 201, 202, 204] },
      mode: 'Upsert',
      batch: { size: 1, itemsPath: '/records', resultsPath: '/results', itemStatusPath: '/status' },
      reconcile: { mode: 'None', dryRun: false },
      failedRecords: { maxAttempts: 5 },
      fallback: { retention: '14d' },
    });
  });

  it('fills defaults inside optional objects that are present', () => {
    const spec = specOf(
      parseSyncScheduleSpec(
        withSyncSchedule((s) => {
          s.source.incremental = { param: 'updated_since', field: '/updatedAt' };
          s.source.pagination = { type: 'LinkHeader' };
          s.mode = 'Mirror';
          s.deletes = {};
          s.target.lookup = { url: 'https://erp.example.com/customers', key: '/id' };
        }),
      ),
    );
    assert.deepEqual(spec.source.incremental, { param: 'updated_since', field: '/updatedAt', format: 'RFC3339', lookback: '1m', safetyLag: '30s' });
    assert.deepEqual(spec.source.pagination, { type: 'LinkHeader', maxPages: 10_000 });
    assert.deepEqual(spec.deletes, { maxCount: 100, maxPercent: 10 });
  });

  const cases: [string, (s: SyncScheduleSpecInput) => void, string][] = [
    ['a schedule croner cannot parse', (s) => (s.schedule = '61 * * * *'), 'spec.schedule: must be a cron expression with 5 fields (such as */15 * * * *), 6 with seconds first (such as 0 */15 * * * *), or @hourly, @daily, @weekly, @monthly, @yearly'],
    ['a seven-field schedule', (s) => (s.schedule = '0 0 * * * * 2027'), 'spec.schedule: must be a cron expression with 5 fields (such as */15 * * * *), 6 with seconds first (such as 0 */15 * * * *), or @hourly, @daily, @weekly, @monthly, @yearly'],
    ['an unknown time zone', (s) => (s.timeZone = 'Mars/Olympus'), 'spec.timeZone: must be an IANA time zone such as Europe/Berlin'],
    ['concurrencyPolicy Allow', (s) => (s.concurrencyPolicy = 'Allow' as 'Forbid'), 'spec.concurrencyPolicy: must be one of "Forbid", "Replace"'],
    ['batch size 0', (s) => (s.batch = { size: 0 }), 'spec.batch.size: must be at least 1'],
    ['batches against a per-record URL', (s) => (s.batch = { size: 10 }), 'spec.batch.size: batch.size above 1 needs a batch endpoint: target.url must not template from the record'],
    ['deletes outside mirror mode', (s) => (s.deletes = { maxCount: 5 }), 'spec.deletes: deletes applies only to mode Mirror'],
    ['reconcile without lookup', (s) => (s.reconcile = { mode: 'Report' }), 'spec.target.lookup: reconcile needs target.lookup to read the target'],
    [
      'dryRun outside repair',
      (s) => {
        s.target.lookup = { url: 'https://erp.example.com/customers', key: '/id' };
        s.reconcile = { mode: 'Report', dryRun: true };
      },
      'spec.reconcile.dryRun: dryRun applies only to mode Repair',
    ],
    ['cursor pagination without cursorPath', (s) => (s.source.pagination = { type: 'Cursor', param: 'c' }), 'spec.source.pagination: Cursor pagination needs cursorPath and param'],
    ['page pagination without param', (s) => (s.source.pagination = { type: 'Page' }), 'spec.source.pagination.param: Page and Offset pagination need param'],
    ['maxPercent above 100', (s) => {
      s.mode = 'Mirror';
      s.deletes = { maxPercent: 150 };
    }, 'spec.deletes.maxPercent: must be at most 100'],
    ['a key that is not a pointer', (s) => (s.key = 'id'), 'spec.key: must be a JSON Pointer to a field, such as /id'],
    // What a YAML 1.1 reader (kubectl, Helm, Argo CD, Flux) makes of an unquoted `mode: off`.
    ['reconcile.mode read as a YAML 1.1 boolean', (s) => (s.reconcile = { mode: false as unknown as 'None' }), 'spec.reconcile.mode: must be one of "None", "Report", "Repair"'],
  ];
  for (const [name, edit, expected] of cases) {
    it(`rejects ${name}`, () => {
      assert.deepEqual(issues(parseSyncScheduleSpec(withSyncSchedule(edit))), [expected]);
    });
  }

  it('accepts batches against a batch endpoint and reconcile with a lookup', () => {
    const spec = specOf(
      parseSyncScheduleSpec(
        withSyncSchedule((s) => {
          s.target = { url: 'https://erp.example.com/customers/batch', method: 'POST', lookup: { url: 'https://erp.example.com/customers', key: '/id' } };
          s.batch = { size: 100 };
          s.reconcile = { mode: 'Repair', dryRun: true };
          s.timeZone = 'Europe/Berlin';
          s.schedule = '@hourly';
        }),
      ),
    );
    assert.equal(spec.batch.size, 100);
    assert.equal(spec.target.lookup?.recordsPath, '');
  });

  it('reports a SyncSchedule error with its kind', () => {
    const result = parseSyncScheduleSpec({});
    if (result.ok) assert.fail('accepted an empty spec');
    assert.equal(result.error.kind, 'SyncSchedule');
    assert.equal(result.error.message, 'spec.schedule: is required');
  });
});

describe('the examples', () => {
  for (const [path, parseSpec] of [
    ['examples/integration.yaml', parseIntegrationSpec],
    ['examples/webhook.yaml', parseIntegrationSpec],
    ['examples/sync-schedule.yaml', parseSyncScheduleSpec],
  ] as const) {
    it(`${path} is a valid spec`, () => {
      const doc = parse(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')) as { apiVersion: string; spec: unknown };
      assert.equal(doc.apiVersion, 'ferry.dev/v1alpha1');
      const result = parseSpec(doc.spec);
      assert.ok(result.ok, result.ok ? '' : result.error.message);
    });
  }
});

describe('the YAML manifests in README.md', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const blocks = [...readme.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '');

  it('has some', () => {
    assert.ok(blocks.length > 0);
  });

  for (const [i, block] of blocks.entries()) {
    it(`block ${i + 1} is a valid spec, read the same by YAML 1.1 and 1.2 readers`, () => {
      // kubectl, Helm, Argo CD and Flux read YAML 1.1.
      const doc = parse(block, { version: '1.1' }) as { kind?: string; spec?: unknown };
      assert.deepEqual(doc, parse(block, { version: '1.2' }));
      const parseSpec = doc.kind === 'Integration' ? parseIntegrationSpec : doc.kind === 'SyncSchedule' ? parseSyncScheduleSpec : undefined;
      assert.ok(parseSpec, `block ${i + 1} is neither an Integration nor a SyncSchedule`);
      const result = parseSpec(doc.spec);
      assert.ok(result.ok, result.ok ? '' : result.error.message);
    });
  }
});

describe('formatFieldPath', () => {
  it('writes indexes and non-identifier keys in brackets, like Kubernetes', () => {
    assert.equal(formatFieldPath([]), 'spec');
    assert.equal(formatFieldPath(['delivery', 'backoff', 'initial']), 'spec.delivery.backoff.initial');
    assert.equal(formatFieldPath(['source', 'subjects', 3]), 'spec.source.subjects[3]');
    assert.equal(formatFieldPath(['target', 'headers', 'X-Api-Version']), 'spec.target.headers[X-Api-Version]');
    assert.equal(formatFieldPath(['a'], 'status'), 'status.a');
  });
});
