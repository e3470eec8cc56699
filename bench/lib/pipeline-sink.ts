/**
 * The benchmark's HTTP target: a minimal node:http server, in its own process so that it does not
 * compete with the measuring process's event loop, that answers every request at once with
 * `200 {"id":"x"}` and records, per idempotency key, when the request arrived (its headers were
 * parsed) on the shared monotonic clock of pipeline-common.ts.
 *
 * Why not test/support/fault-target.ts: it keeps every request's headers and body, replays by
 * key and can inject faults — all cost per request that would make the target, not the pipeline,
 * the bottleneck of a throughput benchmark.
 *
 * Keys are grouped by prefix (`<prefix>:<index>`, see pipeline-common.ts), so one sink serves
 * every run: the parent asks for a prefix's count while a run goes on and collects its receive
 * times at the end (which also frees them). A key seen twice counts as a duplicate.
 *
 * Usage (parent): `const sink = await startSink(); … sink.url … await sink.count('a-c64') …
 * await sink.collect('a-c64') … await sink.close()`. The child side runs when this file is the
 * entry point (`import.meta.main`).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventKeyOf, monoMs, prefixOf } from './pipeline-common.ts';

interface Bucket {
  readonly times: Map<string, number>;
  duplicates: number;
}

type Request = { readonly id: number; readonly type: 'count' | 'collect'; readonly prefix: string } | { readonly id: number; readonly type: 'close' };

export interface SinkCount {
  readonly count: number;
  readonly duplicates: number;
}

export interface SinkCollection extends SinkCount {
  /** Key → receive time (monotonic ms). */
  readonly times: ReadonlyMap<string, number>;
  /** Receive times of the first and last request with this prefix (NaN when there was none). */
  readonly first: number;
  readonly last: number;
}

type Reply =
  | { readonly id: number; readonly type: 'count'; readonly count: number; readonly duplicates: number }
  | { readonly id: number; readonly type: 'collect'; readonly entries: [string, number][]; readonly duplicates: number }
  | { readonly id: number; readonly type: 'closed' };

export interface Sink {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly pid: number;
  /** Requests received so far with this key prefix. */
  count(prefix: string): Promise<SinkCount>;
  /** Receive times of this prefix's requests; the sink forgets them. */
  collect(prefix: string): Promise<SinkCollection>;
  close(): Promise<void>;
}

const RESPONSE_BODY = '{"id":"x"}';
const RESPONSE_HEADERS = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(RESPONSE_BODY)) };

function runSinkProcess(): void {
  const buckets = new Map<string, Bucket>();
  const bucket = (prefix: string): Bucket => {
    let b = buckets.get(prefix);
    if (!b) {
      b = { times: new Map(), duplicates: 0 };
      buckets.set(prefix, b);
    }
    return b;
  };
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const at = monoMs();
    const header = req.headers['idempotency-key'];
    const key = typeof header === 'string' ? eventKeyOf(header) : '';
    const b = bucket(prefixOf(key));
    if (b.times.has(key)) b.duplicates++;
    else b.times.set(key, at);
    req.on('end', () => {
      res.writeHead(200, RESPONSE_HEADERS);
      res.end(RESPONSE_BODY);
    });
    req.resume();
  });
  server.listen(0, '127.0.0.1', () => {
    process.send?.({ type: 'listening', port: (server.address() as AddressInfo).port });
  });
  process.on('message', (raw) => {
    const m = raw as Request;
    if (m.type === 'close') {
      server.closeAllConnections();
      server.close(() => {
        process.send?.({ id: m.id, type: 'closed' } satisfies Reply, () => process.exit(0));
      });
      return;
    }
    const b = buckets.get(m.prefix);
    if (m.type === 'count') {
      process.send?.({ id: m.id, type: 'count', count: b?.times.size ?? 0, duplicates: b?.duplicates ?? 0 } satisfies Reply);
      return;
    }
    buckets.delete(m.prefix);
    process.send?.({ id: m.id, type: 'collect', entries: b ? [...b.times] : [], duplicates: b?.duplicates ?? 0 } satisfies Reply);
  });
  // The parent gone: nothing left to serve.
  process.on('disconnect', () => process.exit(0));
}

/** Forks the sink process (same Node) and resolves once it listens. */
export async function startSink(): Promise<Sink> {
  const child: ChildProcess = fork(import.meta.filename, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, (reply: Reply) => void>();
  let nextId = 1;
  const port = await new Promise<number>((resolve, reject) => {
    const onMessage = (raw: unknown): void => {
      const m = raw as { type?: string; port?: number };
      if (m.type === 'listening' && typeof m.port === 'number') {
        child.off('message', onMessage);
        resolve(m.port);
      }
    };
    child.on('message', onMessage);
    child.once('error', reject);
    child.once('exit', (code) => {
      reject(new Error(`the sink process exited (code ${String(code)}) before listening`));
    });
  });
  child.on('message', (raw) => {
    const reply = raw as Reply;
    const resolve = pending.get(reply.id);
    if (resolve) {
      pending.delete(reply.id);
      resolve(reply);
    }
  });
  const exited = new Promise<Reply>((_, reject) => {
    child.once('exit', (code) => {
      reject(new Error(`the sink process exited (code ${String(code)})`));
    });
  });
  exited.catch(() => undefined);
  const ask = async (request: Omit<Extract<Request, { type: 'count' | 'collect' }>, 'id'> | { type: 'close' }): Promise<Reply> => {
    const id = nextId++;
    const answer = new Promise<Reply>((resolve) => pending.set(id, resolve));
    child.send({ ...request, id });
    return await Promise.race([answer, exited]);
  };
  const pid = child.pid;
  if (pid === undefined) throw new Error('the sink process has no pid');
  return {
    url: `http://127.0.0.1:${port}`,
    pid,
    async count(prefix) {
      const r = await ask({ type: 'count', prefix });
      if (r.type !== 'count') throw new Error(`sink: unexpected reply ${r.type}`);
      return { count: r.count, duplicates: r.duplicates };
    },
    async collect(prefix) {
      const r = await ask({ type: 'collect', prefix });
      if (r.type !== 'collect') throw new Error(`sink: unexpected reply ${r.type}`);
      let first = Number.NaN;
      let last = Number.NaN;
      for (const [, at] of r.entries) {
        if (!(at >= first)) first = at;
        if (!(at <= last)) last = at;
      }
      return { count: r.entries.length, duplicates: r.duplicates, times: new Map(r.entries), first, last };
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await ask({ type: 'close' }).catch(() => undefined);
    },
  };
}

if (import.meta.main) runSinkProcess();
