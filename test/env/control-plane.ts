/**
 * A real local control plane for tests, the demo and `npm run env:up`: etcd, kube-apiserver and
 * nats-server with JetStream (one server, or with `natsCluster: N` an N-node JetStream cluster, see
 * nats-cluster.ts), all on 127.0.0.1 with free ports and temporary data directories.
 *
 * Guarantees: `startControlPlane()` resolves only when each server is truly ready (etcd /health,
 * kube-apiserver /readyz with the admin certificate, a JetStream account-info round trip), and
 * its processes never outlive the calling process (see managed-process.ts). `stop()` is safe to
 * call twice. The restart helpers keep ports and data, so clients can reconnect.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { ensureBinaries, type Binaries, type BuildLog } from './binaries.ts';
import { freePort } from './free-port.ts';
import { ManagedProcess } from './managed-process.ts';
import { startNatsCluster, type NatsCluster } from './nats-cluster.ts';
import { generatePki, type ControlPlanePki } from './pki.ts';

export interface ControlPlaneOptions {
  /** Start etcd + kube-apiserver (default true). NATS-only tests skip them. */
  readonly kube?: boolean;
  /** Start nats-server with JetStream (default true). */
  readonly nats?: boolean;
  /**
   * Run NATS as a JetStream cluster of this many nodes (3 for R3 streams) instead of one server.
   * Default: one server, as before.
   */
  readonly natsCluster?: number;
  /** Keep the temp dir (logs, data) after stop, for debugging. Also FERRY_KEEP_ENV=1. */
  readonly keep?: boolean;
  readonly log?: BuildLog;
  /** How long to wait for each server to become ready. */
  readonly readyTimeoutMs?: number;
  /**
   * Extra kube-apiserver flags, appended last (e.g. `--audit-policy-file=…`, `--audit-log-path=…`
   * to record every request the operator makes).
   */
  readonly apiServerArgs?: readonly string[];
  /**
   * Serve nats-server's HTTP monitoring endpoints (`/varz`, `/connz`) on a free port, for
   * benchmarks that count the messages a client sends (single server only). Default off.
   */
  readonly natsMonitor?: boolean;
}

export interface ControlPlane {
  /** Admin kubeconfig (client certificate in system:masters). Empty when kube is off. */
  readonly kubeconfigPath: string;
  readonly kubeConfig: KubeConfig;
  readonly apiServerUrl: string;
  /** etcd's client URL (http://127.0.0.1:port), e.g. for its JSON gateway. Empty when kube is off. */
  readonly etcdUrl: string;
  /**
   * nats://127.0.0.1:port; with a cluster every node's URL, comma-joined (what `--nats-url` takes).
   * Empty when nats is off.
   */
  readonly natsUrl: string;
  /** http://127.0.0.1:port of nats-server's monitoring endpoints; only with `natsMonitor`. */
  readonly natsMonitorUrl?: string;
  /** The cluster's nodes, kill/stop/start/restart and leader look-ups; only with `natsCluster`. */
  readonly natsCluster?: NatsCluster;
  /** Temp directory with data dirs, certificates and one log file per server. */
  readonly dir: string;
  readonly binaries: Binaries;
  /** `nats` is the single server; a cluster's processes are `natsCluster.nodes[i].process`. */
  readonly processes: { readonly etcd?: ManagedProcess; readonly apiServer?: ManagedProcess; readonly nats?: ManagedProcess };
  /**
   * Stops nats-server and starts it again on the same port and store. With a cluster: every node
   * stops, then all start again (a full outage; `natsCluster.rollingRestart()` is the rolling one).
   */
  restartNats(): Promise<void>;
  /** Stops kube-apiserver and starts it again on the same port (etcd keeps the data). */
  restartApiServer(): Promise<void>;
  /** Stops kube-apiserver (etcd keeps running); `startApiServer()` brings it back on the same port. */
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  /** Stops nats-server (with a cluster: every node). */
  stopNats(): Promise<void>;
  /** Starts it again (with a cluster: every stopped node, until JetStream has its quorum). */
  startNats(): Promise<void>;
  stop(): Promise<void>;
}

