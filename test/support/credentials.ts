/**
 * What an Integration needs to authenticate to a test target that requires credentials: the
 * Secret's data and the `spec.target.auth` that references it — written the way users write them.
 */
import type { TargetAuth } from './fault-target.ts';

export interface IntegrationCredentials {
  /** `stringData` of the Secret. */
  readonly secret: Readonly<Record<string, string>>;
  /** `spec.target.auth`, referencing the Secret by `secretName`. */
  readonly auth: Readonly<Record<string, unknown>>;
}

export function credentialsFor(auth: TargetAuth, secretName: string): IntegrationCredentials {
  const ref = (key: string): { name: string; key: string } => ({ name: secretName, key });
  switch (auth.kind) {
    case 'bearer':
      return { secret: { token: auth.token }, auth: { bearer: { secretKeyRef: ref('token') } } };
    case 'basic':
      return {
        secret: { username: auth.username, password: auth.password },
        auth: { basic: { usernameSecretKeyRef: ref('username'), passwordSecretKeyRef: ref('password') } },
      };
    case 'apiKey':
      return { secret: { key: auth.key }, auth: { apiKey: { header: auth.header, secretKeyRef: ref('key') } } };
    case 'oauth2':
      return {
        secret: { clientSecret: auth.server.clientSecret },
        auth: { oauth2ClientCredentials: { tokenUrl: auth.server.tokenUrl, clientId: auth.server.clientId, clientSecretRef: ref('clientSecret') } },
      };
  }
}
