/**
 * The Lease behind leader election: its record, where it is stored ({@link LeaseClient}, with
 * {@link KubeLeaseClient} for the API server) and the pure decisions of client-go's algorithm
 * (observe, decide, release), kept free of I/O and time so they are tested alone.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Clock } from '../observability/index.ts';
import { isNotFound } from './errors.ts';
import { KubeHttp } from './http.ts';
import { microTime, resourcePath } from './object.ts';

/** The fields of a Lease's spec that leader election uses. Times are MicroTime strings. */
export interface LeaseRecord {
  readonly holderIdentity?: string;
  readonly leaseDurationSeconds?: number;
  readonly acquireTime?: string;
  readonly renewTime?: string;
  readonly leaseTransitions?: number;
}

/** A Lease as read or written, with what an optimistic update needs. */
export interface LeaseSnapshot {
  readonly record: LeaseRecord;
  readonly resourceVersion: string;
  /** The Lease's metadata as the server returned it, kept so an update preserves labels etc. */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

/**
 * Storage for one Lease. `get` resolves `undefined` when it does not exist; `create` throws
 * `AlreadyExistsError` when someone else created it first; `update` throws `ConflictError` when
 * `previous.resourceVersion` is stale. Other failures throw `KubeApiError`s.
 */
export interface LeaseClient {
  readonly description: string;
  get(signal: AbortSignal): Promise<LeaseSnapshot | undefined>;
  create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot>;
  update(record: LeaseRecord, previous: LeaseSnapshot, signal: AbortSignal): Promise<LeaseSnapshot>;
}

interface LeaseObject {
  readonly metadata?: Readonly<Record<string, unknown>> & { readonly resourceVersion?: string };
  readonly spec?: LeaseRecord;
}

const leases = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' } as const;

/** {@link LeaseClient} backed by the API server. */
export class KubeLeaseClient implements LeaseClient {
  readonly description: string;
  private readonly http: KubeHttp;
  private readonly namespace: string;
  private readonly name: string;

  constructor(options: { kubeConfig: KubeConfig; namespace: string; name: string; clock: Clock }) {
    this.http = new KubeHttp({ kubeConfig: options.kubeConfig, clock: options.clock });
    this.namespace = options.namespace;
    this.name = options.name;
    this.description = `${options.namespace}/${options.name}`;
  }

  async get(signal: AbortSignal): Promise<LeaseSnapshot | undefined> {
    try {
      return snapshot(
        await this.http.request<LeaseObject>({ method: 'GET', path: resourcePath(leases, this.namespace, this.name), signal }),
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot> {
    const body = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace },
      spec: record,
    };
    return snapshot(await this.http.request<LeaseObject>({ method: 'POST', path: resourcePath(leases, this.namespace), body, signal }));
  }

  async update(record: LeaseRecord, previous: LeaseSnapshot, signal: AbortSignal): Promise<LeaseSnapshot> {
    const body = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...previous.metadata, name: this.name, namespace: this.namespace, resourceVersion: previous.resourceVersion },
      spec: record,
    };
    return snapshot(
      await this.http.request<LeaseObject>({ method: 'PUT', path: resourcePath(leases, this.namespace, this.name), body, signal }),
    );
  }
}

function snapshot(lease: LeaseObject): LeaseSnapshot {
  const spec = lease.spec ?? {};
  return {
    record: {
      holderIdentity: spec.holderIdentity,
      leaseDurationSeconds: spec.leaseDurationSeconds,
      acquireTime: spec.acquireTime,
      renewTime: spec.renewTime,
      leaseTransitions: spec.leaseTransitions,
    },
    resourceVersion: lease.metadata?.resourceVersion ?? '',
    metadata: lease.metadata,
  };
}

// Pure decision logic

/** A Lease record as last seen, and when (by this process's clock) it was first seen so. */
export interface Observation {
  readonly record: LeaseRecord;
  readonly at: number;
}

function sameRecord(a: LeaseRecord, b: LeaseRecord): boolean {
  return (
    (a.holderIdentity ?? '') === (b.holderIdentity ?? '') &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    (a.leaseTransitions ?? 0) === (b.leaseTransitions ?? 0)
  );
}

/** Updates what we know: a record that differs from the last one seen restarts its clock at `now`. */
export function observe(previous: Observation | undefined, record: LeaseRecord, now: number): Observation {
  return previous && sameRecord(previous.record, record) ? previous : { record, at: now };
}

export type LeaseDecision =
  /** No Lease exists: create it with us as holder. */
  | { readonly kind: 'create'; readonly record: LeaseRecord }
  /** Write this record (a renewal if we held it, else a takeover). */
  | { readonly kind: 'update'; readonly record: LeaseRecord; readonly takeover: boolean }
  /** Someone else holds a lease that has not expired by our observation. */
  | { readonly kind: 'held'; readonly holder: string; readonly expiresAt: number };

/**
 * What to do given the current Lease (undefined if absent) and our observation of it (from
 * {@link observe}, made with the same record). Pure; `now` is this process's clock.
 */
export function decideLease(input: {
  readonly identity: string;
  readonly current: LeaseRecord | undefined;
  readonly observation: Observation | undefined;
  readonly now: number;
  readonly leaseDurationSeconds: number;
}): LeaseDecision {
  const { identity, current, now, leaseDurationSeconds } = input;
  const time = microTime(now);
  if (!current) {
    return {
      kind: 'create',
      record: { holderIdentity: identity, leaseDurationSeconds, acquireTime: time, renewTime: time, leaseTransitions: 0 },
    };
  }
  const holder = current.holderIdentity ?? '';
  const observedAt = input.observation?.at ?? now;
  const expiresAt = observedAt + (current.leaseDurationSeconds ?? 0) * 1000;
  if (holder !== '' && holder !== identity && expiresAt > now) return { kind: 'held', holder, expiresAt };
  const ours = holder === identity;
  const transitions = current.leaseTransitions ?? 0;
  return {
    kind: 'update',
    takeover: !ours,
    record: {
      holderIdentity: identity,
      leaseDurationSeconds,
      acquireTime: ours ? (current.acquireTime ?? time) : time,
      renewTime: time,
      leaseTransitions: ours ? transitions : transitions + 1,
    },
  };
}

/** The record a leader writes when it steps down gracefully (client-go's ReleaseOnCancel). */
export function releaseRecord(current: LeaseRecord, now: number): LeaseRecord {
  const time = microTime(now);
  return {
    holderIdentity: '',
    leaseDurationSeconds: 1,
    acquireTime: time,
    renewTime: time,
    leaseTransitions: current.leaseTransitions ?? 0,
  };
}

/** True when a leader whose last successful renewal was at `lastRenewAt` must give up. */
export function renewDeadlinePassed(lastRenewAt: number, now: number, renewDeadlineMs: number): boolean {
  return now - lastRenewAt >= renewDeadlineMs;
}
