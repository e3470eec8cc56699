/**
 * `ferry fallback ls|show|redrive|purge`: what sits in fallback streams, and what to do with it.
 * `ls`, `show` and `purge` talk to NATS only (the stream names say which object they belong to);
 * `redrive` asks the operator through the Integration's annotations (fallback-redrive.ts).
 */
import { createInterface } from 'node:readline/promises';
import { FALLBACK_REASONS } from '../../api/index.ts';
import type { FallbackStore, ParkedMessage } from '../../nats/index.ts';
import {
  ALL_NAMESPACES_OPTION,
  choiceFlag,
  KUBE_OPTIONS,
  NATS_OPTIONS,
  OUTPUT_OPTION,
  parseCommand,
  type CliContext,
} from '../cli-args.ts';
import { CommandError } from '../command-error.ts';
import { natsTarget } from '../nats-flags.ts';
import { withFallbackStore } from '../nats-session.ts';
import { renderData, renderTable, shortAge } from '../output.ts';
import { UsageError } from '../usage-error.ts';
import { fallbackTarget, header, selectMessages, selection, SELECTION_OPTIONS, type FallbackTarget } from './fallback-target.ts';
import { fallbackUsage, lsUsage, purgeUsage, redriveUsage, showUsage } from './fallback-usage.ts';
import { printUsage, withUsage, type Command } from './command.ts';

/**
 * The namespace: `-n`, else the kubeconfig context's (the Kubernetes client is loaded only then),
 * else `default`.
 */
async function namespaceOf(flags: { kubeconfig?: string | undefined; context?: string | undefined; namespace?: string | undefined }): Promise<string> {
  if (flags.namespace !== undefined) return flags.namespace;
  return (await import('../kube-context.ts')).namespaceOf(flags);
}

/** A CommandError when the object has no fallback stream on this NATS (wrong name, namespace or server). */
async function requireStream(store: FallbackStore, t: FallbackTarget): Promise<void> {
  if (!(await store.info(t.stream))) throw new CommandError(`${t.kind} ${t.namespace}/${t.name} has no fallback stream (${t.stream}) on this NATS`);
}

const SHOW_DEFAULT_LIMIT = 100;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** What `ls` reports for one fallback stream. */
interface StreamSummary {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly stream: string;
  readonly messages: number;
  readonly byReason: Record<string, number>;
  readonly byAge: { readonly underHour: number; readonly underDay: number; readonly older: number };
  readonly oldest: string | undefined;
  readonly newest: string | undefined;
}

async function summarize(store: FallbackStore, t: FallbackTarget, now: number): Promise<StreamSummary> {
  const byReason: Record<string, number> = {};
  const byAge = { underHour: 0, underDay: 0, older: 0 };
  let oldest: number | undefined;
  let newest: number | undefined;
  let messages = 0;
  for await (const m of store.read(t.stream, { headersOnly: true })) {
    messages++;
    const reason = header(m, 'Ferry-Reason') ?? 'unknown';
    byReason[reason] = (byReason[reason] ?? 0) + 1;
    const age = now - m.parkedAtMs;
    if (age < HOUR_MS) byAge.underHour++;
    else if (age < DAY_MS) byAge.underDay++;
    else byAge.older++;
    oldest = Math.min(oldest ?? m.parkedAtMs, m.parkedAtMs);
    newest = Math.max(newest ?? m.parkedAtMs, m.parkedAtMs);
  }
  const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());
  return { kind: t.kind, namespace: t.namespace, name: t.name, stream: t.stream, messages, byReason, byAge, oldest: iso(oldest), newest: iso(newest) };
}

const ls: Command = async (argv, ctx) => {
  const parsed = parseCommand(argv, { ...KUBE_OPTIONS, ...ALL_NAMESPACES_OPTION, ...NATS_OPTIONS, ...OUTPUT_OPTION }, 1);
  if (!parsed) return printUsage(lsUsage(ctx.prog), 0);
  const { values, positionals } = parsed;
  const format = choiceFlag('output', values.output, ['json', 'yaml'] as const);
  const all = values['all-namespaces'] === true;
  if (all && (values.namespace !== undefined || positionals[0] !== undefined)) throw new UsageError('--all-namespaces takes neither --namespace nor NAME');
  const namespace = all ? undefined : await namespaceOf(values);
  const named = positionals[0] === undefined || namespace === undefined ? undefined : fallbackTarget(positionals[0], namespace);
  const now = Date.now();
  const summaries = await withFallbackStore(natsTarget(values, ctx.env), async (store) => {
    let targets: FallbackTarget[];
    if (named) {
      await requireStream(store, named);
      targets = [named];
    } else {
      targets = (await store.streams())
        .filter((s) => namespace === undefined || s.namespace === namespace)
        .sort((a, b) => `${a.namespace}/${a.name}/${a.kind}`.localeCompare(`${b.namespace}/${b.name}/${b.kind}`));
    }
    const out: StreamSummary[] = [];
    for (const t of targets) out.push(await summarize(store, t, now));
    return out;
  });
  if (format) {
    process.stdout.write(renderData(summaries, format));
    return 0;
  }
  if (summaries.length === 0) {
    process.stderr.write(`No fallback streams${namespace === undefined ? '' : ` in namespace ${namespace}`}.\n`);
    return 0;
  }
  const reasons = (r: Record<string, number>): string =>
    Object.entries(r)
      .sort(([a], [b]) => FALLBACK_REASONS.indexOf(a as never) - FALLBACK_REASONS.indexOf(b as never))
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || '-';
  const age = (iso: string | undefined): string => (iso === undefined ? '-' : shortAge(now - Date.parse(iso)));
  const rows = summaries.map((s) => [
    s.kind,
    s.namespace,
    s.name,
    String(s.messages),
    reasons(s.byReason),
    age(s.oldest),
    age(s.newest),
    String(s.byAge.underHour),
    String(s.byAge.underDay),
    String(s.byAge.older),
  ]);
  process.stdout.write(renderTable(['KIND', 'NAMESPACE', 'NAME', 'MESSAGES', 'REASONS', 'OLDEST', 'NEWEST', '<1H', '<1D', 'OLDER'], rows));
  return 0;
};

