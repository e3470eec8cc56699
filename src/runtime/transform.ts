/**
 * Event → request body: the transform step of every pipeline, between schema validation and
 * delivery. Two kinds (`spec.transform`), compiled once per generation by src/api:
 * - `mapping`: output fields copied from JSON Pointers into the event. Runs on every event at
 *   full rate, so it is a plain loop: no regex, no JSON round trip, no allocation beyond the
 *   output objects (plus one short list when output paths are nested).
 * - `jsonata`: an expression evaluated under a time box and a depth limit, so that a hostile or
 *   buggy expression costs one event (parked with reason `transform`), never the process. The
 *   runtime never calls `runJsonata` on its main thread: it runs inside the workers of
 *   `TransformPool` (transform-pool.ts), which terminates a worker whose evaluation outlives the
 *   time box — the one thing the step checks here cannot do.
 *
 * Pure: no I/O, and no state outside one call.
 */
import type jsonata from 'jsonata';
import type { CompiledJsonata, CompiledMapping } from '../api/index.ts';
import type { Clock } from '../observability/index.ts';
import { MappingError, TransformDepthError, TransformError, TransformTimeoutError } from './errors.ts';

/** Bounds on one JSONata evaluation. Both must be positive. */
export interface TransformLimits {
  /** Time box in milliseconds (`spec.transform.timeout`, default 1 s). */
  readonly timeoutMs: number;
  /** Deepest nesting of evaluation steps allowed; recursion adds a few steps per call. */
  readonly maxDepth: number;
}

/**
 * What the time box reads time from: any monotonic millisecond source. Production uses
 * `performance.now()`; tests pass a function that advances per call, so no test sleeps.
 */
export type TransformClock = Pick<Clock, 'now'>;

// ---------------------------------------------------------------------------------------------
// mapping

/**
 * Builds the output object of a `mapping` transform: for each entry, in spec order, the value at
 * the JSON Pointer `from` in the event is set at the path `to` in the output.
 *
 * Guarantees:
 * - A pointer that matches nothing leaves its output key out (it is not set to null); a `null`
 *   in the event is copied as `null`. Array elements are addressed by canonical index (`/items/0`;
 *   not `01`, not `-`); output paths always build objects, never arrays.
 * - The event is never modified. Values are copied by reference, so the output shares subtrees
 *   with the event: treat both as read-only.
 * - Prototype safety: pointers read only an object's own properties, so `/constructor` or
 *   `/__proto__` reach a field of that name in the event (as JSON has it) and never
 *   `Object.prototype`; intermediate output objects are created fresh and only those are
 *   written into, so `constructor`/`prototype` output segments become ordinary own fields.
 *   A `__proto__` output segment is refused (below) rather than written, because a later
 *   `Object.assign` of the output would turn that field into a prototype.
 *
 * @throws MappingError `unsafe-key` when an output path contains `__proto__`; `conflict` when two
 *   entries write the same output field, or one writes inside a field another set to a value
 *   from the event. Both are mapping mistakes that the spec validation should ideally catch;
 *   here they surface on the events where the fields involved are present.
 */
export function applyMapping(compiled: CompiledMapping, event: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // The intermediate objects this call created: the only ones it may write into. Allocated only
  // for mappings with nested output paths.
  let created: unknown[] | undefined;
  for (const entry of compiled.entries) {
    const value = valueAt(event, entry.from);
    if (value === undefined) continue;
    const to = entry.to;
    let target = out;
    let depth = 0;
    for (const key of to) {
      depth++;
      if (key === '__proto__') {
        throw new MappingError('unsafe-key', toPointer(to, depth), `mapping output path ${toPointer(to, to.length)} contains __proto__, which Ferry never writes`);
      }
      const exists = Object.hasOwn(target, key);
      if (depth === to.length) {
        if (exists) throw new MappingError('conflict', toPointer(to, depth), `mapping writes ${toPointer(to, depth)}, which an earlier entry already set`);
        target[key] = value;
        break;
      }
      if (exists) {
        const next = target[key];
        if (created === undefined || !created.includes(next)) {
          throw new MappingError(
            'conflict',
            toPointer(to, to.length),
            `mapping writes ${toPointer(to, to.length)} inside ${toPointer(to, depth)}, which an earlier entry already set to a value`,
          );
        }
        target = next as Record<string, unknown>;
      } else {
        const next: Record<string, unknown> = {};
        target[key] = next;
        (created ??= []).push(next);
        target = next;
      }
    }
  }
  return out;
}

/** The value at a parsed JSON Pointer, or undefined when it matches nothing. */
function valueAt(document: unknown, path: readonly string[]): unknown {
  let current = document;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return undefined;
    if (Array.isArray(current)) {
      const index = arrayIndex(segment);
      if (index < 0 || index >= current.length) return undefined;
      current = (current as readonly unknown[])[index];
    } else {
      // Own properties only: never `Object.prototype` members such as `constructor`.
      if (!Object.hasOwn(current, segment)) return undefined;
      current = (current as Readonly<Record<string, unknown>>)[segment];
    }
  }
  return current;
}

