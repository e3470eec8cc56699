/**
 * Shared setup of the SyncSchedule end-to-end tests: the runtime environment (control plane,
 * CRDs, NATS), a fake CRM and ERP (test/support/sync-apis.ts), SyncSchedules applied with the
 * pinned kubectl as users do, and helpers to trigger runs and wait for their outcome.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import type { StoredMsg } from '@nats-io/jetstream';
import { kubectl } from './crds.ts';
import type { FerryObj } from './ferry-client.ts';
import type { OperatorProcess } from './operator-process.ts';
import { eventually, NS, putSecret, setupRuntimeEnv, type RuntimeEnv } from './runtime-harness.ts';
import { startCrm, startErp, type Crm, type Erp } from './sync-apis.ts';

export const CRM_TOKEN = 'crm-token-123';
export const ERP_TOKEN = 'erp-token-456';

export interface SyncRunStatus {
  id: string;
  startedAt: string;
  finishedAt?: string;
  result: 'Running' | 'Succeeded' | 'Partial' | 'Failed' | 'Skipped';
  fetched?: number;
  unchanged?: number;
  written?: number;
  failed?: number;
  deleted?: number;
  mismatches?: { missing?: number; extra?: number; different?: number; found?: number; repaired?: number };
  watermark?: string;
  message?: string;
}

export function lastRun(obj: FerryObj | undefined): SyncRunStatus | undefined {
  return obj?.status?.lastRun as SyncRunStatus | undefined;
}

export function history(obj: FerryObj | undefined): SyncRunStatus[] {
  return (obj?.status?.history as SyncRunStatus[] | undefined) ?? [];
}

/** The transform every test uses: the ERP's shape of a CRM contact. */
export const MAPPING = { id: '/id', fullName: '/name', email: '/email', amountCents: '/amount' };

/** What the ERP must hold for a CRM record after a sync with MAPPING. */
export function mapped(r: { id: string; name: string; email: string; amount: number }): Record<string, unknown> {
  return { id: r.id, fullName: r.name, email: r.email, amountCents: r.amount };
}

export interface SyncSpecOptions {
  readonly name: string;
  readonly crm: Crm;
  readonly erp: Erp;
  /** `cursor` (default), `page`, `offset`, `link` or `wrapped`. */
  readonly style?: 'cursor' | 'page' | 'offset' | 'link' | 'wrapped';
  readonly schedule?: string;
  readonly limit?: number;
  readonly spec?: (spec: Record<string, unknown>) => void;
}

/** A SyncSchedule spec reading the CRM with `style` pagination and writing the ERP by key. */
export function syncSpec(o: SyncSpecOptions): Record<string, unknown> {
  const limit = o.limit ?? 500;
  const style = o.style ?? 'cursor';
  const pagination =
    style === 'cursor' || style === 'wrapped'
      ? { type: 'Cursor', cursorPath: '/next_cursor', param: 'cursor', sizeParam: 'limit', size: limit }
      : style === 'page'
        ? { type: 'Page', param: 'page', sizeParam: 'limit', size: limit }
        : style === 'offset'
          ? { type: 'Offset', param: 'offset', sizeParam: 'limit', size: limit }
          : { type: 'LinkHeader', sizeParam: 'limit', size: limit };
  const spec: Record<string, unknown> = {
    // A schedule that never fires on its own in a test: runs are triggered with run-now.
    schedule: o.schedule ?? '0 0 1 1 *',
    source: {
      url: `${o.crm.url}/${style}/contacts`,
      auth: { bearer: { secretKeyRef: { name: 'crm-token', key: 'token' } } },
      timeout: '5s',
      pagination,
      recordsPath: style === 'wrapped' ? '/result/items' : '/data',
      incremental: { param: 'updated_since', field: '/updatedAt', lookback: '1m', safetyLag: '0s' },
    },
    key: '/id',
    transform: { mapping: MAPPING },
    target: {
      url: `${o.erp.url}/records/{{/id}}`,
      method: 'PUT',
      timeout: '5s',
      auth: { bearer: { secretKeyRef: { name: 'erp-token', key: 'token' } } },
      lookup: { url: `${o.erp.url}/records`, recordsPath: '/data', key: '/id', pagination: { type: 'Page', param: 'page', sizeParam: 'limit', size: 1000 } },
    },
  };
  o.spec?.(spec);
  return spec;
}

/** The Secrets the specs reference, as a user creates them. */
export async function putTokens(r: RuntimeEnv): Promise<void> {
  await putSecret(r, 'crm-token', { token: CRM_TOKEN });
  await putSecret(r, 'erp-token', { token: ERP_TOKEN });
}

/** Applies a SyncSchedule manifest with kubectl and waits until it is Ready. */
export interface SyncSuite {
  /** The environment, set up in the suite's before(). */
  env(): RuntimeEnv;
  /** The operator the suite started in before(). */
  operator(): OperatorProcess;
  /** A fresh CRM and ERP (one pair per test, so tests never see each other's records); closed after the suite. */
  readonly apis: () => Promise<{ crm: Crm; erp: Erp }>;
}

