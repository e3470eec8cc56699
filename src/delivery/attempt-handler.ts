/**
 * One delivery attempt as an undici dispatch handler: it collects the status, the headers and at
 * most `limit` bytes of the body, and it is the attempt's abort handle.
 *
 * Why a handler and not `pool.request()`: `request()` wraps every response in a Node `Readable`
 * with an `AsyncResource`, abort-listener plumbing and a consume queue. Under a steady 1,000
 * events/s those per-request objects kept each other alive across young-generation GCs, so every
 * scavenge copied about a quarter of what had been allocated since the last one and paused the
 * event loop for 15–25 ms (bench/README, "paced latency"). A bare handler allocates a few small
 * objects per attempt and none of them outlives the attempt.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';

export interface CollectedResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly truncated: boolean;
}

/** Closes the connection of a body cut at the limit; never surfaced (the attempt has settled). */
const bodyCut = new Error('response body cut at the limit');

export class AttemptHandler<Reason extends Error> implements Dispatcher.DispatchHandler {
  /** Settles once: with the response, or with the first error (an abort's reason included). */
  readonly done: Promise<CollectedResponse>;
  /** Why the attempt was aborted by {@link abort}; undefined when it was not. */
  reason: Reason | undefined;
  private readonly limit: number;
  private controller: Dispatcher.DispatchController | undefined;
  private status = 0;
  private headers: IncomingHttpHeaders = {};
  private chunks: Buffer[] = [];
  private size = 0;
  private settled = false;
  private resolve!: (response: CollectedResponse) => void;
  private reject!: (error: Error) => void;

  constructor(limit: number) {
    this.limit = limit;
    this.done = new Promise<CollectedResponse>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /**
   * Aborts once, at any stage. Settles at once even while the request still waits in the pool
   * (the deadline covers queueing); a queued request is then aborted before a byte is written.
   */
  abort(reason: Reason): void {
    if (this.settled || this.reason) return;
    this.reason = reason;
    this.fail(reason);
    this.controller?.abort(reason);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    if (this.reason) {
      controller.abort(this.reason);
      return;
    }
    this.controller = controller;
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx: the final answer follows
    this.status = statusCode;
    this.headers = headers;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.settled) return;
    if (this.size + chunk.length > this.limit) {
      // The rest is not read: draining an unbounded body costs more than one connection.
      this.chunks.push(chunk.subarray(0, this.limit - this.size));
      this.succeed(true);
      controller.abort(bodyCut);
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  onResponseEnd(): void {
    this.succeed(false);
  }

  onResponseError(_controller: Dispatcher.DispatchController | null, error: Error): void {
    this.fail(error);
  }

  private succeed(truncated: boolean): void {
    if (this.settled) return;
    this.settled = true;
    const { chunks } = this;
    const body = chunks.length === 0 ? '' : chunks.length === 1 ? (chunks[0] as Buffer).toString('utf8') : Buffer.concat(chunks).toString('utf8');
    this.chunks = [];
    this.resolve({ status: this.status, headers: this.headers, body, truncated });
  }

  private fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.chunks = [];
    this.reject(error);
  }
}
