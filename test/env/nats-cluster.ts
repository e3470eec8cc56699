/**
 * A real N-node nats-server cluster with JetStream (file store) for tests: kill a node for good,
 * restart one, roll all of them, take the quorum away, and find which node leads a stream or a KV
 * bucket (bucket `b` is stream `KV_b`) so a test can kill exactly that one.
 *
 * Expected flow: `startNatsCluster({ dir })` → streams and buckets with `num_replicas: 3` → faults
 * through `kill(i)` / `stop(i)` / `start(i)` / `restart(i)` → `waitForLeader` / `waitForQuorum` →
 * `stop()`.
 *
 * Guarantees:
 * - `startNatsCluster` resolves only when every node accepts clients, has a route to every other
 *   node, knows the JetStream meta leader and reports /healthz ok, and a probe stream with
 *   `num_replicas: min(size, 3)` could be created and deleted. Tests do not race the first
 *   elections.
 * - `start(i)` keeps the node's ports, config file and store, so it rejoins as the same peer.
 *   While enough nodes run for a quorum, it resolves only when the node is routed to every other
 *   running node, knows the meta leader, and /healthz is ok (which covers its copies of streams
 *   and consumers being current: it has caught up). With too few nodes running for a quorum it
 *   resolves once the node accepts clients and is routed to the others, since nothing more can
 *   happen until another node returns.
 * - Each node is a `ManagedProcess` (pdeathsig, pid-dir registration, log file `<dir>/n<i>.log`):
 *   nothing outlives the test process.
 *
 * Assumptions: 127.0.0.1 only; election timings are nats-server's defaults (a SIGKILLed leader is
 * replaced after a few seconds — its followers must first miss its heartbeats; a graceful stop
 * hands leadership over at once).
 *
 * Caveats: `kill(i)` of a node that runs the only copy of an R1 asset loses that asset's
 * availability until `start(i)`; that is the point of R1. Ports are reserved by probing below the
 * kernel's ephemeral range (free-port.ts), so no outgoing connection takes one while its node is
 * down; another test binding that very port in between would make the node fail to start, loudly.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { request } from 'undici';
import { binaryPaths } from './binaries.ts';
import { freePort } from './free-port.ts';
import { ManagedProcess } from './managed-process.ts';

export interface NatsClusterOptions {
  /** Config files, stores (`<dir>/n<i>/jetstream`) and logs (`<dir>/n<i>.log`) go here. */
  readonly dir: string;
  /** Number of nodes (default 3). At least 2. */
  readonly size?: number;
  /** The cluster's name (default `ferry-test`). */
  readonly name?: string;
  /** How long `startNatsCluster` and each node start may take (default 60 s). */
  readonly readyTimeoutMs?: number;
  /** The nats-server binary (default: the pinned one from binaries.ts). */
  readonly natsServer?: string;
}

export interface NatsClusterNode {
  /** Position in `nodes`, the number every method takes. */
  readonly index: number;
  /** `server_name`: `n<index>`; stream info names leaders and replicas by it. */
  readonly name: string;
  /** nats://127.0.0.1:<client port> */
  readonly url: string;
  /** http://127.0.0.1:<port> of /healthz, /jsz, /routez. */
  readonly monitorUrl: string;
  /** nats-route://127.0.0.1:<cluster port> */
  readonly routeUrl: string;
  readonly configFile: string;
  readonly storeDir: string;
  readonly process: ManagedProcess;
  /** The process is alive (false after kill/stop, or if it died by itself). */
  readonly running: boolean;
}

export interface WaitOptions {
  readonly timeoutMs?: number;
}

export interface WaitForLeaderOptions extends WaitOptions {
  /** Indexes that do not count as an answer, e.g. the leader before a graceful `stop`. */
  readonly except?: readonly number[];
}