/**
 * One SyncSchedule test file's setup, registered as before()/after() hooks of the enclosing
 * describe: the runtime environment, the API tokens' Secrets and one operator (`identity`, with
 * `args`); afterwards everything is stopped and every CRM and ERP handed out is closed.
 */
export function syncSuite(identity: string, args: readonly string[] = []): SyncSuite {
  let r: RuntimeEnv | undefined;
  let op: OperatorProcess | undefined;
  const servers: (Crm | Erp)[] = [];
  before(async () => {
    r = await setupRuntimeEnv();
    await putTokens(r);
    op = await r.startOperator(identity, args);
  });
  after(async () => {
    await r?.stop();
    await Promise.all(servers.map((s) => s.close()));
  });
  return {
    env: () => {
      if (!r) throw new Error('syncSuite: the environment is set up in before()');
      return r;
    },
    operator: () => {
      if (!op) throw new Error('syncSuite: the operator is started in before()');
      return op;
    },
    apis: async () => {
      const crm = await startCrm({ token: CRM_TOKEN });
      const erp = await startErp({ token: ERP_TOKEN });
      servers.push(crm, erp);
      return { crm, erp };
    },
  };
}

/** `kubectl apply -f` of a SyncSchedule, without waiting for anything. */
export async function kubectlApplySyncSchedule(r: RuntimeEnv, name: string, spec: Record<string, unknown>, annotations: Readonly<Record<string, string>> = {}): Promise<void> {
  const file = join(tmpdir(), `ss-${name}-${randomBytes(4).toString('hex')}.json`);
  await writeFile(file, JSON.stringify({ apiVersion: 'ferry.dev/v1alpha1', kind: 'SyncSchedule', metadata: { name, namespace: NS, annotations }, spec }));
  await kubectl(r.env.kubeconfigPath, ['apply', '-f', file]);
}

export async function applySyncSchedule(r: RuntimeEnv, name: string, spec: Record<string, unknown>): Promise<FerryObj> {
  await kubectlApplySyncSchedule(r, name, spec);
  return await r.ferry.waitFor('syncschedules', NS, name, (o) => o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True' && c.observedGeneration === o.metadata.generation) === true);
}

/**
 * Triggers a run as a user does (`kubectl annotate … ferry.dev/run-now=<new value> --overwrite`)
 * and waits until it finished; returns the run.
 */
export async function runNow(r: RuntimeEnv, name: string, timeoutMs = 120_000): Promise<SyncRunStatus> {
  const before = lastRun(await r.ferry.get('syncschedules', NS, name));
  const value = `t${Date.now()}-${randomBytes(2).toString('hex')}`;
  await kubectl(r.env.kubeconfigPath, ['annotate', '-n', NS, `syncschedule/${name}`, `ferry.dev/run-now=${value}`, '--overwrite']);
  return await waitRunAfter(r, name, before?.id, timeoutMs);
}

/** Waits until status shows a finished run other than `previousId`. */
export async function waitRunAfter(r: RuntimeEnv, name: string, previousId: string | undefined, timeoutMs = 120_000): Promise<SyncRunStatus> {
  const obj = await r.ferry.waitFor(
    'syncschedules',
    NS,
    name,
    (o) => {
      const run = lastRun(o);
      return run !== undefined && run.id !== previousId && run.result !== 'Running';
    },
    timeoutMs,
  );
  const run = lastRun(obj);
  if (!run) throw new Error('no run');
  return run;
}

/** Messages in a SyncSchedule's fallback stream. */
export async function syncFallbackMessages(r: RuntimeEnv, name: string): Promise<StoredMsg[]> {
  const stream = `FERRY_SYNC_FALLBACK_${NS}_${name.replaceAll('.', '_')}`;
  const out: StoredMsg[] = [];
  const info = await r.jsm.streams.info(stream);
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await r.jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (m) out.push(m);
  }
  return out;
}

/** The ERP holds exactly the transformed CRM records (no more, no fewer, same content). */
export function assertMirrors(crm: Crm, erp: Erp, exclude: ReadonlySet<string> = new Set()): string | undefined {
  const want = new Map(crm.all().filter((c) => !exclude.has(c.id)).map((c) => [c.id, mapped(c)]));
  const have = erp.all();
  if (have.size !== want.size) return `ERP holds ${have.size} records, CRM ${want.size}`;
  for (const [id, w] of want) {
    const h = have.get(id);
    if (!h) return `ERP misses ${id}`;
    for (const [k, v] of Object.entries(w)) if (h[k] !== v) return `ERP ${id}.${k} = ${JSON.stringify(h[k])}, want ${JSON.stringify(v)}`;
  }
  return undefined;
}

export { eventually };
