/**
 * Reads a V8 `.heapsnapshot` (written by `node --heapsnapshot-signal`) and says what the live
 * heap holds: self size and count per constructor (objects) or per node type (strings, code,
 * arrays, closures…). Pure apart from reading the file. Self sizes only: what owns what needs the
 * retainer view of a real heap-snapshot viewer, this says which kinds of objects are numerous.
 */
import { readFileSync } from 'node:fs';

interface RawSnapshot {
  readonly snapshot: { readonly meta: { readonly node_fields: readonly string[]; readonly node_types: readonly [readonly string[], ...unknown[]] } };
  readonly nodes: readonly number[];
  readonly strings: readonly string[];
}

export interface HeapGroup {
  readonly name: string;
  readonly count: number;
  readonly selfBytes: number;
}

export interface HeapSnapshotSummary {
  readonly totalBytes: number;
  readonly nodes: number;
  readonly top: readonly HeapGroup[];
}

export function summarizeHeapSnapshot(path: string, topN = 25): HeapSnapshotSummary {
  const raw = JSON.parse(readFileSync(path, 'utf8')) as RawSnapshot;
  const fields = raw.snapshot.meta.node_fields;
  const types = raw.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const groups = new Map<string, { count: number; selfBytes: number }>();
  let total = 0;
  for (let i = 0; i < raw.nodes.length; i += width) {
    const type = types[raw.nodes[i + typeAt] ?? 0] ?? 'unknown';
    const size = raw.nodes[i + sizeAt] ?? 0;
    total += size;
    // Objects by constructor name; everything else (strings, code, closures, arrays) by type.
    const name = type === 'object' ? (raw.strings[raw.nodes[i + nameAt] ?? 0] ?? '?') : `(${type})`;
    const g = groups.get(name) ?? { count: 0, selfBytes: 0 };
    g.count += 1;
    g.selfBytes += size;
    groups.set(name, g);
  }
  const top = [...groups]
    .map(([name, g]) => ({ name, ...g }))
    .sort((a, b) => b.selfBytes - a.selfBytes)
    .slice(0, topN);
  return { totalBytes: total, nodes: raw.nodes.length / width, top };
}

if (import.meta.main) {
  const path = process.argv[2];
  if (path === undefined) throw new Error('usage: node bench/lib/heap-snapshot.ts FILE.heapsnapshot');
  const s = summarizeHeapSnapshot(path, 40);
  process.stdout.write(`${(s.totalBytes / 1024 / 1024).toFixed(1)} MiB in ${s.nodes} nodes\n`);
  for (const g of s.top) process.stdout.write(`${(g.selfBytes / 1024 / 1024).toFixed(2).padStart(8)} MiB ${String(g.count).padStart(8)}  ${g.name}\n`);
}
