/**
 * docs/grafana/ferry-dashboard.json against a real operator's /metrics (issue 12, "Must show":
 * every metric in the dashboard exists in /metrics; every metric in /metrics is on the dashboard
 * or listed here as deliberately absent, with the reason).
 *
 * One operator process with webhook ingress, and just enough traffic that every labelled family
 * has a series: an Integration that delivers (after a 503 and a 429, with an SLA), one that parks
 * an invalid event and one whose JSONata outlives its time box (a transform worker replaced), a
 * redrive of those, an event that cannot be parked because its fallback stream was deleted, a
 * signed webhook request, and a SyncSchedule run that reconciles and finds an extra record in the
 * target.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { kubectl, repoRoot } from '../support/crds.ts';
import { credentialsFor } from '../support/credentials.ts';
import { faults, perKey } from '../support/fault-target.ts';
import type { OperatorProcess } from '../support/operator-process.ts';
import { createIntegration, eventually, fallbackMessages, NS, publishEvents, putSecret, runtimeSuite, type RuntimeEnv } from '../support/runtime-harness.ts';
import { contacts, startCrm, startErp } from '../support/sync-apis.ts';
import { applySyncSchedule, CRM_TOKEN, ERP_TOKEN, putTokens, runNow, syncSpec } from '../support/sync-harness.ts';

const DASHBOARD = `${repoRoot}/docs/grafana/ferry-dashboard.json`;

/**
 * Families the operator exports that the dashboard leaves out on purpose, with the reason. A
 * pattern names a group (prom-client's process defaults). Anything else in /metrics must be on
 * the dashboard.
 */
const DELIBERATELY_ABSENT: readonly { readonly pattern: RegExp; readonly reason: string }[] = [
  {
    pattern: /^ferry_process_/,
    reason: "prom-client's Node.js process defaults (GC, handles, heap spaces, file descriptors…): the dashboard shows CPU, resident memory, heap used and event-loop lag; the rest is for ad-hoc queries",
  },
];
/** Process defaults the dashboard does show (so the absence pattern above does not hide them all). */
const PROCESS_PANELS = ['ferry_process_process_cpu_seconds_total', 'ferry_process_process_resident_memory_bytes', 'ferry_process_nodejs_heap_size_used_bytes', 'ferry_process_nodejs_eventloop_lag_p99_seconds'];

interface Family {
  readonly type: string;
  /** Sample lines (name with suffix, labels and value). */
  readonly samples: string[];
}

/** Metric families of a Prometheus text exposition, with their samples (histogram suffixes folded in). */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type?.[1] && type[2]) families.set(type[1], { type: type[2], samples: [] });
  }
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? '';
    const family = families.get(name) ?? families.get(name.replace(/_(bucket|sum|count)$/, ''));
    family?.samples.push(line);
  }
  return families;
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: identifiers left once strings, label matchers,
 * grouping clauses and ranges are removed, that are not function calls or keywords.
 */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replaceAll(/"(?:[^"\\]|\\.)*"/g, '""')
    .replaceAll(/\{[^}]*\}/g, ' ')
    .replaceAll(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replaceAll(/\[[^\]]*\]/g, ' ');
  const names: string[] = [];
  for (const m of stripped.matchAll(/(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m;
    if (!name || call || PROMQL_WORDS.has(name.toLowerCase())) continue;
    names.push(name);
  }
  return names;
}

interface Target {
  readonly refId?: string;
  readonly expr?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}
interface Panel {
  readonly id?: number;
  readonly type?: string;
  readonly title?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly targets?: readonly Target[];
  readonly panels?: readonly Panel[];
  readonly gridPos?: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
}
interface Dashboard {
  readonly uid?: string;
  readonly title?: string;
  readonly schemaVersion?: number;
  readonly panels?: readonly Panel[];
  readonly templating?: { readonly list?: readonly { readonly name?: string; readonly type?: string; readonly query?: unknown; readonly datasource?: { readonly uid?: string } }[] };
}

function allPanels(panels: readonly Panel[] = []): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels)]);
}

/** Every metric the dashboard's queries (panels and template variables) select, by the panel that uses it. */
function dashboardMetrics(d: Dashboard): Map<string, string> {
  const used = new Map<string, string>();
  for (const p of allPanels(d.panels)) {
    for (const t of p.targets ?? []) for (const name of metricNames(t.expr ?? '')) used.set(name, p.title ?? String(p.id));
  }
  for (const v of d.templating?.list ?? []) {
    const q = v.query;
    const text = typeof q === 'string' ? q : typeof q === 'object' && q !== null && 'query' in q ? String(q.query) : '';
    const inner = /^label_values\((.*),\s*\w+\)$/.exec(text)?.[1];
    if (inner) for (const name of metricNames(inner)) used.set(name, `variable ${v.name ?? ''}`);
  }
  return used;
}

