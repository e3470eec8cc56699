/**
 * Keeps @kubernetes/client-node's generated API classes and models out of the process.
 *
 * client-node's `config.js` (KubeConfig) imports `./gen/index.js` for `createConfiguration` and
 * `ServerConfiguration` only, and that index loads every generated API and model: about 45 MiB of
 * RSS and 0.5 s at start, for code Ferry never calls (src/kube speaks to the API server through
 * its own client; see src/kube/client-node.ts). This resolve hook hands `config.js` a module that
 * exports just those two names, from the files that define them.
 *
 * Must run before anything imports client-node: module resolution happens before evaluation, so
 * only modules loaded later by `import()` see the hook. If a client-node release imports another
 * name from the index, linking fails with "does not provide an export named …" at the first
 * command that loads it — loudly, at start, in every test that runs the operator.
 */
import { registerHooks } from 'node:module';

const CONFIG_MODULE = '/@kubernetes/client-node/dist/config.js';
const GENERATED_INDEX = './gen/index.js';

let registered = false;

export function slimKubeClient(): void {
  if (registered) return;
  registered = true;
  const from = (file: string): string => JSON.stringify(import.meta.resolve(`@kubernetes/client-node/dist/gen/${file}`));
  const source = [
    `export { createConfiguration } from ${from('configuration.js')};`,
    `export { ServerConfiguration } from ${from('servers.js')};`,
  ].join('\n');
  const url = `data:text/javascript,${encodeURIComponent(source)}`;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (specifier === GENERATED_INDEX && context.parentURL?.endsWith(CONFIG_MODULE) === true) return { url, shortCircuit: true };
      return nextResolve(specifier, context);
    },
  });
}
