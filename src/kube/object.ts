/**
 * The minimal shape of a Kubernetes object as src/kube sees it, object keys, resource paths and
 * the MicroTime format. Pure functions only.
 */

/**
 * The metadata fields src/kube reads. Deliberately small and made only of strings and numbers, so
 * that client-node's generated types (whose timestamps are `Date`s) and hand-written CR types
 * both satisfy it.
 */
export interface ObjectMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly finalizers?: readonly string[];
}

/** Any Kubernetes object. */
export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: ObjectMeta;
}

/**
 * The cache key of an object: `namespace/name`, or `name` for cluster-scoped objects (the same
 * as client-go's MetaNamespaceKeyFunc). Throws a TypeError for an object without a name, which
 * the API server never sends.
 */
export function objectKey(obj: KubeObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new TypeError('object has no metadata.name');
  const namespace = obj.metadata.namespace;
  return namespace ? `${namespace}/${name}` : name;
}

/** Splits a key made by {@link objectKey}. */
export function parseKey(key: string): { readonly namespace: string | undefined; readonly name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** A resource type: `{ group: '', version: 'v1', plural: 'configmaps' }` is core/v1 ConfigMaps. */
export interface ResourceType {
  /** API group; empty string for the core group. */
  readonly group: string;
  readonly version: string;
  /** The plural resource name used in URLs. */
  readonly plural: string;
}

/** One object of a resource type. `namespace` is omitted for cluster-scoped resources. */
export interface ObjectRef extends ResourceType {
  readonly namespace?: string;
  readonly name: string;
}

const segment = (s: string): string => encodeURIComponent(s);

/**
 * The URL path of a collection (no name) or an object (with name), optionally a subresource:
 * `resourcePath({ group: 'ferry.dev', version: 'v1alpha1', plural: 'integrations' })` is
 * `/apis/ferry.dev/v1alpha1/integrations` (all namespaces).
 */
export function resourcePath(type: ResourceType, namespace?: string, name?: string, subresource?: string): string {
  let path = type.group === '' ? `/api/${segment(type.version)}` : `/apis/${segment(type.group)}/${segment(type.version)}`;
  if (namespace) path += `/namespaces/${segment(namespace)}`;
  path += `/${segment(type.plural)}`;
  if (name !== undefined) path += `/${segment(name)}`;
  if (subresource !== undefined) path += `/${segment(subresource)}`;
  return path;
}

/** `apiVersion` of a resource type: `v1` or `group/version`. */
export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

/**
 * Formats a time as a Kubernetes MicroTime (`2006-01-02T15:04:05.000000Z`): always six
 * fractional digits, because the API server parses MicroTime fields with a layout that demands
 * them (an RFC 3339 time without microseconds is rejected for Lease and Event times).
 */
export function microTime(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, -1)}000Z`;
}
