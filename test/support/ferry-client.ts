/**
 * Test helpers to create, edit and read Ferry objects through the real API server, and to wait
 * for a status the operator writes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';

export interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration?: number;
  readonly lastTransitionTime: string;
}

export interface FerryObj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; generation?: number; finalizers?: string[]; resourceVersion?: string; deletionTimestamp?: string };
  spec: Record<string, unknown>;
  status?: { observedGeneration?: number; conditions?: Condition[]; fallbackPending?: number; nextScheduleTime?: string; [k: string]: unknown };
}

const GROUP = 'ferry.dev';
const VERSION = 'v1alpha1';

export class FerryClient {
  readonly api: CustomObjectsApi;

  constructor(kubeConfig: KubeConfig) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async create(plural: string, namespace: string, obj: Omit<FerryObj, 'apiVersion'> & { apiVersion?: string }): Promise<FerryObj> {
    return (await this.api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural,
      body: { apiVersion: `${GROUP}/${VERSION}`, ...obj },
    })) as FerryObj;
  }

  async get(plural: string, namespace: string, name: string): Promise<FerryObj> {
    return (await this.api.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name })) as FerryObj;
  }

  async tryGet(plural: string, namespace: string, name: string): Promise<FerryObj | undefined> {
    try {
      return await this.get(plural, namespace, name);
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  /** Read-modify-write of the spec, retried on conflict. */
  async editSpec(plural: string, namespace: string, name: string, edit: (spec: Record<string, unknown>) => void): Promise<FerryObj> {
    for (let attempt = 0; ; attempt++) {
      const obj = await this.get(plural, namespace, name);
      edit(obj.spec);
      try {
        return (await this.api.replaceNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name, body: obj })) as FerryObj;
      } catch (err) {
        if ((err as { code?: number }).code !== 409 || attempt > 5) throw err;
      }
    }
  }

  async delete(plural: string, namespace: string, name: string): Promise<void> {
    await this.api.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name });
  }

  /** Polls until `predicate` holds for the object; returns it. The operator acts asynchronously. */
  async waitFor(
    plural: string,
    namespace: string,
    name: string,
    predicate: (obj: FerryObj) => boolean,
    timeoutMs = 30_000,
  ): Promise<FerryObj> {
    const deadline = Date.now() + timeoutMs;
    let last: FerryObj | undefined;
    for (;;) {
      last = await this.tryGet(plural, namespace, name);
      if (last && predicate(last)) return last;
      if (Date.now() > deadline) {
        throw new Error(`${plural} ${namespace}/${name}: condition not met within ${timeoutMs} ms; last seen: ${JSON.stringify(last?.status ?? last)}`);
      }
      await sleep(100);
    }
  }

  async waitGone(plural: string, namespace: string, name: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (await this.tryGet(plural, namespace, name)) {
      if (Date.now() > deadline) throw new Error(`${plural} ${namespace}/${name} still exists after ${timeoutMs} ms`);
      await sleep(100);
    }
  }
}

export function condition(obj: FerryObj | undefined, type: string): Condition | undefined {
  return obj?.status?.conditions?.find((c) => c.type === type);
}

/** The condition is True and describes the object's current generation. */
export function isTrueNow(obj: FerryObj, type: string): boolean {
  const c = condition(obj, type);
  return c?.status === 'True' && c.observedGeneration === obj.metadata.generation;
}

/** A minimal valid Integration spec; tests override what they exercise. */
export function integrationSpec(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    source: { stream: 'CRM_EVENTS', subjects: ['crm.deals.closed'] },
    schema: { inline: { type: 'object', required: ['id'], properties: { id: { type: 'string' }, amount: { type: 'number' } } } },
    transform: { mapping: { externalId: '/id', total: '/amount' } },
    target: { url: 'https://billing.example.com/v1/invoices' },
    ...overrides,
  };
}
