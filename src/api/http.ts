/**
 * HTTP request settings shared by Integration targets and SyncSchedule sources and targets.
 */
import { z } from 'zod';
import { describe, withRules, type Rule } from './crd-meta.ts';

/** Body encoding: JSON, or `application/x-www-form-urlencoded` (Stripe-style APIs). */
export const encodingSchema = z.enum(['JSON', 'Form']);

/** Methods that write. */
export const writeMethodSchema = z.enum(['POST', 'PUT', 'PATCH', 'DELETE']);

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
    perSecond: z.number().min(0.001).max(100_000),
    burst: z.int().min(1).max(100_000).optional(),
  }),
  'Requests per second shared by all replicas, with an optional burst (default: one second of requests).',
);

export type RateLimit = z.output<typeof rateLimitSchema>;
