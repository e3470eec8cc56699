/**
 * The kstatus conditions for one reconcile outcome. Pure: the reconcilers decide the outcome,
 * this module turns it into `Ready` / `Reconciling` / `Stalled` (and an initial `Degraded`), so
 * both kinds report the same way and `kubectl wait`, Flux and Argo CD read them alike.
 *
 * - ready: Ready=True, Reconciling=False, Stalled=False.
 * - stalled: a terminal configuration problem. Ready=False and Stalled=True with the same reason
 *   and the message that names the field; kstatus reports the object as Failed.
 * - progressing: a transient problem being retried (NATS down). Ready=False, Reconciling=True;
 *   kstatus reports InProgress, which is the truth.
 *
 * `observedGeneration` is stamped on the status and on every condition even when the outcome is
 * a failure, so a client never waits on a generation that was in fact reconciled.
 */
import { ConditionType, findCondition, Reason, setCondition, type Condition } from '../api/index.ts';
import type { FerryObjectStatus } from './ferry-object.ts';

export type Outcome =
  | { readonly kind: 'ready'; readonly reason: Reason; readonly message: string }
  | { readonly kind: 'stalled'; readonly reason: Reason; readonly message: string }
  | { readonly kind: 'progressing'; readonly reason: Reason; readonly message: string };

export interface DegradedUpdate {
  readonly status: 'True' | 'False';
  readonly reason: string;
  readonly message: string;
}

export function conditionsFor(
  outcome: Outcome,
  current: readonly Condition[] | undefined,
  generation: number,
  now: number,
  degraded?: DegradedUpdate,
): Condition[] {
  let c = [...(current ?? [])];
  const set = (type: string, status: 'True' | 'False' | 'Unknown', reason: string, message: string): void => {
    c = setCondition(c, { type, status, reason, message }, generation, now);
  };
  switch (outcome.kind) {
    case 'ready':
      set(ConditionType.Ready, 'True', outcome.reason, outcome.message);
      set(ConditionType.Reconciling, 'False', Reason.Reconciled, `generation ${generation} reconciled`);
      set(ConditionType.Stalled, 'False', Reason.Reconciled, 'configuration is valid');
      break;
    case 'stalled':
      set(ConditionType.Ready, 'False', outcome.reason, outcome.message);
      set(ConditionType.Reconciling, 'False', outcome.reason, 'waiting for the spec or a referenced object to change');
      set(ConditionType.Stalled, 'True', outcome.reason, outcome.message);
      break;
    case 'progressing':
      set(ConditionType.Ready, 'False', outcome.reason, outcome.message);
      set(ConditionType.Reconciling, 'True', Reason.Progressing, `retrying: ${outcome.message}`);
      set(ConditionType.Stalled, 'False', Reason.Progressing, 'not a configuration problem; retrying');
      break;
  }
  // Degraded comes from the runtime's health (circuit, drift) when the caller knows it; else it
  // is kept, and made present so every object reports all four types.
  if (degraded) set(ConditionType.Degraded, degraded.status, degraded.reason, degraded.message);
  else if (!findCondition(c, ConditionType.Degraded)) set(ConditionType.Degraded, 'False', Reason.Healthy, 'no degradation observed');
  else c = c.map((x) => (x.type === ConditionType.Degraded ? { ...x, observedGeneration: generation } : x));
  return c;
}

export function statusFor(
  outcome: Outcome,
  current: FerryObjectStatus | undefined,
  generation: number,
  now: number,
  extra: Readonly<Record<string, unknown>> = {},
  degraded?: DegradedUpdate,
): FerryObjectStatus {
  return { ...extra, observedGeneration: generation, conditions: conditionsFor(outcome, current?.conditions, generation, now, degraded) };
}
