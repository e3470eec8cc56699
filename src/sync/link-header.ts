/**
 * The `next` link of an RFC 8288 `Link` header, which APIs such as GitHub's use for pagination.
 * Pure and total: the header comes from a source API we do not control, so a missing, malformed
 * or truncated one yields `undefined` (or the links that could still be read) and never throws —
 * a bad header ends paging, it does not fail the run.
 *
 * The value is scanned by hand rather than split on commas, because a comma may stand inside a
 * `<URI>` (`?ids=1,2`) or a quoted parameter (`title="a, b"`), and a regex over the whole value
 * would either get those wrong or backtrack badly on long garbage. The scan is linear.
 */

/** One link-value: its target as written and its first `rel` parameter (RFC 8288 §3.3). */
interface LinkValue {
  readonly target: string;
  readonly rel: string | undefined;
}

/**
 * The absolute URL of the first link whose relation types include `next`, resolved against
 * `base` (the URL of the page that carried the header), or `undefined` when there is none.
 *
 * `rel` may be quoted or not and may list several space-separated types (`rel="prev next"`);
 * relation types are compared case-insensitively. Other parameters (`title*=UTF-8''…`, `type`,
 * `anchor`) are read past and ignored. A link whose target does not resolve to an `http:` or
 * `https:` URL is skipped, so a later `next` link can still win: paging follows HTTP links only.
 *
 * Detecting a loop (a `next` that points back at an earlier page) is the paginator's job.
 */
export function nextLink(header: string | undefined, base: string): string | undefined {
  if (header === undefined) return undefined;
  for (const link of linkValues(header)) {
    const rels = link.rel?.toLowerCase().split(/[ \t]+/) ?? [];
    if (!rels.includes('next')) continue;
    const url = resolve(link.target, base);
    if (url !== undefined) return url;
  }
  return undefined;
}

function resolve(target: string, base: string): string | undefined {
  try {
    const url = new URL(target, base);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : undefined;
  } catch {
    return undefined;
  }
}

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t';
// Where an unquoted parameter name or value ends. Laxer than RFC 9110's `token` on purpose: a
// server that writes `rel=next` or `title*=UTF-8'en'a%20b` unquoted is still understood.
const endsBare = (c: string | undefined): boolean => c === undefined || isSpace(c) || ';,="'.includes(c);

/**
 * The well-formed link-values of a `Link` header, lazily, in order. A malformed one (no `<` at its
 * start, or text that is not a parameter) is dropped up to the next comma outside quotes; an
 * unterminated `<` or quoted string ends the scan, as nothing after it can be delimited.
 */
function* linkValues(text: string): Generator<LinkValue> {
  let i = 0;

  // At a `"`: the unescaped content, or undefined if the string never ends.
  const readQuoted = (): string | undefined => {
    let out = '';
    for (i++; i < text.length; i++) {
      const c = text.charAt(i);
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\\') i++;
      out += text.charAt(i);
    }
    return undefined;
  };
  const readBare = (): string => {
    const start = i;
    while (!endsBare(text[i])) i++;
    return text.slice(start, i);
  };
  const skipSpace = (): void => {
    while (isSpace(text[i])) i++;
  };
  // Drops the rest of a malformed link-value; a quoted string may hide a comma.
  const skipToComma = (): void => {
    while (i < text.length && text[i] !== ',') {
      if (text[i] !== '"') i++;
      else if (readQuoted() === undefined) return;
    }
  };

  while (i < text.length) {
    while (isSpace(text[i]) || text[i] === ',') i++;
    if (i >= text.length) return;
    if (text[i] !== '<') {
      skipToComma();
      continue;
    }
    const close = text.indexOf('>', i + 1);
    if (close < 0) return;
    const target = text.slice(i + 1, close).trim();
    i = close + 1;

    let rel: string | undefined;
    let wellFormed = true;
    for (;;) {
      skipSpace();
      if (i >= text.length || text[i] === ',') break;
      if (text[i] !== ';') {
        wellFormed = false;
        skipToComma();
        break;
      }
      i++;
      skipSpace();
      const name = readBare().toLowerCase();
      skipSpace();
      let value = '';
      if (text[i] === '=') {
        i++;
        skipSpace();
        if (text[i] === '"') {
          const quoted = readQuoted();
          if (quoted === undefined) return;
          value = quoted;
        } else {
          value = readBare();
        }
      }
      // Only the first `rel` counts (RFC 8288 §3.3); an empty name (`<a>; rel=next;`) is slack.
      if (name === 'rel') rel ??= value;
    }
    if (wellFormed) yield { target, rel };
  }
}
