import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TokenCache, type Deliverer } from '../delivery/index.ts';
import { StoreWriter } from '../kube/index.ts';
import { lastGoodKey, type LastGoodGeneration, type SharedKv } from '../nats/index.ts';
import { createLogger, ManualClock, Registry } from '../observability/index.ts';
import type { CompiledIntegration } from './compile-integration.ts';
import { assignReplicas } from './assignment.ts';
import type { LiveMembers } from './membership.ts';
import { RuntimeMetrics } from './metrics.ts';
import type { PipelineDeps } from './pipeline.ts';
import { PASS_GAP_MS, RuntimeSupervisor, type DataObject, type IntegrationObject, type PipelineLike } from './supervisor.ts';

/** A dependency the code under test must not touch (the pipelines are fakes); cast at the use site. */
function unused(what: string): unknown {
  return new Proxy({}, { get: () => { throw new Error(`${what} used`); } });
}

class FakePipeline implements PipelineLike {
  compiled: CompiledIntegration;
  readonly log: string[] = [];
  constructor(compiled: CompiledIntegration) {
    this.compiled = compiled;
  }
  canReconfigure(next: CompiledIntegration): boolean {
    return next.config.source.stream === this.compiled.config.source.stream;
  }
  reconfigure(next: CompiledIntegration): void {
    this.log.push(`reconfigure g${next.generation}`);
    this.compiled = next;
  }
  start(): void {
    this.log.push(`start g${this.compiled.generation}`);
  }
  stop(deleted?: boolean): Promise<void> {
    this.log.push(deleted ? 'stop deleted' : 'stop');
    return Promise.resolve();
  }
  onShared(): void {}
}

const spec = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  source: { stream: 'EVENTS', subjects: ['events.x'] },
  target: { url: 'https://api.example.com/v1/x', auth: { bearer: { secretKeyRef: { name: 'api', key: 'token' } } } },
  ...overrides,
});

function integration(name: string, generation: number, s: Record<string, unknown>, ready = true, uid = `uid-${name}`): IntegrationObject {
  return {
    metadata: { namespace: 'ns', name, uid, generation, resourceVersion: String(generation) },
    spec: s,
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
  };
}

/** A live set the test changes by hand; `settled` resolves when the test says the first read came. */
class FakeMembers implements LiveMembers {
  readonly self: string;
  private live: readonly string[];
  private readonly listeners = new Set<() => void>();
  private markRead: () => void = () => {};
  private readonly read = new Promise<void>((resolve) => {
    this.markRead = resolve;
  });
  constructor(self: string, live: readonly string[]) {
    this.self = self;
    this.live = live;
  }
  members(): readonly string[] {
    return this.live;
  }
  async settled(signal: AbortSignal): Promise<void> {
    const aborted = new Promise<void>((resolve) => {
      signal.addEventListener('abort', () => {
        resolve();
      }, { once: true });
    });
    await Promise.race([this.read, aborted]);
  }
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
  set(live: readonly string[]): void {
    this.live = [...live].sort();
    this.markRead();
    for (const l of this.listeners) l();
  }
}

function setup(sharding?: { membership: FakeMembers; pipelineReplicas: number | 'all' }) {
  const clock = new ManualClock(0);
  const integrations = new StoreWriter<IntegrationObject>();
  const secrets = new StoreWriter<DataObject>();
  const configMaps = new StoreWriter<DataObject>();
  secrets.apply({ metadata: { namespace: 'ns', name: 'api', resourceVersion: '1' }, data: { token: Buffer.from('t1').toString('base64') } });
  let shared: ((key: string, value: unknown) => void) | undefined;
  const state = {
    async watchUntilAborted(_key: string, onChange: (key: string, value: unknown) => void, signal: AbortSignal): Promise<void> {
      shared = onChange;
      await new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => {
          resolve();
        }, { once: true });
      });
    },
  } as unknown as SharedKv;
  const pipelines: FakePipeline[] = [];
  const forgotten: string[] = [];
  const metrics = new RuntimeMetrics(new Registry());
  const forget = metrics.forget.bind(metrics);
  metrics.forget = (namespace, name) => {
    forgotten.push(`${namespace}/${name}`);
    forget(namespace, name);
  };
  let failOn: string | undefined;
  const supervisor = new RuntimeSupervisor({
    integrations: integrations.reader,
    secrets: secrets.reader,
    configMaps: configMaps.reader,
    deliverer: unused('deliverer') as Deliverer,
    tokenCache: new TokenCache(clock),
    nc: unused('nc') as PipelineDeps['nc'],
    publisher: unused('publisher') as PipelineDeps['publisher'],
    control: unused('control') as PipelineDeps['control'],
    state,
    ledger: unused('ledger') as PipelineDeps['ledger'],
    transforms: unused('transforms') as PipelineDeps['transforms'],
    metrics,
    clock,
    logger: createLogger({ level: 'silent' }),
    ...(sharding ?? {}),
    createPipeline: (compiled) => {
      if (failOn === compiled.name) throw new Error(`pipeline for ${compiled.name} cannot start`);
      const p = new FakePipeline(compiled);
      pipelines.push(p);
      return p;
    },
  });
  const stop = new AbortController();
  const running = supervisor.start(stop.signal);
  const settle = async (): Promise<void> => {
    supervisor.notify();
    // The supervisor yields to the event loop between compilations: let those turns pass too.
    for (let i = 0; i < 20; i++) {
      // Past the gap between two passes (PASS_GAP_MS) at first, then the turns of one pass.
      await clock.advance(i === 0 ? PASS_GAP_MS : 0);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };
  return {
    clock,
    metrics,
    integrations,
    secrets,
    configMaps,
    supervisor,
    pipelines,
    forgotten,
    settle,
    share: (key: string, value: unknown): void => {
      shared?.(key, value);
    },
    failOn: (name: string | undefined) => {
      failOn = name;
    },
    stop: async () => {
      stop.abort();
      await clock.advance(0);
      await running;
    },
  };
}

