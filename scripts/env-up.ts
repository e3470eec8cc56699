/**
 * `npm run env:up`: starts the local control plane in the foreground for manual use and prints
 * how to reach it. Ctrl-C stops every server.
 */
import { startControlPlane } from '../test/env/control-plane.ts';

const env = await startControlPlane();
console.log(`# local control plane is up (logs and data in ${env.dir}); Ctrl-C stops it`);
console.log(`export KUBECONFIG=${env.kubeconfigPath} NATS_URL=${env.natsUrl}`);
console.log(`# kubectl: ${env.binaries.kubectl}`);

await new Promise<void>((resolve) => {
  process.once('SIGINT', resolve);
  process.once('SIGTERM', resolve);
});
await env.stop();
