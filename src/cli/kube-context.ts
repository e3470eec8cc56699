/**
 * Which cluster and namespace a command talks to, as kubectl decides it: `--kubeconfig`, else
 * $KUBECONFIG, else ~/.kube/config (client-node's default loading, in-cluster config last);
 * `--context`, else the current context; `-n`, else the context's namespace, else `default`.
 */
import { KubeApiError, KubeConfig, KubeError, NotFoundError, ObjectClient, UnavailableError } from '../kube/index.ts';
import { systemClock } from '../observability/index.ts';
import { CommandError, rootCause } from './command-error.ts';

export interface KubeFlags {
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  readonly namespace?: string | undefined;
}

export interface KubeTarget {
  readonly kubeConfig: KubeConfig;
  /** The API server URL, for messages. */
  readonly server: string;
  /** The namespace the command works in (flag, context, or `default`). */
  readonly namespace: string;
  readonly client: ObjectClient;
}

/** A CLI request gives up on an API server that does not answer within this. */
const REQUEST_TIMEOUT_MS = 15_000;

/**
 * Loads the kubeconfig and picks the context.
 *
 * @throws CommandError when the file cannot be read or the context does not exist.
 */
export function loadKubeTarget(flags: KubeFlags): KubeTarget {
  const kc = new KubeConfig();
  try {
    if (flags.kubeconfig !== undefined) kc.loadFromFile(flags.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new CommandError(`cannot load the kubeconfig${flags.kubeconfig === undefined ? '' : ` ${flags.kubeconfig}`}: ${rootCause(err)}`, { cause: err });
  }
  if (flags.context !== undefined) {
    if (!kc.getContextObject(flags.context)) throw new CommandError(`context ${JSON.stringify(flags.context)} is not in the kubeconfig`);
    kc.setCurrentContext(flags.context);
  }
  const server = kc.getCurrentCluster()?.server;
  if (server === undefined) throw new CommandError('the kubeconfig has no current cluster (set one with kubectl config use-context, or pass --context)');
  const namespace = flags.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  return { kubeConfig: kc, server, namespace, client: new ObjectClient({ kubeConfig: kc, clock: systemClock, fieldManager: 'ferry-cli', requestTimeoutMs: REQUEST_TIMEOUT_MS }) };
}

/**
 * The namespace for a command that may not need the cluster at all (reading NATS): the flag, or
 * the kubeconfig context's, or `default` when there is no usable kubeconfig — unless the user
 * named a kubeconfig or context, which must then load (a CommandError otherwise).
 */
export function namespaceOf(flags: KubeFlags): string {
  if (flags.namespace !== undefined) return flags.namespace;
  try {
    return loadKubeTarget(flags).namespace;
  } catch (err) {
    if (flags.kubeconfig !== undefined || flags.context !== undefined) throw err;
    return 'default';
  }
}

/** A src/kube error as a CommandError naming the server; other errors unchanged. */
export function kubeFailure(err: unknown, server: string): unknown {
  if (err instanceof UnavailableError && err.httpStatus === undefined) return new CommandError(`cannot reach the Kubernetes API at ${server}: ${rootCause(err)}`, { cause: err });
  // The server's own words name the object: `integrations.ferry.dev "x" not found`.
  if (err instanceof NotFoundError) return new CommandError(err.status?.message ?? err.message, { cause: err });
  if (err instanceof KubeApiError) return new CommandError(`the Kubernetes API at ${server}: ${err.message}`, { cause: err });
  if (err instanceof KubeError) return new CommandError(err.message, { cause: err });
  return err;
}