/** A metric name as the dashboard queries it, resolved to its family: histogram suffixes to the histogram. */
function familyOf(name: string, families: ReadonlyMap<string, Family>): string | undefined {
  if (families.has(name)) return name;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return families.get(base)?.type === 'histogram' ? base : undefined;
}

/** Metrics the dashboard queries that /metrics lacks, or has without a series, with the panel. */
function queriedButMissing(d: Dashboard, families: ReadonlyMap<string, Family>): string[] {
  const missing: string[] = [];
  for (const [name, panel] of dashboardMetrics(d)) {
    const family = familyOf(name, families);
    if (family === undefined) missing.push(`${name} (panel "${panel}") is not in /metrics`);
    else if (families.get(family)?.samples.length === 0) missing.push(`${name} (panel "${panel}") has no series`);
  }
  return missing;
}

/** Families in /metrics that are neither on the dashboard nor deliberately absent. */
function exportedButAbsent(d: Dashboard, families: ReadonlyMap<string, Family>): string[] {
  const onDashboard = new Set([...dashboardMetrics(d).keys()].map((n) => familyOf(n, families)));
  return [...families.keys()].filter((f) => !onDashboard.has(f) && !DELIBERATELY_ABSENT.some((a) => a.pattern.test(f)));
}

/** Parentheses, brackets and braces balance outside strings (the dashboard has no promtool to parse it). */
function balanced(expr: string): boolean {
  const pairs: Record<string, string> = { ')': '(', ']': '[', '}': '{' };
  const stack: string[] = [];
  for (const c of expr.replaceAll(/"(?:[^"\\]|\\.)*"/g, '""')) {
    if (c === '(' || c === '[' || c === '{') stack.push(c);
    else if (c in pairs && stack.pop() !== pairs[c]) return false;
  }
  return stack.length === 0;
}

