/**
 * Authentication as a wrapper around a {@link Deliverer}: adds the provider's headers to every
 * attempt and, for refreshable credentials (OAuth2), refreshes once on 401.
 */
import type { Authorization, AuthProvider } from './auth.ts';
import { mergeHeaders, type Deliverer, type DeliveryRequest, type DeliveryResponse } from './deliverer.ts';

/**
 * Wraps `inner` so every attempt carries `provider`'s headers (overriding same-named headers from
 * config). On a 401, if the provider can invalidate its credential, the rejected credential is
 * dropped and the request is sent once more with a fresh one (same idempotency key); whatever that
 * second answer is — a second 401 included — is returned, and the runtime classifies it as usual.
 * A static secret's 401 is returned at once.
 *
 * Errors: those of `inner`, and `AuthTokenError` from the provider.
 */
export function withAuth(inner: Deliverer, provider: AuthProvider): Deliverer {
  const send = async (request: DeliveryRequest): Promise<{ response: DeliveryResponse; auth: Authorization }> => {
    const auth = await provider.authorize();
    const response = await inner.deliver({ ...request, headers: mergeHeaders(request.headers, auth.headers) });
    return { response, auth };
  };
  return {
    async deliver(request) {
      const first = await send(request);
      if (first.response.status !== 401 || !provider.invalidate?.(first.auth)) return first.response;
      return (await send(request)).response;
    },
  };
}
