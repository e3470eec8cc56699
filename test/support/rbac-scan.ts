/**
 * The Kubernetes API calls the operator makes, derived from its source with the TypeScript
 * compiler API rather than written down by hand, so a new call (or a dropped one) changes what the
 * chart's RBAC must grant without anyone remembering to say so.
 *
 * What is scanned: every file the operator's composition root (src/cli/run-controller.ts) imports,
 * directly or not. The `ferry` CLI commands (status, fallback redrive) run as the user, not as the
 * operator's ServiceAccount, and are not reached from there.
 *
 * How: src/kube sends every request through two sinks — `KubeHttp.request({ method, path })` and
 * client-node's `Watch.watch(path, …)`. For each sink the `method` and `path` arguments are
 * evaluated by a small partial evaluator: string literals, `as const` object literals (with
 * spreads and shorthands), `resourcePath(type, namespace, name, subresource)`, class fields
 * (through the assignments `this.x = …` in the class), and parameters (through every call site of
 * the function in the scanned files; a call's own arguments when the function is called from the
 * expression being evaluated). The HTTP method and whether the path names one object give the
 * verb (GET on a collection is `list`, GET on an object `get`, POST `create`, PUT `update`, PATCH
 * `patch`, DELETE `delete`; a watch is `watch`); the type's group and plural and the subresource
 * give the resource.
 *
 * Guarantees and caveats: parameters are evaluated per call site where the call is in view and
 * over all call sites otherwise, so the result can only over-approximate (a verb on a resource
 * that shares a helper with another). A sink whose group, resource or method cannot be worked out
 * is returned in `unresolved`, never dropped: the test fails on it, and the evaluator needs to
 * learn the new construct. A sink whose resource parameter has no call site in the scanned files
 * (ObjectClient.get, used only by the CLI) yields nothing: the operator never makes that call.
 */
import { join, relative } from 'node:path';
import ts from 'typescript';
import { repoRoot } from './crds.ts';

/** One permission the operator needs: what RBAC rules are made of. */
export interface ApiPermission {
  /** API group; `''` for the core group. */
  readonly group: string;
  /** Plural, with `/subresource` when there is one, e.g. `integrations/status`. */
  readonly resource: string;
  readonly verb: string;
}

export interface ApiCall extends ApiPermission {
  /** `file:line` of the sink in src/kube that sends the request. */
  readonly where: string;
}

export interface ScanResult {
  readonly calls: readonly ApiCall[];
  /** Sinks the evaluator could not resolve, with why; a correct scan has none. */
  readonly unresolved: readonly string[];
  /** The files scanned, relative to the repository root. */
  readonly files: readonly string[];
}

/** `group resource verb`, the key both sides of the RBAC comparison use. */
export function permissionKey(p: ApiPermission): string {
  return `${p.group === '' ? 'core' : p.group} ${p.resource} ${p.verb}`;
}

type Value =
  | { readonly kind: 'str'; readonly value: string }
  | { readonly kind: 'undefined' }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'object'; readonly props: ReadonlyMap<string, () => readonly Value[]> }
  | { readonly kind: 'path'; readonly group: Value; readonly plural: Value; readonly named: boolean; readonly sub: string | undefined };

const UNKNOWN: Value = { kind: 'unknown' };
const UNDEFINED: Value = { kind: 'undefined' };
/** Bound on nested evaluations: a cycle (a recursive helper) ends as `unknown`, not a stack overflow. */
const MAX_DEPTH = 60;

/** Parameter bindings of the calls being evaluated, innermost first. */
interface Frame {
  readonly fn: ts.SignatureDeclaration;
  readonly args: readonly ts.Expression[];
  readonly argFrame: Frame | undefined;
  readonly parent: Frame | undefined;
}

