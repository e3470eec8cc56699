/**
 * One Integration generation compiled for the runtime: the spec compiled by the same function the
 * controller checks it with (`compileIntegrationSpec` in src/api — one function, so the two can
 * never disagree), plus what only the runtime needs: the auth provider wrapped around the
 * deliverer, the classification policy, and fingerprints that tell what changed between two
 * generations.
 *
 * Fails with a `PipelineConfigError` naming the field when anything does not compile or resolve;
 * the supervisor then keeps the last good generation running (DESIGN: config changes are hot and
 * safe).
 */
import { createHash } from 'node:crypto';
import { compileIntegrationSpec, type AuthCredentials, type CompiledIntegrationSpec, type ReferenceLookup, type SchemaCompiler } from '../api/index.ts';
import {
  apiKeyAuth,
  basicAuth,
  bearerAuth,
  OAuth2ClientCredentials,
  withAuth,
  type AuthProvider,
  type ClassifyPolicy,
  type Deliverer,
  type RetryOnEntry,
  type TokenCache,
} from '../delivery/index.ts';
import type { Clock } from '../observability/index.ts';
import { PipelineConfigError } from './pipeline-errors.ts';

export interface CompiledIntegration extends CompiledIntegrationSpec {
  readonly namespace: string;
  readonly name: string;
  readonly generation: number;
  /** Sends one attempt: the process's deliverer, wrapped with this generation's credentials. */
  readonly send: Deliverer;
  readonly classify: ClassifyPolicy;
  /** Scope of default idempotency keys: `<namespace>/<name>`. */
  readonly keyScope: string;
  /** Changes whenever anything this generation runs with changes; holds no secret. */
  readonly fingerprint: string;
  /** Changes exactly when the credentials change; holds no secret. */
  readonly credentialsFingerprint: string;
}

/** What compiling needs from the outside world. */
export interface CompileContext {
  /** The namespace's Secrets and ConfigMaps (the watch caches, or a stored last good generation's). */
  readonly references: ReferenceLookup;
  readonly deliverer: Deliverer;
  readonly tokenCache: TokenCache;
  readonly clock: Clock;
  /** Shares validators between Integrations with the same schema (a JsonSchemaCache); default: compile each. */
  readonly compileSchema?: SchemaCompiler;
}

/**
 * Outbound credentials as an auth provider; shared with SyncSchedule runs (through the composition
 * root), so both kinds authenticate — OAuth2 token cache included — the same way.
 */
export function authProvider(credentials: AuthCredentials | undefined, ctx: Pick<CompileContext, 'deliverer' | 'tokenCache' | 'clock'>): AuthProvider | undefined {
  switch (credentials?.kind) {
    case undefined:
      return undefined;
    case 'bearer':
      return bearerAuth(credentials.token);
    case 'basic':
      return basicAuth(credentials.username, credentials.password);
    case 'apiKey':
      return apiKeyAuth(credentials.header, credentials.key);
    case 'oauth2ClientCredentials':
      return new OAuth2ClientCredentials(
        {
          tokenUrl: credentials.tokenUrl,
          clientId: credentials.clientId,
          clientSecret: credentials.clientSecret,
          scopes: [...credentials.scopes],
          ...(credentials.audience === undefined ? {} : { audience: credentials.audience }),
        },
        { deliverer: ctx.deliverer, cache: ctx.tokenCache, clock: ctx.clock },
      );
  }
}

function hash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

export function compileIntegration(namespace: string, name: string, generation: number, rawSpec: unknown, ctx: CompileContext): CompiledIntegration {
  const compiled = compileIntegrationSpec(namespace, rawSpec, ctx.references, ctx.compileSchema);
  if (!compiled.ok) throw new PipelineConfigError(compiled.field, compiled.detail);
  const spec = compiled.config;
  const auth = authProvider(spec.credentials, ctx);
  const r = spec.config.delivery.retryOn;
  const retryOn: RetryOnEntry[] = [
    ...r.statusCodes,
    ...(r.serverErrors ? (['5xx'] as const) : []),
    ...(r.network ? (['network'] as const) : []),
    ...(r.timeout ? (['timeout'] as const) : []),
  ];
  return {
    ...spec,
    namespace,
    name,
    generation,
    send: auth ? withAuth(ctx.deliverer, auth) : ctx.deliverer,
    classify: { successCodes: spec.config.target.successCodes, retryOn },
    keyScope: `${namespace}/${name}`,
    // Hashed: a fingerprint must change with a Secret, but must never hold its value.
    fingerprint: hash([rawSpec, spec.credentials ?? null, spec.configMapTexts]),
    credentialsFingerprint: hash(spec.credentials ?? null),
  };
}