/** A node's own copy of a stream, as its /jsz reports it. */
export interface LocalStreamState {
  readonly messages: number;
  readonly bytes: number;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

export interface NatsCluster {
  readonly name: string;
  readonly size: number;
  /** Every node's client URL, in index order, whether it runs or not. */
  readonly urls: readonly string[];
  /** `urls` comma-joined: what `--nats-url` and `NATS_URL` take. */
  readonly url: string;
  readonly nodes: readonly NatsClusterNode[];
  /** Nodes needed for JetStream to decide anything: ⌊size/2⌋ + 1. */
  readonly quorum: number;
  /** SIGKILL: the node stays down until `start(i)`. */
  kill(i: number): Promise<void>;
  /** With an index, stops that node gracefully (SIGTERM); without, stops every node. */
  stop(i?: number): Promise<void>;
  /** With an index, starts that node again (same config and store); without, every stopped node. */
  start(i?: number): Promise<void>;
  /** `stop(i)` then `start(i)`. */
  restart(i: number): Promise<void>;
  /** Restarts every node in turn, each back and caught up before the next goes down. */
  rollingRestart(): Promise<void>;
  /**
   * Index of the node that leads `stream` now (KV bucket `b`: stream `KV_b`). During an election
   * there is no leader; then it waits for one, up to `timeoutMs` (default 15 s).
   */
  leaderOf(stream: string, options?: WaitOptions): Promise<number>;
  /** Waits until `stream` has a leader on a running node not in `except` (default 30 s); its index. */
  waitForLeader(stream: string, options?: WaitForLeaderOptions): Promise<number>;
  /** Index of the JetStream meta leader (the node that answers the JetStream API), waiting for one. */
  metaLeader(options?: WaitOptions): Promise<number>;
  /**
   * Waits until JetStream can decide again: a quorum of nodes runs, every running node knows the
   * meta leader and reports /healthz ok. Fails at once with code NO_QUORUM when too few nodes run.
   */
  waitForQuorum(options?: WaitOptions): Promise<void>;
  /** Node i's own copy of `stream` (undefined when it holds none). The node must be running. */
  localStreamState(i: number, stream: string): Promise<LocalStreamState | undefined>;
  /** Index of the node with this `server_name`. */
  indexOf(serverName: string): number;
}

export type NatsClusterErrorCode = 'INVALID_OPTIONS' | 'NOT_READY' | 'NO_LEADER' | 'NO_QUORUM' | 'NO_SUCH_NODE' | 'NODE_EXITED';

export class NatsClusterError extends Error {
  readonly code: NatsClusterErrorCode;

  constructor(code: NatsClusterErrorCode, message: string) {
    super(message);
    this.name = 'NatsClusterError';
    this.code = code;
  }
}

const POLL_MS = 200;
const API_TIMEOUT_MS = 2_000;
// While a stream has no leader its info request goes unanswered until this timeout, so it bounds
// how late a new leader is noticed; a healthy answer on 127.0.0.1 takes milliseconds.
const LEADER_POLL_TIMEOUT_MS = 750;
const PROBE_REPLICAS_MAX = 3;

interface Ports {
  readonly client: number;
  readonly route: number;
  readonly monitor: number;
}

class Node implements NatsClusterNode {
  readonly index: number;
  readonly name: string;
  readonly url: string;
  readonly monitorUrl: string;
  readonly routeUrl: string;
  readonly configFile: string;
  readonly storeDir: string;
  readonly process: ManagedProcess;
  readonly ports: Ports;

  constructor(index: number, dir: string, ports: Ports, natsServer: string) {
    this.index = index;
    this.name = `n${index}`;
    this.ports = ports;
    this.url = `nats://127.0.0.1:${ports.client}`;
    this.monitorUrl = `http://127.0.0.1:${ports.monitor}`;
    this.routeUrl = `nats-route://127.0.0.1:${ports.route}`;
    this.configFile = join(dir, `${this.name}.conf`);
    this.storeDir = join(dir, this.name);
    this.process = new ManagedProcess({
      name: `nats-server-${this.name}`,
      command: natsServer,
      args: ['-c', this.configFile],
      logFile: join(dir, `${this.name}.log`),
    });
  }

