/**
 * `npm run env:up`: starts the local control plane in the foreground for manual use and prints
 * how to reach it. Ctrl-C stops every server.
 *
 * `npm run env:up -- --nats-cluster=3` runs NATS as a 3-node JetStream cluster instead of one
 * server; NATS_URL is then every node's URL, comma-joined.
 */
import { parseArgs } from 'node:util';
import { startControlPlane } from '../test/env/control-plane.ts';

const usage = 'usage: npm run env:up [-- --nats-cluster=N]   (N ≥ 2 nodes; 3 for R3 streams)';
let clusterFlag: string | undefined;
try {
  clusterFlag = parseArgs({ options: { 'nats-cluster': { type: 'string' } } }).values['nats-cluster'];
} catch (err) {
  console.error(`${err instanceof Error ? err.message : String(err)}\n${usage}`);
  process.exit(2);
}
let natsCluster: number | undefined;
if (clusterFlag !== undefined) {
  natsCluster = Number(clusterFlag);
  if (!Number.isInteger(natsCluster) || natsCluster < 2) {
    console.error(`--nats-cluster takes a node count of at least 2 (3 for R3 streams), got ${JSON.stringify(clusterFlag)}\n${usage}`);
    process.exit(2);
  }
}

const env = await startControlPlane({ natsCluster });
console.log(`# local control plane is up (logs and data in ${env.dir}); Ctrl-C stops it`);
console.log(`export KUBECONFIG=${env.kubeconfigPath} NATS_URL=${env.natsUrl}`);
console.log(`# kubectl: ${env.binaries.kubectl}`);
if (env.natsCluster) {
  console.log(`# NATS cluster ${env.natsCluster.name}, ${env.natsCluster.size} nodes (JetStream quorum ${env.natsCluster.quorum}):`);
  for (const node of env.natsCluster.nodes) {
    console.log(`#   ${node.name} ${node.url} monitor ${node.monitorUrl} log ${node.process.logFile}`);
  }
}

await new Promise<void>((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
await env.stop();
