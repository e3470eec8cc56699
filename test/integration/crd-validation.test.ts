/**
 * The generated CRDs (crds/*.yaml, as committed) against a real kube-apiserver: they install,
 * the examples are accepted with the same defaults the zod parser applies, and invalid specs are
 * refused with HTTP 422 and a message naming the field — by the OpenAPI schema or by our CEL
 * rules. Every invalid case is also checked against the zod parser, so the two layers are
 * shown to agree on what is valid and where the problem is.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ApiException, ApiextensionsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { parse } from 'yaml';
import {
  GROUP,
  INTEGRATION,
  SYNC_SCHEDULE,
  VERSION,
  parseIntegrationSpec,
  parseSyncScheduleSpec,
  type IntegrationSpecInput,
  type SyncScheduleSpecInput,
} from '../../src/api/index.ts';
import { startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { installCrds } from '../support/crds.ts';

const root = new URL('../../', import.meta.url);
const namespace = 'crd-validation';

type Kind = typeof INTEGRATION | typeof SYNC_SCHEDULE;
type Json = Record<string, unknown>;

function readYaml(path: string): Json {
  const doc: unknown = parse(readFileSync(new URL(path, root), 'utf8'));
  assert.ok(typeof doc === 'object' && doc !== null && !Array.isArray(doc), `${path} is not a YAML object`);
  return doc as Json;
}

function exampleSpec(path: string): unknown {
  return structuredClone(readYaml(path).spec);
}

const minimalIntegration = (): IntegrationSpecInput => ({
  source: { stream: 'ORDERS', subjects: ['orders.created'] },
  transform: { mapping: { id: '/id' } },
  target: { url: 'https://example.com/orders' },
});

const minimalSyncSchedule = (): SyncScheduleSpecInput => ({
  schedule: '0 * * * *',
  source: { url: 'https://crm.example.com/contacts' },
  key: '/id',
  target: { url: 'https://erp.example.com/customers/{{/id}}' },
});

interface Rejection {
  readonly name: string;
  readonly kind: Kind;
  readonly spec: IntegrationSpecInput | SyncScheduleSpecInput;
  /** Field path the API server and the zod parser must both name. */
  readonly field: string;
  /** Text the API server's message must contain (our CEL message, or the server's wording). */
  readonly text: string;
}

function integration(name: string, field: string, text: string, edit: (spec: IntegrationSpecInput) => void): Rejection {
  const spec = minimalIntegration();
  edit(spec);
  return { name, kind: INTEGRATION, spec, field, text };
}

function syncSchedule(name: string, field: string, text: string, edit: (spec: SyncScheduleSpecInput) => void): Rejection {
  const spec = minimalSyncSchedule();
  edit(spec);
  return { name, kind: SYNC_SCHEDULE, spec, field, text };
}

// Deliberately invalid specs are built by deleting or overwriting fields the types require.
const unsafe = (o: object): Json => o as Json;

