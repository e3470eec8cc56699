/**
 * Redrive's Prometheus metrics: each selected message's outcome, per Integration. Its own unit
 * (not in RuntimeMetrics) so the pipeline's hot-path metrics stay as they are.
 */
import { Counter, type Registry } from '../observability/index.ts';

export type RedriveOutcome = 'delivered' | 'failed_again';

export class RedriveMetrics {
  private readonly messages: Counter<'namespace' | 'integration' | 'outcome'>;

  constructor(registry: Registry) {
    this.messages = new Counter({
      name: 'ferry_redrive_messages_total',
      help: 'Parked messages a redrive replayed, by outcome: delivered (removed from the fallback stream) or failed_again (parked again with the new error).',
      labelNames: ['namespace', 'integration', 'outcome'],
      registers: [registry],
    });
  }

  message(namespace: string, integration: string, outcome: RedriveOutcome): void {
    this.messages.inc({ namespace, integration, outcome });
  }

  /** Removes a deleted Integration's series. */
  forget(namespace: string, integration: string): void {
    for (const outcome of ['delivered', 'failed_again'] as const) this.messages.remove({ namespace, integration, outcome });
  }
}
