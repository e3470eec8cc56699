/**
 * `ferry status`: one table of every Integration and SyncSchedule, read from the API server —
 * what the operator last wrote in their status (Ready and why, a Stalled or Degraded reason,
 * delivered, fallback pending, circuit, the last SyncSchedule run).
 */
import {
  findCondition,
  GROUP,
  INTEGRATION,
  SYNC_SCHEDULE,
  VERSION,
  type Condition,
  type IntegrationStatus,
  type SyncScheduleStatus,
} from '../../api/index.ts';
import type { KubeObject } from '../../kube/index.ts';
import {
  ALL_NAMESPACES_OPTION,
  ALL_NAMESPACES_USAGE,
  choiceFlag,
  KUBE_OPTIONS,
  KUBE_USAGE,
  NAMESPACE_USAGE,
  OUTPUT_OPTION,
  parseCommand,
} from '../cli-args.ts';
import { renderData, renderTable, shortAge } from '../output.ts';
import { UsageError } from '../usage-error.ts';
import { printUsage, type Command } from './command.ts';

export const statusUsage = (prog: string): string => `Usage: ${prog} status [flags]

Integrations and SyncSchedules with what the operator reports about them.

Flags:
${NAMESPACE_USAGE}
${ALL_NAMESPACES_USAGE}
  -o, --output FORMAT      json or yaml instead of a table
${KUBE_USAGE}
`;

interface StatusObject<S> extends KubeObject {
  readonly status?: S;
}

/** One row, also the JSON/YAML shape. */
export interface StatusRow {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly ready: string;
  readonly readyReason: string | undefined;
  /** `Stalled: <reason>` or `Degraded: <reason>`, the first that is True. */
  readonly problem: string | undefined;
  readonly problemMessage: string | undefined;
  readonly delivered: number | undefined;
  readonly fallbackPending: number | undefined;
  readonly circuit: string | undefined;
  readonly lastRun: { readonly result: string; readonly startedAt: string } | undefined;
}

function problemOf(conditions: readonly Condition[] | undefined): { problem?: string; problemMessage?: string } {
  for (const type of ['Stalled', 'Degraded'] as const) {
    const c = findCondition(conditions, type);
    if (c?.status === 'True') return { problem: `${type}: ${c.reason}`, problemMessage: c.message };
  }
  return {};
}

/** The columns both kinds share: name, Ready, the first problem. */
function commonColumns(kind: string, obj: KubeObject, conditions: readonly Condition[] | undefined): Pick<StatusRow, 'kind' | 'namespace' | 'name' | 'ready' | 'readyReason' | 'problem' | 'problemMessage'> {
  const ready = findCondition(conditions, 'Ready');
  const { problem, problemMessage } = problemOf(conditions);
  return { kind, namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '', ready: ready?.status ?? 'Unknown', readyReason: ready?.reason, problem, problemMessage };
}

function integrationRow(obj: StatusObject<IntegrationStatus>): StatusRow {
  const s = obj.status;
  return { ...commonColumns(INTEGRATION.kind, obj, s?.conditions), delivered: s?.stats?.delivered, fallbackPending: s?.fallbackPending, circuit: s?.circuit?.state, lastRun: undefined };
}

/** A SyncSchedule's "delivered" is what its last run wrote. */
function syncScheduleRow(obj: StatusObject<SyncScheduleStatus>): StatusRow {
  const s = obj.status;
  return {
    ...commonColumns(SYNC_SCHEDULE.kind, obj, s?.conditions),
    delivered: s?.lastRun?.written,
    fallbackPending: s?.fallbackPending,
    circuit: undefined,
    lastRun: s?.lastRun ? { result: s.lastRun.result, startedAt: s.lastRun.startedAt } : undefined,
  };
}

export const statusCommand: Command = async (argv, ctx) => {
  const parsed = parseCommand(argv, { ...KUBE_OPTIONS, ...ALL_NAMESPACES_OPTION, ...OUTPUT_OPTION }, 0);
  if (!parsed) return printUsage(statusUsage(ctx.prog), 0);
  const { values } = parsed;
  const format = choiceFlag('output', values.output, ['json', 'yaml'] as const);
  const all = values['all-namespaces'] === true;
  if (all && values.namespace !== undefined) throw new UsageError('--all-namespaces and --namespace exclude each other');
  // Loaded after the arguments are checked: the Kubernetes client takes most of a second to load.
  const { kubeFailure, loadKubeTarget } = await import('../kube-context.ts');
  const target = loadKubeTarget(values);
  const namespace = all ? undefined : target.namespace;
  let rows: StatusRow[];
  try {
    const [integrations, schedules] = await Promise.all([
      target.client.list<StatusObject<IntegrationStatus>>({ group: GROUP, version: VERSION, plural: INTEGRATION.plural }, namespace),
      target.client.list<StatusObject<SyncScheduleStatus>>({ group: GROUP, version: VERSION, plural: SYNC_SCHEDULE.plural }, namespace),
    ]);
    rows = [...integrations.map(integrationRow), ...schedules.map(syncScheduleRow)];
  } catch (err) {
    throw kubeFailure(err, target.server);
  }
  rows.sort((a, b) => `${a.namespace}/${a.kind}/${a.name}`.localeCompare(`${b.namespace}/${b.kind}/${b.name}`));
  if (format) {
    process.stdout.write(renderData(rows, format));
    return 0;
  }
  if (rows.length === 0) {
    process.stderr.write(`No Integrations or SyncSchedules${namespace === undefined ? '' : ` in namespace ${namespace}`}.\n`);
    return 0;
  }
  const now = Date.now();
  const num = (n: number | undefined): string => (n === undefined ? '-' : String(n));
  process.stdout.write(
    renderTable(
      ['KIND', 'NAMESPACE', 'NAME', 'READY', 'PROBLEM', 'DELIVERED', 'FALLBACK', 'CIRCUIT', 'LAST RUN'],
      rows.map((r) => [
        r.kind,
        r.namespace,
        r.name,
        r.readyReason === undefined ? r.ready : `${r.ready} (${r.readyReason})`,
        r.problem ?? '-',
        num(r.delivered),
        num(r.fallbackPending),
        r.circuit ?? '-',
        r.lastRun ? `${r.lastRun.result} ${shortAge(now - Date.parse(r.lastRun.startedAt))} ago` : '-',
      ]),
    ),
  );
  return 0;
};