/** Scans the operator's source; see the file header. */
export function scanOperatorApiCalls(root = repoRoot): ScanResult {
  const entry = join(root, 'src', 'cli', 'run-controller.ts');
  const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  });
  if (!config) throw new Error('tsconfig.json could not be read');
  const program = ts.createProgram([entry], config.options);
  const checker = program.getTypeChecker();
  const srcDir = join(root, 'src');
  const files = program.getSourceFiles().filter((f) => f.fileName.startsWith(srcDir) && !f.isDeclarationFile);

  // Every call and `new` in the scanned files, by the declaration it resolves to.
  const callers = new Map<ts.Node, ts.CallLikeExpression[]>();
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) || ts.isNewExpression(node)) {
      const decl = checker.getResolvedSignature(node)?.declaration;
      if (decl && !ts.isJSDocSignature(decl)) callers.set(decl, [...(callers.get(decl) ?? []), node]);
    }
    ts.forEachChild(node, visit);
  };
  for (const f of files) visit(f);

  const where = (node: ts.Node): string => {
    const sf = node.getSourceFile();
    return `${relative(root, sf.fileName)}:${sf.getLineAndCharacterOfPosition(node.getStart()).line + 1}`;
  };

  function declarationOf(node: ts.Node): ts.Declaration | undefined {
    let symbol = checker.getSymbolAtLocation(node);
    if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
    return symbol?.valueDeclaration ?? symbol?.declarations?.[0];
  }

  /** The class member a call resolves to, as `Class.member`, and the file that declares it. */
  function calleeName(call: ts.CallLikeExpression): { name: string; file: string } | undefined {
    const decl = checker.getResolvedSignature(call)?.declaration;
    if (!decl || ts.isJSDocSignature(decl) || !ts.isMethodDeclaration(decl) || !ts.isClassDeclaration(decl.parent)) {
      if (decl && ts.isFunctionDeclaration(decl) && decl.name) return { name: decl.name.text, file: decl.getSourceFile().fileName };
      return undefined;
    }
    return { name: `${decl.parent.name?.text ?? ''}.${decl.name.getText()}`, file: decl.getSourceFile().fileName };
  }

  const isResourcePath = (call: ts.CallExpression): boolean => {
    const c = calleeName(call);
    return c?.name === 'resourcePath' && c.file === join(root, 'src', 'kube', 'object.ts');
  };

  // Context-free evaluations (no frame) are memoised: a parameter passed along by many callers is
  // evaluated once, and a cycle (an expression needing itself) is cut as `unknown`.
  const memo = new Map<ts.Node, readonly Value[]>();
  function evaluate(expr: ts.Expression, frame: Frame | undefined, depth = 0): readonly Value[] {
    if (frame !== undefined) return evaluateUncached(expr, frame, depth);
    const known = memo.get(expr);
    if (known) return known;
    memo.set(expr, [UNKNOWN]);
    const values = evaluateUncached(expr, undefined, depth);
    memo.set(expr, values);
    return values;
  }

  function evaluateUncached(expr: ts.Expression, frame: Frame | undefined, depth: number): readonly Value[] {
    if (depth > MAX_DEPTH) return [UNKNOWN];
    const next = (e: ts.Expression, f: Frame | undefined = frame): readonly Value[] => evaluate(e, f, depth + 1);
    if (ts.isStringLiteral(expr) || ts.isNoSubstitutionTemplateLiteral(expr)) return [{ kind: 'str', value: expr.text }];
    if (ts.isParenthesizedExpression(expr) || ts.isAsExpression(expr) || ts.isSatisfiesExpression(expr) || ts.isNonNullExpression(expr)) {
      return next(expr.expression);
    }
    if (ts.isConditionalExpression(expr)) return [...next(expr.whenTrue), ...next(expr.whenFalse)];
    if (ts.isBinaryExpression(expr) && [ts.SyntaxKind.QuestionQuestionToken, ts.SyntaxKind.BarBarToken].includes(expr.operatorToken.kind)) {
      return [...next(expr.left), ...next(expr.right)];
    }
    if (ts.isObjectLiteralExpression(expr)) return [objectValue(expr, frame, depth)];
    if (ts.isIdentifier(expr)) {
      if (expr.text === 'undefined') return [UNDEFINED];
      return fromDeclaration(declarationOf(expr), frame, depth);
    }
    if (ts.isPropertyAccessExpression(expr)) {
      const name = expr.name.text;
      if (expr.expression.kind === ts.SyntaxKind.ThisKeyword) return classField(expr, frame, depth);
      return next(expr.expression).flatMap((v) => (v.kind === 'object' ? (v.props.get(name)?.() ?? [UNDEFINED]) : [UNKNOWN]));
    }
    if (ts.isCallExpression(expr)) {
      if (isResourcePath(expr)) return pathValues(expr, frame, depth);
      const decl = checker.getResolvedSignature(expr)?.declaration;
      if (!decl || ts.isJSDocSignature(decl) || !('body' in decl) || !decl.body || !decl.getSourceFile().fileName.startsWith(srcDir)) return [UNKNOWN];
      // Evaluate the callee's return expressions with its parameters bound to this call's arguments.
      const callFrame: Frame = { fn: decl, args: expr.arguments, argFrame: frame, parent: frame };
      return returns(decl.body).flatMap((r) => next(r, callFrame));
    }
    return [UNKNOWN];
  }

  function objectValue(expr: ts.ObjectLiteralExpression, frame: Frame | undefined, depth: number): Value {
    const props = new Map<string, () => readonly Value[]>();
    // A later property wins over an earlier one (and over a spread's), as in JavaScript.
    const add = (name: string, thunk: () => readonly Value[]): void => {
      props.set(name, thunk);
    };
    for (const p of expr.properties) {
      if (ts.isPropertyAssignment(p) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) {
        const init = p.initializer;
        add(p.name.text, () => evaluate(init, frame, depth + 1));
      } else if (ts.isShorthandPropertyAssignment(p)) {
        const symbol = checker.getShorthandAssignmentValueSymbol(p);
        const decl = symbol?.valueDeclaration ?? symbol?.declarations?.[0];
        add(p.name.text, () => fromDeclaration(decl, frame, depth + 1));
      } else if (ts.isSpreadAssignment(p)) {
        const spread = evaluate(p.expression, frame, depth + 1);
        const names = new Set(spread.flatMap((v) => (v.kind === 'object' ? [...v.props.keys()] : [])));
        for (const name of names) {
          add(name, () => spread.flatMap((v) => (v.kind === 'object' ? (v.props.get(name)?.() ?? []) : [])));
        }
      }
    }
    return { kind: 'object', props };
  }

  function fromDeclaration(decl: ts.Declaration | undefined, frame: Frame | undefined, depth: number): readonly Value[] {
    if (!decl) return [UNKNOWN];
    if (ts.isVariableDeclaration(decl)) {
      // Only a const is a value; a let may be reassigned anywhere.
      const isConst = ts.isVariableDeclarationList(decl.parent) && (decl.parent.flags & ts.NodeFlags.Const) !== 0;
      return isConst && decl.initializer ? evaluate(decl.initializer, frame, depth + 1) : [UNKNOWN];
    }
    if (ts.isParameter(decl)) return parameter(decl, frame, depth);
    return [UNKNOWN];
  }

  /** A parameter: this call's argument when the call is on the frame stack, else every call site's. */
  function parameter(param: ts.ParameterDeclaration, frame: Frame | undefined, depth: number): readonly Value[] {
    const fn = param.parent;
    const index = fn.parameters.indexOf(param);
    const argOf = (args: readonly ts.Expression[], argFrame: Frame | undefined): readonly Value[] => {
      const arg = args[index];
      if (arg !== undefined) return evaluate(arg, argFrame, depth + 1);
      return param.initializer ? evaluate(param.initializer, argFrame, depth + 1) : [UNDEFINED];
    };
    for (let f = frame; f; f = f.parent) if (f.fn === fn) return argOf(f.args, f.argFrame);
    // A callback handed to code outside the scan (Array.prototype.map, a client library) gets
    // arguments nobody here can see.
    if ((ts.isArrowFunction(fn) || ts.isFunctionExpression(fn)) && ts.isCallExpression(fn.parent)) return [UNKNOWN];
    const sites = callers.get(fn) ?? [];
    return sites.flatMap((site) => (ts.isCallExpression(site) || ts.isNewExpression(site) ? argOf(site.arguments ?? [], undefined) : [UNKNOWN]));
  }

  /** `this.x`: the field's initializer and every `this.x = …` in its class. */
  function classField(expr: ts.PropertyAccessExpression, frame: Frame | undefined, depth: number): readonly Value[] {
    const decl = declarationOf(expr);
    if (!decl || !ts.isPropertyDeclaration(decl) || !ts.isClassDeclaration(decl.parent)) return [UNKNOWN];
    const values: Value[] = [];
    if (decl.initializer) values.push(...evaluate(decl.initializer, frame, depth + 1));
    const name = expr.name.text;
    const find = (node: ts.Node): void => {
      if (
        ts.isBinaryExpression(node) &&
        node.operatorToken.kind === ts.SyntaxKind.EqualsToken &&
        ts.isPropertyAccessExpression(node.left) &&
        node.left.expression.kind === ts.SyntaxKind.ThisKeyword &&
        node.left.name.text === name
      ) {
        // Assignments sit in the constructor or methods; their parameters are found by call site.
        values.push(...evaluate(node.right, undefined, depth + 1));
      }
      ts.forEachChild(node, find);
    };
    find(decl.parent);
    return values.length > 0 ? values : [UNKNOWN];
  }

  function pathValues(call: ts.CallExpression, frame: Frame | undefined, depth: number): readonly Value[] {
    const [typeArg, , nameArg, subArg] = call.arguments;
    if (!typeArg) return [UNKNOWN];
    const names = nameArg ? evaluate(nameArg, frame, depth + 1) : [UNDEFINED];
    const subs = subArg ? evaluate(subArg, frame, depth + 1) : [UNDEFINED];
    const out: Value[] = [];
    for (const type of evaluate(typeArg, frame, depth + 1)) {
      if (type.kind !== 'object') {
        out.push(UNKNOWN);
        continue;
      }
      for (const group of type.props.get('group')?.() ?? [UNKNOWN]) {
        for (const plural of type.props.get('plural')?.() ?? [UNKNOWN]) {
          for (const named of new Set(names.map((n) => n.kind !== 'undefined'))) {
            for (const sub of subs) {
              if (sub.kind === 'str' || sub.kind === 'undefined') out.push({ kind: 'path', group, plural, named, sub: sub.kind === 'str' ? sub.value : undefined });
              else out.push(UNKNOWN);
            }
          }
        }
      }
    }
    return out;
  }

  const calls: ApiCall[] = [];
  const unresolved: string[] = [];
  const record = (sink: ts.Node, method: Value, path: Value, watch: boolean): void => {
    const at = where(sink);
    const literalPath = path.kind === 'str' ? parseLiteralPath(path.value) : undefined;
    const p = literalPath ?? path;
    if (p.kind !== 'path' || p.group.kind !== 'str' || p.plural.kind !== 'str' || (!watch && method.kind !== 'str')) {
      unresolved.push(`${at}: ${watch ? 'WATCH' : method.kind === 'str' ? method.value : 'method ?'} on a path the scan cannot resolve (${p.kind})`);
      return;
    }
    const verb = watch ? 'watch' : verbOf(method.kind === 'str' ? method.value : '', p.named);
    if (verb === undefined) {
      unresolved.push(`${at}: unknown HTTP method`);
      return;
    }
    calls.push({ group: p.group.value, resource: p.sub === undefined ? p.plural.value : `${p.plural.value}/${p.sub}`, verb, where: at });
  };

  for (const [decl, sites] of callers) {
    if (!ts.isMethodDeclaration(decl) || !ts.isClassDeclaration(decl.parent)) continue;
    const cls = decl.parent.name?.text;
    const method = decl.name.getText();
    const file = decl.getSourceFile().fileName;
    const isRequest = cls === 'KubeHttp' && method === 'request' && file === join(srcDir, 'kube', 'http.ts');
    const isWatch = cls === 'Watch' && method === 'watch' && file.includes(join('node_modules', '@kubernetes', 'client-node'));
    if (!isRequest && !isWatch) continue;
    for (const site of sites) {
      if (!ts.isCallExpression(site)) continue;
      const [first] = site.arguments;
      if (!first) continue;
      if (isWatch) {
        for (const path of evaluate(first, undefined)) record(site, UNKNOWN, path, true);
        continue;
      }
      for (const req of evaluate(first, undefined)) {
        if (req.kind !== 'object') {
          unresolved.push(`${where(site)}: request options the scan cannot read`);
          continue;
        }
        for (const method of req.props.get('method')?.() ?? [UNKNOWN]) {
          for (const path of req.props.get('path')?.() ?? [UNKNOWN]) record(site, method, path, false);
        }
      }
    }
  }
  // One entry per permission and sink: the union over call sites repeats them.
  const unique = [...new Map(calls.map((c) => [`${permissionKey(c)} ${c.where}`, c])).values()];
  return { calls: unique, unresolved, files: files.map((f) => relative(root, f.fileName)) };
}