describe('RuntimeSupervisor', () => {
  it('runs a pipeline per Ready Integration, and none for one not provisioned yet', async () => {
    const s = setup();
    s.integrations.apply(integration('a', 1, spec()));
    s.integrations.apply(integration('b', 1, spec(), false));
    await s.settle();
    assert.deepEqual(s.pipelines.map((p) => `${p.compiled.name}: ${p.log.join(', ')}`), ['a: start g1']);
    assert.equal(s.supervisor.running, 1);
    await s.stop();
    assert.deepEqual(s.pipelines[0]?.log, ['start g1', 'stop']);
  });

  it('keeps the last good generation running when a new one does not compile, and swaps a good one in place', async () => {
    const s = setup();
    s.integrations.apply(integration('a', 1, spec()));
    await s.settle();
    s.integrations.apply(integration('a', 2, spec({ transform: { jsonata: '$broken(' } }), false));
    await s.settle();
    assert.equal(s.supervisor.runningGeneration('ns/a'), 1);
    s.integrations.apply(integration('a', 3, spec({ target: { url: 'https://api.example.com/v2/x', auth: { bearer: { secretKeyRef: { name: 'api', key: 'token' } } } } })));
    await s.settle();
    assert.deepEqual(s.pipelines[0]?.log, ['start g1', 'reconfigure g3']);
    await s.stop();
  });

  it('one object that fails unexpectedly never holds up the others, and is retried', async () => {
    const s = setup();
    s.failOn('a');
    s.integrations.apply(integration('a', 1, spec()));
    s.integrations.apply(integration('b', 1, spec()));
    await s.settle();
    assert.deepEqual(s.pipelines.map((p) => p.compiled.name), ['b']);
    s.failOn(undefined);
    await s.clock.advance(5_000);
    await s.settle();
    assert.deepEqual(s.pipelines.map((p) => p.compiled.name).sort(), ['a', 'b']);
    await s.stop();
  });

  it('a Secret change recompiles with the new credentials in place', async () => {
    const s = setup();
    s.integrations.apply(integration('a', 1, spec()));
    await s.settle();
    const before = s.pipelines[0]?.compiled.credentialsFingerprint;
    s.secrets.apply({ metadata: { namespace: 'ns', name: 'api', resourceVersion: '2' }, data: { token: Buffer.from('t2').toString('base64') } });
    await s.settle();
    assert.deepEqual(s.pipelines[0]?.log, ['start g1', 'reconfigure g1']);
    assert.notEqual(s.pipelines[0]?.compiled.credentialsFingerprint, before);
    await s.stop();
  });

  it('a replica without a pipeline runs the stored last good generation of a stalled Integration — never a deleted namesake\'s', async () => {
    const s = setup();
    const good = spec();
    const lastGood: LastGoodGeneration = { uid: 'uid-a', generation: 4, spec: good, configMaps: {} };
    s.share(lastGoodKey({ namespace: 'ns', name: 'a' }), lastGood);
    s.share(lastGoodKey({ namespace: 'ns', name: 'b' }), { ...lastGood, uid: 'uid-of-a-deleted-b' });
    // Both stalled (Ready=False) with a generation that does not compile.
    s.integrations.apply(integration('a', 5, spec({ transform: { jsonata: '$broken(' } }), false));
    s.integrations.apply(integration('b', 5, spec({ transform: { jsonata: '$broken(' } }), false));
    await s.settle();
    assert.deepEqual(s.pipelines.map((p) => `${p.compiled.name} g${p.compiled.generation}`), ['a g4']);
    await s.stop();
  });

  it('a suspended Integration is stopped; a deleted one is stopped without a final flush and its metric series removed', async () => {
    const s = setup();
    s.integrations.apply(integration('a', 1, spec()));
    s.integrations.apply(integration('b', 1, spec()));
    await s.settle();
    s.integrations.apply(integration('a', 2, spec({ suspend: true })));
    s.integrations.delete('ns/b');
    await s.settle();
    const [a, b] = s.pipelines;
    assert.deepEqual(a?.log, ['start g1', 'stop']);
    assert.deepEqual(b?.log, ['start g1', 'stop deleted']);
    assert.deepEqual(s.forgotten, ['ns/b'], 'only the deleted one loses its series');
    assert.equal(s.supervisor.running, 0);
    await s.stop();
  });
});

