/**
 * NATS credentials and TLS as users run them: for each method a real nats-server configured to
 * require it, the real operator process (`ferry controller` with the flags the Helm chart renders)
 * against a real control plane until an Integration is Ready and delivers an event, and the CLI
 * (`ferry fallback ls`) with the same flags. Wrong credentials must end in one clear log line and
 * leave no secret in any output.
 *
 * `--nats-creds` runs against a server in operator mode (decentralized JWT auth) whose operator,
 * account and user JWTs test/support/nats-jwt.ts signs with fresh nkeys, as `nsc` would.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, credsAuthenticator, nkeyAuthenticator, nkeys, type ConnectionOptions } from '@nats-io/transport-node';
import { freePort, startControlPlane, type ControlPlane } from '../env/control-plane.ts';
import { ManagedProcess } from '../env/managed-process.ts';
import { generatePki, type ControlPlanePki } from '../env/pki.ts';
import { installCrds, kubectlEnv, repoRoot } from '../support/crds.ts';
import { startFaultTarget, type FaultTarget } from '../support/fault-target.ts';
import { FerryClient, isTrueNow } from '../support/ferry-client.ts';
import { operatorSetup } from '../support/nats-jwt.ts';
import { startOperator, type OperatorProcess } from '../support/operator-process.ts';

const MAIN = join(repoRoot, 'src', 'cli', 'main.ts');
const NS = 'secured';
const PASSWORD = 'pw-0f3c9a7e5b1d';
const TOKEN = 'tok-7c1e4b9a2f6d';
const WRONG_PASSWORD = 'wrong-pw-5a8e2c';
const WRONG_TOKEN = 'wrong-tok-9d3b7f';

interface NatsServer {
  readonly url: string;
  readonly process: ManagedProcess;
  /** Connection options of the test's own client (same credentials as the operator's). */
  readonly client: Partial<ConnectionOptions>;
}

interface Case {
  readonly name: string;
  /** The server's config beyond listen address and JetStream. */
  readonly config: string;
  /** What the operator and the CLI get. */
  readonly args: readonly string[];
  readonly envVars: NodeJS.ProcessEnv;
  readonly client: Partial<ConnectionOptions>;
  /** Values that must never appear in any output. */
  readonly secrets: readonly string[];
}

