/**
 * Liveness and readiness as named checks, served on /healthz and /readyz. Parts register a check
 * when they start (the watch caches report synced, NATS reports connected) and the probes
 * answer 200 only when every check of that kind passes, listing the failing ones otherwise.
 */

export type HealthCheck = () => { readonly ok: boolean; readonly detail?: string };

export class HealthRegistry {
  private readonly liveness = new Map<string, HealthCheck>();
  private readonly readiness = new Map<string, HealthCheck>();

  addLiveness(name: string, check: HealthCheck): void {
    this.liveness.set(name, check);
  }

  addReadiness(name: string, check: HealthCheck): void {
    this.readiness.set(name, check);
  }

  removeReadiness(name: string): void {
    this.readiness.delete(name);
  }

  live(): HealthReport {
    return report(this.liveness);
  }

  ready(): HealthReport {
    return report(this.readiness);
  }
}

export interface HealthReport {
  readonly ok: boolean;
  readonly checks: readonly { readonly name: string; readonly ok: boolean; readonly detail?: string }[];
}

function report(checks: ReadonlyMap<string, HealthCheck>): HealthReport {
  const results = [...checks].map(([name, check]) => {
    try {
      return { name, ...check() };
    } catch (err) {
      return { name, ok: false, detail: err instanceof Error ? err.message : 'check threw' };
    }
  });
  return { ok: results.every((r) => r.ok), checks: results };
}
