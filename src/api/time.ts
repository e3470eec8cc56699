/**
 * Timestamps as Kubernetes writes them (metav1.Time): RFC 3339 in UTC with whole seconds.
 */
import { z } from 'zod';

/** An RFC 3339 timestamp (`format: date-time` in the CRD). */
export const timeSchema = z.iso.datetime({ offset: true });

/**
 * Formats a time the way metav1.Time serialises, e.g. `2024-06-01T12:00:00Z`. Sub-second parts
 * are dropped, as the API server would drop them.
 */
export function formatKubeTime(time: Date | number): string {
  const date = typeof time === 'number' ? new Date(time) : time;
  return `${date.toISOString().slice(0, 19)}Z`;
}
