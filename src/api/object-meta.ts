/**
 * The part of metav1.ObjectMeta Ferry reads. Loose: the API server owns the rest.
 */
import { z } from 'zod';

/** Object metadata; unknown fields are kept. */
export const objectMetaSchema = z.looseObject({
  name: z.string().max(253).optional(),
  namespace: z.string().max(63).optional(),
  uid: z.string().optional(),
  generation: z.int().optional(),
  resourceVersion: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  finalizers: z.array(z.string()).optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
});
export type ObjectMeta = z.output<typeof objectMetaSchema>;
