/**
 * Kubernetes manifests read from files for the offline commands (`ferry validate`, `ferry run`):
 * every document of every file (multi-document YAML, or JSON), with where it came from, and the
 * Secrets and ConfigMaps among them as the ReferenceLookup the spec compiler reads.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { findSecretRefs, type ReferenceLookup } from '../api/index.ts';
import { CommandError, rootCause } from './command-error.ts';

export interface Manifest {
  readonly file: string;
  /** 1-based position of the document in its file. */
  readonly index: number;
  readonly apiVersion: unknown;
  readonly kind: string | undefined;
  readonly name: string | undefined;
  /** `metadata.namespace`, else the namespace the command was given. */
  readonly namespace: string;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly body: Readonly<Record<string, unknown>>;
}

/** A document that is not a manifest (bad YAML, not an object). */
export interface ManifestProblem {
  readonly file: string;
  readonly index: number;
  readonly message: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads every document of `files`. A file that cannot be read is a CommandError (exit 1); a
 * document that does not parse is a problem, and the others are still read.
 */
export async function readManifests(files: readonly string[], defaultNamespace: string): Promise<{ manifests: Manifest[]; problems: ManifestProblem[] }> {
  const manifests: Manifest[] = [];
  const problems: ManifestProblem[] = [];
  for (const file of await expand(files)) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new CommandError(`cannot read ${file}: ${rootCause(err)}`, { cause: err });
    }
    let index = 0;
    for (const doc of parseAllDocuments(text)) {
      index++;
      if (doc.errors.length > 0) {
        problems.push({ file, index, message: `not YAML: ${doc.errors[0]?.message.split('\n')[0] ?? 'parse error'}` });
        continue;
      }
      const body: unknown = doc.toJS();
      // An empty document (a trailing `---`) is no manifest and no mistake.
      if (body === null || body === undefined) continue;
      if (!isRecord(body)) {
        problems.push({ file, index, message: 'not a Kubernetes object (a YAML mapping with apiVersion, kind, metadata)' });
        continue;
      }
      const metadata = isRecord(body.metadata) ? body.metadata : {};
      manifests.push({
        file,
        index,
        apiVersion: body.apiVersion,
        kind: typeof body.kind === 'string' ? body.kind : undefined,
        name: typeof metadata.name === 'string' ? metadata.name : undefined,
        namespace: typeof metadata.namespace === 'string' ? metadata.namespace : defaultNamespace,
        metadata,
        body,
      });
    }
  }
  return { manifests, problems };
}

/** Files as given, a directory replaced by its .yaml, .yml and .json files (not recursive), as kubectl -f does. */
async function expand(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    const isDir = await stat(path).then(
      (s) => s.isDirectory(),
      () => false,
    );
    if (!isDir) {
      out.push(path);
      continue;
    }
    const names = (await readdir(path)).filter((n) => /\.(ya?ml|json)$/.test(n)).sort();
    out.push(...names.map((n) => join(path, n)));
  }
  return out;
}

/** `data` of a Secret manifest as the API returns it: base64 values (`stringData` encoded). */
function secretData(m: Manifest): Record<string, string> {
  const out: Record<string, string> = {};
  if (isRecord(m.body.data)) for (const [k, v] of Object.entries(m.body.data)) if (typeof v === 'string') out[k] = v;
  if (isRecord(m.body.stringData)) for (const [k, v] of Object.entries(m.body.stringData)) if (typeof v === 'string') out[k] = Buffer.from(v, 'utf8').toString('base64');
  return out;
}

function configMapData(m: Manifest): Record<string, string> {
  const out: Record<string, string> = {};
  if (isRecord(m.body.data)) for (const [k, v] of Object.entries(m.body.data)) if (typeof v === 'string') out[k] = v;
  return out;
}

/**
 * The Secrets and ConfigMaps among `manifests`. With `assumeSecrets`, a Secret referenced by
 * `spec` but not given is taken to exist with exactly the referenced keys (empty values): GitOps
 * repositories rarely hold Secrets, and `validate` checks the spec, not the cluster. The names
 * of Secrets assumed that way are returned.
 */
export function manifestLookup(manifests: readonly Manifest[], assumeSecretsFor?: { readonly namespace: string; readonly spec: unknown }): { lookup: ReferenceLookup; assumed: string[] } {
  const secrets = new Map<string, Record<string, string>>();
  const configMaps = new Map<string, Record<string, string>>();
  for (const m of manifests) {
    if (m.name === undefined) continue;
    if (m.kind === 'Secret') secrets.set(`${m.namespace}/${m.name}`, secretData(m));
    if (m.kind === 'ConfigMap') configMaps.set(`${m.namespace}/${m.name}`, configMapData(m));
  }
  const assumed = new Set<string>();
  if (assumeSecretsFor) {
    for (const ref of findSecretRefs(assumeSecretsFor.spec)) {
      const key = `${assumeSecretsFor.namespace}/${ref.name}`;
      if (secrets.has(key) && !assumed.has(ref.name)) continue;
      assumed.add(ref.name);
      secrets.set(key, { ...secrets.get(key), [ref.key]: '' });
    }
  }
  return {
    lookup: {
      secretData: (namespace, name) => secrets.get(`${namespace}/${name}`),
      configMapData: (namespace, name) => configMaps.get(`${namespace}/${name}`),
    },
    assumed: [...assumed],
  };
}
