/**
 * References to Secrets and ConfigMaps, and outbound HTTP authentication. Secrets are only ever
 * referenced, by name and key, in the resource's own namespace: a spec never holds a credential.
 */
import { z } from 'zod';
import { describe, exactlyOne, matching, withRules } from './crd-meta.ts';
import { dataKeySchema, headerNameSchema, httpUrlSchema, objectNameSchema } from './fields.ts';

/** A key of a Secret in the resource's namespace. Both fields are required. */
export const secretKeyRefSchema = describe(
  z.strictObject({
    name: describe(objectNameSchema, 'Name of the Secret (in the same namespace).'),
    key: describe(dataKeySchema, "Key in the Secret's data."),
  }),
  'A key of a Secret in the same namespace.',
);

/** A key of a ConfigMap in the resource's namespace. Both fields are required. */
export const configMapKeyRefSchema = describe(
  z.strictObject({
    name: describe(objectNameSchema, 'Name of the ConfigMap (in the same namespace).'),
    key: describe(dataKeySchema, "Key in the ConfigMap's data."),
  }),
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
      bearer: describe(
        z.strictObject({ secretKeyRef: describe(secretKeyRefSchema, 'The Secret key that holds the token.') }),
        'Send the token from a Secret as Authorization: Bearer <token>.',
      ).optional(),
      basic: describe(
        z.strictObject({
          usernameSecretKeyRef: describe(secretKeyRefSchema, 'The Secret key that holds the username.'),
          passwordSecretKeyRef: describe(secretKeyRefSchema, 'The Secret key that holds the password.'),
        }),
        'HTTP Basic authentication with a username and password from Secrets.',
      ).optional(),
      apiKey: describe(
        z.strictObject({
          header: describe(headerNameSchema, 'Request header that carries the key, such as X-Api-Key.'),
          secretKeyRef: describe(secretKeyRefSchema, 'The Secret key that holds the API key.'),
        }),
        'Send an API key from a Secret in a request header.',
      ).optional(),
      oauth2ClientCredentials: describe(
        z.strictObject({
          tokenUrl: describe(httpUrlSchema, 'Token endpoint of the authorization server.'),
          clientId: describe(z.string().min(1, 'must not be empty').max(512), 'OAuth 2.0 client ID.'),
          clientSecretRef: describe(secretKeyRefSchema, 'The Secret key that holds the client secret.'),
          scopes: describe(z.array(scopeSchema).max(32), 'Scopes to request; none by default.').optional(),
          audience: describe(z.string().max(512), 'Audience parameter, for providers that require one.').optional(),
        }),
        'OAuth 2.0 client credentials grant: a token from tokenUrl, cached until it expires, sent as a bearer token.',
      ).optional(),
    }),
    [exactlyOne('auth', ['bearer', 'basic', 'apiKey', 'oauth2ClientCredentials'])],
  ),
  'Request authentication: exactly one of bearer, basic, apiKey or oauth2ClientCredentials. Secrets are referenced, never inlined.',
);

export type SecretKeyRef = z.output<typeof secretKeyRefSchema>;
export type ConfigMapKeyRef = z.output<typeof configMapKeyRefSchema>;
export type Auth = z.output<typeof authSchema>;
