/**
 * HTTP request settings shared by Integration targets and SyncSchedule sources and targets.
 */
import { z } from 'zod';
import { describe, withRules, type Rule } from './crd-meta.ts';

/** Body encoding: JSON, or `application/x-www-form-urlencoded` (Stripe-style APIs). */
export const encodingSchema = describe(
  z.enum(['JSON', 'Form']),
  'Request body encoding: JSON, or Form (application/x-www-form-urlencoded, as Stripe-style APIs take).',
);

/** Methods that write. */
export const writeMethodSchema = describe(z.enum(['POST', 'PUT', 'PATCH', 'DELETE']), 'HTTP method of the request.');

const all2xx: Rule<number[]> = {
  rule: 'self.all(code, code >= 200 && code <= 299)',
  message: 'must contain only 2xx status codes (200-299)',
  holds: (codes) => codes.every((code) => code >= 200 && code <= 299),
};

/** Status codes that count as delivered. Only 2xx: anything else is never a success. */
export const successCodesSchema = describe(
  withRules(z.array(z.int().min(100).max(599)).min(1).max(16), [all2xx]),
  'Status codes that count as success; only 2xx codes are allowed.',
);

/** Default for {@link successCodesSchema}. */
export const DEFAULT_SUCCESS_CODES = [200, 201, 202, 204];

/**
 * A request rate shared by all operator replicas. `burst` defaults to one second's worth of
 * requests (at least 1) when resolved.
 */
export const rateLimitSchema = describe(
  z.strictObject({
    perSecond: describe(z.number().min(0.001).max(100_000), 'Requests per second, in total across replicas.'),
    burst: describe(z.int().min(1).max(100_000), 'Requests that may go at once above the steady rate (default: one second of requests).').optional(),
  }),
  'Requests per second shared by all replicas, with an optional burst (default: one second of requests).',
);

export type RateLimit = z.output<typeof rateLimitSchema>;
