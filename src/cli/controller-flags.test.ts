import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseControllerFlags } from './controller-flags.ts';
import { UsageError } from './usage-error.ts';

describe('ferry controller flags', () => {
  it('takes flags over environment over defaults', () => {
    const c = parseControllerFlags(['--nats-url=nats://a:1,nats://b:2', '--http-address=127.0.0.1:0'], {
      NATS_URL: 'nats://env:4222',
      POD_NAME: 'ferry-0',
      POD_NAMESPACE: 'ferry-system',
    });
    assert.deepEqual(c.natsServers, ['nats://a:1', 'nats://b:2']);
    assert.equal(c.httpHost, '127.0.0.1');
    assert.equal(c.httpPort, 0);
    assert.equal(c.identity, 'ferry-0');
    assert.equal(c.leaseNamespace, 'ferry-system');
    assert.equal(c.leaderElect, true);
    assert.equal(c.leaseDurationMs, 15_000);
    assert.equal(c.transformWorkers, 2);
  });

  it('serves webhook ingress only when --webhook-address is given', () => {
    assert.equal(parseControllerFlags([], {}).webhook, undefined);
    assert.deepEqual(parseControllerFlags(['--webhook-address=127.0.0.1:0'], {}).webhook, { host: '127.0.0.1', port: 0 });
    assert.deepEqual(parseControllerFlags(['--webhook-address=:8443'], {}).webhook, { host: '0.0.0.0', port: 8443 });
  });

  it('sizes the JSONata worker pool', () => {
    assert.equal(parseControllerFlags(['--transform-workers=6'], {}).transformWorkers, 6);
  });

  it('watches every namespace unless --watch-namespaces names some', () => {
    assert.deepEqual(parseControllerFlags([], {}).watchNamespaces, []);
    assert.deepEqual(parseControllerFlags(['--watch-namespaces= revops, billing ,revops'], {}).watchNamespaces, ['revops', 'billing']);
    assert.deepEqual(parseControllerFlags([], { FERRY_WATCH_NAMESPACES: 'a,b-2' }).watchNamespaces, ['a', 'b-2']);
    // The flag wins over the environment, as for every other flag.
    assert.deepEqual(parseControllerFlags(['--watch-namespaces=x'], { FERRY_WATCH_NAMESPACES: 'a' }).watchNamespaces, ['x']);
  });

  it('runs each pipeline on 2 replicas unless --pipeline-replicas says otherwise', () => {
    assert.equal(parseControllerFlags([], {}).pipelineReplicas, 2);
    assert.equal(parseControllerFlags(['--pipeline-replicas=1'], {}).pipelineReplicas, 1);
    assert.equal(parseControllerFlags(['--pipeline-replicas=1000'], {}).pipelineReplicas, 1000);
    assert.equal(parseControllerFlags(['--pipeline-replicas=all'], {}).pipelineReplicas, 'all');
  });

  for (const [args, pattern] of [
    [['--bogus'], /Unknown option '--bogus'/],
    [['positional'], /positional/],
    [['--http-address=nope'], /--http-address must be HOST:PORT/],
    [['--webhook-address=8443'], /--webhook-address must be HOST:PORT, got "8443"/],
    [['--leader-elect=yes'], /--leader-elect must be true or false/],
    [['--concurrency=0'], /--concurrency must be an integer ≥ 1/],
    [['--transform-workers=0'], /--transform-workers must be an integer ≥ 1, got "0"/],
    [['--transform-workers=two'], /--transform-workers must be an integer ≥ 1, got "two"/],
    [['--lease-duration=5', '--renew-deadline=10'], /--lease-duration > --renew-deadline/],
    [['--log-level=loud'], /unknown level/],
    [['--pipeline-replicas=0'], /--pipeline-replicas must be all or an integer from 1 to 1000, got "0"/],
    [['--pipeline-replicas=1001'], /--pipeline-replicas must be all or an integer from 1 to 1000, got "1001"/],
    [['--pipeline-replicas=All'], /--pipeline-replicas must be all or an integer from 1 to 1000, got "All"/],
    [['--pipeline-replicas=-1'], /--pipeline-replicas must be all or an integer/],
    [['--nats-url=http://x y'], /is not a NATS URL/],
    [['--watch-namespaces=RevOps'], /--watch-namespaces: "RevOps" is not a namespace name/],
    [['--watch-namespaces=a,-b'], /--watch-namespaces: "-b" is not a namespace name/],
    [['--watch-namespaces=a.b'], /--watch-namespaces: "a.b" is not a namespace name/],
    [[`--watch-namespaces=${'n'.repeat(64)}`], /is not a namespace name/],
  ] as const) {
    it(`rejects ${args.join(' ')}`, () => {
      assert.throws(() => parseControllerFlags(args, {}), (err) => err instanceof UsageError && pattern.test(err.message));
    });
  }
});