/** Label names of a family's series (histograms' `le` left out). */
function labelNames(family: Family): string[] {
  const names = new Set<string>();
  for (const sample of family.samples) for (const m of (/\{(.*)\}/.exec(sample)?.[1] ?? '').matchAll(/(\w+)="/g)) if (m[1] !== 'le') names.add(m[1]!);
  return [...names].sort();
}

/** docs/operations.md's metric table: name → "type labels,…". */
function documentedMetrics(markdown: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of markdown.matchAll(/^\| `([a-zA-Z_:][\w:]*)` \| (\w+) \|([^|]*)\|/gm)) {
    const labels = [...(m[3] ?? '').matchAll(/`(\w+)`/g)].map((l) => l[1]).sort();
    out.set(m[1]!, `${m[2]!} ${labels.join(',')}`);
  }
  return out;
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;

describe('Grafana dashboard', () => {
  it('is a dashboard Grafana can import: unique panel ids, grid positions, a ${datasource} Prometheus variable on every target', () => {
    assert.ok(dashboard.uid && dashboard.title && typeof dashboard.schemaVersion === 'number');
    const vars = new Map((dashboard.templating?.list ?? []).map((v) => [v.name, v]));
    assert.equal(vars.get('datasource')?.type, 'datasource');
    assert.equal(vars.get('datasource')?.query, 'prometheus');
    for (const name of ['namespace', 'integration', 'syncschedule']) {
      assert.equal(vars.get(name)?.type, 'query', name);
      assert.equal(vars.get(name)?.datasource?.uid, '${datasource}', name);
    }
    const panels = allPanels(dashboard.panels);
    const ids = panels.map((p) => p.id);
    assert.ok(ids.every((id) => Number.isInteger(id)), 'every panel has an integer id');
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const p of panels) {
      assert.ok(p.gridPos && p.gridPos.w > 0 && p.gridPos.x + p.gridPos.w <= 24, `${p.title ?? ''}: gridPos within 24 columns`);
      if (p.type === 'row') continue;
      assert.ok(p.title, `panel ${String(p.id)} has a title`);
      assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `${p.title ?? ''}: panel datasource`);
      assert.ok((p.targets ?? []).length > 0, `${p.title ?? ''} has a query`);
      const refIds = (p.targets ?? []).map((t) => t.refId);
      assert.equal(new Set(refIds).size, refIds.length, `${p.title ?? ''}: refIds are unique`);
      for (const t of p.targets ?? []) {
        assert.deepEqual(t.datasource, { type: 'prometheus', uid: '${datasource}' }, `${p.title ?? ''}/${t.refId ?? ''}: target datasource`);
        assert.ok((t.expr ?? '').length > 0 && t.refId, `${p.title ?? ''}: target has refId and expr`);
        assert.ok(metricNames(t.expr ?? '').length > 0, `${p.title ?? ''}: ${t.expr ?? ''} selects no metric`);
        assert.ok(balanced(t.expr ?? ''), `${p.title ?? ''}: unbalanced ${t.expr ?? ''}`);
      }
    }
  });

  it('reads metric names out of PromQL (so the check below can fail)', () => {
    assert.deepEqual(
      metricNames('histogram_quantile(0.99, sum by (le, integration) (rate(ferry_delivery_duration_seconds_bucket{namespace=~"$namespace"}[$__rate_interval])))'),
      ['ferry_delivery_duration_seconds_bucket'],
    );
    assert.deepEqual(metricNames('sum(rate(a_total{x="by (y)"}[5m])) / on (ns) group_left sum without (z) (b) or vector(0) unless c offset 5m'), ['a_total', 'b', 'c']);
    assert.deepEqual(metricNames('time() - max by (namespace) (ferry_sync_last_success_timestamp_seconds) > 3600'), ['ferry_sync_last_success_timestamp_seconds']);
    const families = parseExposition('# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n# TYPE c counter\nc 0\n');
    assert.equal(familyOf('h_bucket', families), 'h');
    assert.equal(familyOf('c', families), 'c');
    assert.equal(familyOf('c_count', families), undefined, 'only histograms have suffixes');
    assert.equal(familyOf('missing_total', families), undefined);
    const d: Dashboard = { panels: [{ id: 1, title: 'p', targets: [{ refId: 'A', expr: 'rate(h_bucket[5m]) + rate(typo_total[5m])' }] }] };
    assert.deepEqual(queriedButMissing(d, families), ['typo_total (panel "p") is not in /metrics']);
    assert.deepEqual(exportedButAbsent(d, families), ['c']);
    assert.ok(balanced('sum(rate(x{a="("}[5m]))') && !balanced('sum(rate(x[5m])'));
  });

  const rules = `${repoRoot}/charts/ferry/templates/prometheusrule.yaml`;
  it('has a runbook section in docs/operations.md for every alert of the chart', { skip: existsSync(rules) ? false : 'the chart has no PrometheusRule template yet' }, () => {
    const headings = new Set([...readFileSync(`${repoRoot}/docs/operations.md`, 'utf8').matchAll(/^### (\w+)$/gm)].map((m) => m[1]));
    const alerts = [...readFileSync(rules, 'utf8').matchAll(/^\s*- alert: (\w+)$/gm)].map((m) => m[1]);
    assert.ok(alerts.length >= 6, 'the PrometheusRule has its alerts');
    assert.deepEqual(alerts.filter((a) => !headings.has(a)), [], 'alerts without a runbook section (its anchor is the runbook_url)');
  });

  describe('against a real operator', { timeout: 120_000 }, () => {
    const suite = runtimeSuite();
    let r: RuntimeEnv;
    let op: OperatorProcess;
    let families: Map<string, Family>;

    before(async () => {
      r = suite.env();
      op = await r.startOperator('dashboard', ['--webhook-address=127.0.0.1:0', '--transform-workers=1']);
      const hookPort = Number((await op.waitForLog((l) => l.msg === 'webhook ingress listening')).port);
      const t = await suite.target();
      const credentials = credentialsFor(t.auth!, 'target');
      await putSecret(r, 'target', credentials.secret);
      await putTokens(r);
      const signing = `whsec_${randomBytes(32).toString('base64')}`;
      await putSecret(r, 'hook', { key: signing });
      t.script(perKey(faults.status(503), faults.throttle(0)));
      const fast = { backoff: { initial: '10ms', max: '50ms' } };
      await createIntegration(r, { name: 'delivers', subject: 'events.delivers', url: `${t.url}/v1/invoices`, credentials: t.auth, delivery: fast, sla: { deliverWithin: '30s' } });
      await createIntegration(r, {
        name: 'parks',
        subject: 'events.parks',
        url: `${t.url}/v1/invoices`,
        credentials: t.auth,
        delivery: fast,
        // A catastrophically backtracking regex: its evaluation outlives the time box.
        transform: { jsonata: '$contains(s, /(a+)+$/) ? {"externalId": id} : {"externalId": id}', timeout: '100ms' },
      });
      await r.ferry.create('integrations', NS, {
        kind: 'Integration',
        metadata: { name: 'hook' },
        spec: {
          source: { stream: 'EVENTS', subjects: ['events.hook'], webhook: { subject: 'events.hook', signature: { secretKeyRefs: [{ name: 'hook', key: 'key' }] } } },
          transform: { mapping: { externalId: '/id' } },
          target: { url: `${t.url}/v1/invoices`, timeout: '2s', auth: credentials.auth },
          delivery: fast,
        },
      });
      await eventually('hook Ready', async () => (await r.ferry.get('integrations', NS, 'hook')).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));

      await publishEvents(r, 'events.delivers', [{ id: 'inv-1', amount: 1 }]);
      await publishEvents(r, 'events.parks', [{ id: 42 }, { id: 'slow-1', s: `${'a'.repeat(40)}!` }]);
      const body = JSON.stringify({ id: 'hook-1' });
      const hookAnswer = await fetch(`http://127.0.0.1:${String(hookPort)}/hooks/${NS}/hook`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signed(signing, 'msg-1', body) },
        body,
      });
      assert.equal(hookAnswer.status, 202);
      await eventually('delivered', () => t.appliedCount('inv-1') === 1 && t.appliedCount('hook-1') === 1, 30_000);
      await eventually('parked', async () => (await fallbackMessages(r, 'parks')).length === 2, 30_000);
      await kubectl(r.env.kubeconfigPath, ['annotate', '-n', NS, 'integration/parks', 'ferry.dev/redrive=1', '--overwrite']);
      await eventually('redrive ended', async () => {
        const result = ((await r.ferry.get('integrations', NS, 'parks')).status?.lastRedrive as { result?: string } | undefined)?.result;
        return result !== undefined && result !== 'Running';
      }, 30_000);

      // A fallback stream that is full: parking fails, the event stays in its source stream. (A
      // deleted one would not do: the leader re-creates it as soon as JetStream announces the
      // deletion.) Ferry keeps a limit it does not set, so the stream stays full.
      const fallback = `FERRY_FALLBACK_${NS}_parks`;
      await r.jsm.streams.update(fallback, { ...(await r.jsm.streams.info(fallback)).config, max_msgs: 1 });
      let n = 100;
      await eventually('a fallback publish failed', async () => {
        if ((await op.metrics()).includes('ferry_fallback_publish_failures_total{')) return true;
        await publishEvents(r, 'events.parks', [{ id: n++ }]);
        await sleep(250);
        return false;
      }, 30_000);

      const crm = await startCrm({ token: CRM_TOKEN });
      const erp = await startErp({ token: ERP_TOKEN });
      try {
        crm.seed(contacts(3));
        erp.put({ id: 'only-in-erp', fullName: 'x' });
        await applySyncSchedule(r, 'sync', syncSpec({ name: 'sync', crm, erp, spec: (s) => void Object.assign(s, { reconcile: { mode: 'Report' } }) }));
        const run = await runNow(r, 'sync', 30_000);
        assert.equal(run.result, 'Succeeded', run.message);
      } finally {
        await Promise.all([crm.close(), erp.close()]);
      }
      families = parseExposition(await op.metrics());
    });

    it('exports every metric the dashboard queries, with at least one series', () => {
      assert.deepEqual(queriedButMissing(dashboard, families), []);
    });

    it('puts every exported metric family on the dashboard, or lists it as deliberately absent', () => {
      assert.deepEqual(exportedButAbsent(dashboard, families), [], 'exported but neither on the dashboard nor deliberately absent');
      const onDashboard = new Set(dashboardMetrics(dashboard).keys());
      for (const name of PROCESS_PANELS) assert.ok(onDashboard.has(name), `${name} is on the dashboard`);
      // The scenario made every labelled family export a series, so the comparison above is of real series.
      const empty = [...families].filter(([name, f]) => f.samples.length === 0 && !DELIBERATELY_ABSENT.some((a) => a.pattern.test(name))).map(([name]) => name);
      assert.deepEqual(empty, []);
    });

    it('documents every exported family in docs/operations.md with its type and labels', () => {
      const documented = documentedMetrics(readFileSync(`${repoRoot}/docs/operations.md`, 'utf8'));
      const wrong: string[] = [];
      for (const [name, family] of families) {
        if (DELIBERATELY_ABSENT.some((a) => a.pattern.test(name))) continue;
        const want = `${family.type} ${labelNames(family).join(',')}`;
        if (documented.get(name) !== want) wrong.push(`${name}: documented "${documented.get(name) ?? 'nothing'}", exported "${want}"`);
      }
      for (const name of documented.keys()) if (!families.has(name)) wrong.push(`${name} is documented but not exported`);
      assert.deepEqual(wrong, []);
    });
  });
});

function signed(secret: string, id: string, body: string): Record<string, string> {
  const at = new Date();
  return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign(id, at, body) };
}
