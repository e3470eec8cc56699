/**
 * One Integration generation compiled for the runtime: validators, transform, URL and key
 * templates, auth provider and classification policy, built once per generation from the
 * resolved spec plus the Secret and ConfigMap values it references.
 *
 * Fails with a `PipelineConfigError` naming the field when anything does not compile or
 * resolve; the supervisor then keeps the last good generation running (DESIGN: config changes
 * are hot and safe).
 */
import { parse as parseYaml } from 'yaml';
import {
  compileJsonata,
  compileJsonSchema,
  compileMapping,
  parseIntegrationSpec,
  resolveIntegrationConfig,
  type CompiledTransform,
  type ResolvedIntegrationConfig,
  type SecretKeyRef,
  type ValidateFunction,
} from '../api/index.ts';
import {
  apiKeyAuth,
  basicAuth,
  bearerAuth,
  compileTemplate,
  OAuth2ClientCredentials,
  type AuthProvider,
  type ClassifyPolicy,
  type CompiledTemplate,
  type Deliverer,
  type RetryOnEntry,
  type TokenCache,
} from '../delivery/index.ts';
import type { Clock } from '../observability/index.ts';
import { createHash } from 'node:crypto';
import { PipelineConfigError } from './pipeline-errors.ts';

export interface CompiledIntegration {
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  readonly config: ResolvedIntegrationConfig;
  readonly validate: ValidateFunction | undefined;
  readonly validateResponse: ValidateFunction | undefined;
  /** `undefined`: no `spec.transform`, the event payload is the body. */
  readonly transform: CompiledTransform | undefined;
  readonly url: CompiledTemplate;
  readonly idempotencyKey: CompiledTemplate | undefined;
  readonly auth: AuthProvider | undefined;
  readonly classify: ClassifyPolicy;
  /** Secret values this generation holds, so a Secret change can be detected. */
  readonly fingerprint: string;
}

/** What compiling needs from the outside world: cached Secrets and ConfigMaps, and the token machinery. */
export interface CompileContext {
  secretValue(namespace: string, ref: SecretKeyRef): string | undefined;
  configMapValue(namespace: string, name: string, key: string): string | undefined;
  readonly deliverer: Deliverer;
  readonly tokenCache: TokenCache;
  readonly clock: Clock;
}

function fail(field: string, message: string): never {
  throw new PipelineConfigError(field, message);
}

function unwrap<T>(r: { ok: true; value: T } | { ok: false; field: string; message: string }): T {
  if (!r.ok) fail(r.field, r.message);
  return r.value;
}

export function compileIntegration(namespace: string, name: string, generation: number, rawSpec: unknown, ctx: CompileContext): CompiledIntegration {
  const parsed = parseIntegrationSpec(rawSpec);
  if (!parsed.ok) fail(parsed.error.field, parsed.error.detail);
  const config = resolveIntegrationConfig(parsed.spec);
  if (config.delivery.orderingKey !== undefined) fail('spec.delivery.orderingKey', 'ordered delivery is not supported by this operator version yet');
  const secrets: string[] = [];
  const secret = (field: string, ref: SecretKeyRef): string => {
    const v = ctx.secretValue(namespace, ref);
    if (v === undefined) fail(field, `Secret ${JSON.stringify(ref.name)} key ${JSON.stringify(ref.key)} not found`);
    secrets.push(v);
    return v;
  };

  let validate: ValidateFunction | undefined;
  if (config.schema?.kind === 'inline') validate = unwrap(compileJsonSchema(config.schema.schema, 'spec.schema.inline'));
  else if (config.schema?.kind === 'configMap') {
    const text = ctx.configMapValue(namespace, config.schema.ref.name, config.schema.ref.key) ?? fail('spec.schema.configMapKeyRef', 'ConfigMap key not found');
    secrets.push(text);
    validate = unwrap(compileJsonSchema(parseYaml(text) as unknown, 'spec.schema.configMapKeyRef'));
  }
  const validateResponse = config.target.responseSchema === undefined ? undefined : unwrap(compileJsonSchema(config.target.responseSchema, 'spec.target.responseSchema'));
  const transform: CompiledTransform | undefined =
    config.transform === undefined
      ? undefined
      : config.transform.kind === 'mapping'
        ? unwrap(compileMapping(config.transform.mapping, 'spec.transform.mapping'))
        : unwrap(compileJsonata(config.transform.expression, 'spec.transform.jsonata'));

  let auth: AuthProvider | undefined;
  const a = config.target.auth;
  switch (a?.kind) {
    case undefined:
      break;
    case 'bearer':
      auth = bearerAuth(secret('spec.target.auth.bearer.secretKeyRef', a.token));
      break;
    case 'basic':
      auth = basicAuth(secret('spec.target.auth.basic.usernameSecretKeyRef', a.username), secret('spec.target.auth.basic.passwordSecretKeyRef', a.password));
      break;
    case 'apiKey':
      auth = apiKeyAuth(a.header, secret('spec.target.auth.apiKey.secretKeyRef', a.key));
      break;
    case 'oauth2ClientCredentials':
      auth = new OAuth2ClientCredentials(
        {
          tokenUrl: a.tokenUrl,
          clientId: a.clientId,
          clientSecret: secret('spec.target.auth.oauth2ClientCredentials.clientSecretRef', a.clientSecret),
          scopes: a.scopes,
          ...(a.audience === undefined ? {} : { audience: a.audience }),
        },
        { deliverer: ctx.deliverer, cache: ctx.tokenCache, clock: ctx.clock },
      );
      break;
  }

  let url: CompiledTemplate;
  let key: CompiledTemplate | undefined;
  try {
    url = compileTemplate(config.target.url);
  } catch (err) {
    fail('spec.target.url', err instanceof Error ? err.message : 'invalid template');
  }
  try {
    key = config.target.idempotency.keyTemplate === undefined ? undefined : compileTemplate(config.target.idempotency.keyTemplate);
  } catch (err) {
    fail('spec.target.idempotency.key', err instanceof Error ? err.message : 'invalid template');
  }

  const r = config.delivery.retryOn;
  const retryOn: RetryOnEntry[] = [...r.statusCodes, ...(r.serverErrors ? (['5xx'] as const) : []), ...(r.network ? (['network'] as const) : []), ...(r.timeout ? (['timeout'] as const) : [])];
  return {
    namespace,
    name,
    generation,
    config,
    validate,
    validateResponse,
    transform,
    url,
    idempotencyKey: key,
    auth,
    classify: { successCodes: config.target.successCodes, retryOn },
    // Hashed: the fingerprint must change with a Secret, but must not hold its value.
    fingerprint: createHash('sha256').update(JSON.stringify([rawSpec, secrets])).digest('hex'),
  };
}
