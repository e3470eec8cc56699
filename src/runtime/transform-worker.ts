/**
 * A transform worker thread (started by `TransformPool`): evaluates JSONata expressions on event
 * data and replies with the value or a serialized transform error. Compiled expressions are kept
 * per source in a bounded LRU, so each worker compiles an Integration's expression once.
 *
 * Inside the worker the evaluation is still time-boxed and depth-limited between steps
 * (`runJsonata`), which stops most runaway expressions with the worker alive; the pool terminates
 * the worker for what a step check cannot stop (a backtracking regex, a huge `$string`).
 *
 * Loads only jsonata and the runtime's transform modules: a replacement worker must be ready fast.
 */
import { parentPort } from 'node:worker_threads';
import jsonata from 'jsonata';
import type { CompiledJsonata } from '../api/index.ts';
import { TransformError } from './errors.ts';
import { LruCache } from './lru-cache.ts';
import { runJsonata } from './transform.ts';
import { serializeTransformError, type EvaluateRequest, type WorkerReply } from './transform-protocol.ts';

/** Distinct expressions kept compiled per worker: far above the Integrations of one replica. */
const COMPILED_CACHE_SIZE = 256;

const port = parentPort;
if (!port) throw new Error('transform-worker runs only as a worker thread (see TransformPool)');
const compiled = new LruCache<CompiledJsonata>(COMPILED_CACHE_SIZE);

function compile(source: string): CompiledJsonata {
  try {
    return { kind: 'jsonata', expression: jsonata(source), source };
  } catch (err) {
    // The controller and the supervisor compiled this source already; reaching here is unexpected.
    const message = err !== null && typeof err === 'object' && 'message' in err ? String(err.message) : String(err);
    throw new TransformError('expression', `transform expression does not compile: ${message}`);
  }
}

async function evaluate(request: EvaluateRequest): Promise<WorkerReply> {
  try {
    const expression = compiled.getOrCreate(request.source, () => compile(request.source));
    const value = await runJsonata(expression, request.data, { timeoutMs: request.timeoutMs, maxDepth: request.maxDepth });
    return { type: 'result', id: request.id, value };
  } catch (err) {
    return { type: 'error', id: request.id, error: serializeTransformError(err) };
  }
}

function reply(request: EvaluateRequest, answer: WorkerReply): void {
  try {
    port?.postMessage(answer);
  } catch {
    // DataCloneError: a function nested inside the value (a top-level one is refused by runJsonata).
    port?.postMessage({
      type: 'error',
      id: request.id,
      error: { kind: 'transform', reason: 'not-a-value', message: 'transform expression produced a value with a function inside, which cannot be delivered' },
    } satisfies WorkerReply);
  }
}

// The pool gives a worker several tasks at once and times each from the answer to the one
// before it: they must run one after the other, in order, never interleaved.
const line: EvaluateRequest[] = [];
let running = false;

async function runLine(): Promise<void> {
  running = true;
  for (let request = line.shift(); request; request = line.shift()) reply(request, await evaluate(request));
  running = false;
}

port.on('message', (request: EvaluateRequest) => {
  line.push(request);
  if (!running) void runLine();
});
port.postMessage({ type: 'ready' } satisfies WorkerReply);