/** A payload as JSON when it is JSON, else as text. */
function payloadValue(payload: Uint8Array): unknown {
  const text = new TextDecoder().decode(payload);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function messageDocument(m: ParkedMessage): Record<string, unknown> {
  return {
    sequence: m.sequence,
    parkedAt: new Date(m.parkedAtMs).toISOString(),
    subject: m.subject,
    headers: Object.fromEntries([...m.headers].map(([k, v]) => [k, v.length === 1 ? v[0] : v])),
    payload: payloadValue(m.payload),
  };
}

function messageText(m: ParkedMessage, now: number): string {
  const lines = [`#${m.sequence}  parked ${new Date(m.parkedAtMs).toISOString()} (${shortAge(now - m.parkedAtMs)} ago)  ${m.subject}`];
  for (const [k, values] of m.headers) for (const v of values) lines.push(`  ${k}: ${v}`);
  lines.push(`  payload: ${new TextDecoder().decode(m.payload)}`, '');
  return lines.join('\n');
}

const show: Command = async (argv, ctx) => {
  const parsed = parseCommand(argv, { ...KUBE_OPTIONS, ...NATS_OPTIONS, ...OUTPUT_OPTION, ...SELECTION_OPTIONS }, 1);
  if (!parsed) return printUsage(showUsage(ctx.prog), 0);
  const { values, positionals } = parsed;
  if (positionals[0] === undefined) throw new UsageError('NAME is required');
  const format = choiceFlag('output', values.output, ['text', 'json', 'yaml'] as const) ?? 'text';
  const sel = selection(values);
  const target = fallbackTarget(positionals[0], await namespaceOf(values));
  const messages = await withFallbackStore(natsTarget(values, ctx.env), async (store) => {
    await requireStream(store, target);
    return await selectMessages(store, target.stream, { ...sel, limit: sel.limit ?? SHOW_DEFAULT_LIMIT });
  });
  if (format !== 'text') {
    process.stdout.write(renderData(messages.map(messageDocument), format));
    return 0;
  }
  const now = Date.now();
  process.stdout.write(messages.map((m) => messageText(m, now)).join('\n'));
  if (messages.length === 0) process.stderr.write(`No messages selected in ${target.stream}.\n`);
  return 0;
};

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

const purge: Command = async (argv, ctx: CliContext) => {
  const parsed = parseCommand(argv, { ...KUBE_OPTIONS, ...NATS_OPTIONS, ...SELECTION_OPTIONS, yes: { type: 'boolean' } }, 1);
  if (!parsed) return printUsage(purgeUsage(ctx.prog), 0);
  const { values, positionals } = parsed;
  if (positionals[0] === undefined) throw new UsageError('NAME is required');
  const sel = selection(values);
  const yes = values.yes === true;
  // Decided before anything is read: a script without --yes must fail the same way every time.
  if (!yes && !ctx.interactive) throw new UsageError('refusing to delete without confirmation: stdin is not a terminal; pass --yes');
  const target = fallbackTarget(positionals[0], await namespaceOf(values));
  return await withFallbackStore(natsTarget(values, ctx.env), async (store) => {
    await requireStream(store, target);
    const selected = await selectMessages(store, target.stream, sel);
    if (selected.length === 0) {
      process.stderr.write(`No messages selected in ${target.stream}; nothing deleted.\n`);
      return 0;
    }
    if (!yes && !(await confirm(`Delete ${selected.length} message(s) from ${target.stream}? [y/N] `))) {
      process.stderr.write('Nothing deleted.\n');
      return 1;
    }
    let deleted = 0;
    for (const m of selected) if (await store.delete(target.stream, m.sequence)) deleted++;
    process.stdout.write(`deleted ${deleted} message(s) from ${target.stream}\n`);
    return 0;
  });
};

/** Redrive needs the Kubernetes client; the others only NATS, so it is loaded when used. */
const redrive: Command = async (argv, ctx) => (await import('./fallback-redrive.ts')).redriveCommand(argv, ctx);

const subcommands: Readonly<Record<string, { run: Command; usage: (prog: string) => string }>> = {
  ls: { run: ls, usage: lsUsage },
  show: { run: show, usage: showUsage },
  redrive: { run: redrive, usage: redriveUsage },
  purge: { run: purge, usage: purgeUsage },
};

/** `ferry fallback …`: dispatches to the subcommand; its usage errors print its own usage. */
export const fallbackCommand: Command = async (argv, ctx) => {
  const [sub, ...rest] = argv;
  if (sub === undefined) return printUsage(fallbackUsage(ctx.prog), 2);
  if (sub === '--help' || sub === '-h' || sub === 'help') return printUsage(fallbackUsage(ctx.prog), 0);
  const entry = subcommands[sub];
  if (!entry) throw new UsageError(`unknown command ${JSON.stringify(sub)}`, { command: 'fallback', usage: fallbackUsage(ctx.prog) });
  return await withUsage(`fallback ${sub}`, entry.usage(ctx.prog), () => entry.run(rest, ctx));
};
