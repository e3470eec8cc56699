/**
 * Errors raised by src/api. Each class has a stable `code` to match on (never the message), and
 * none is retryable: they all describe input that stays wrong until someone edits it.
 */
import type { FerryKind } from './constants.ts';

/** One problem found in a spec, located by its field path (`spec.delivery.backoff.initial`). */
export interface SpecIssue {
  readonly field: string;
  readonly message: string;
}

/**
 * A spec that does not satisfy the resource's schema. `field` and `message` describe the first
 * problem (the one a `Stalled` condition shows); `issues` lists all of them in schema order.
 */
export class SpecInvalidError extends Error {
  override readonly name = 'SpecInvalidError';
  readonly code = 'FERRY_SPEC_INVALID';
  readonly retryable = false;
  readonly kind: FerryKind;
  /** Path of the first problem, e.g. `spec.delivery.backoff.initial`. */
  readonly field: string;
  /** The first problem without its path, e.g. `must be a duration such as 500ms, 30s or 5m`. */
  readonly detail: string;
  readonly issues: readonly SpecIssue[];

  /** @param issues at least one issue; the first becomes `field`, `detail` and the message. */
  constructor(kind: FerryKind, issues: readonly [SpecIssue, ...SpecIssue[]]) {
    const [first] = issues;
    super(`${first.field}: ${first.message}`);
    this.kind = kind;
    this.field = first.field;
    this.detail = first.message;
    this.issues = issues;
  }
}

/** Text that is not a Ferry duration (`500ms`, `30s`, `5m`, `1h30m`, `14d`). */
export class DurationInvalidError extends Error {
  override readonly name = 'DurationInvalidError';
  readonly code = 'FERRY_DURATION_INVALID';
  readonly retryable = false;
  readonly text: string;

  constructor(text: string) {
    super(`${JSON.stringify(text)} is not a duration such as 500ms, 30s or 5m`);
    this.text = text;
  }
}

/**
 * A condition that the CRD schema would reject (a reason that is not CamelCase, an empty type).
 * Conditions are built from constants, so this is a programming error, raised before a status
 * write that the API server would refuse.
 */
export class ConditionInvalidError extends Error {
  override readonly name = 'ConditionInvalidError';
  readonly code = 'FERRY_CONDITION_INVALID';
  readonly retryable = false;
  readonly field: 'type' | 'reason';
  readonly value: string;

  constructor(field: 'type' | 'reason', value: string) {
    super(`condition ${field} ${JSON.stringify(value)} does not match the metav1.Condition pattern`);
    this.field = field;
    this.value = value;
  }
}

/**
 * A zod schema that cannot be expressed as a structural Kubernetes schema. Raised by CRD
 * generation (at build time, in tests), never at run time.
 */
export class CrdSchemaError extends Error {
  override readonly name = 'CrdSchemaError';
  readonly code = 'FERRY_CRD_SCHEMA';
  readonly retryable = false;
  /** JSON path inside openAPIV3Schema, e.g. `properties.spec.properties.target`. */
  readonly path: string;

  constructor(path: string, problem: string) {
    super(`${path || '<root>'}: ${problem}`);
    this.path = path;
  }
}

/** A template (`/v1/accounts/{{/account}}`) that does not parse; raised when it is compiled. */
export class TemplateSyntaxError extends Error {
  override readonly name = 'TemplateSyntaxError';
  readonly code = 'FERRY_TEMPLATE_SYNTAX';
  readonly retryable = false;
  readonly template: string;
  /** Index in `template` where the problem starts. */
  readonly position: number;

  constructor(template: string, position: number, problem: string) {
    super(`template ${JSON.stringify(template)} at ${position}: ${problem}`);
    this.template = template;
    this.position = position;
  }
}

/**
 * A template's JSON pointer names nothing in this event. The event, not the config, is at
 * fault, so the runtime parks it (it will never render).
 */
export class TemplatePointerMissingError extends Error {
  override readonly name = 'TemplatePointerMissingError';
  readonly code = 'FERRY_TEMPLATE_POINTER_MISSING';
  readonly retryable = false;
  readonly pointer: string;

  constructor(pointer: string) {
    super(`the event has no value at ${JSON.stringify(pointer)}`);
    this.pointer = pointer;
  }
}

/**
 * A template's pointer names a value that cannot be rendered: an object, array or null, or a
 * `.`/`..` path segment (which URL parsing would turn into path traversal).
 */
export class TemplateValueError extends Error {
  override readonly name = 'TemplateValueError';
  readonly code = 'FERRY_TEMPLATE_VALUE';
  readonly retryable = false;
  readonly pointer: string;

  constructor(pointer: string, problem: string) {
    super(`the value at ${JSON.stringify(pointer)} ${problem}`);
    this.pointer = pointer;
  }
}

/** A redrive annotation that does not say what it must (`ferry.dev/redrive-sequences: 9-3`). */
export class RedriveRequestInvalidError extends Error {
  override readonly name = 'RedriveRequestInvalidError';
  readonly code = 'FERRY_REDRIVE_REQUEST_INVALID';
  readonly retryable = false;
  /** The annotation, e.g. `ferry.dev/redrive-sequences`. */
  readonly annotation: string;
  readonly value: string;

  constructor(annotation: string, value: string, expected: string) {
    super(`annotation ${annotation}: ${JSON.stringify(value)} ${expected}`);
    this.annotation = annotation;
    this.value = value;
  }
}
