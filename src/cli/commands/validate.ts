/**
 * `ferry validate -f FILE… [--sample EVENT.json]`: checks manifests offline (no cluster, no
 * NATS), for GitOps CI. Each Integration and SyncSchedule goes through the same functions the
 * operator decides with (`compileIntegrationSpec` / `checkSyncScheduleSpec` in src/api: the zod
 * schema with the CEL rules' twins, the JSON Schemas, the transform, the templates, the cron
 * expression), and its redrive annotations through `parseRedriveRequest`. With `--sample`, each
 * valid Integration runs the event through the pipeline's pure steps (src/runtime previewEvent).
 *
 * Exit 0: everything valid. Exit 1: any problem, each printed as `FILE: Kind/name: field: message`.
 * Exit 2: bad arguments.
 */
import { readFile } from 'node:fs/promises';
import {
  API_VERSION,
  checkSyncScheduleSpec,
  compileIntegrationSpec,
  INTEGRATION,
  parseRedriveRequest,
  RedriveRequestInvalidError,
  SYNC_SCHEDULE,
  type CompiledIntegrationSpec,
} from '../../api/index.ts';
import { previewEvent } from '../../runtime/index.ts';
import { isObjectName, parseCommand } from '../cli-args.ts';
import { CommandError, rootCause } from '../command-error.ts';
import { manifestLookup, readManifests, type Manifest } from '../manifests.ts';
import { UsageError } from '../usage-error.ts';
import { printUsage, type Command } from './command.ts';

export const validateUsage = (prog: string): string => `Usage: ${prog} validate -f FILE [-f FILE…] [--sample EVENT.json]

Checks Integration and SyncSchedule manifests offline, with the rules the operator applies:
the spec (types, defaults, rules), its JSON Schemas, its transform (mapping or JSONata), its URL
and key templates, its schedule, and the redrive annotations. Secrets referenced but not in the
files are assumed to exist; ConfigMaps with schemas must be given. Other kinds are skipped.

Flags:
  -f, --filename FILE      a manifest file (multi-document YAML or JSON); repeatable
  --sample EVENT.json      an event payload: run it through each valid Integration and print the
                           request body, the target URL and the idempotency key
  -n, --namespace NS       namespace of documents without one (default: default)

Exit status: 0 all valid, 1 any problem (printed as FILE: Kind/name: field: message), 2 bad arguments.
`;

interface Problem {
  readonly where: string;
  readonly field: string;
  readonly message: string;
}

function label(m: Manifest): string {
  return `${m.file}: ${m.kind ?? `document ${m.index}`}/${m.name ?? `(document ${m.index})`}`;
}

/** Redrive annotations that the operator would answer with result Invalid. */
function redriveProblem(m: Manifest): Problem | undefined {
  const annotations = m.metadata.annotations;
  if (typeof annotations !== 'object' || annotations === null) return undefined;
  try {
    parseRedriveRequest(annotations as Record<string, string>);
    return undefined;
  } catch (err) {
    if (!(err instanceof RedriveRequestInvalidError)) throw err;
    return { where: label(m), field: `metadata.annotations[${err.annotation}]`, message: err.message.replace(/^annotation \S+: /, '') };
  }
}

/** The apiVersion and name, before the spec. */
function headerProblem(m: Manifest): Problem | undefined {
  if (m.apiVersion !== API_VERSION) return { where: label(m), field: 'apiVersion', message: `must be ${API_VERSION}` };
  if (m.name === undefined || !isObjectName(m.name)) {
    return { where: label(m), field: 'metadata.name', message: 'must be a lowercase DNS subdomain name (a-z, 0-9, "-" and ".")' };
  }
  return undefined;
}

async function sampleOutcome(m: Manifest, spec: CompiledIntegrationSpec, sample: Uint8Array): Promise<Problem | undefined> {
  const result = await previewEvent(spec, `${m.namespace}/${m.name ?? ''}`, { payload: sample });
  if (!result.ok) {
    return { where: label(m), field: `sample (${result.step})`, message: `${result.message} (the event would be parked with Ferry-Reason ${result.reason})` };
  }
  const p = result.preview;
  process.stdout.write(
    `${label(m)}: sample:\n  ${spec.config.target.method} ${p.url}\n  idempotency key: ${p.idempotencyKey.key} (from ${p.idempotencyKey.source})\n  body: ${JSON.stringify(p.body)}\n`,
  );
  return undefined;
}

export const validateCommand: Command = async (argv, ctx) => {
  const parsed = parseCommand(argv, { filename: { type: 'string', short: 'f', multiple: true }, sample: { type: 'string' }, namespace: { type: 'string', short: 'n' } }, 0);
  if (!parsed) return printUsage(validateUsage(ctx.prog), 0);
  const { values } = parsed;
  const files = values.filename ?? [];
  if (files.length === 0) throw new UsageError('at least one -f FILE is required');
  let sample: Uint8Array | undefined;
  if (values.sample !== undefined) {
    try {
      sample = await readFile(values.sample);
    } catch (err) {
      throw new CommandError(`cannot read ${values.sample}: ${rootCause(err)}`, { cause: err });
    }
  }
  const { manifests, problems: unreadable } = await readManifests(files, values.namespace ?? 'default');
  const problems: Problem[] = unreadable.map((p) => ({ where: `${p.file}: document ${p.index}`, field: 'document', message: p.message }));
  let checked = 0;
  for (const m of manifests) {
    if (m.kind !== INTEGRATION.kind && m.kind !== SYNC_SCHEDULE.kind) continue;
    checked++;
    // A wrong apiVersion or name makes the spec moot; bad redrive annotations do not.
    const header = headerProblem(m);
    if (header) {
      problems.push(header);
      continue;
    }
    const redrive = redriveProblem(m);
    if (redrive) problems.push(redrive);
    const { lookup, assumed } = manifestLookup(manifests, { namespace: m.namespace, spec: m.body.spec });
    if (assumed.length > 0) process.stderr.write(`${label(m)}: note: Secret(s) ${assumed.join(', ')} not in the given files; assumed to exist\n`);
    const problemsBefore = problems.length;
    if (m.kind === INTEGRATION.kind) {
      const check = compileIntegrationSpec(m.namespace, m.body.spec, lookup);
      if (!check.ok) problems.push({ where: label(m), field: check.field, message: check.detail });
      else if (sample) {
        const p = await sampleOutcome(m, check.config, sample);
        if (p) problems.push(p);
      }
    } else {
      const check = checkSyncScheduleSpec(m.namespace, m.body.spec, lookup, new Date());
      if (!check.ok) problems.push({ where: label(m), field: check.field, message: check.detail });
    }
    if (problems.length === problemsBefore && !redrive) process.stdout.write(`${label(m)}: valid\n`);
  }
  for (const p of problems) process.stdout.write(`${p.where}: ${p.field}: ${p.message}\n`);
  if (checked === 0 && problems.length === 0) {
    process.stderr.write('no Integration or SyncSchedule found in the given files\n');
    return 1;
  }
  return problems.length === 0 ? 0 : 1;
};
