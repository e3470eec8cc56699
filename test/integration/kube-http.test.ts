/**
 * What src/kube's one HTTP path (KubeHttp, through ObjectClient) puts on the wire and how it reads
 * what comes back, against a local server that answers as the API server does — including the
 * answers a healthy control plane in a test rarely gives: 429 with Retry-After (API Priority and
 * Fairness), a Status body on 404, no answer at all, nothing listening.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { NotFoundError, ObjectClient, UnavailableError, type KubeObject } from '../../src/kube/index.ts';
import { systemClock } from '../../src/observability/index.ts';

interface Seen {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

const widgets = { group: 'example.dev', version: 'v1', plural: 'widgets' };
const TOKEN = 'token-from-the-kubeconfig';

function kubeConfigFor(server: string): KubeConfig {
  const kc = new KubeConfig();
  // client-node refuses plain http unless TLS verification is off.
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', token: TOKEN }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

describe('KubeHttp against a server answering as the API server does', () => {
  let server: Server;
  let base: string;
  const seen: Seen[] = [];
  let answer: (res: ServerResponse) => void = (res) => res.end();

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, headers: req.headers, body });
        answer(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => { resolve(); }));
  });

  const client = (server = base, requestTimeoutMs?: number): ObjectClient =>
    new ObjectClient({ kubeConfig: kubeConfigFor(server), clock: systemClock, fieldManager: 'ferry-test', ...(requestTimeoutMs === undefined ? {} : { requestTimeoutMs }) });

  it('a merge patch carries the token, the content type, the field manager and the precondition, and returns the stored object', async () => {
    seen.length = 0;
    answer = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Widget', metadata: { name: 'w', namespace: 'ns', resourceVersion: '8' }, spec: { size: 2 } }));
    };
    const stored = await client().patchMerge<KubeObject & { spec: { size: number } }>({ ...widgets, namespace: 'ns', name: 'w' }, { spec: { size: 2 } }, { resourceVersion: '7' });

    assert.equal(stored.metadata?.resourceVersion, '8');
    assert.equal(stored.spec.size, 2);
    const [req] = seen;
    assert.equal(req?.method, 'PATCH');
    assert.equal(req.url, '/apis/example.dev/v1/namespaces/ns/widgets/w?fieldManager=ferry-test');
    assert.equal(req.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(req.headers['content-type'], 'application/merge-patch+json');
    assert.equal(req.headers.accept, 'application/json');
    assert.deepEqual(JSON.parse(req.body), { spec: { size: 2 }, metadata: { resourceVersion: '7' } });
  });

  it('mergeStatus drains the stored object unread; the next request on the same client reads its whole answer', async () => {
    seen.length = 0;
    const big = { kind: 'Widget', metadata: { name: 'w', namespace: 'ns', managedFields: Array.from({ length: 200 }, (_, i) => ({ manager: `m${i}` })) } };
    answer = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(big));
    };
    const c = client();
    const ref = { ...widgets, namespace: 'ns', name: 'w' };
    await c.mergeStatus(ref, { phase: 'Ready' });
    const read = await c.get<typeof big>(ref);
    assert.equal(read.metadata.managedFields.length, 200);
    assert.equal(seen[0]?.url, '/apis/example.dev/v1/namespaces/ns/widgets/w/status?fieldManager=ferry-test');
    assert.deepEqual(JSON.parse(seen[0].body), { status: { phase: 'Ready' } });
    assert.equal(seen[0].headers['content-type'], 'application/merge-patch+json');
  });

  it('429 with Retry-After (API Priority and Fairness) is a retryable UnavailableError that carries the wait', async () => {
    answer = (res) => {
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '3' });
      res.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'TooManyRequests', message: 'too many requests, please try again later', code: 429 }));
    };
    await assert.rejects(client().get({ ...widgets, namespace: 'ns', name: 'w' }), (err: unknown) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.equal(err.httpStatus, 429);
      assert.equal(err.retryAfterMs, 3_000);
      assert.equal(err.retryable, true);
      assert.match(err.message, /GET \/apis\/example\.dev\/v1\/namespaces\/ns\/widgets\/w: too many requests/);
      return true;
    });
  });

  it('404 with a Status body is a NotFoundError with the server’s reason', async () => {
    answer = (res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'NotFound', message: 'widgets.example.dev "gone" not found', code: 404 }));
    };
    await assert.rejects(client().get({ ...widgets, namespace: 'ns', name: 'gone' }), (err: unknown) => {
      assert.ok(err instanceof NotFoundError, String(err));
      assert.equal(err.status?.reason, 'NotFound');
      assert.match(err.message, /"gone" not found/);
      return true;
    });
  });

  it('a server that does not answer within the request timeout, and one not listening, are UnavailableErrors', async () => {
    answer = () => undefined;
    await assert.rejects(client(base, 300).get({ ...widgets, namespace: 'ns', name: 'w' }), (err: unknown) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.match(err.message, /timed out/);
      return true;
    });

    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => { resolve(); }));
    await assert.rejects(client(`http://127.0.0.1:${port}`).get({ ...widgets, namespace: 'ns', name: 'w' }), (err: unknown) => {
      assert.ok(err instanceof UnavailableError, String(err));
      assert.equal(err.retryable, true);
      return true;
    });
  });
});
