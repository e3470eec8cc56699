/**
 * `ferry fallback redrive NAME`: asks the operator to deliver an Integration's parked messages
 * again. The request is a merge patch of the Integration's annotations (`ferry.dev/redrive` = a
 * new request id, plus the filter annotations; `redriveAnnotations` in src/api), exactly what a
 * GitOps commit would set — the operator is the only one that replays. With `--wait` the command
 * polls the Integration until `status.lastRedrive` answers this request id with a final result.
 *
 * Every flag is checked before anything is written: a bad filter patches nothing (exit 2).
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { GROUP, INTEGRATION, redriveAnnotations, VERSION, type IntegrationStatus } from '../../api/index.ts';
import type { KubeObject } from '../../kube/index.ts';
import { durationFlag, intFlag, isObjectName, KUBE_OPTIONS, parseCommand, reasonsFlag } from '../cli-args.ts';
import { CommandError } from '../command-error.ts';
import { shortAge } from '../output.ts';
import { UsageError } from '../usage-error.ts';
import { printUsage, type Command } from './command.ts';
import { redriveUsage } from './fallback-usage.ts';

const DEFAULT_WAIT_MS = 10 * 60_000;
const POLL_MS = 500;

interface IntegrationObject extends KubeObject {
  readonly status?: IntegrationStatus;
}

type LastRedrive = NonNullable<IntegrationStatus['lastRedrive']>;

/** A request id that no earlier request used: time plus randomness, readable in status. */
function newRequestId(now: number): string {
  return `cli-${new Date(now).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${randomBytes(4).toString('hex')}`;
}

function outcome(r: LastRedrive): string {
  const counts = `selected ${r.selected ?? 0}, delivered ${r.delivered ?? 0}, failed again ${r.failedAgain ?? 0}`;
  const took = r.startedAt && r.completedAt ? ` in ${shortAge(Date.parse(r.completedAt) - Date.parse(r.startedAt))}` : '';
  return `redrive ${r.request}: ${r.result}${took} (${counts})${r.message ? `: ${r.message}` : ''}`;
}

export const redriveCommand: Command = async (argv, ctx) => {
  const parsed = parseCommand(
    argv,
    {
      ...KUBE_OPTIONS,
      reason: { type: 'string', multiple: true },
      'from-seq': { type: 'string' },
      'to-seq': { type: 'string' },
      'older-than': { type: 'string' },
      'newer-than': { type: 'string' },
      wait: { type: 'boolean' },
      timeout: { type: 'string' },
    },
    1,
  );
  if (!parsed) return printUsage(redriveUsage(ctx.prog), 0);
  const { values, positionals } = parsed;
  const name = positionals[0];
  if (name === undefined) throw new UsageError('NAME is required');
  // The redrive annotation is an Integration's: `syncschedule/NAME` has no redrive.
  if (!isObjectName(name)) throw new UsageError(`${JSON.stringify(name)} is not an Integration name (redrive applies to Integrations)`);
  const fromSequence = intFlag('from-seq', values['from-seq']);
  const toSequence = intFlag('to-seq', values['to-seq']);
  if (fromSequence !== undefined && toSequence !== undefined && fromSequence > toSequence) throw new UsageError('--from-seq must not be greater than --to-seq');
  const reasons = reasonsFlag(values.reason);
  durationFlag('older-than', values['older-than']);
  durationFlag('newer-than', values['newer-than']);
  const timeoutMs = durationFlag('timeout', values.timeout) ?? DEFAULT_WAIT_MS;
  if (values.timeout !== undefined && values.wait !== true) throw new UsageError('--timeout only goes with --wait');

  // Loaded after the arguments are checked: the Kubernetes client takes most of a second to load.
  const { kubeFailure, loadKubeTarget } = await import('../kube-context.ts');
  const target = loadKubeTarget(values);
  const ref = { group: GROUP, version: VERSION, plural: INTEGRATION.plural, namespace: target.namespace, name };
  const id = newRequestId(Date.now());
  const annotations = redriveAnnotations(id, {
    ...(reasons === undefined ? {} : { reasons }),
    ...(fromSequence === undefined ? {} : { fromSequence }),
    ...(toSequence === undefined ? {} : { toSequence }),
    ...(values['older-than'] === undefined ? {} : { olderThan: values['older-than'] }),
    ...(values['newer-than'] === undefined ? {} : { newerThan: values['newer-than'] }),
  });
  try {
    await target.client.patchMerge(ref, { metadata: { annotations } });
  } catch (err) {
    throw kubeFailure(err, target.server);
  }
  process.stdout.write(`redrive requested for Integration ${target.namespace}/${name}: request ${id}\n`);
  if (values.wait !== true) return 0;

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let obj: IntegrationObject;
    try {
      obj = await target.client.get<IntegrationObject>(ref);
    } catch (err) {
      throw kubeFailure(err, target.server);
    }
    const last = obj.status?.lastRedrive;
    if (last?.request === id && last.result !== 'Running') {
      process.stdout.write(`${outcome(last)}\n`);
      return last.result === 'Succeeded' ? 0 : 1;
    }
    if (Date.now() >= deadline) {
      const seen = last?.request === id ? ` (still ${last.result}: ${outcome(last)})` : ' (the operator has not picked it up)';
      throw new CommandError(`redrive ${id} did not finish within ${shortAge(timeoutMs)}${seen}; it goes on, see status.lastRedrive`);
    }
    await sleep(POLL_MS);
  }
};
