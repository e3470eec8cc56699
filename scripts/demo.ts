/**
 * `npm run demo`: the whole thing on one machine, no cluster and no Docker.
 *
 * Starts a local control plane (etcd, kube-apiserver, nats-server with JetStream), installs the
 * CRDs, runs the operator as its own process, applies the example Integration (examples/
 * integration.yaml) pointed at a local billing sink, publishes a few CRM events — good ones and
 * a malformed one — and shows where each ended: delivered to the sink, or parked in the fallback
 * stream with the reason. Then it keeps everything running for you to explore until Ctrl-C.
 *
 * `--once` shows the same and exits (the test suite runs it so this README command stays true).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { parse } from 'yaml';
import { startControlPlane } from '../test/env/control-plane.ts';
import { installCrds } from '../test/support/crds.ts';
import { startFaultTarget } from '../test/support/fault-target.ts';
import { FerryClient, condition, isTrueNow } from '../test/support/ferry-client.ts';
import { startOperator } from '../test/support/operator-process.ts';
import { eventually, fallbackMessages, publishEvents } from '../test/support/runtime-harness.ts';

const usage = 'usage: npm run demo [-- --once]';
let once = false;
try {
  once = parseArgs({ options: { once: { type: 'boolean' } }, strict: true }).values.once ?? false;
} catch (err) {
  console.error(`${err instanceof Error ? err.message : String(err)}\n${usage}`);
  process.exit(2);
}

const NS = 'revops';
const say = (text: string): void => {
  console.log(`\n\u001b[1m▸ ${text}\u001b[0m`);
};

say('starting etcd, kube-apiserver and nats-server (the first run builds them from Go modules: a few minutes)');
const env = await startControlPlane();
// The sink checks the bearer token, as the real billing API would: the example's
// `target.auth` (Secret billing-api, key token) must reach it.
const DEMO_TOKEN = 'demo-token';
const sink = await startFaultTarget({ auth: { kind: 'bearer', token: DEMO_TOKEN } });
let stopping = false;
const shutdown = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await operator?.stop();
  await sink.close();
  await env.stop();
};
let operator: Awaited<ReturnType<typeof startOperator>> | undefined;
try {
  const kubectl = (...args: string[]): string => execFileSync(env.binaries.kubectl, ['--kubeconfig', env.kubeconfigPath, ...args], { encoding: 'utf8' });

  say('installing the CRDs: kubectl apply -f crds/');
  await installCrds(env);
  const core = env.kubeConfig.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'billing-api' }, stringData: { token: DEMO_TOKEN } } });

  const nc = await connect({ servers: env.natsUrl });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'CRM_EVENTS', subjects: ['crm.>'] });

  say('starting the operator (ferry controller) — its JSON logs go to a file, see below');
  operator = await startOperator({ env, identity: 'demo', args: ['--allow-cidrs=127.0.0.1/32'], envVars: { FERRY_LOG_LEVEL: 'info' } });

  say(`applying examples/integration.yaml, with its target pointed at a local billing sink (${sink.url})`);
  const example = parse(readFileSync(join(import.meta.dirname, '..', 'examples', 'integration.yaml'), 'utf8')) as {
    metadata: { name: string };
    spec: { target: { url: string } };
  };
  example.spec.target.url = `${sink.url}/v1/accounts/{{/customer/id}}/invoices`;
  const ferry = new FerryClient(env.kubeConfig);
  await ferry.create('integrations', NS, { kind: 'Integration', metadata: { name: example.metadata.name }, spec: example.spec });
  await ferry.waitFor('integrations', NS, example.metadata.name, (o) => isTrueNow(o, 'Ready'), 60_000);
  console.log(kubectl('get', 'ferry', '-n', NS));

  say('publishing 5 closed deals to crm.deals.closed — one of them malformed (amount is a string)');
  const r = { js: jetstream(nc), jsm };
  await publishEvents(r, 'crm.deals.closed', [
    { id: 'deal-1001', amount: 1200, customer: { id: 'acme' } },
    { id: 'deal-1002', amount: 89.5, customer: { id: 'globex' } },
    { id: 'deal-1003', amount: 'a lot', customer: { id: 'initech' } },
    { id: 'deal-1004', amount: 15000, customer: { id: 'acme' } },
    { id: 'deal-1005', amount: 42, customer: { id: 'umbrella' } },
  ]);
  await eventually('4 invoices delivered', () => sink.stats().applied === 4 || undefined, 30_000);
  for (const a of sink.applied) console.log(`  sink received ${a.method} ${a.path}  Idempotency-Key: ${a.key ?? '-'}  ${a.body}`);
  if (sink.stats().unauthorized > 0) throw new Error(`the sink refused ${sink.stats().unauthorized} requests without the bearer token`);
  const parked = await eventually('1 event parked', async () => (await fallbackMessages(r, example.metadata.name, NS)).at(0), 30_000);
  console.log(`  parked in FERRY_FALLBACK_${NS}_${example.metadata.name}: reason=${parked.header.get('Ferry-Reason')} error="${parked.header.get('Ferry-Error')}"`);
  console.log(`  payload kept byte for byte: ${Buffer.from(parked.data).toString()}`);
  const obj = await ferry.waitFor(
    'integrations',
    NS,
    example.metadata.name,
    (o) => o.status?.fallbackPending === 1 && (o.status.stats as { delivered?: number } | undefined)?.delivered === 4,
    30_000,
  );
  console.log(kubectl('get', 'ferry', '-n', NS));
  console.log(`  Ready=${condition(obj, 'Ready')?.status} (${condition(obj, 'Ready')?.reason}), stats: ${JSON.stringify(obj.status?.stats)}`);
  await nc.close();

  if (once) {
    say('demo complete (--once)');
  } else {
    say('everything is running. Try:');
    console.log(`  export KUBECONFIG=${env.kubeconfigPath} NATS_URL=${env.natsUrl}`);
    console.log(`  ${env.binaries.kubectl} get ferry -A`);
    console.log(`  ${env.binaries.kubectl} -n ${NS} describe integration ${example.metadata.name}`);
    console.log(`  ${env.binaries.kubectl} -n ${NS} get events`);
    console.log(`  operator metrics: http://127.0.0.1:${operator.httpPort}/metrics   operator log: ${operator.process.logFile}`);
    console.log('  Ctrl-C stops everything.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
  }
} finally {
  await shutdown();
}