export { freePort };

async function waitUntil(
  what: string,
  proc: ManagedProcess,
  timeoutMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (!proc.running) {
      const code = await proc.exited();
      throw new Error(`${what} exited (code ${String(code)}) before it was ready. Log ${proc.logFile}:\n${proc.tail()}`);
    }
    try {
      if (await check()) return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    // Polling a real server that is starting up; there is no event to wait on.
    await sleep(150);
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms (${lastError}). Log ${proc.logFile}:\n${proc.tail()}`);
}

function kubeconfigYaml(server: string, pki: ControlPlanePki): string {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'ferry-local', cluster: { server, 'certificate-authority-data': b64(pki.ca.cert) } }],
    users: [{ name: 'ferry-admin', user: { 'client-certificate-data': b64(pki.admin.cert), 'client-key-data': b64(pki.admin.key) } }],
    contexts: [{ name: 'ferry-local', context: { cluster: 'ferry-local', user: 'ferry-admin' } }],
    'current-context': 'ferry-local',
  });
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const withKube = options.kube ?? true;
  const withNats = options.nats ?? true;
  if (options.natsCluster !== undefined && !withNats) throw new Error('natsCluster needs nats: the two options contradict each other');
  const readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
  const binaries = await ensureBinaries(options.log);
  const dir = await mkdtemp(join(process.env.FERRY_TMP_DIR ?? tmpdir(), 'ferry-env-'));
  const keep = options.keep ?? process.env.FERRY_KEEP_ENV === '1';

  let etcd: ManagedProcess | undefined;
  let apiServer: ManagedProcess | undefined;
  let nats: ManagedProcess | undefined;
  let natsCluster: NatsCluster | undefined;
  let apiAgent: Agent | undefined;
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Reverse start order: the API server before its etcd.
    await Promise.all([apiServer?.stop(), nats?.stop(), natsCluster?.stop()]);
    await etcd?.stop();
    await apiAgent?.close();
    if (!keep) await rm(dir, { recursive: true, force: true });
  };

  try {
    let kubeconfigPath = '';
    let apiServerUrl = '';
    let etcdUrl = '';
    const kubeConfig = new KubeConfig();
    let startApiServer = async (): Promise<void> => {};

    if (withKube) {
      const [clientPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
      const pki = await generatePki();
      const files = {
        ca: join(dir, 'ca.crt'),
        serverCert: join(dir, 'apiserver.crt'),
        serverKey: join(dir, 'apiserver.key'),
        saPub: join(dir, 'sa.pub'),
        saKey: join(dir, 'sa.key'),
      };
      await Promise.all([
        writeFile(files.ca, pki.ca.cert),
        writeFile(files.serverCert, pki.server.cert),
        writeFile(files.serverKey, pki.server.key, { mode: 0o600 }),
        writeFile(files.saPub, pki.serviceAccount.publicKey),
        writeFile(files.saKey, pki.serviceAccount.privateKey, { mode: 0o600 }),
      ]);

      etcdUrl = `http://127.0.0.1:${clientPort}`;
      etcd = new ManagedProcess({
        name: 'etcd',
        command: binaries.etcd,
        logFile: join(dir, 'etcd.log'),
        args: [
          '--name=ferry',
          `--data-dir=${join(dir, 'etcd-data')}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
          `--initial-cluster=ferry=http://127.0.0.1:${peerPort}`,
          '--unsafe-no-fsync',
          '--log-level=warn',
        ],
      });
      etcd.start();
      const etcdProc = etcd;
      await waitUntil('etcd', etcdProc, readyTimeoutMs, async () => {
        const res = await request(`${etcdUrl}/health`);
        const body = (await res.body.json()) as { health?: string };
        return res.statusCode === 200 && body.health === 'true';
      });

      apiServerUrl = `https://127.0.0.1:${apiPort}`;
      const apiArgs = [
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--etcd-servers=${etcdUrl}`,
        `--cert-dir=${join(dir, 'apiserver-certs')}`,
        `--tls-cert-file=${files.serverCert}`,
        `--tls-private-key-file=${files.serverKey}`,
        `--client-ca-file=${files.ca}`,
        `--service-account-issuer=${apiServerUrl}`,
        `--service-account-key-file=${files.saPub}`,
        `--service-account-signing-key-file=${files.saKey}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        '--disable-admission-plugins=ServiceAccount',
        '--authorization-mode=RBAC',
        '--v=1',
        ...(options.apiServerArgs ?? []),
      ];
      const apiProc = new ManagedProcess({
        name: 'kube-apiserver',
        command: binaries.kubeApiserver,
        logFile: join(dir, 'kube-apiserver.log'),
        args: apiArgs,
      });
      apiServer = apiProc;
      const agent = new Agent({ connect: { ca: pki.ca.cert, cert: pki.admin.cert, key: pki.admin.key } });
      apiAgent = agent;
      startApiServer = async () => {
        apiProc.start();
        await waitUntil('kube-apiserver', apiProc, readyTimeoutMs, async () => {
          const res = await request(`${apiServerUrl}/readyz`, { dispatcher: agent });
          await res.body.dump();
          return res.statusCode === 200;
        });
      };
      await startApiServer();

      kubeconfigPath = join(dir, 'kubeconfig');
      await writeFile(kubeconfigPath, kubeconfigYaml(apiServerUrl, pki), { mode: 0o600 });
      kubeConfig.loadFromFile(kubeconfigPath);
    }

    let natsUrl = '';
    let natsMonitorUrl: string | undefined;
    let startNats = async (): Promise<void> => {};
    let stopNats = async (): Promise<void> => {};
    if (withNats && options.natsCluster !== undefined) {
      const cluster = await startNatsCluster({ dir: join(dir, 'nats-cluster'), size: options.natsCluster, name: 'ferry-local', readyTimeoutMs });
      natsCluster = cluster;
      natsUrl = cluster.url;
      startNats = () => cluster.start();
      stopNats = () => cluster.stop();
    } else if (withNats) {
      const natsPort = await freePort();
      natsUrl = `nats://127.0.0.1:${natsPort}`;
      const monitorPort = options.natsMonitor === true ? await freePort() : undefined;
      if (monitorPort !== undefined) natsMonitorUrl = `http://127.0.0.1:${monitorPort}`;
      const natsProc = new ManagedProcess({
        name: 'nats-server',
        command: binaries.natsServer,
        logFile: join(dir, 'nats-server.log'),
        args: ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', join(dir, 'jetstream'), '-n', 'ferry-local', ...(monitorPort === undefined ? [] : ['-m', String(monitorPort)])],
      });
      nats = natsProc;
      stopNats = () => natsProc.stop();
      startNats = async () => {
        natsProc.start();
        await waitUntil('nats-server', natsProc, readyTimeoutMs, async () => {
          const nc = await connect({ servers: natsUrl, reconnect: false, timeout: 1_000 });
          try {
            const jsm = await jetstreamManager(nc);
            await jsm.getAccountInfo();
            return true;
          } finally {
            await nc.close();
          }
        });
      };
      await startNats();
    }

    return {
      kubeconfigPath,
      kubeConfig,
      apiServerUrl,
      etcdUrl,
      natsUrl,
      ...(natsMonitorUrl === undefined ? {} : { natsMonitorUrl }),
      natsCluster,
      dir,
      binaries,
      processes: { etcd, apiServer, nats },
      async restartNats() {
        if (!withNats) throw new Error('this control plane was started without NATS');
        await stopNats();
        await startNats();
      },
      async stopNats() {
        if (!withNats) throw new Error('this control plane was started without NATS');
        await stopNats();
      },
      async startNats() {
        await startNats();
      },
      async restartApiServer() {
        if (!apiServer) throw new Error('this control plane was started without kube-apiserver');
        await apiServer.stop();
        await startApiServer();
      },
      async stopApiServer() {
        if (!apiServer) throw new Error('this control plane was started without kube-apiserver');
        await apiServer.stop();
      },
      async startApiServer() {
        if (!apiServer) throw new Error('this control plane was started without kube-apiserver');
        await startApiServer();
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