  get running(): boolean {
    return this.process.running;
  }
}

/** The node's config in nats-server's own format; JSON strings are valid quoted strings there. */
function configFor(node: Node, clusterName: string, routes: readonly string[]): string {
  const q = (s: string): string => JSON.stringify(s);
  return [
    '# Generated by test/env/nats-cluster.ts',
    `server_name: ${q(node.name)}`,
    `listen: ${q(`127.0.0.1:${node.ports.client}`)}`,
    `http: ${q(`127.0.0.1:${node.ports.monitor}`)}`,
    'jetstream {',
    `  store_dir: ${q(node.storeDir)}`,
    '}',
    'cluster {',
    `  name: ${q(clusterName)}`,
    `  listen: ${q(`127.0.0.1:${node.ports.route}`)}`,
    // Every node lists every route, its own included: nats-server ignores a route to itself, and
    // identical lists mean any node can come back first after a full stop.
    `  routes: [${routes.map(q).join(', ')}]`,
    '}',
    '',
  ].join('\n');
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Calls `attempt` until it returns a value. A thrown NatsClusterError ends the wait at once (a
 * node died, a quorum is impossible); any other error is the reason it is not there yet.
 */
async function poll<T>(
  what: string,
  code: NatsClusterErrorCode,
  timeoutMs: number,
  attempt: () => Promise<T>,
  context: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let last: string;
    try {
      return await attempt();
    } catch (err) {
      if (err instanceof NatsClusterError) throw err;
      last = messageOf(err);
    }
    if (Date.now() >= deadline) {
      const extra = context();
      throw new NatsClusterError(code, `${what}: not reached after ${timeoutMs} ms (last: ${last})${extra ? `\n${extra}` : ''}`);
    }
    // Polling servers that elect leaders on their own timers; there is no event to wait on.
    await sleep(POLL_MS);
  }
}

async function withClient<T>(
  servers: readonly string[],
  fn: (nc: NatsConnection, jsm: JetStreamManager) => Promise<T>,
  timeoutMs = API_TIMEOUT_MS,
): Promise<T> {
  if (servers.length === 0) throw new NatsClusterError('NO_QUORUM', 'no node of the cluster is running');
  const nc = await connect({
    servers: [...servers],
    name: 'ferry-nats-cluster-harness',
    reconnect: false,
    timeout: timeoutMs,
    ignoreClusterUpdates: true,
  });
  try {
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs, checkAPI: false });
    return await fn(nc, jsm);
  } finally {
    await nc.close();
  }
}

