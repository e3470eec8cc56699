/**
 * A small reader of the Prometheus text exposition format (version 0.0.4), enough to pick
 * counters and gauges out of an operator's /metrics. Pure.
 *
 * Handwritten because prom-client only writes the format and the bench needs a handful of
 * samples, not a scraper.
 */

export interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescapeLabel(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(text: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  return Number(text);
}

export function parsePrometheusText(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (!match?.[1] || match[3] === undefined) continue;
    const labels: Record<string, string> = {};
    for (const l of (match[2] ?? '').matchAll(LABEL)) {
      if (l[1] !== undefined && l[2] !== undefined) labels[l[1]] = unescapeLabel(l[2]);
    }
    samples.push({ name: match[1], labels, value: parseValue(match[3]) });
  }
  return samples;
}

/** Samples named `name` whose labels include every pair in `match`. */
export function selectSamples(samples: readonly MetricSample[], name: string, match: Readonly<Record<string, string>> = {}): MetricSample[] {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));
}

/** Sum of the selected samples' values; undefined when none matched (the metric is missing). */
export function sumSamples(samples: readonly MetricSample[], name: string, match: Readonly<Record<string, string>> = {}): number | undefined {
  const selected = selectSamples(samples, name, match);
  return selected.length === 0 ? undefined : selected.reduce((acc, s) => acc + s.value, 0);
}
