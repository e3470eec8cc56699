/**
 * JetStream's own notices about the streams and consumers Ferry depends on, so drift is repaired
 * when it happens instead of at the next periodic re-check: a consumer or stream deleted by hand,
 * a source stream created (a `StreamNotFound` Integration becomes Ready at once) or updated (its
 * subjects or replicas changed what status says).
 *
 * Guarantees: every advisory on the subjects below that parses is handed to `onChange`, on the
 * connection's own callback (no queue, no await). Caveats: advisories are core NATS messages —
 * one sent while the connection is down is lost, and a subscription the server refuses
 * (permissions) gets nothing; so the caller keeps a periodic re-check and looks at everything
 * again after a reconnect.
 */
import { once } from 'node:events';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../observability/index.ts';

export type JetStreamChange =
  | { readonly kind: 'consumer-deleted'; readonly stream: string; readonly consumer: string }
  | { readonly kind: 'stream-created' | 'stream-deleted' | 'stream-updated'; readonly stream: string };

const PREFIX = '$JS.EVENT.ADVISORY.';

/** What the runnable subscribes to: `<prefix>STREAM.<action>.<stream>` and `<prefix>CONSUMER.DELETED.<stream>.<consumer>`. */
export const ADVISORY_SUBJECTS = [`${PREFIX}CONSUMER.DELETED.*.*`, `${PREFIX}STREAM.CREATED.*`, `${PREFIX}STREAM.DELETED.*`, `${PREFIX}STREAM.UPDATED.*`] as const;

/** The change an advisory subject names, or undefined for any other subject. Pure. */
export function parseAdvisorySubject(subject: string): JetStreamChange | undefined {
  if (!subject.startsWith(PREFIX)) return undefined;
  // Stream and consumer names cannot contain '.', so the tokens are unambiguous.
  const [resource, action, stream, consumer, ...rest] = subject.slice(PREFIX.length).split('.');
  if (rest.length > 0 || stream === undefined || stream === '') return undefined;
  if (resource === 'CONSUMER') return action === 'DELETED' && consumer !== undefined && consumer !== '' ? { kind: 'consumer-deleted', stream, consumer } : undefined;
  if (resource !== 'STREAM' || consumer !== undefined) return undefined;
  switch (action) {
    case 'CREATED':
      return { kind: 'stream-created', stream };
    case 'DELETED':
      return { kind: 'stream-deleted', stream };
    case 'UPDATED':
      return { kind: 'stream-updated', stream };
    default:
      return undefined;
  }
}

export interface JetStreamAdvisoriesDeps {
  readonly nc: NatsConnection;
  readonly onChange: (change: JetStreamChange) => void;
  readonly logger: Logger;
}

/** A runnable: subscribed while it runs (the leader's term), unsubscribed when `signal` aborts. */
export class JetStreamAdvisories {
  readonly name = 'jetstream advisories';
  private readonly deps: JetStreamAdvisoriesDeps;

  constructor(deps: JetStreamAdvisoriesDeps) {
    this.deps = deps;
  }

  async start(signal: AbortSignal): Promise<void> {
    const log = this.deps.logger.child({ component: 'jetstream-advisories' });
    let refused = false;
    const subs: Subscription[] = ADVISORY_SUBJECTS.map((subject) =>
      this.deps.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) {
            if (!refused) log.warn({ err: err.message, subject }, 'JetStream advisories refused: a deleted consumer or stream is re-created at the periodic re-check only');
            refused = true;
            return;
          }
          const change = parseAdvisorySubject(msg.subject);
          if (change) this.deps.onChange(change);
        },
      }),
    );
    if (!signal.aborted) await once(signal, 'abort');
    for (const sub of subs) sub.unsubscribe();
  }
}