const rejections: Rejection[] = [
  integration('missing target', 'spec.target', 'Required value', (s) => {
    delete unsafe(s).target;
  }),
  integration('both transforms set', 'spec.transform', 'transform must set exactly one of mapping or jsonata', (s) => {
    s.transform = { mapping: { id: '/id' }, jsonata: '{ "id": id }' };
  }),
  integration('no transform kind set', 'spec.transform', 'transform must set exactly one of mapping or jsonata', (s) => {
    s.transform = {};
  }),
  integration('zero maxAttempts', 'spec.delivery.maxAttempts', 'should be greater than or equal to 1', (s) => {
    s.delivery = { maxAttempts: 0 };
  }),
  integration('negative concurrency', 'spec.delivery.concurrency', 'should be greater than or equal to 1', (s) => {
    s.delivery = { concurrency: -4 };
  }),
  integration('backoff initial above max', 'spec.delivery.backoff.initial', 'initial must not be greater than max', (s) => {
    s.delivery = { backoff: { initial: '10m', max: '5m' } };
  }),
  integration('backoff initial above max by milliseconds', 'spec.delivery.backoff.initial', 'initial must not be greater than max', (s) => {
    s.delivery = { backoff: { initial: '1500ms', max: '1s' } };
  }),
  integration('backoff initial in days above max in hours', 'spec.delivery.backoff.initial', 'initial must not be greater than max', (s) => {
    s.delivery = { backoff: { initial: '1d2h', max: '25h' } };
  }),
  integration('backoff initial above the default max', 'spec.delivery.backoff.initial', 'initial must not be greater than max', (s) => {
    s.delivery = { backoff: { initial: '6m' } };
  }),
  integration('unknown encoding', 'spec.target.encoding', 'Unsupported value: "xml"', (s) => {
    s.target.encoding = 'xml' as 'JSON';
  }),
  integration('oversize URL', 'spec.target.url', 'Too long', (s) => {
    s.target.url = `https://example.com/${'a'.repeat(2_100)}`;
  }),
  integration('URL with a templated host', 'spec.target.url', '{{/pointer}} templates are allowed after the host', (s) => {
    s.target.url = 'https://{{/tenant}}.example.com/orders';
  }),
  integration('non-2xx success code', 'spec.target.successCodes', 'must contain only 2xx status codes (200-299)', (s) => {
    s.target.successCodes = [200, 404];
  }),
  integration('secretKeyRef without key', 'spec.target.auth.bearer.secretKeyRef.key', 'Required value', (s) => {
    s.target.auth = { bearer: { secretKeyRef: { name: 'billing-api' } as { name: string; key: string } } };
  }),
  integration('two auth kinds', 'spec.target.auth', 'auth must set exactly one of bearer, basic, apiKey or oauth2ClientCredentials', (s) => {
    s.target.auth = {
      bearer: { secretKeyRef: { name: 'a', key: 'token' } },
      apiKey: { header: 'X-Api-Key', secretKeyRef: { name: 'b', key: 'key' } },
    };
  }),
  integration('no auth kind', 'spec.target.auth', 'auth must set exactly one of bearer, basic, apiKey or oauth2ClientCredentials', (s) => {
    s.target.auth = {};
  }),
  integration('Authorization in headers', 'spec.target.headers', 'must not set Authorization', (s) => {
    s.target.headers = { Authorization: 'Bearer s3cr3t' };
  }),
  integration('malformed duration', 'spec.target.timeout', 'must be a duration such as 500ms, 30s or 5m', (s) => {
    s.target.timeout = '10 seconds';
  }),
  integration('zero duration', 'spec.target.timeout', 'must be greater than 0', (s) => {
    s.target.timeout = '0s';
  }),
  integration('too many subjects', 'spec.source.subjects', 'Too many', (s) => {
    s.source.subjects = Array.from({ length: 17 }, (_, i) => `orders.s${i}`);
  }),
  integration('schema both inline and from a ConfigMap', 'spec.schema', 'schema must set exactly one of inline or configMapKeyRef', (s) => {
    s.schema = { inline: { type: 'object' }, configMapKeyRef: { name: 'schemas', key: 'order.json' } };
  }),
  integration('rate limit burst 0', 'spec.delivery.rateLimit.burst', 'should be greater than or equal to 1', (s) => {
    s.delivery = { rateLimit: { perSecond: 10, burst: 0 } };
  }),
  integration('retryOn a 2xx code', 'spec.delivery.retryOn[1]', 'must be an HTTP status code from 400 to 599', (s) => {
    s.delivery = { retryOn: [429, 200] };
  }),
  integration('retryOn an unknown word', 'spec.delivery.retryOn[0]', 'must be an HTTP status code from 400 to 599', (s) => {
    s.delivery = { retryOn: ['sometimes' as 'Network'] };
  }),
  integration('runtime.replicas 0', 'spec.runtime.replicas', 'must be an integer from 1 to 1000, or All', (s) => {
    s.runtime = { replicas: 0 };
  }),
  integration('runtime.replicas a word other than All', 'spec.runtime.replicas', 'must be an integer from 1 to 1000, or All', (s) => {
    s.runtime = { replicas: 'all' as 'All' };
  }),
  integration('startAt that is neither Beginning, New nor a time', 'spec.source.startAt', 'must be Beginning, New or an RFC 3339 time', (s) => {
    s.source.startAt = '2024-06-01';
  }),
  integration('HMAC webhook without signature header', 'spec.source.webhook.signature.header', 'HMAC signatures need header', (s) => {
    s.source.webhook = { subject: 'orders.created', signature: { scheme: 'HMAC', secretKeyRefs: [{ name: 'hook', key: 'secret' }] } };
  }),
  integration('Standard Webhooks signature with an HMAC-only field', 'spec.source.webhook.signature', 'header, algorithm, prefix and encoding apply only to scheme HMAC', (s) => {
    s.source.webhook = { subject: 'orders.created', signature: { encoding: 'Hex', secretKeyRefs: [{ name: 'hook', key: 'secret' }] } };
  }),
  syncSchedule('unknown concurrencyPolicy', 'spec.concurrencyPolicy', 'Unsupported value: "Allow"', (s) => {
    s.concurrencyPolicy = 'Allow' as 'Forbid';
  }),
  syncSchedule('batch size 0', 'spec.batch.size', 'should be greater than or equal to 1', (s) => {
    s.batch = { size: 0 };
  }),
  syncSchedule('batches against a per-record URL', 'spec.batch.size', 'batch.size above 1 needs a batch endpoint', (s) => {
    s.batch = { size: 50 };
  }),
  syncSchedule('deletes outside mirror mode', 'spec.deletes', 'deletes applies only to mode Mirror', (s) => {
    s.deletes = { softDeleteField: '/deleted' };
  }),
  syncSchedule('reconcile without a lookup', 'spec.target.lookup', 'reconcile needs target.lookup', (s) => {
    s.reconcile = { mode: 'Repair' };
  }),
  syncSchedule('dry run outside repair mode', 'spec.reconcile.dryRun', 'dryRun applies only to mode Repair', (s) => {
    s.target.lookup = { url: 'https://erp.example.com/customers', key: '/id' };
    s.reconcile = { mode: 'Report', dryRun: true };
  }),
  syncSchedule('cursor pagination without cursorPath', 'spec.source.pagination', 'Cursor pagination needs cursorPath and param', (s) => {
    s.source.pagination = { type: 'Cursor', param: 'cursor' };
  }),
  syncSchedule('schedule that is not cron', 'spec.schedule', 'must be a cron expression with 5 fields', (s) => {
    s.schedule = 'every five minutes';
  }),
  syncSchedule('missing key', 'spec.key', 'Required value', (s) => {
    delete unsafe(s).key;
  }),
];

