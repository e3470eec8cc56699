/**
 * What a process costs while it has nothing to do: its CPU (utime + stime from /proc) over a
 * window, and the NATS messages its connection(s) exchange meanwhile, read from nats-server's
 * monitoring endpoint `/connz` (`in_msgs`: what the client sent — requests, pull requests, acks;
 * `out_msgs`: what the server sent it — heartbeats, replies). Connections are picked by the name
 * the client gave itself, so other clients of the same server do not count.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { readCpuSeconds } from './proc.ts';
import { delay, now } from './timing.ts';

export interface IdleUsage {
  readonly windowMs: number;
  readonly cpuSeconds: number | undefined;
  /** cpuSeconds ÷ wall seconds: 0.05 = 5 % of one core. */
  readonly cores: number | undefined;
  readonly natsConnections: number;
  /** Messages per second the process sent to nats-server (requests, pulls, acks, publishes). */
  readonly natsSentPerSecond: number | undefined;
  /** Messages per second nats-server sent the process (heartbeats, replies, deliveries). */
  readonly natsReceivedPerSecond: number | undefined;
  /** Messages/s by kind of subject seen by a `>` subscriber over the window, largest first. */
  readonly subjects?: readonly SubjectRate[];
}

export interface SubjectRate {
  readonly kind: string;
  readonly perSecond: number;
}

/**
 * The kind of a subject, with stream, consumer, bucket and inbox names folded so one kind counts
 * every Integration: `$JS.API.CONSUMER.MSG.NEXT.*.*`, `$KV.<bucket>.*`, `_INBOX (status 100)`.
 */
function subjectKind(subject: string, status: string | undefined): string {
  const t = subject.split('.');
  if (t[0] === '_INBOX') return status === undefined ? '_INBOX (reply or message)' : `_INBOX (status ${status})`;
  if (t[0] === '$KV') return `$KV.${t[1] ?? ''}.*`;
  if (t[0] === '$JS' && t[1] === 'ACK') return '$JS.ACK.*';
  if (t[0] === '$JS' && t[1] === 'API') {
    // $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>, $JS.API.STREAM.INFO.<stream>, $JS.API.INFO
    const verbTokens = t[2] === 'CONSUMER' && ['MSG', 'CREATE', 'DURABLE'].includes(t[3] ?? '') ? 5 : 4;
    const head = t.slice(0, verbTokens);
    return t.length > verbTokens ? `${head.join('.')}.${t.slice(verbTokens).map(() => '*').join('.')}` : head.join('.');
  }
  if (t[0] === '$JS' && t[1] === 'EVENT') return `$JS.EVENT.${t[2] ?? ''}.${t[3] ?? ''}.*`;
  return `${t.slice(0, 2).join('.')}${t.length > 2 ? '.*' : ''}`;
}

/** Counts every message of the account by {@link subjectKind} until the returned stop is called. */
function startCensus(nc: NatsConnection): () => Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const sub = nc.subscribe('>', {
    callback: (_err, msg) => {
      const kind = subjectKind(msg.subject, msg.headers === undefined || msg.headers.code === 0 ? undefined : String(msg.headers.code));
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
    },
  });
  return async () => {
    await nc.flush();
    sub.unsubscribe();
    return counts;
  };
}

interface ConnzEntry {
  readonly name?: string;
  readonly in_msgs?: number;
  readonly out_msgs?: number;
}

interface Counts {
  readonly connections: number;
  readonly inMsgs: number;
  readonly outMsgs: number;
}

async function connectionCounts(monitorUrl: string, name: string): Promise<Counts | undefined> {
  try {
    const res = await fetch(`${monitorUrl}/connz?limit=4096`, { signal: AbortSignal.timeout(5_000) });
    const body = (await res.json()) as { connections?: ConnzEntry[] };
    const mine = (body.connections ?? []).filter((c) => c.name === name);
    return {
      connections: mine.length,
      inMsgs: mine.reduce((sum, c) => sum + (c.in_msgs ?? 0), 0),
      outMsgs: mine.reduce((sum, c) => sum + (c.out_msgs ?? 0), 0),
    };
  } catch {
    return undefined;
  }
}

/** Measures `pid` over `windowMs` (nothing else should ask the process for work meanwhile). */
export async function measureIdle(options: {
  readonly pid: number;
  readonly monitorUrl: string | undefined;
  readonly connectionName: string;
  readonly windowMs: number;
  /** A connection of the bench's own (it only listens): counts the account's messages by kind. */
  readonly census?: NatsConnection;
}): Promise<IdleUsage> {
  const { pid, monitorUrl, connectionName } = options;
  const stopCensus = options.census === undefined ? undefined : startCensus(options.census);
  const cpu0 = readCpuSeconds(pid);
  const nats0 = monitorUrl === undefined ? undefined : await connectionCounts(monitorUrl, connectionName);
  const t0 = now();
  await delay(options.windowMs);
  const cpu1 = readCpuSeconds(pid);
  const nats1 = monitorUrl === undefined ? undefined : await connectionCounts(monitorUrl, connectionName);
  const seconds = (now() - t0) / 1000;
  const census = stopCensus === undefined ? undefined : await stopCensus();
  const cpuSeconds = cpu0 === undefined || cpu1 === undefined ? undefined : cpu1 - cpu0;
  const rate = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined ? undefined : (b - a) / seconds);
  return {
    windowMs: Math.round(seconds * 1000),
    cpuSeconds,
    cores: cpuSeconds === undefined ? undefined : cpuSeconds / seconds,
    natsConnections: nats1?.connections ?? 0,
    natsSentPerSecond: rate(nats0?.inMsgs, nats1?.inMsgs),
    natsReceivedPerSecond: rate(nats0?.outMsgs, nats1?.outMsgs),
    ...(census === undefined
      ? {}
      : {
          subjects: [...census]
            .map(([kind, count]) => ({ kind, perSecond: count / seconds }))
            .sort((a, b) => b.perSecond - a.perSecond),
        }),
  };
}