async function getJson(url: string): Promise<unknown> {
  const res = await request(url, { headersTimeout: API_TIMEOUT_MS, bodyTimeout: API_TIMEOUT_MS });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET ${url}: ${res.statusCode} ${text.trim()}`);
  return JSON.parse(text) as unknown;
}

interface Routez {
  readonly routes?: readonly { readonly remote_name?: string }[] | null;
}

interface Jsz {
  readonly meta_cluster?: { readonly leader?: string };
  readonly account_details?: readonly {
    readonly stream_detail?: readonly {
      readonly name: string;
      readonly state?: { readonly messages: number; readonly bytes: number; readonly first_seq: number; readonly last_seq: number };
    }[];
  }[];
}

export async function startNatsCluster(options: NatsClusterOptions): Promise<NatsCluster> {
  const size = options.size ?? 3;
  if (!Number.isInteger(size) || size < 2) throw new NatsClusterError('INVALID_OPTIONS', `a cluster needs at least 2 nodes, got ${size}`);
  const clusterName = options.name ?? 'ferry-test';
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const natsServer = options.natsServer ?? binaryPaths().natsServer;
  const quorum = Math.floor(size / 2) + 1;
  await mkdir(options.dir, { recursive: true });

  // The kernel may hand the same free port out twice in a row; each node needs three of its own.
  const taken = new Set<number>();
  const port = async (): Promise<number> => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  const nodes: Node[] = [];
  for (let i = 0; i < size; i++) {
    nodes.push(new Node(i, options.dir, { client: await port(), route: await port(), monitor: await port() }, natsServer));
  }
  const routes = nodes.map((n) => n.routeUrl);
  await Promise.all(nodes.map((n) => writeFile(n.configFile, configFor(n, clusterName, routes))));

  const node = (i: number): Node => {
    const n = Number.isInteger(i) ? nodes[i] : undefined;
    if (!n) throw new NatsClusterError('NO_SUCH_NODE', `no node ${i} in a cluster of ${size}`);
    return n;
  };
  const running = (): Node[] => nodes.filter((n) => n.running);
  const runningUrls = (): string[] => running().map((n) => n.url);
  const indexOf = (serverName: string): number => {
    const n = nodes.find((candidate) => candidate.name === serverName);
    if (!n) throw new NatsClusterError('NO_SUCH_NODE', `no node is named ${serverName} (nodes: ${nodes.map((c) => c.name).join(', ')})`);
    return n.index;
  };
  const logs = (of: readonly Node[] = nodes): string =>
    of.map((n) => `--- ${n.name} (${n.running ? 'running' : 'down'}) ${n.process.logFile}:\n${n.process.tail(15)}`).join('\n');

  const nodeReady = async (n: Node, timeoutMs: number): Promise<void> => {
    await poll(
      `${n.name} back in cluster ${clusterName}`,
      'NOT_READY',
      timeoutMs,
      async () => {
        if (!n.running) {
          throw new NatsClusterError('NODE_EXITED', `${n.name} exited (code ${String(await n.process.exited())}) before it was ready. Log ${n.process.logFile}:\n${n.process.tail()}`);
        }
        await withClient([n.url], async () => {});
        const routez = (await getJson(`${n.monitorUrl}/routez`)) as Routez;
        const routed = new Set((routez.routes ?? []).map((r) => r.remote_name));
        const missing = running().filter((o) => o !== n && !routed.has(o.name));
        if (missing.length > 0) throw new Error(`no route yet to ${missing.map((o) => o.name).join(', ')}`);
        if (running().length < quorum) return;
        const jsz = (await getJson(`${n.monitorUrl}/jsz`)) as Jsz;
        if (!jsz.meta_cluster?.leader) throw new Error('no JetStream meta leader known yet');
        // /healthz fails while the node's copies of streams and consumers are not current.
        await getJson(`${n.monitorUrl}/healthz`);
        await withClient([n.url], async (_nc, jsm) => {
          await jsm.getAccountInfo();
        });
      },
      () => logs([n]),
    );
  };

  const probeReplicatedStream = async (timeoutMs: number): Promise<void> => {
    const id = randomBytes(4).toString('hex');
    const name = `FERRY_CLUSTER_PROBE_${id}`;
    const replicas = Math.min(size, PROBE_REPLICAS_MAX);
    await poll(
      `an R${replicas} stream can be created in cluster ${clusterName}`,
      'NOT_READY',
      timeoutMs,
      () =>
        withClient(runningUrls(), async (_nc, jsm) => {
          // Idempotent for the same config, so a retry after a lost reply is harmless.
          await jsm.streams.add({ name, subjects: [`ferry.cluster.probe.${id}`], num_replicas: replicas, storage: StorageType.File });
          await jsm.streams.delete(name);
        }),
      () => logs(),
    );
  };

  const waitForQuorum = async (opts: WaitOptions = {}): Promise<void> => {
    const up = running();
    if (up.length < quorum) {
      throw new NatsClusterError('NO_QUORUM', `${up.length} of ${size} nodes run; JetStream needs ${quorum}`);
    }
    await Promise.all(up.map((n) => nodeReady(n, opts.timeoutMs ?? readyTimeoutMs)));
  };

  const waitForLeader = async (stream: string, opts: WaitForLeaderOptions = {}): Promise<number> => {
    const except = new Set(opts.except ?? []);
    return await poll(
      `a leader for stream ${stream}${except.size > 0 ? ` other than ${[...except].map((i) => node(i).name).join(', ')}` : ''}`,
      'NO_LEADER',
      opts.timeoutMs ?? 30_000,
      () =>
        withClient(runningUrls(), async (_nc, jsm) => {
          const info = await jsm.streams.info(stream);
          const leader = info.cluster?.leader;
          if (!leader) throw new Error(`stream ${stream} has no leader`);
          const i = indexOf(leader);
          // A reply naming a node we took down is stale, not an answer.
          if (!node(i).running) throw new Error(`stream ${stream} still names ${leader}, which is down, as leader`);
          if (except.has(i)) throw new Error(`stream ${stream} is still led by ${leader}`);
          return i;
        }, LEADER_POLL_TIMEOUT_MS),
    );
  };

  const metaLeader = async (opts: WaitOptions = {}): Promise<number> =>
    await poll('a JetStream meta leader', 'NO_LEADER', opts.timeoutMs ?? 30_000, async () => {
      const up = running();
      if (up.length === 0) throw new NatsClusterError('NO_QUORUM', 'no node of the cluster is running');
      for (const n of up) {
        const jsz = (await getJson(`${n.monitorUrl}/jsz`)) as Jsz;
        const leader = jsz.meta_cluster?.leader;
        if (leader && node(indexOf(leader)).running) return indexOf(leader);
      }
      throw new Error('no running node knows a meta leader on a running node');
    });

  const startNode = async (n: Node): Promise<void> => {
    n.process.start();
    await nodeReady(n, readyTimeoutMs);
  };

  const stopAll = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.process.stop()));
  };

  const cluster: NatsCluster = {
    name: clusterName,
    size,
    urls: nodes.map((n) => n.url),
    url: nodes.map((n) => n.url).join(','),
    nodes,
    quorum,
    async kill(i) {
      await node(i).process.kill();
    },
    async stop(i) {
      if (i === undefined) await stopAll();
      else await node(i).process.stop();
    },
    async start(i) {
      if (i !== undefined) {
        await startNode(node(i));
        return;
      }
      // All at once: one at a time would wait for a quorum that the next start brings.
      const down = nodes.filter((n) => !n.running);
      for (const n of down) n.process.start();
      await Promise.all(down.map((n) => nodeReady(n, readyTimeoutMs)));
    },
    async restart(i) {
      const n = node(i);
      await n.process.stop();
      await startNode(n);
    },
    async rollingRestart() {
      for (const n of nodes) {
        await n.process.stop();
        await startNode(n);
      }
    },
    leaderOf: (stream, opts = {}) => waitForLeader(stream, { timeoutMs: opts.timeoutMs ?? 15_000 }),
    waitForLeader,
    metaLeader,
    waitForQuorum,
    async localStreamState(i, stream) {
      const n = node(i);
      if (!n.running) throw new NatsClusterError('NODE_EXITED', `${n.name} is not running`);
      const jsz = (await getJson(`${n.monitorUrl}/jsz?accounts=true&streams=true`)) as Jsz;
      for (const account of jsz.account_details ?? []) {
        const s = account.stream_detail?.find((d) => d.name === stream)?.state;
        if (s) return { messages: s.messages, bytes: s.bytes, firstSeq: s.first_seq, lastSeq: s.last_seq };
      }
      return undefined;
    },
    indexOf,
  };

  try {
    for (const n of nodes) n.process.start();
    await Promise.all(nodes.map((n) => nodeReady(n, readyTimeoutMs)));
    await probeReplicatedStream(readyTimeoutMs);
    return cluster;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
