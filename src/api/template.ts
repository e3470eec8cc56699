/**
 * `{{/json/pointer}}` templates (RFC 6901 pointers into the event), used for target URLs
 * (`https://api.example.com/v1/accounts/{{/account}}`) and idempotency keys (`{{/id}}-invoice`).
 * Compiled once when a pipeline is built; rendered per event. Pure.
 */
import { TemplatePointerMissingError, TemplateSyntaxError, TemplateValueError } from './errors.ts';

/** A parsed JSON pointer. */
interface Pointer {
  readonly source: string;
  readonly tokens: readonly string[];
}

/** A template ready to render; build with {@link compileTemplate}. */
export interface CompiledTemplate {
  readonly source: string;
  /** Literal text and pointers, in order. */
  readonly parts: readonly (string | Pointer)[];
}

/**
 * How substituted values are escaped. `url`: percent-encoded as a URL component (so `/`, `?`, `#`
 * in a value cannot change the path or query), and values that are empty or a dot segment
 * (`.`, `..`) are refused — URL parsing would otherwise resolve them into a different endpoint.
 * `none`: inserted as they are (idempotency keys, headers).
 */
export type TemplateEscape = 'url' | 'none';

/**
 * Parses a template. Text outside `{{ }}` is literal; inside is a JSON pointer starting with `/`
 * (surrounding spaces allowed).
 * @throws TemplateSyntaxError for an unclosed `{{`, or a pointer that does not start with `/` or
 *   has a bad `~` escape.
 */
export function compileTemplate(source: string): CompiledTemplate {
  const parts: (string | Pointer)[] = [];
  let at = 0;
  for (;;) {
    const open = source.indexOf('{{', at);
    if (open === -1) break;
    const close = source.indexOf('}}', open + 2);
    if (close === -1) throw new TemplateSyntaxError(source, open, 'unclosed "{{"');
    if (open > at) parts.push(source.slice(at, open));
    const pointer = source.slice(open + 2, close).trim();
    if (!pointer.startsWith('/')) {
      throw new TemplateSyntaxError(source, open, `${JSON.stringify(pointer)} is not a JSON pointer (must start with "/")`);
    }
    if (/~[^01]|~$/.test(pointer)) throw new TemplateSyntaxError(source, open, `bad "~" escape in ${pointer}`);
    parts.push({ source: pointer, tokens: pointer.slice(1).split('/').map(unescapeToken) });
    at = close + 2;
  }
  if (at < source.length) parts.push(source.slice(at));
  return { source, parts };
}

/**
 * Renders a template against an event. Strings are inserted as they are, numbers and booleans
 * as JSON writes them.
 * @throws TemplatePointerMissingError when a pointer names nothing in this event.
 * @throws TemplateValueError when it names an object, array or null, or (with `url`) an empty
 *   string or a dot segment.
 */
export function renderTemplate(template: CompiledTemplate, event: unknown, escape: TemplateEscape): string {
  let out = '';
  for (const part of template.parts) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const found = resolvePointer(event, part.tokens);
    if (!found.found) throw new TemplatePointerMissingError(part.source);
    const { value } = found;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
      throw new TemplateValueError(part.source, `is ${kind}, not a string, number or boolean`);
    }
    const text = String(value);
    if (escape === 'url' && (text === '' || text === '.' || text === '..')) {
      throw new TemplateValueError(part.source, `is ${JSON.stringify(text)}, which cannot be part of a URL path`);
    }
    out += escape === 'url' ? encodeURIComponent(text) : text;
  }
  return out;
}

/** Looks up a parsed pointer (its unescaped reference tokens) in a JSON value. */
export function resolvePointer(document: unknown, tokens: readonly string[]): { found: true; value: unknown } | { found: false } {
  let current: unknown = document;
  for (const token of tokens) {
    if (Array.isArray(current)) {
      // RFC 6901: an array index is "0" or digits without a leading zero; "-" names nothing.
      if (!/^(0|[1-9]\d*)$/.test(token)) return { found: false };
      const index = Number(token);
      if (index >= current.length) return { found: false };
      current = current[index] as unknown;
    } else if (typeof current === 'object' && current !== null && Object.hasOwn(current, token)) {
      current = (current as Record<string, unknown>)[token];
    } else {
      return { found: false };
    }
  }
  return current === undefined ? { found: false } : { found: true, value: current };
}

function unescapeToken(token: string): string {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}
