/**
 * References to Secrets and ConfigMaps, and outbound HTTP authentication. Secrets are only ever
 * referenced, by name and key, in the resource's own namespace: a spec never holds a credential.
 */
import { z } from 'zod';
import { describe, exactlyOne, matching, withRules } from './crd-meta.ts';
import { dataKeySchema, headerNameSchema, httpUrlSchema, objectNameSchema } from './fields.ts';

/** A key of a Secret in the resource's namespace. Both fields are required. */
export const secretKeyRefSchema = describe(
  z.strictObject({ name: objectNameSchema, key: dataKeySchema }),
  'A key of a Secret in the same namespace.',
);

/** A key of a ConfigMap in the resource's namespace. Both fields are required. */
export const configMapKeyRefSchema = describe(
  z.strictObject({ name: objectNameSchema, key: dataKeySchema }),
  'A key of a ConfigMap in the same namespace.',
);

const scopeSchema = matching(z.string().min(1, 'must not be empty').max(256), /^[^\s]+$/, 'must not contain whitespace');

/**
 * How requests authenticate: exactly one of the four kinds.
 * - `bearer`: `Authorization: Bearer <secret>`.
 * - `basic`: `Authorization: Basic` from a username and a password secret.
 * - `apiKey`: the secret as the value of `header`.
 * - `oauth2ClientCredentials`: a token from `tokenUrl` (client credentials grant), cached until
 *   it expires and sent as a bearer token.
 */
export const authSchema = describe(
  withRules(
    z.strictObject({
      bearer: z.strictObject({ secretKeyRef: secretKeyRefSchema }).optional(),
      basic: z
        .strictObject({
          usernameSecretKeyRef: secretKeyRefSchema,
          passwordSecretKeyRef: secretKeyRefSchema,
        })
        .optional(),
      apiKey: z.strictObject({ header: headerNameSchema, secretKeyRef: secretKeyRefSchema }).optional(),
      oauth2ClientCredentials: z
        .strictObject({
          tokenUrl: httpUrlSchema,
          clientId: z.string().min(1, 'must not be empty').max(512),
          clientSecretRef: secretKeyRefSchema,
          scopes: z.array(scopeSchema).max(32).optional(),
          audience: z.string().max(512).optional(),
        })
        .optional(),
    }),
    [exactlyOne('auth', ['bearer', 'basic', 'apiKey', 'oauth2ClientCredentials'])],
  ),
  'Request authentication: exactly one of bearer, basic, apiKey or oauth2ClientCredentials. Secrets are referenced, never inlined.',
);

export type SecretKeyRef = z.output<typeof secretKeyRefSchema>;
export type ConfigMapKeyRef = z.output<typeof configMapKeyRefSchema>;
export type Auth = z.output<typeof authSchema>;
