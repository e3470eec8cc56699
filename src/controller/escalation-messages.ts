/**
 * The notes of the Warning Events the leader raises from the runtime view: each names what
 * happened and what to do next (see escalation.ts for when they are raised).
 */
import type { SharedCircuit, SharedStats } from '../nats/index.ts';

/** Where an Integration delivers, for messages: the host of spec.target.url (a template may follow it). */
function targetHost(spec: unknown): string {
  const target = typeof spec === 'object' && spec !== null && 'target' in spec ? spec.target : undefined;
  const url = typeof target === 'object' && target !== null && 'url' in target && typeof target.url === 'string' ? target.url : '';
  return /^[a-z]+:\/\/([^/?#{]+)/i.exec(url)?.[1] ?? 'the target';
}

function openForOf(spec: unknown): string {
  const d = typeof spec === 'object' && spec !== null && 'delivery' in spec ? spec.delivery : undefined;
  const b = typeof d === 'object' && d !== null && 'circuitBreaker' in d ? d.circuitBreaker : undefined;
  return typeof b === 'object' && b !== null && 'openFor' in b && typeof b.openFor === 'string' ? b.openFor : '60s';
}

export function circuitOpenMessage(c: SharedCircuit, lastError: SharedStats['lastError'], spec: unknown): string {
  // The replica that tripped it says why; the shared counters may not have the error yet.
  const failure = c.lastFailure ?? lastError?.message.slice(0, 200);
  const last = failure === undefined ? `target ${targetHost(spec)}` : `last: ${failure} from ${targetHost(spec)}`;
  return `circuit open after ${c.consecutiveFailures} failures (${last}); consumption paused ${openForOf(spec)}, then one probe; check the target's health — events wait in the source stream and delivery resumes on its own`;
}

export function fallbackGrowingMessage(pending: number, stream: string, lastError: SharedStats['lastError']): string {
  const why = lastError ? `last: ${lastError.reason}: ${lastError.message.slice(0, 200)}` : 'see their Ferry-Reason and Ferry-Error headers';
  return `${pending} events parked in the fallback stream ${stream} (${why}); fix the cause, then replay them from the stream (nothing is lost); next Warning when the count doubles`;
}