function errorText(err: unknown): { code: number; message: string } {
  if (!(err instanceof ApiException)) throw err;
  const body: unknown = typeof err.body === 'string' ? JSON.parse(err.body) : err.body;
  const message = typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string' ? body.message : String(err.body);
  return { code: err.code, message };
}

describe('generated CRDs on a real API server', () => {
  let env: ControlPlane;
  let custom: CustomObjectsApi;
  let crdApi: ApiextensionsV1Api;
  let counter = 0;

  async function create(kind: Kind, spec: unknown, name = `obj-${++counter}`): Promise<Json> {
    const body = { apiVersion: `${GROUP}/${VERSION}`, kind: kind.kind, metadata: { name }, spec };
    const created: unknown = await custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: kind.plural, body });
    return created as Json;
  }

  async function get(kind: Kind, name: string): Promise<Json> {
    const read: unknown = await custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: kind.plural, name });
    return read as Json;
  }

  before(async () => {
    env = await startControlPlane({ nats: false });
    crdApi = env.kubeConfig.makeApiClient(ApiextensionsV1Api);
    custom = env.kubeConfig.makeApiClient(CustomObjectsApi);
    await env.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });

    // The committed files, installed as users do (kubectl apply -f crds/, wait Established).
    await installCrds(env);
    const deadline = Date.now() + 60_000;
    for (const kind of [INTEGRATION, SYNC_SCHEDULE]) {
      // Established can precede the first successful list by a moment.
      for (;;) {
        try {
          await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: kind.plural });
          break;
        } catch (err) {
          assert.ok(Date.now() < deadline, `${kind.plural} not served: ${String(err)}`);
          await sleep(100);
        }
      }
    }
  });

  after(async () => {
    await env.stop();
  });

  it('installs both kinds with short names, the ferry category, printer columns and a status subresource', async () => {
    const ig = await crdApi.readCustomResourceDefinition({ name: INTEGRATION.crdName });
    const ss = await crdApi.readCustomResourceDefinition({ name: SYNC_SCHEDULE.crdName });
    assert.deepEqual(ig.spec.names.shortNames, ['ig']);
    assert.deepEqual(ss.spec.names.shortNames, ['ss']);
    assert.deepEqual(ig.spec.names.categories, ['ferry']);
    assert.deepEqual(ss.spec.names.categories, ['ferry']);
    const [igVersion] = ig.spec.versions;
    const [ssVersion] = ss.spec.versions;
    assert.ok(igVersion?.subresources?.status, 'Integration has a status subresource');
    assert.ok(ssVersion?.subresources?.status, 'SyncSchedule has a status subresource');
    assert.deepEqual(igVersion.additionalPrinterColumns?.map((c) => c.name), ['Ready', 'Reason', 'Delivered', 'Fallback', 'Suspended', 'Age']);
    assert.deepEqual(ssVersion.additionalPrinterColumns?.map((c) => c.name), ['Ready', 'Reason', 'Last run', 'Result', 'Next run', 'Fallback', 'Schedule', 'Suspended', 'Age']);
  });

  for (const [kind, path, parseSpec] of [
    [INTEGRATION, 'examples/integration.yaml', parseIntegrationSpec],
    [INTEGRATION, 'examples/webhook.yaml', parseIntegrationSpec],
    [SYNC_SCHEDULE, 'examples/sync-schedule.yaml', parseSyncScheduleSpec],
  ] as const) {
    it(`accepts ${path} and defaults it exactly as the zod parser does`, async () => {
      const manifest = readYaml(path);
      const spec = exampleSpec(path);
      const name = `example-${path.slice('examples/'.length, -'.yaml'.length)}`;
      const created = await create(kind, spec, name);
      const parsed = parseSpec(spec);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.error.message);
      assert.deepEqual(created.spec, JSON.parse(JSON.stringify(parsed.spec)));
      assert.equal(manifest.kind, kind.kind);
      // The status default closes kstatus's "no status yet = Current" race.
      const read = await get(kind, name);
      assert.deepEqual(read.status, { observedGeneration: -1 });
    });
  }

  it('fills nested defaults into a minimal Integration', async () => {
    const created = await create(INTEGRATION, minimalIntegration());
    const spec = created.spec as {
      target: { method: string; encoding: string; timeout: string; idempotency: { header: string } };
      delivery: { maxAttempts: number; backoff: { initial: string; max: string; jitter: string }; circuitBreaker: { failures: number } };
      fallback: { retention: string };
      suspend: boolean;
    };
    assert.equal(spec.target.method, 'POST');
    assert.equal(spec.target.encoding, 'JSON');
    assert.equal(spec.target.idempotency.header, 'Idempotency-Key');
    assert.equal(spec.delivery.maxAttempts, 5);
    assert.deepEqual([spec.delivery.backoff.initial, spec.delivery.backoff.max, spec.delivery.backoff.jitter], ['1s', '5m', 'Full']);
    assert.equal(spec.delivery.circuitBreaker.failures, 5);
    assert.equal(spec.fallback.retention, '14d');
    assert.equal(spec.suspend, false);
    const parsed = parseIntegrationSpec(minimalIntegration());
    assert.ok(parsed.ok);
    assert.deepEqual(created.spec, JSON.parse(JSON.stringify(parsed.spec)));
  });

  it('fills nested defaults into a minimal SyncSchedule', async () => {
    const created = await create(SYNC_SCHEDULE, minimalSyncSchedule());
    const parsed = parseSyncScheduleSpec(minimalSyncSchedule());
    assert.ok(parsed.ok);
    assert.deepEqual(created.spec, JSON.parse(JSON.stringify(parsed.spec)));
    const spec = created.spec as { concurrencyPolicy: string; mode: string; batch: { size: number }; reconcile: { mode: string } };
    assert.equal(spec.concurrencyPolicy, 'Forbid');
    assert.equal(spec.mode, 'Upsert');
    assert.equal(spec.batch.size, 1);
    assert.equal(spec.reconcile.mode, 'None');
  });

  it('accepts an Integration without transform and defaults startAt to New, as the zod parser does', async () => {
    const spec = minimalIntegration();
    delete spec.transform;
    const created = await create(INTEGRATION, spec);
    const parsed = parseIntegrationSpec(spec);
    assert.ok(parsed.ok);
    assert.deepEqual(created.spec, JSON.parse(JSON.stringify(parsed.spec)));
    assert.equal((created.spec as { source: { startAt: string } }).source.startAt, 'New');
    assert.equal((created.spec as { transform?: unknown }).transform, undefined);
  });

  it('refuses to change startAt once set, and says how to rewind', async () => {
    const spec = minimalIntegration();
    spec.source.startAt = '2024-06-01T12:00:00Z';
    const name = `start-at-${++counter}`;
    await create(INTEGRATION, spec, name);
    const object = await get(INTEGRATION, name);
    (object.spec as { source: { startAt: string } }).source.startAt = 'Beginning';
    const outcome = await custom
      .replaceNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: INTEGRATION.plural, name, body: object })
      .then(
        () => undefined,
        (err: unknown) => errorText(err),
      );
    assert.ok(outcome, 'the API server accepted a new startAt');
    assert.equal(outcome.code, 422, outcome.message);
    assert.ok(outcome.message.includes('spec.source.startAt'), outcome.message);
    assert.ok(outcome.message.includes('startAt is immutable'), outcome.message);
    assert.ok(outcome.message.includes('delete the Integration and create it again'), outcome.message);
    // Other fields still change.
    const again = await get(INTEGRATION, name);
    (again.spec as { suspend: boolean }).suspend = true;
    await custom.replaceNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: INTEGRATION.plural, name, body: again });
    assert.equal(((await get(INTEGRATION, name)).spec as { source: { startAt: string } }).source.startAt, '2024-06-01T12:00:00Z');
  });

  it('accepts spec.runtime.replicas as a number or All, as the zod parser does', async () => {
    for (const replicas of [3, 'All'] as const) {
      const spec = { ...minimalIntegration(), runtime: { replicas } };
      const created = await create(INTEGRATION, spec);
      assert.ok(parseIntegrationSpec(spec).ok);
      assert.deepEqual((created.spec as { runtime?: unknown }).runtime, { replicas });
    }
  });

  it('accepts durations in days that CEL compares correctly', async () => {
    const spec = minimalIntegration();
    spec.delivery = { backoff: { initial: '1d', max: '1d1h' }, maxElapsed: '2d' };
    const created = await create(INTEGRATION, spec);
    assert.deepEqual((created.spec as { delivery: { backoff: unknown } }).delivery.backoff, { initial: '1d', max: '1d1h', multiplier: 2, jitter: 'Full' });
  });

  describe('rejects invalid specs with 422 and the field in the message', () => {
    it('has a table of distinct invalid cases', () => {
      assert.ok(rejections.length >= 14);
      assert.equal(new Set(rejections.map((r) => r.name)).size, rejections.length);
    });

    for (const rejection of rejections) {
      it(rejection.name, async () => {
        const parsed = rejection.kind === INTEGRATION ? parseIntegrationSpec(rejection.spec) : parseSyncScheduleSpec(rejection.spec);
        if (parsed.ok) assert.fail('the zod parser accepted it');
        const fields = parsed.error.issues.map((i) => i.field);
        assert.ok(fields.includes(rejection.field), `zod named ${fields.join(', ')}, not ${rejection.field}`);

        const outcome = await create(rejection.kind, rejection.spec).then(
          () => undefined,
          (err: unknown) => errorText(err),
        );
        assert.ok(outcome, 'the API server accepted it');
        assert.equal(outcome.code, 422, outcome.message);
        assert.ok(outcome.message.includes(rejection.field), `no ${rejection.field} in: ${outcome.message}`);
        assert.ok(outcome.message.includes(rejection.text), `no "${rejection.text}" in: ${outcome.message}`);
      });
    }
  });
});
