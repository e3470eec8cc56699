/**
 * The values Ferry takes from @kubernetes/client-node, imported from their own modules rather than
 * the package root: the root also loads every generated API class and model, which Ferry never
 * uses (see http.ts), at about 45 MiB of RSS and half a second of start-up. Types may still come
 * from the root (`import type` loads nothing); lint refuses a value import of it in src/.
 *
 * `KubeConfig`'s own module imports the generated index for two small names; the resolve hook in
 * src/cli/slim-kube-client.ts points that import at just those two, in the operator and the CLI.
 */
export { KubeConfig } from '@kubernetes/client-node/dist/config.js';
export { Watch } from '@kubernetes/client-node/dist/watch.js';
export { HttpMethod, RequestContext } from '@kubernetes/client-node/dist/gen/http/http.js';