/** The return expressions of a function body (not of functions nested in it). */
function returns(body: ts.ConciseBody): ts.Expression[] {
  if (!ts.isBlock(body)) return [body];
  const out: ts.Expression[] = [];
  const find = (node: ts.Node): void => {
    if (ts.isReturnStatement(node) && node.expression) out.push(node.expression);
    if (!ts.isFunctionLike(node)) ts.forEachChild(node, find);
  };
  ts.forEachChild(body, find);
  return out;
}

/** A literal path such as `/api/v1/secrets` or `/apis/g/v/namespaces/ns/plural/name`. */
function parseLiteralPath(path: string): Value | undefined {
  const m = /^\/(?:api\/[^/]+|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/[^/]+)?\/([^/]+)(\/[^/]+)?(?:\/([^/]+))?$/.exec(path);
  if (!m?.[2]) return undefined;
  return { kind: 'path', group: { kind: 'str', value: m[1] ?? '' }, plural: { kind: 'str', value: m[2] }, named: m[3] !== undefined, sub: m[4] };
}

function verbOf(method: string, named: boolean): string | undefined {
  switch (method) {
    case 'GET':
      return named ? 'get' : 'list';
    case 'POST':
      return 'create';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return named ? 'delete' : 'deletecollection';
    default:
      return undefined;
  }
}
