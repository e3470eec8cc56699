/**
 * Status fields shared by both kinds.
 */
import { z } from 'zod';
import { describe } from './crd-meta.ts';

/**
 * The generation the status describes. -1 (the schema default of a new object's status) means
 * "not reconciled yet", which kstatus reports as in progress.
 */
export const observedGenerationSchema = describe(
  z.int().min(-1),
  'The metadata.generation this status describes; -1 until the controller first reconciles.',
);

/** A non-negative counter. */
export const countSchema = z.int().min(0);

/** The value `status` defaults to on a new object. */
export const INITIAL_STATUS = { observedGeneration: -1 } as const;
