/**
 * The `ferry` CLI as users run it: the real binary (`node src/cli/main.ts …`) as a child process
 * against one control plane (kube-apiserver + nats-server), and `kubectl ferry` through the pinned
 * kubectl with a `kubectl-ferry` on PATH. No operator runs: fallback streams are seeded by
 * publishing with the headers the runtime parks with, and status is written through the status
 * subresource — what the CLI reads is what the operator would have written.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { stringify as toYaml } from 'yaml';
import { GROUP, INTEGRATION, REDRIVE_ANNOTATION, SYNC_SCHEDULE, VERSION } from '../../src/api/index.ts';
import { ObjectClient, type KubeObject } from '../../src/kube/index.ts';
import { fallbackHeaders, fallbackStreamName, fallbackSubject, syncFallbackStreamName, syncFallbackSubject, type FallbackFacts } from '../../src/nats/index.ts';
import { systemClock } from '../../src/observability/index.ts';
import { freePort, startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { binaryPaths } from '../env/binaries.ts';
import { installCrds, kubectl, kubectlEnv, repoRoot } from '../support/crds.ts';
import { FerryClient, integrationSpec } from '../support/ferry-client.ts';
import { startFaultTarget, type FaultTarget } from '../support/fault-target.ts';

const MAIN = join(repoRoot, 'src', 'cli', 'main.ts');
const NS = 'revops';

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const integrationRef = (name: string) => ({ group: GROUP, version: VERSION, plural: INTEGRATION.plural, namespace: NS, name });

describe('ferry CLI', () => {
  let env: ControlPlane;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let client: ObjectClient;
  let ferryClient: FerryClient;
  let dir: string;
  let target: FaultTarget;

  function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { ...kubectlEnv(env.kubeconfigPath), NATS_URL: env.natsUrl, FERRY_LOG_LEVEL: 'info', ...extra };
  }

  /** Runs the CLI to completion; stdin is a pipe (not a terminal), as in CI. */
  async function ferry(args: readonly string[], extra: NodeJS.ProcessEnv = {}): Promise<Result> {
    return await new Promise((resolve) => {
      execFile(process.execPath, [MAIN, ...args], { cwd: repoRoot, env: childEnv(extra), encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Starts the CLI and collects its output; `done` resolves with the exit. */
  function spawnFerry(args: readonly string[]): { child: ChildProcess; out: { stdout: string; stderr: string }; done: Promise<Result> } {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: repoRoot, env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (d: Buffer) => (out.stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out.stderr += d.toString()));
    const done = new Promise<Result>((resolve) => {
      child.on('exit', (code, signal) => {
        resolve({ code: code ?? (signal ? -1 : 0), ...out });
      });
    });
    return { child, out, done };
  }

  function assertUsage(r: Result, usageOf: string): void {
    assert.equal(r.code, 2, `exit code; stderr:\n${r.stderr}`);
    assert.match(r.stderr, new RegExp(`Usage: ferry ${usageOf}`));
    assert.equal(r.stdout, '');
  }

  /** One line on stderr, exit 1, no stack trace. */
  function assertOneLineFailure(r: Result, pattern: RegExp): void {
    assert.equal(r.code, 1, `exit code; stderr:\n${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line expected:\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }

  async function park(stream: string, subject: string, facts: Omit<FallbackFacts, 'attempts' | 'idempotencyKey'>, payload: unknown): Promise<void> {
    const h = natsHeaders();
    for (const [k, values] of fallbackHeaders(new Map([['X-Trace', ['t-1']]]), { ...facts, attempts: 3, idempotencyKey: 'k' })) for (const v of values) h.append(k, v);
    await jetstream(nc).publish(subject, JSON.stringify(payload), { headers: h });
  }

  async function streamSize(stream: string): Promise<number> {
    return (await jsm.streams.info(stream)).state.messages;
  }

  before(async () => {
    env = await startControlPlane();
    await installCrds({ kubeconfigPath: env.kubeconfigPath });
    await kubectl(env.kubeconfigPath, ['create', 'namespace', NS]);
    nc = await connect({ servers: env.natsUrl });
    jsm = await jetstreamManager(nc);
    client = new ObjectClient({ kubeConfig: env.kubeConfig, clock: systemClock });
    ferryClient = new FerryClient(env.kubeConfig);
    dir = await mkdtemp(join(tmpdir(), 'ferry-cli-'));
    target = await startFaultTarget();

    // Parked messages, as the runtime parks them: two exhausted and one rejected for the
    // Integration, one contract failure for the SyncSchedule.
    const deals = { namespace: NS, name: 'deal-to-invoice' };
    const contacts = { namespace: NS, name: 'contacts-to-erp' };
    await jsm.streams.add({ name: fallbackStreamName(deals), subjects: [fallbackSubject(deals)] });
    await jsm.streams.add({ name: syncFallbackStreamName(contacts), subjects: [syncFallbackSubject(contacts)] });
    const integration = `${NS}/deal-to-invoice`;
    await park(fallbackStreamName(deals), fallbackSubject(deals), { integration, reason: 'exhausted', error: 'HTTP 503' }, { id: 'o-1', amount: 1 });
    await park(fallbackStreamName(deals), fallbackSubject(deals), { integration, reason: 'exhausted', error: 'HTTP 503' }, { id: 'o-2', amount: 2 });
    await park(fallbackStreamName(deals), fallbackSubject(deals), { integration, reason: 'rejected', error: 'HTTP 400', httpStatus: 400 }, { id: 'o-3', amount: 3 });
    await park(syncFallbackStreamName(contacts), syncFallbackSubject(contacts), { syncSchedule: `${NS}/contacts-to-erp`, reason: 'contract', error: 'missing /id' }, { email: 'a@b' });

    await ferryClient.create(INTEGRATION.plural, NS, { kind: INTEGRATION.kind, metadata: { name: 'deal-to-invoice' }, spec: integrationSpec() });
  });

  after(async () => {
    await nc.close().catch(() => undefined);
    await target.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    await env.stop();
  });

  it('prints usage for --help (exit 0) and for an unknown command or flag (exit 2)', async () => {
    const help = await ferry(['fallback', 'redrive', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: ferry fallback redrive NAME/);
    const [unknown, unknownSub, badFlag, missingValue] = await Promise.all([
      ferry(['frobnicate']),
      ferry(['fallback', 'frobnicate']),
      ferry(['status', '--bogus']),
      ferry(['status', '--output']),
    ]);
    assertUsage(unknown, '<command>');
    assertUsage(unknownSub, 'fallback <ls\\|show\\|redrive\\|purge>');
    assertUsage(badFlag, 'status');
    assertUsage(missingValue, 'status');
  });

  it('fallback ls counts parked messages by reason and age, per Integration and SyncSchedule', async () => {
    const table = await ferry(['fallback', 'ls', '-n', NS]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^KIND\s+NAMESPACE\s+NAME\s+MESSAGES\s+REASONS\s+OLDEST\s+NEWEST\s+<1H\s+<1D\s+OLDER$/m);
    assert.match(table.stdout, /^Integration\s+revops\s+deal-to-invoice\s+3\s+exhausted=2,rejected=1\s+\d+s\s+\d+s\s+3\s+0\s+0$/m);
    assert.match(table.stdout, /^SyncSchedule\s+revops\s+contacts-to-erp\s+1\s+contract=1\s/m);

    const json = await ferry(['fallback', 'ls', 'syncschedule/contacts-to-erp', '-n', NS, '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const [summary] = JSON.parse(json.stdout) as { kind: string; name: string; messages: number; byReason: Record<string, number>; byAge: { underHour: number } }[];
    assert.deepEqual({ kind: summary?.kind, name: summary?.name, messages: summary?.messages, byReason: summary?.byReason, underHour: summary?.byAge.underHour }, {
      kind: 'SyncSchedule',
      name: 'contacts-to-erp',
      messages: 1,
      byReason: { contract: 1 },
      underHour: 1,
    });

    // Another namespace has none; -A finds both.
    const other = await ferry(['fallback', 'ls', '-n', 'default']);
    assert.equal(other.code, 0);
    assert.equal(other.stdout, '');
    const all = await ferry(['fallback', 'ls', '-A', '-o', 'yaml']);
    assert.match(all.stdout, /name: deal-to-invoice/);
    assertUsage(await ferry(['fallback', 'ls', '-A', '-n', NS]), 'fallback ls');
  });

  it('fallback show prints the selected messages with headers and payload', async () => {
    const json = await ferry(['fallback', 'show', 'deal-to-invoice', '-n', NS, '--reason', 'rejected', '-o', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const messages = JSON.parse(json.stdout) as { sequence: number; headers: Record<string, string>; payload: { id: string } }[];
    assert.deepEqual(
      messages.map((m) => [m.sequence, m.headers['Ferry-Reason'], m.headers['Ferry-Http-Status'], m.headers['X-Trace'], m.payload.id]),
      [[3, 'rejected', '400', 't-1', 'o-3']],
    );

    const text = await ferry(['fallback', 'show', 'deal-to-invoice', '-n', NS, '--seq', '2']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^#2 {2}parked /m);
    assert.match(text.stdout, /Ferry-Reason: exhausted/);
    assert.match(text.stdout, /payload: \{"id":"o-2","amount":2\}/);
    assert.doesNotMatch(text.stdout, /o-1|o-3/);

    const limited = await ferry(['fallback', 'show', 'deal-to-invoice', '-n', NS, '--limit', '2', '-o', 'yaml']);
    assert.equal((limited.stdout.match(/^- sequence:/gm) ?? []).length, 2);

    const bad = await Promise.all([
      ['fallback', 'show', 'deal-to-invoice', '--limit', 'zero'],
      ['fallback', 'show', 'deal-to-invoice', '--seq', '1', '--from-seq', '1'],
      ['fallback', 'show'],
      ['fallback', 'show', 'deal-to-invoice', '--reason', 'bored'],
    ].map((args) => ferry(args)));
    for (const r of bad) assertUsage(r, 'fallback show');
    assertOneLineFailure(await ferry(['fallback', 'show', 'nothing-here', '-n', NS]), /^ferry: Integration revops\/nothing-here has no fallback stream/);
  });

  it('fallback purge asks on a terminal, refuses without one unless --yes, and deletes exactly the selection', async () => {
    const stream = fallbackStreamName({ namespace: NS, name: 'deal-to-invoice' });
    const refused = await ferry(['fallback', 'purge', 'deal-to-invoice', '-n', NS, '--reason', 'rejected']);
    assertUsage(refused, 'fallback purge');
    assert.match(refused.stderr, /pass --yes/);
    assert.equal(await streamSize(stream), 3);

    // On a terminal it asks; anything but yes deletes nothing (util-linux `script` gives it a pty).
    const declined = await new Promise<Result>((resolve) => {
      const command = [process.execPath, MAIN, 'fallback', 'purge', 'deal-to-invoice', '-n', NS, '--reason', 'rejected'].map((a) => `'${a}'`).join(' ');
      const child = execFile('script', ['-qec', command, '/dev/null'], { cwd: repoRoot, env: childEnv(), encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      });
      child.stdin?.end('n\n');
    });
    assert.equal(declined.code, 1, declined.stdout + declined.stderr);
    assert.match(declined.stdout, /Delete 1 message\(s\) from FERRY_FALLBACK_revops_deal-to-invoice\? \[y\/N\]/);
    assert.match(declined.stdout, /Nothing deleted\./);
    assert.equal(await streamSize(stream), 3);

    const purged = await ferry(['fallback', 'purge', 'deal-to-invoice', '-n', NS, '--reason', 'rejected', '--yes']);
    assert.equal(purged.code, 0, purged.stderr);
    assert.match(purged.stdout, /deleted 1 message\(s\) from FERRY_FALLBACK_revops_deal-to-invoice/);
    assert.equal(await streamSize(stream), 2);
    const left = JSON.parse((await ferry(['fallback', 'show', 'deal-to-invoice', '-n', NS, '-o', 'json'])).stdout) as { payload: { id: string } }[];
    assert.deepEqual(
      left.map((m) => m.payload.id),
      ['o-1', 'o-2'],
    );
  });

  it('fallback redrive sets exactly the request annotations; a bad filter patches nothing', async () => {
    const r = await ferry(['fallback', 'redrive', 'deal-to-invoice', '-n', NS, '--reason', 'exhausted', '--from-seq', '1', '--to-seq', '2', '--older-than', '1m']);
    assert.equal(r.code, 0, r.stderr);
    const id = /request (\S+)/.exec(r.stdout)?.[1];
    assert.ok(id, r.stdout);
    const obj = await client.get<KubeObject>(integrationRef('deal-to-invoice'));
    const annotations = Object.fromEntries(Object.entries(obj.metadata?.annotations ?? {}).filter(([k]) => k.startsWith(`${GROUP}/redrive`)));
    assert.deepEqual(annotations, {
      [REDRIVE_ANNOTATION]: id,
      'ferry.dev/redrive-reasons': 'exhausted',
      'ferry.dev/redrive-sequences': '1-2',
      'ferry.dev/redrive-older-than': '1m',
    });

    const bad = await Promise.all(
      [['--older-than', 'soon'], ['--from-seq', '5', '--to-seq', '2'], ['--reason', 'sad'], ['--timeout', '5s']]
        .map((flags) => ferry(['fallback', 'redrive', 'deal-to-invoice', '-n', NS, ...flags]))
        .concat(ferry(['fallback', 'redrive', 'syncschedule/contacts-to-erp', '-n', NS])),
    );
    for (const r of bad) assertUsage(r, 'fallback redrive');
    const after = await client.get<KubeObject>(integrationRef('deal-to-invoice'));
    assert.equal(after.metadata?.resourceVersion, obj.metadata?.resourceVersion, 'a rejected command wrote nothing');

    assertOneLineFailure(await ferry(['fallback', 'redrive', 'missing', '-n', NS]), /^ferry: integrations\.ferry\.dev "missing" not found$/m);
  });

  it('fallback redrive --wait reports the operator\'s answer from status.lastRedrive and exits by its result', async () => {
    for (const [result, code] of [
      ['Succeeded', 0],
      ['Partial', 1],
    ] as const) {
      const before = (await client.get<KubeObject>(integrationRef('deal-to-invoice'))).metadata?.annotations?.[REDRIVE_ANNOTATION];
      const run = spawnFerry(['fallback', 'redrive', 'deal-to-invoice', '-n', NS, '--wait', '--timeout', '60s']);
      // The operator's part, by hand: notice the new request, answer Running, then the result.
      let id: string | undefined;
      while (id === undefined || id === before) {
        id = (await client.get<KubeObject>(integrationRef('deal-to-invoice'))).metadata?.annotations?.[REDRIVE_ANNOTATION];
        await sleep(50);
      }
      const startedAt = new Date().toISOString();
      await client.patchStatus(integrationRef('deal-to-invoice'), { lastRedrive: { request: id, result: 'Running', startedAt, selected: 2 } });
      await sleep(700);
      assert.equal(run.child.exitCode, null, 'still waiting while Running');
      await client.patchStatus(integrationRef('deal-to-invoice'), {
        lastRedrive: { request: id, result, startedAt, completedAt: new Date().toISOString(), selected: 2, delivered: result === 'Succeeded' ? 2 : 1, failedAgain: result === 'Succeeded' ? 0 : 1 },
      });
      const done = await run.done;
      assert.equal(done.code, code, done.stderr);
      assert.match(done.stdout, new RegExp(`redrive ${id}: ${result} .*\\(selected 2, delivered ${result === 'Succeeded' ? 2 : 1}, failed again ${result === 'Succeeded' ? 0 : 1}\\)`));
    }

    // Nobody answers: --wait gives up after --timeout, exit 1, and says the request stands.
    const unanswered = await ferry(['fallback', 'redrive', 'deal-to-invoice', '-n', NS, '--wait', '--timeout', '1s']);
    assertOneLineFailure(unanswered, /^ferry: redrive cli-\S+ did not finish within 1s \(the operator has not picked it up\); it goes on, see status\.lastRedrive$/m);
  });

  it('status shows every Integration and SyncSchedule with ready, problem, delivered, fallback, circuit and last run', async () => {
    const now = new Date().toISOString();
    await ferryClient.create(SYNC_SCHEDULE.plural, NS, {
      kind: SYNC_SCHEDULE.kind,
      metadata: { name: 'contacts-to-erp' },
      spec: { schedule: '*/15 * * * *', source: { url: 'https://crm.example.com/contacts' }, key: '/id', target: { url: 'https://erp.example.com/customers/{{/id}}' } },
    });
    const condition = (type: string, status: string, reason: string) => ({ type, status, reason, message: `${type} ${reason}`, lastTransitionTime: now, observedGeneration: 1 });
    await client.patchStatus(integrationRef('deal-to-invoice'), {
      observedGeneration: 1,
      conditions: [condition('Ready', 'True', 'Delivering'), condition('Degraded', 'True', 'FallbackGrowing')],
      stats: { delivered: 7 },
      fallbackPending: 2,
      circuit: { state: 'Closed' },
    });
    await client.patchStatus(
      { group: GROUP, version: VERSION, plural: SYNC_SCHEDULE.plural, namespace: NS, name: 'contacts-to-erp' },
      { observedGeneration: 1, conditions: [condition('Ready', 'False', 'RunFailed')], lastRun: { id: 'run-1', startedAt: now, finishedAt: now, result: 'Failed', written: 4 }, fallbackPending: 1 },
    );

    const table = await ferry(['status', '-n', NS]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^KIND\s+NAMESPACE\s+NAME\s+READY\s+PROBLEM\s+DELIVERED\s+FALLBACK\s+CIRCUIT\s+LAST RUN$/m);
    assert.match(table.stdout, /^Integration\s+revops\s+deal-to-invoice\s+True \(Delivering\)\s+Degraded: FallbackGrowing\s+7\s+2\s+Closed\s+-$/m);
    assert.match(table.stdout, /^SyncSchedule\s+revops\s+contacts-to-erp\s+False \(RunFailed\)\s+-\s+4\s+1\s+-\s+Failed \d+s ago$/m);

    const json = JSON.parse((await ferry(['status', '-A', '-o', 'json'])).stdout) as { kind: string; name: string; problemMessage?: string }[];
    assert.deepEqual(
      json.map((r) => `${r.kind}/${r.name}`),
      ['Integration/deal-to-invoice', 'SyncSchedule/contacts-to-erp'],
    );
    assert.equal(json[0]?.problemMessage, 'Degraded FallbackGrowing');

    const bad = await Promise.all([ferry(['status', '-o', 'xml']), ferry(['status', 'deal-to-invoice']), ferry(['status', '-A', '-n', NS])]);
    for (const r of bad) assertUsage(r, 'status');
  });

  it('kubectl ferry runs the CLI as a kubectl plugin', async () => {
    const bin = join(dir, 'bin');
    await mkdir(bin, { recursive: true });
    await symlink(MAIN, join(bin, 'kubectl-ferry'));
    const pluginEnv = { ...childEnv(), PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH ?? ''}` };
    const run = async (args: readonly string[]): Promise<Result> =>
      await new Promise((resolve) => {
        execFile(binaryPaths().kubectl, ['ferry', ...args], { cwd: repoRoot, env: pluginEnv, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
          resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
        });
      });
    const status = await run(['status', '-n', NS]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /^Integration\s+revops\s+deal-to-invoice\s+True \(Delivering\)/m);
    const help = await run(['help']);
    assert.match(help.stdout, /^Usage: kubectl ferry <command>/m);
  });

  it('validate checks manifests offline: schema, JSONata, CR rules, a sample event; valid files exit 0', async () => {
    const integration = (name: string, spec: Record<string, unknown>) => ({ apiVersion: `${GROUP}/${VERSION}`, kind: INTEGRATION.kind, metadata: { name }, spec });
    const good = join(dir, 'good.yaml');
    await writeFile(
      good,
      [
        toYaml(integration('invoices', integrationSpec({ target: { url: 'https://billing.example.com/v1/customers/{{/id}}', idempotency: { key: '{{/id}}-invoice' } } }))),
        toYaml({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'unrelated' }, data: { a: 'b' } }),
      ].join('---\n'),
    );
    const sample = join(dir, 'event.json');
    await writeFile(sample, JSON.stringify({ id: 'd 1', amount: 12.5, customer: { id: 'c-9' } }));
    // As the README shows it: the examples directory (relative to the repository) and a sample.
    const ok = await ferry(['validate', '-f', 'examples/', '-f', good, '--sample', sample]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /good\.yaml: Integration\/invoices: valid/);
    assert.match(ok.stdout, /examples\/integration\.yaml: Integration\/deal-to-invoice: valid/);
    assert.match(ok.stdout, /examples\/sync-schedule\.yaml: SyncSchedule\/contacts-to-erp: valid/);
    // examples/secrets.yaml holds the Secrets the examples reference: nothing had to be assumed.
    assert.doesNotMatch(ok.stderr, /assumed to exist/);
    assert.match(ok.stdout, /POST https:\/\/billing\.example\.com\/v1\/customers\/d%201\n {2}idempotency key: d 1-invoice \(from template\)\n {2}body: \{"externalId":"d 1","total":12\.5\}/);
    assert.match(ok.stdout, /POST https:\/\/billing\.example\.com\/v1\/accounts\/c-9\/invoices\n {2}idempotency key: d 1-invoice \(from template\)\n {2}body: \{"externalId":"d 1","total":12\.5,"customer":"c-9"\}/);

    const badSample = join(dir, 'bad-event.json');
    await writeFile(badSample, JSON.stringify({ id: 'd1', amount: 'ten' }));
    const failed = await ferry(['validate', '-f', good, '--sample', badSample]);
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /good\.yaml: Integration\/invoices: sample \(schema\): \/amount: must be number/);

    const bad = join(dir, 'bad.yaml');
    const base = integrationSpec();
    await writeFile(
      bad,
      [
        integration('bad-schema', { ...base, schema: { inline: { type: 'object', properties: { amount: { type: 'numbr' } } } } }),
        integration('bad-jsonata', { ...base, transform: { jsonata: '$sum(amount' } }),
        integration('bad-duration', { ...base, delivery: { backoff: { initial: 'soon' } } }),
        integration('bad-rule', { ...base, delivery: { backoff: { initial: '10m', max: '1m' } } }),
        { ...integration('bad-redrive', base), metadata: { name: 'bad-redrive', annotations: { [REDRIVE_ANNOTATION]: 'x', 'ferry.dev/redrive-sequences': '9-2' } } },
        { ...integration('bad-version', base), apiVersion: 'ferry.dev/v1' },
      ]
        .map((d) => toYaml(d))
        .join('---\n'),
    );
    const problems = await ferry(['validate', '-f', bad]);
    assert.equal(problems.code, 1);
    const lines = problems.stdout.trim().split('\n');
    const expect = [
      /bad\.yaml: Integration\/bad-schema: spec\.schema\.inline\.properties\.amount\.type: must be equal to one of the allowed values/,
      /bad\.yaml: Integration\/bad-jsonata: spec\.transform\.jsonata: .+/,
      /bad\.yaml: Integration\/bad-duration: spec\.delivery\.backoff\.initial: must be a duration/,
      /bad\.yaml: Integration\/bad-rule: spec\.delivery\.backoff\.initial: initial must not be greater than max/,
      /bad\.yaml: Integration\/bad-redrive: metadata\.annotations\[ferry\.dev\/redrive-sequences\]: "9-2" must be a sequence range/,
      /bad\.yaml: Integration\/bad-version: apiVersion: must be ferry\.dev\/v1alpha1/,
    ];
    for (const pattern of expect) assert.ok(lines.some((l) => pattern.test(l)), `${pattern.source} not in:\n${problems.stdout}`);
    assert.equal(lines.length, expect.length, problems.stdout);

    const badArgs = await Promise.all([ferry(['validate']), ferry(['validate', '-f'])]);
    for (const r of badArgs) assertUsage(r, 'validate');
  });

  it('run delivers events from a stream to a local target with the real runtime, and drains on SIGTERM', async () => {
    await jsm.streams.add({ name: 'RUN_EVENTS', subjects: ['run.>'] });
    const file = join(dir, 'run.yaml');
    const spec = integrationSpec({
      source: { stream: 'RUN_EVENTS', subjects: ['run.deal-to-invoice'], startAt: 'Beginning' },
      target: { url: `${target.url}/invoices/{{/id}}`, auth: { bearer: { secretKeyRef: { name: 'billing', key: 'token' } } } },
      delivery: { backoff: { initial: '10ms' } },
    });
    await writeFile(
      file,
      [
        toYaml({ apiVersion: `${GROUP}/${VERSION}`, kind: INTEGRATION.kind, metadata: { name: 'local-orders' }, spec }),
        toYaml({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'billing' }, stringData: { token: 's3cret' } }),
      ].join('---\n'),
    );
    for (const id of ['r-1', 'r-2']) await jetstream(nc).publish('run.deal-to-invoice', JSON.stringify({ id, amount: 10 }));

    const run = spawnFerry(['run', '-f', file, '-n', 'trial', '--allow-cidrs', '127.0.0.0/8']);
    const deadline = Date.now() + 60_000;
    while (target.requests.filter((r) => r.path.startsWith('/invoices/r-')).length < 2) {
      assert.ok(Date.now() < deadline, `no deliveries; stderr:\n${run.out.stderr}`);
      assert.equal(run.child.exitCode, null, `ferry run exited; stderr:\n${run.out.stderr}`);
      await sleep(100);
    }
    const got = target.requests.filter((r) => r.path.startsWith('/invoices/r-'));
    assert.deepEqual(got.map((r) => [r.path, JSON.parse(r.body) as unknown, r.headers.authorization]).sort(), [
      ['/invoices/r-1', { externalId: 'r-1', total: 10 }, 'Bearer s3cret'],
      ['/invoices/r-2', { externalId: 'r-2', total: 10 }, 'Bearer s3cret'],
    ]);
    // Its own consumer and fallback stream, named after the namespace it was given.
    await jsm.consumers.info('RUN_EVENTS', 'ferry_trial_local-orders');
    await jsm.streams.info('FERRY_FALLBACK_trial_local-orders');
    run.child.kill('SIGTERM');
    const done = await run.done;
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stderr, /"msg":"draining"/);
    assert.doesNotMatch(done.stderr, /s3cret/);

    const missing = join(dir, 'missing-source.yaml');
    await writeFile(missing, toYaml({ apiVersion: `${GROUP}/${VERSION}`, kind: INTEGRATION.kind, metadata: { name: 'nowhere' }, spec: integrationSpec({ source: { stream: 'NO_SUCH_STREAM', subjects: ['none.>'] } }) }));
    const [noFile, badCidr, noStream] = await Promise.all([ferry(['run']), ferry(['run', '-f', file, '--allow-cidrs', 'localhost']), ferry(['run', '-f', missing])]);
    assertUsage(noFile, 'run');
    assertUsage(badCidr, 'run');
    assertOneLineFailure(noStream, /^ferry: spec\.source\.stream: stream "NO_SUCH_STREAM" not found at nats:\/\/\S+ \(create it, or set spec\.source\.create: true\)$/m);
  });

  it('an unreachable cluster or NATS is one clear line and exit 1', async () => {
    const port = await freePort();
    const kubeconfig = join(dir, 'unreachable.kubeconfig');
    await writeFile(
      kubeconfig,
      toYaml({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'gone', cluster: { server: `https://127.0.0.1:${port}`, 'insecure-skip-tls-verify': true } }],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'gone', context: { cluster: 'gone', user: 'u', namespace: NS } }],
        'current-context': 'gone',
      }),
    );
    const [status, redrive, ls, show, context] = await Promise.all([
      ferry(['status', '--kubeconfig', kubeconfig]),
      ferry(['fallback', 'redrive', 'deal-to-invoice', '--kubeconfig', kubeconfig]),
      ferry(['fallback', 'ls', '--nats-url', `nats://127.0.0.1:${port}`]),
      ferry(['fallback', 'show', 'deal-to-invoice'], { NATS_URL: `nats://127.0.0.1:${port}` }),
      ferry(['status', '--context', 'nope']),
    ]);
    assertOneLineFailure(status, new RegExp(`^ferry: cannot reach the Kubernetes API at https://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}$`, 'm'));
    assertOneLineFailure(redrive, /^ferry: cannot reach the Kubernetes API at https:\/\/127\.0\.0\.1:\d+: /);
    assertOneLineFailure(ls, new RegExp(`^ferry: cannot reach NATS at nats://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
    assertOneLineFailure(show, /^ferry: cannot reach NATS at /);
    assertOneLineFailure(context, /^ferry: context "nope" is not in the kubeconfig$/m);
  });
});
