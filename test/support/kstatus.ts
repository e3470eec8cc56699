/**
 * kstatus as Flux, Helm 4 `--wait` and cli-utils compute it: our small Go program on
 * sigs.k8s.io/cli-utils (test/env/go/kstatus) runs `status.Compute` on the objects piped to it.
 * Not a re-implementation: the same code those tools run.
 */
import { execFile } from 'node:child_process';
import { ensureGoTool } from '../env/go-tools.ts';

/** kstatus's verdict on one object. */
export interface KstatusResult {
  readonly kind: string;
  readonly name: string;
  /** InProgress, Failed, Current, Terminating, NotFound or Unknown. */
  readonly status: string;
  readonly message: string;
}

/**
 * Computes kstatus for each object, in order.
 *
 * @throws Error with the program's stderr when it cannot decode an object or Compute fails.
 */
export async function kstatus(objects: readonly unknown[]): Promise<KstatusResult[]> {
  const bin = await ensureGoTool('kstatus');
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = execFile(bin, [], { encoding: 'utf8', timeout: 10_000 }, (err, out, stderr) => {
      if (err) reject(new Error(`kstatus failed: ${stderr}`, { cause: err }));
      else resolve(out);
    });
    child.stdin?.end(objects.map((o) => JSON.stringify(o)).join('\n'));
  });
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as KstatusResult);
}