describe('NATS credentials and TLS', () => {
  let env: ControlPlane;
  let ferry: FerryClient;
  let pki: ControlPlanePki;
  let target: FaultTarget;
  let dir: string;
  const servers: ManagedProcess[] = [];
  const operators: OperatorProcess[] = [];
  const files: Record<string, string> = {};
  const nkeyUser = nkeys.createUser();
  const nkeySeed = new TextDecoder().decode(nkeyUser.getSeed());
  const decentralized = operatorSetup();

  async function startNats(name: string, config: string, client: Partial<ConnectionOptions>, port?: number): Promise<NatsServer> {
    const p = port ?? (await freePort());
    const conf = join(dir, `${name}.conf`);
    await writeFile(conf, `listen: 127.0.0.1:${p}\nserver_name: ${name}\njetstream { store_dir: ${JSON.stringify(join(dir, `js-${name}`))} }\n${config}\n`);
    const proc = new ManagedProcess({ name: `nats-${name}`, command: env.binaries.natsServer, args: ['-c', conf], logFile: join(dir, `nats-${name}.log`) });
    proc.start();
    servers.push(proc);
    const url = `nats://127.0.0.1:${p}`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        const nc = await connect({ servers: url, reconnect: false, timeout: 1_000, ...client });
        await (await jetstreamManager(nc)).getAccountInfo();
        await nc.close();
        return { url, process: proc, client };
      } catch (err) {
        if (!proc.running || Date.now() > deadline) throw new Error(`nats-server ${name} not ready: ${String(err)}\n${proc.tail()}`, { cause: err });
        // A starting server: nothing to wait on but its port.
        await sleep(150);
      }
    }
  }

  /** Runs the CLI to completion with `args`. */
  async function cli(args: readonly string[], extra: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
    return await new Promise((resolve) => {
      execFile(process.execPath, [MAIN, ...args], { cwd: repoRoot, env: { ...kubectlEnv(env.kubeconfigPath), FERRY_LOG_LEVEL: 'info', ...extra }, encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      });
    });
  }

  async function operatorFor(name: string, url: string, args: readonly string[], envVars: NodeJS.ProcessEnv): Promise<OperatorProcess> {
    // Debug level: the most the operator ever logs, all of it checked for secrets.
    const op = await startOperator({
      env,
      identity: name,
      natsUrl: url,
      args: ['--allow-cidrs=127.0.0.1/32', `--lease-name=ferry-${name}`, ...args],
      envVars: { FERRY_LOG_LEVEL: 'debug', ...envVars },
    });
    operators.push(op);
    return op;
  }

  async function assertNoSecret(op: OperatorProcess, secrets: readonly string[]): Promise<void> {
    const log = await readFile(op.process.logFile, 'utf8');
    for (const s of secrets) assert.ok(!log.includes(s), `operator ${op.identity} logged a secret`);
  }

  /** The whole path: Ready, one event delivered, one parked; then the CLI reads the parked one. */
  async function runCase(c: Case, server: NatsServer, op: OperatorProcess): Promise<void> {
    const nc = await connect({ servers: server.url, ...server.client });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: 'EVENTS', subjects: ['events.>'] });
      await ferry.create('integrations', NS, {
        kind: 'Integration',
        metadata: { name: c.name },
        spec: {
          source: { stream: 'EVENTS', subjects: [`events.${c.name}`] },
          schema: { inline: { type: 'object', required: ['id'], properties: { id: { type: 'string' } } } },
          transform: { mapping: { externalId: '/id' } },
          target: { url: `${target.url}/${c.name}`, timeout: '2s' },
        },
      });
      await ferry.waitFor('integrations', NS, c.name, (o) => isTrueNow(o, 'Ready'), 60_000);
      const js = jetstream(nc);
      await js.publish(`events.${c.name}`, JSON.stringify({ id: `${c.name}-1` }));
      // No id: fails the schema and is parked (reason invalid), for the CLI to find.
      await js.publish(`events.${c.name}`, JSON.stringify({ amount: 1 }));
      const deadline = Date.now() + 30_000;
      while (!target.applied.some((a) => a.path === `/${c.name}`)) {
        if (Date.now() > deadline) throw new Error(`${c.name}: no delivery within 30 s\n${op.process.tail()}`);
        await sleep(100);
      }
      const fallback = `FERRY_FALLBACK_${NS}_${c.name}`;
      const parkedDeadline = Date.now() + 30_000;
      while ((await jsm.streams.info(fallback).catch(() => undefined))?.state.messages !== 1) {
        if (Date.now() > parkedDeadline) throw new Error(`${c.name}: the invalid event was not parked`);
        await sleep(100);
      }
    } finally {
      await nc.close();
    }
    const ls = await cli(['fallback', 'ls', c.name, '-n', NS, `--nats-url=${server.url}`, ...c.args], c.envVars);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, new RegExp(`^Integration\\s+${NS}\\s+${c.name}\\s+1\\s+invalid=1\\s`, 'm'));
    for (const s of c.secrets) assert.ok(!`${ls.stdout}${ls.stderr}`.includes(s), `the CLI printed a secret (${c.name})`);
  }

  before(async () => {
    env = await startControlPlane({ nats: false });
    dir = env.dir;
    await installCrds(env);
    await env.kubeConfig.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    ferry = new FerryClient(env.kubeConfig);
    target = await startFaultTarget();
    pki = await generatePki();
    const secrets = join(dir, 'secrets');
    await mkdir(secrets, { mode: 0o700 });
    const put = async (name: string, content: string): Promise<void> => {
      files[name] = join(secrets, name);
      await writeFile(files[name], content, { mode: 0o600 });
    };
    await Promise.all([
      put('token', `${TOKEN}\n`),
      put('wrong-token', `${WRONG_TOKEN}\n`),
      put('nkey.seed', `${nkeySeed}\n`),
      put('ferry.creds', decentralized.creds),
      put('foreign.creds', decentralized.foreignCreds),
      put('ca.crt', pki.ca.cert),
      put('server.crt', pki.server.cert),
      put('server.key', pki.server.key),
      put('client.crt', pki.admin.cert),
      put('client.key', pki.admin.key),
    ]);
  });

  after(async () => {
    await Promise.all(operators.map((o) => o.stop()));
    await Promise.all(servers.map((s) => s.stop()));
    await target?.close();
    await env?.stop();
  });

  it('user and password (NATS_PASSWORD): delivers; a wrong password ends the operator with one clear line and no secret', async () => {
    const c: Case = {
      name: 'userpass',
      config: `authorization { user: ferry, password: ${JSON.stringify(PASSWORD)} }`,
      args: ['--nats-user=ferry'],
      envVars: { NATS_PASSWORD: PASSWORD },
      client: { user: 'ferry', pass: PASSWORD },
      secrets: [PASSWORD],
    };
    const server = await startNats(c.name, c.config, c.client);
    const op = await operatorFor(c.name, server.url, c.args, c.envVars);
    await runCase(c, server, op);
    await op.stop();
    await assertNoSecret(op, c.secrets);

    const wrong = await operatorFor('userpass-wrong', server.url, c.args, { NATS_PASSWORD: WRONG_PASSWORD });
    const refused = await wrong.waitForLog((l) => l.msg === 'NATS refused the credentials', 30_000);
    assert.equal(refused.level, 'error');
    assert.equal(refused.code, 'NATS_AUTH');
    assert.equal(refused.security, 'user ferry, no TLS');
    assert.equal(await wrong.process.exited(), 1);
    await assertNoSecret(wrong, [WRONG_PASSWORD, PASSWORD]);

    const cliWrong = await cli(['fallback', 'ls', '-n', NS, `--nats-url=${server.url}`, ...c.args], { NATS_PASSWORD: WRONG_PASSWORD });
    assert.equal(cliWrong.code, 1, cliWrong.stderr);
    assert.match(cliWrong.stderr, /^ferry: NATS at nats:\/\/127\.0\.0\.1:\d+ refused the credentials \(.*[Aa]uthorization [Vv]iolation.*\)/);
    assert.equal(cliWrong.stderr.trim().split('\n').length, 1);
    assert.ok(!cliWrong.stderr.includes(WRONG_PASSWORD));

    // The password is rotated on the server while an operator runs: the client cannot reconnect,
    // so the operator exits 1 (the pod restarts and reads its Secret again) instead of running on
    // without NATS.
    const running = await operatorFor('userpass-rotated', server.url, c.args, c.envVars);
    await running.waitForLog((l) => l.msg === 'connected to NATS', 30_000);
    await writeFile(join(dir, 'userpass.conf'), (await readFile(join(dir, 'userpass.conf'), 'utf8')).replace(PASSWORD, 'rotated-pw-3e7a'));
    process.kill(server.process.pid ?? 0, 'SIGHUP');
    const closed = await running.waitForLog((l) => l.msg === 'NATS connection closed for good; stopping so that a restart connects again', 60_000);
    assert.equal(closed.code, 'NATS_AUTH');
    assert.equal(await running.process.exited(), 1);
    assert.equal(running.logs.find((l) => l.msg === 'exiting')?.code, 1);
    assert.equal(running.logs.filter((l) => l.msg === 'draining NATS failed; closing the connection').length, 0, 'a closed connection is not drained');
    await assertNoSecret(running, [PASSWORD, 'rotated-pw-3e7a']);
  });

  it('token file: waits with warnings for a NATS that is not up yet, then delivers; a wrong token is refused', async () => {
    const c: Case = {
      name: 'token',
      config: `authorization { token: ${JSON.stringify(TOKEN)} }`,
      args: [`--nats-token-file=${files.token ?? ''}`],
      envVars: {},
      client: { token: TOKEN },
      secrets: [TOKEN],
    };
    const port = await freePort();
    // The operator starts first, as after a fresh install: it must wait, not die.
    const op = await operatorFor(c.name, `nats://127.0.0.1:${port}`, c.args, c.envVars);
    const warning = await op.waitForLog((l) => l.msg === 'NATS not reachable yet; retrying', 30_000);
    assert.equal(warning.level, 'warn');
    const server = await startNats(c.name, c.config, c.client, port);
    await op.waitForLog((l) => l.msg === 'connected to NATS', 30_000);
    await runCase(c, server, op);
    await op.stop();
    await assertNoSecret(op, c.secrets);

    const wrong = await operatorFor('token-wrong', server.url, [`--nats-token-file=${files['wrong-token'] ?? ''}`], {});
    await wrong.waitForLog((l) => l.msg === 'NATS refused the credentials', 30_000);
    assert.equal(await wrong.process.exited(), 1);
    await assertNoSecret(wrong, [WRONG_TOKEN, TOKEN]);
  });

  it('nkey seed file (FERRY_NATS_NKEY): delivers', async () => {
    const c: Case = {
      name: 'nkey',
      config: `authorization { users: [ { nkey: ${JSON.stringify(nkeyUser.getPublicKey())} } ] }`,
      args: [],
      envVars: { FERRY_NATS_NKEY: files['nkey.seed'] ?? '' },
      client: { authenticator: nkeyAuthenticator(nkeyUser.getSeed()) },
      secrets: [nkeySeed],
    };
    const server = await startNats(c.name, c.config, c.client);
    const op = await operatorFor(c.name, server.url, c.args, c.envVars);
    await runCase(c, server, op);
    await op.stop();
    await assertNoSecret(op, c.secrets);
  });

  it('.creds file (operator mode, JWT): delivers; a user signed by an unknown account is refused', async () => {
    const c: Case = {
      name: 'creds',
      config: decentralized.serverConfig,
      args: [`--nats-creds=${files['ferry.creds'] ?? ''}`],
      envVars: {},
      client: { authenticator: credsAuthenticator(new TextEncoder().encode(decentralized.creds)) },
      secrets: [decentralized.userSeed],
    };
    const server = await startNats(c.name, c.config, c.client);
    const op = await operatorFor(c.name, server.url, c.args, c.envVars);
    await runCase(c, server, op);
    await op.stop();
    await assertNoSecret(op, c.secrets);

    const wrong = await operatorFor('creds-wrong', server.url, [`--nats-creds=${files['foreign.creds'] ?? ''}`], {});
    const refused = await wrong.waitForLog((l) => l.msg === 'NATS refused the credentials', 30_000);
    assert.equal(refused.security, 'creds, no TLS');
    assert.equal(await wrong.process.exited(), 1);
    await assertNoSecret(wrong, c.secrets);
  });

  it('mutual TLS with a client certificate: delivers; without the certificate the server refuses', async () => {
    const tlsFiles = { ca: files['ca.crt'] ?? '', cert: files['client.crt'] ?? '', key: files['client.key'] ?? '' };
    const c: Case = {
      name: 'mtls',
      config: `tls { cert_file: ${JSON.stringify(files['server.crt'])}, key_file: ${JSON.stringify(files['server.key'])}, ca_file: ${JSON.stringify(files['ca.crt'])}, verify: true }`,
      args: [`--nats-tls-ca=${tlsFiles.ca}`, `--nats-tls-cert=${tlsFiles.cert}`, `--nats-tls-key=${tlsFiles.key}`],
      envVars: {},
      client: { tls: { caFile: tlsFiles.ca, certFile: tlsFiles.cert, keyFile: tlsFiles.key } },
      secrets: [pki.admin.key.split('\n')[1] ?? 'unused'],
    };
    const server = await startNats(c.name, c.config, c.client);
    const op = await operatorFor(c.name, server.url, c.args, c.envVars);
    await runCase(c, server, op);
    await op.stop();
    await assertNoSecret(op, c.secrets);

    // Trusting the CA but presenting no certificate: the handshake fails, the CLI says so.
    const noCert = await cli(['fallback', 'ls', '-n', NS, `--nats-url=${server.url}`, `--nats-tls-ca=${tlsFiles.ca}`], {});
    assert.equal(noCert.code, 1, noCert.stderr);
    assert.match(noCert.stderr, /NATS at nats:\/\/127\.0\.0\.1:\d+/);
    const halfPair = await cli(['fallback', 'ls', '-n', NS, `--nats-url=${server.url}`, `--nats-tls-cert=${tlsFiles.cert}`], {});
    assert.equal(halfPair.code, 2);
    assert.match(halfPair.stderr, /--nats-tls-cert needs --nats-tls-key/);
  });

  it('refuses two credential methods and a file it cannot read before connecting', async () => {
    const both = await cli(['controller', `--nats-token-file=${files.token ?? ''}`, '--nats-user=ferry'], { NATS_PASSWORD: PASSWORD });
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give at most one of --nats-user, --nats-token-file/);
    const missing = await cli(['controller', '--nats-creds=/nonexistent/ferry.creds'], {});
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^ferry: --nats-creds: cannot read \/nonexistent\/ferry\.creds \(ENOENT\)$/m);
  });
});
