/**
 * The memory floor of a Kubernetes controller written in Node, run as its own process: a bare
 * Node process that does the least any controller of these objects must do to hold them — list
 * the whole collection into an in-memory cache (as an informer does), keep a watch open on it,
 * and hold a NATS connection with the JetStream API open. Nothing else: no work queue, no
 * metrics, no logger, and no @kubernetes/client-node (it is handed the API server's endpoint
 * and TLS material in a file) unless FLOOR_LOAD_CLIENT_NODE=1, which loads it as the operator
 * does (src/cli/slim-kube-client.ts): Ferry's design requires it, and it still costs MiBs of RSS.
 *
 * Usage (by control-plane-scale.bench.ts): `node bench/lib/cache-floor-process.ts` with
 * FLOOR_ENDPOINT (a JSON file holding a KubeEndpoint), FLOOR_PATH (collection path) and
 * FLOOR_NATS_URL in the environment. Prints one JSON line: `{ "objects": n, "rssBytes": …,
 * "hwmBytes": … }` (VmHWM is the peak over the process's whole life, as for the operator).
 */
import { readFileSync } from 'node:fs';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { RawKube, type KubeEndpoint } from './kube-raw.ts';
import { readProcMemory } from './proc.ts';
import { delay } from './timing.ts';

interface Item {
  readonly metadata?: { readonly namespace?: string; readonly name?: string };
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** client-node loaded as the operator loads it: KubeConfig and Watch, without the generated APIs. */
async function loadClientNode(): Promise<unknown> {
  (await import('../../src/cli/slim-kube-client.ts')).slimKubeClient();
  return await import('../../src/kube/client-node.ts');
}

// Held until the end so that what it allocated counts.
const clientNode: unknown = process.env.FLOOR_LOAD_CLIENT_NODE === '1' ? await loadClientNode() : undefined;
const endpoint = JSON.parse(readFileSync(required('FLOOR_ENDPOINT'), 'utf8')) as KubeEndpoint;
const path = required('FLOOR_PATH');
const raw = RawKube.connect(endpoint, { connections: 2 });
const nc = await connect({ servers: required('FLOOR_NATS_URL') });
const jsm = await jetstreamManager(nc);
await jsm.getAccountInfo();

const cache = new Map<string, Item>();
const list = await raw.request<{ items: Item[]; metadata: { resourceVersion: string } }>('GET', path);
for (const item of list.items) cache.set(`${item.metadata?.namespace ?? ''}/${item.metadata?.name ?? ''}`, item);

// Hold a watch open for a moment, as a controller always has one.
const stop = new AbortController();
const watching = (async () => {
  try {
    for await (const line of raw.lines(`${path}?watch=true&resourceVersion=${list.metadata.resourceVersion}`, stop.signal)) {
      const event = JSON.parse(line) as { object: Item };
      cache.set(`${event.object.metadata?.namespace ?? ''}/${event.object.metadata?.name ?? ''}`, event.object);
    }
  } catch {
    // aborted below
  }
})();
await delay(1000);
const memory = readProcMemory(process.pid);
stop.abort();
await watching;
process.stdout.write(
  `${JSON.stringify({ objects: cache.size, clientNode: clientNode !== undefined, rssBytes: memory?.rssBytes ?? null, hwmBytes: memory?.hwmBytes ?? null })}\n`,
);
await nc.close();
await raw.close();