/** RFC 6901 array index (`0`, `17`; not `01`, `-`, `1e3`), or -1. A loop, not a regex: hot path. */
function arrayIndex(segment: string): number {
  const n = segment.length;
  // Ten digits already exceed the longest possible array.
  if (n === 0 || n > 10 || (n > 1 && segment.charCodeAt(0) === 0x30)) return -1;
  let index = 0;
  for (let i = 0; i < n; i++) {
    const digit = segment.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    index = index * 10 + digit;
  }
  return index;
}

/** The first `length` segments of a path as a JSON Pointer, for error messages. */
function toPointer(path: readonly string[], length: number): string {
  return path
    .slice(0, length)
    .map((s) => `/${s.replaceAll('~', '~0').replaceAll('/', '~1')}`)
    .join('');
}

// ---------------------------------------------------------------------------------------------
// jsonata

/**
 * jsonata 2.x calls the functions bound to these symbols before and after every evaluation step
 * (`evaluate()` in jsonata.js looks them up in the environment: the hooks the jsonata exerciser's
 * "timeboxExpression" uses). They are how a running expression is stopped: the evaluation runs
 * entirely in microtasks, so a timer would never get to fire while it runs.
 */
const ENTRY_HOOK = Symbol.for('jsonata.__evaluate_entry');
const EXIT_HOOK = Symbol.for('jsonata.__evaluate_exit');

/**
 * The binding that carries one evaluation's guard. The space makes it a name that JSONata's
 * lexer cannot produce, so an expression can neither read nor rebind (`$x := …`) it.
 */
const GUARD_BINDING = 'ferry guard';

/** One evaluation's budget and progress. Lives for one `runJsonata` call. */
interface Guard {
  readonly clock: TransformClock;
  readonly start: number;
  readonly timeoutMs: number;
  readonly maxDepth: number;
  depth: number;
  /**
   * Set when the evaluation must stop; every later step throws it again. Sticky on purpose:
   * `$eval` wraps errors (D3121) and array constructors evaluate their items concurrently
   * (`Promise.all`), so a sibling branch may still be running after the first error; its next
   * step then stops too.
   */
  stopped: Error | undefined;
}

/** The part of jsonata's Expression we need that its typings lack: binding a symbol. */
interface HookableExpression {
  assign(name: symbol, value: (expr: unknown, input: unknown, environment: jsonata.Environment) => void): void;
}

function guardOf(environment: jsonata.Environment): Guard | undefined {
  return environment.lookup(GUARD_BINDING) as Guard | undefined;
}

function onEntry(_expr: unknown, _input: unknown, environment: jsonata.Environment): void {
  const guard = guardOf(environment);
  // No guard: someone evaluated the expression outside runJsonata; nothing to enforce.
  if (guard === undefined) return;
  if (guard.stopped) throw guard.stopped;
  guard.depth++;
  if (guard.depth > guard.maxDepth) {
    guard.stopped = new TransformDepthError(guard.maxDepth);
    throw guard.stopped;
  }
  const elapsed = guard.clock.now() - guard.start;
  if (elapsed > guard.timeoutMs) {
    guard.stopped = new TransformTimeoutError(guard.timeoutMs, elapsed);
    throw guard.stopped;
  }
}

function onExit(_expr: unknown, _input: unknown, environment: jsonata.Environment): void {
  const guard = guardOf(environment);
  if (guard !== undefined) guard.depth--;
}

const performanceClock: TransformClock = { now: () => performance.now() };

