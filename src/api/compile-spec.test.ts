import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkSyncScheduleSpec, compileIntegrationSpec as checkIntegrationSpec, type ReferenceLookup } from './compile-spec.ts';
import { findSecretRefs } from './references.ts';

const spec = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  source: { stream: 'CRM', subjects: ['crm.x'] },
  transform: { mapping: { id: '/id' } },
  target: { url: 'https://example.com/x' },
  ...overrides,
});

function lookup(secrets: Record<string, Record<string, string>> = {}, configMaps: Record<string, Record<string, string>> = {}): ReferenceLookup {
  return { secretData: (_ns, name) => secrets[name], configMapData: (_ns, name) => configMaps[name] };
}

describe('checkIntegrationSpec', () => {
  it('accepts a valid spec and resolves it', () => {
    const r = checkIntegrationSpec('ns', spec(), lookup());
    assert.equal(r.ok, true);
    assert.equal(r.ok && r.config.config.target.timeoutMs, 10_000);
  });

  it('names the field of a spec that does not parse', () => {
    const r = checkIntegrationSpec('ns', spec({ delivery: { backoff: { initial: 'soon' } } }), lookup());
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'SpecInvalid');
    assert.equal(!r.ok && r.field, 'spec.delivery.backoff.initial');
  });

  it('names the field inside a JSON Schema that does not compile', () => {
    const r = checkIntegrationSpec('ns', spec({ schema: { inline: { properties: { a: { minimum: 'zero' } } } } }), lookup());
    assert.equal(!r.ok && r.reason, 'SchemaInvalid');
    assert.equal(!r.ok && r.field, 'spec.schema.inline.properties.a.minimum');
  });

  it('names a schema pattern that RE2 cannot run (lookahead, backreference), in the schema and in responseSchema', () => {
    const r = checkIntegrationSpec('ns', spec({ schema: { inline: { properties: { s: { type: 'string', pattern: '^(?=a)b' } } } } }), lookup());
    assert.equal(!r.ok && r.reason, 'SchemaInvalid');
    assert.equal(!r.ok && r.field, 'spec.schema.inline.properties.s.pattern');
    assert.match(!r.ok ? r.message : '', /^spec\.schema\.inline\.properties\.s\.pattern: "\^\(\?=a\)b" is not supported: patterns use RE2 syntax, .*no lookahead, lookbehind or backreferences \(invalid or unsupported Perl syntax: `\(\?=`\)$/);
    const response = checkIntegrationSpec(
      'ns',
      spec({ target: { url: 'https://example.com/x', responseSchema: { type: 'object', patternProperties: { '^(a)\\1$': { type: 'string' } } } } }),
      lookup(),
    );
    assert.equal(!response.ok && response.field, 'spec.target.responseSchema.patternProperties["^(a)\\\\1$"]', 'the key as JSON, backslash escaped');
    assert.match(!response.ok ? response.message : '', /invalid escape sequence: `\\1`/);
    // The catastrophic pattern of the report is fine: RE2 runs it in linear time.
    assert.equal(checkIntegrationSpec('ns', spec({ schema: { inline: { properties: { s: { pattern: '(a+)+$' } } } } }), lookup()).ok, true);
  });

  it('reads a schema from a ConfigMap, and reports a missing one as healable', () => {
    const s = spec({ schema: { configMapKeyRef: { name: 'schemas', key: 'deal.json' } } });
    const missing = checkIntegrationSpec('ns', s, lookup());
    assert.equal(!missing.ok && missing.reason, 'ConfigMapNotFound');
    assert.equal(!missing.ok && missing.dependency, true);
    const ok = checkIntegrationSpec('ns', s, lookup({}, { schemas: { 'deal.json': 'type: object\nrequired: [id]\n' } }));
    assert.equal(ok.ok, true);
  });

  it('reports a JSONata syntax error at its position', () => {
    const r = checkIntegrationSpec('ns', spec({ transform: { jsonata: '$sum(' } }), lookup());
    assert.equal(!r.ok && r.reason, 'TransformInvalid');
    assert.match(!r.ok ? r.message : '', /^spec\.transform\.jsonata: .*position/);
  });

  it('requires every referenced Secret key, naming the field that references it', () => {
    const s = spec({ target: { url: 'https://example.com/x', auth: { basic: { usernameSecretKeyRef: { name: 'b', key: 'u' }, passwordSecretKeyRef: { name: 'b', key: 'p' } } } } });
    const noKey = checkIntegrationSpec('ns', s, lookup({ b: { u: 'dXNlcg==' } }));
    assert.equal(!noKey.ok && noKey.field, 'spec.target.auth.basic.passwordSecretKeyRef');
    assert.equal(!noKey.ok && noKey.message, 'spec.target.auth.basic.passwordSecretKeyRef: Secret "b" has no key "p"');
    assert.equal(checkIntegrationSpec('ns', s, lookup({ b: { u: 'x', p: 'y' } })).ok, true);
  });

  it('reports a ConfigMap edited to invalid YAML as a problem of that object, never by throwing', () => {
    const s = spec({ schema: { configMapKeyRef: { name: 'schemas', key: 'deal.yaml' } } });
    const r = checkIntegrationSpec('ns', s, lookup({}, { schemas: { 'deal.yaml': 'type: object\n  required: [id\n' } }));
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.reason, 'SchemaInvalid');
    assert.equal(!r.ok && r.field, 'spec.schema.configMapKeyRef');
    assert.equal(!r.ok && r.dependency, true, 'fixing the ConfigMap heals it');
    assert.match(!r.ok ? r.message : '', /ConfigMap "schemas" key "deal.yaml" is not JSON or YAML/);
  });

  it('compiles what the runtime runs with: validators, templates and decoded credentials', () => {
    const s = spec({
      schema: { configMapKeyRef: { name: 'schemas', key: 'deal.json' } },
      target: { url: 'https://example.com/a/{{/acct}}', idempotency: { key: '{{/id}}-x' }, auth: { bearer: { secretKeyRef: { name: 'api', key: 'token' } } } },
    });
    const r = checkIntegrationSpec('ns', s, lookup({ api: { token: Buffer.from('s3cret').toString('base64') } }, { schemas: { 'deal.json': '{"type":"object","required":["id"]}' } }));
    assert.equal(r.ok, true);
    if (!r.ok) return;
    assert.deepEqual(r.config.credentials, { kind: 'bearer', token: 's3cret' });
    assert.equal(r.config.url.source, 'https://example.com/a/{{/acct}}');
    assert.equal(r.config.idempotencyKey?.source, '{{/id}}-x');
    assert.equal(r.config.validate?.({}), false);
    assert.equal(r.config.validate?.({ id: 1 }), true);
    assert.deepEqual(r.config.configMapTexts, { 'schemas/deal.json': '{"type":"object","required":["id"]}' });
  });

  it('refuses a webhook subject that spec.source.subjects does not consume (stored, never delivered)', () => {
    const webhook = (subject: string) => ({ subject, signature: { secretKeyRefs: [{ name: 'hook', key: 'k' }] } });
    const secrets = lookup({ hook: { k: Buffer.from('whsec_AAAA').toString('base64') } });
    const r = checkIntegrationSpec('ns', spec({ source: { stream: 'CRM', subjects: ['crm.x'], webhook: webhook('hooks.crm') } }), secrets);
    assert.equal(!r.ok && r.field, 'spec.source.webhook.subject');
    assert.equal(!r.ok && r.message, 'spec.source.webhook.subject: "hooks.crm" is not matched by spec.source.subjects (crm.x): webhook events would be stored but never delivered');
    assert.equal(checkIntegrationSpec('ns', spec({ source: { stream: 'CRM', subjects: ['crm.x', 'hooks.>'], webhook: webhook('hooks.crm') } }), secrets).ok, true);
  });

  it('refuses orderingKey until ordered delivery exists', () => {
    const r = checkIntegrationSpec('ns', spec({ delivery: { orderingKey: '/dealId' } }), lookup());
    assert.equal(!r.ok && r.field, 'spec.delivery.orderingKey');
  });

  it('finds secret references anywhere, with their paths', () => {
    assert.deepEqual(findSecretRefs({ a: [{ secretKeyRefs: [{ name: 'w', key: 'k1' }, { name: 'w', key: 'k2' }] }], b: { clientSecretRef: { name: 'o', key: 's' } } }), [
      { field: 'spec.a[0].secretKeyRefs[0]', name: 'w', key: 'k1' },
      { field: 'spec.a[0].secretKeyRefs[1]', name: 'w', key: 'k2' },
      { field: 'spec.b.clientSecretRef', name: 'o', key: 's' },
    ]);
  });
});

describe('checkSyncScheduleSpec', () => {
  const sync = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
    schedule: '*/15 * * * *',
    timeZone: 'Europe/Berlin',
    source: { url: 'https://crm.example.com/contacts', recordsPath: '/data' },
    key: '/id',
    target: { url: 'https://erp.example.com/customers/{{/id}}' },
    ...overrides,
  });

  it('computes the next run in the time zone', () => {
    const r = checkSyncScheduleSpec('ns', sync({ schedule: '0 9 * * *' }), lookup(), new Date('2026-06-01T05:00:00Z'));
    assert.equal(r.ok, true);
    // 09:00 in Berlin (UTC+2 in summer) is 07:00 UTC.
    assert.equal(r.ok && r.config.nextRun?.toISOString(), '2026-06-01T07:00:00.000Z');
  });

  it('reports an unknown time zone on spec.timeZone', () => {
    const r = checkSyncScheduleSpec('ns', sync({ timeZone: 'Mars/Olympus' }), lookup(), new Date());
    assert.equal(!r.ok && r.field, 'spec.timeZone');
  });
});
