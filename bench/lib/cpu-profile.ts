/**
 * Reads a V8 `.cpuprofile` (written by `node --cpu-prof`) and says where the time went: self
 * time per function and per module (an npm package, a source file, or a V8/Node internal). Pure
 * apart from reading the file.
 *
 * Self time of a sample is its `timeDeltas` entry, attributed to the sampled (leaf) node.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}

interface CpuProfile {
  readonly nodes: readonly { readonly id: number; readonly callFrame: CallFrame }[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface HotSpot {
  readonly name: string;
  readonly selfMs: number;
  readonly percent: number;
}

export interface CpuProfileSummary {
  readonly totalMs: number;
  readonly byFunction: readonly HotSpot[];
  readonly byModule: readonly HotSpot[];
}

/** `node_modules/ajv/dist/…` → `ajv`; `…/src/runtime/x.ts` → `src/runtime/x.ts`; `node:…` kept; '' → the V8 label. */
export function moduleOf(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1]) return pkg[1];
  const src = /\/((?:src|test|bench)\/.*)$/.exec(url);
  if (src?.[1]) return src[1];
  return url.startsWith('node:') ? url : url.replace(/^file:\/\//, '');
}

function top(totals: Map<string, number>, totalUs: number, n: number): HotSpot[] {
  return [...totals]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([name, us]) => ({ name, selfMs: Math.round(us / 1000), percent: Math.round((us / totalUs) * 1000) / 10 }));
}

export function summarizeCpuProfile(path: string, n = 20): CpuProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
  const byFunction = new Map<string, number>();
  const byModule = new Map<string, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const frame = frames.get(id);
    if (!frame) return;
    totalUs += us;
    const module = moduleOf(frame.url, frame.functionName);
    const fn = `${frame.functionName || '(anonymous)'} ${module}:${frame.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    byModule.set(module, (byModule.get(module) ?? 0) + us);
  });
  return { totalMs: Math.round(totalUs / 1000), byFunction: top(byFunction, totalUs, n), byModule: top(byModule, totalUs, n) };
}