describe('RuntimeSupervisor: pipelines sharded across replicas', () => {
  const names = Array.from({ length: 30 }, (_, i) => `i${i}`);
  const mine = (self: string, live: readonly string[], replicas: number | 'all'): string[] =>
    names.filter((n) => assignReplicas(`ns/${n}`, live, replicas).includes(self)).sort();
  const running = (pipelines: readonly FakePipeline[]): string[] =>
    pipelines.filter((p) => p.log.at(-1)?.startsWith('start') || p.log.at(-1)?.startsWith('reconfigure')).map((p) => p.compiled.name).sort();

  it('runs only the Integrations assigned here; a member leaving hands its share over, a member joining takes some away (drained, not deleted)', async () => {
    const membership = new FakeMembers('b', ['b']);
    const s = setup({ membership, pipelineReplicas: 1 });
    for (const n of names) s.integrations.apply(integration(n, 1, spec()));
    membership.set(['a', 'b', 'c']);
    await s.settle();
    const first = mine('b', ['a', 'b', 'c'], 1);
    assert.ok(first.length > 0 && first.length < names.length);
    assert.deepEqual(running(s.pipelines), first);
    assert.equal((await s.metrics.pipelines.get()).values[0]?.value, first.length);

    membership.set(['a', 'b']);
    await s.settle();
    assert.deepEqual(running(s.pipelines), mine('b', ['a', 'b'], 1));

    membership.set(['a', 'b', 'c', 'd']);
    await s.settle();
    const now = mine('b', ['a', 'b', 'c', 'd'], 1);
    assert.deepEqual(running(s.pipelines), now);
    // Drained the way a suspended one is: never as deleted (its counters are flushed, series kept).
    assert.ok(s.pipelines.every((p) => !p.log.includes('stop deleted')));
    assert.deepEqual(s.forgotten, []);
    const changes = (await s.metrics.assignmentChanges.get()).values;
    assert.ok(changes.some((v) => v.labels.change === 'assigned' && v.value > 0));
    assert.ok(changes.some((v) => v.labels.change === 'unassigned' && v.value > 0));
    await s.stop();
  });

  it('spec.runtime.replicas overrides the default: All runs everywhere, and runnersOf says how many share the rate', async () => {
    const membership = new FakeMembers('b', ['b']);
    const s = setup({ membership, pipelineReplicas: 1 });
    const everywhere = names.find((n) => !assignReplicas(`ns/${n}`, ['a', 'b', 'c'], 1).includes('b')) ?? '';
    s.integrations.apply(integration(everywhere, 1, spec({ runtime: { replicas: 'All' } })));
    const two = names.find((n) => n !== everywhere) ?? '';
    s.integrations.apply(integration(two, 1, spec({ runtime: { replicas: 2 } })));
    membership.set(['a', 'b', 'c']);
    await s.settle();
    assert.ok(running(s.pipelines).includes(everywhere));
    assert.equal(s.supervisor.runnersOf(`ns/${everywhere}`), 3);
    assert.equal(s.supervisor.runnersOf(`ns/${two}`), 2);
    membership.set(['b']);
    await s.settle();
    assert.equal(s.supervisor.runnersOf(`ns/${everywhere}`), 1, 'capped at the live replicas');
    assert.equal(s.supervisor.runnersOf(`ns/${two}`), 1);
    await s.stop();
  });

  it('starts nothing before the first membership read, and everything assigned to itself alone when none comes', async () => {
    const membership = new FakeMembers('b', ['b']);
    const s = setup({ membership, pipelineReplicas: 1 });
    for (const n of names) s.integrations.apply(integration(n, 1, spec()));
    await s.settle();
    assert.equal(s.pipelines.length, 0);
    await s.clock.advance(5_000);
    await s.settle();
    assert.equal(running(s.pipelines).length, names.length, 'alone: every Integration runs here');
    await s.stop();
  });
});