/**
 * Evaluates a JSONata transform on one event, time-boxed and depth-limited.
 *
 * How it is bounded: before every evaluation step jsonata calls a hook that counts nesting
 * depth and reads the clock; past `limits.maxDepth` or `limits.timeoutMs` it throws, which
 * unwinds the whole evaluation. Unbounded recursion (`$f := function($x){1 + $f($x)}`) hits the
 * depth limit; infinite tail recursion (jsonata optimises `$f($x)` in tail position into a loop,
 * at constant depth) and long loops hit the time box. Each call keeps its own guard (passed as a
 * binding, not stored on the shared compiled expression), so concurrent evaluations of one
 * expression do not interfere and a stopped evaluation leaves nothing behind for the next.
 *
 * What remains: the time box is checked between steps, so one step runs to its end. jsonata caps
 * ranges at 1e7 items (`[1..10000001]` fails with D2014), so builtins over the largest range run
 * for hundreds of milliseconds at most (`$sum([1..10000000])` ≈ 0.3 s), but a few single steps
 * are bounded only by their input: `$string` of a 1e7-item array (≈ 6 s), `$pad` to a huge
 * width (1e8 ≈ 4 s) and, above all, a catastrophically backtracking regex (`/(a+)+$/` on 27
 * characters ≈ 10 s, doubling per character). Also, evaluation never yields to the event loop
 * (only microtasks), so the whole time box is time during which this thread does no I/O. Closing these needs compile options owned by src/api (`RegexEngine` with a
 * linear-time engine, `sequence` to cap sequence length) or evaluation in a worker thread that
 * can be terminated: the runtime does the latter (`TransformPool`), and these checks stay as the
 * worker's first line of defence, which stops loops and recursion without losing the worker.
 *
 * Time comes from `clock.now()` (`performance.now()` by default) and is read once per step.
 *
 * @returns the expression's value, as jsonata builds it: objects may have a null prototype and
 *   arrays may carry jsonata's non-index `sequence` flag (JSON.stringify and index iteration
 *   ignore both), and subtrees may be shared with the event. Only a function at the top level is
 *   refused here; one nested inside an object is refused by the transform worker, which cannot
 *   pass it back (structured clone).
 * @throws TransformTimeoutError past `limits.timeoutMs`; TransformDepthError past
 *   `limits.maxDepth`; TransformError `expression` when the expression raises an error (with
 *   jsonata's code, such as `T2002` or `D3001`, and position), `no-value` when it produces
 *   nothing (`undefined`: it matched nothing in this event), `not-a-value` when it produces a
 *   function. All have `retryable = false`.
 * @throws RangeError when `limits` are not positive numbers (a caller bug: config resolution
 *   guarantees them).
 */
export async function runJsonata(compiled: CompiledJsonata, event: unknown, limits: TransformLimits, clock: TransformClock = performanceClock): Promise<unknown> {
  // `!(x > 0)` also catches NaN, which would otherwise silently disable the check.
  if (!(limits.timeoutMs > 0) || !(limits.maxDepth >= 1)) {
    throw new RangeError(`transform limits must be positive, got timeoutMs=${limits.timeoutMs} maxDepth=${limits.maxDepth}`);
  }
  // Binding the same two stateless functions on every call is idempotent and costs two property
  // writes; doing it here rather than at compile time keeps src/api free of runtime policy.
  const hookable = compiled.expression as unknown as HookableExpression;
  hookable.assign(ENTRY_HOOK, onEntry);
  hookable.assign(EXIT_HOOK, onExit);

  const guard: Guard = { clock, start: clock.now(), timeoutMs: limits.timeoutMs, maxDepth: limits.maxDepth, depth: 0, stopped: undefined };
  let result: unknown;
  try {
    result = await compiled.expression.evaluate(event, { [GUARD_BINDING]: guard });
  } catch (err) {
    // The guard knows when it stopped the evaluation, whatever jsonata made of the error on the
    // way out ($eval wraps it in D3121).
    if (guard.stopped) throw guard.stopped;
    const error = toTransformError(err);
    // Branches still running (see Guard.stopped) stop at their next step.
    guard.stopped = error;
    throw error;
  }
  if (guard.stopped) throw guard.stopped;
  if (result === undefined) {
    throw new TransformError('no-value', 'transform expression produced no value: it matched nothing in this event');
  }
  if (isJsonataFunction(result)) {
    throw new TransformError('not-a-value', 'transform expression produced a function, not a value to deliver');
  }
  return result;
}

/** jsonata raises plain objects `{ code, position, token, message }`; anything else is a JS error. */
function toTransformError(err: unknown): TransformError {
  if (err instanceof Error) {
    return new TransformError('expression', `transform expression failed: ${err.message}`, undefined, { cause: err });
  }
  if (err !== null && typeof err === 'object') {
    const e = err as { readonly code?: unknown; readonly message?: unknown; readonly position?: unknown; readonly token?: unknown };
    const jsonataCode = typeof e.code === 'string' ? e.code : undefined;
    const position = typeof e.position === 'number' ? e.position : undefined;
    const token = typeof e.token === 'string' ? e.token : undefined;
    const message = typeof e.message === 'string' ? e.message : 'unknown error';
    const at = position === undefined ? '' : ` at position ${position}`;
    const code = jsonataCode === undefined ? '' : ` (${jsonataCode})`;
    return new TransformError(
      'expression',
      `transform expression failed${at}: ${message}${code}`,
      {
        ...(jsonataCode === undefined ? {} : { jsonataCode }),
        ...(position === undefined ? {} : { position }),
        ...(token === undefined ? {} : { token }),
      },
      { cause: err },
    );
  }
  return new TransformError('expression', `transform expression failed: ${String(err)}`, undefined, { cause: err });
}

/** A JSONata lambda or native function value (jsonata's own `isFunction` test). */
function isJsonataFunction(value: unknown): boolean {
  if (typeof value === 'function') return true;
  if (value === null || typeof value !== 'object') return false;
  const v = value as { readonly _jsonata_lambda?: unknown; readonly _jsonata_function?: unknown };
  return v._jsonata_lambda === true || v._jsonata_function === true;
}
