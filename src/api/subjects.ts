/**
 * NATS subject matching, for checks the API server cannot make: whether a webhook's literal
 * subject is captured by the Integration's subjects (else verified requests would be stored and
 * never consumed) and by its stream's subjects (else the publish has no stream to land in).
 */

/** Whether `pattern` (with `*` and `>` wildcards) matches the literal `subject`. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length) return false;
    if (p[i] !== '*' && p[i] !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Whether any of `patterns` matches `subject`. */
export function subjectCaptured(patterns: readonly string[], subject: string): boolean {
  return patterns.some((p) => subjectMatches(p, subject));
}
