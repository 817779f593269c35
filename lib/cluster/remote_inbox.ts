/**
 * The hand-over between the NATS side and the server's main task: other servers' messages wait
 * here, in arrival order, until the main task takes them all in one go.
 *
 * Needed because the two sides run differently: NATS calls `ClusterLink.onMessage`
 * synchronously, as frames arrive, and cannot be told to wait; the server's main task drains
 * in batches and may pause (stdout, slow subscribers). So the inbox copies each message once
 * into an arena, is bounded by bytes (past it, messages are dropped and counted, never
 * queued without limit), and wakes the main task. Two arenas alternate, so that the views
 * handed out by one {@linkcode RemoteInbox.drain} stay valid until the next one.
 *
 * @module
 */

import { DEFAULT_CLUSTER_INBOX_BYTES } from "../defaults.ts";

/** Settings of a {@linkcode RemoteInbox}. */
export interface RemoteInboxOptions {
  /** Payload bytes waiting at most; past it, messages are dropped and counted. */
  maxBytes?: number;
  /**
   * Called when the inbox goes from empty to holding a message: the server's main task may be
   * waiting on its channel, and this is where to wake it (e.g. `channel.trySend(marker)`).
   */
  onWaiting?: () => void;
}

class Arena {
  bytes = new Uint8Array(4096);
  length = 0;
  origins: string[] = [];
  senders: string[] = [];
  /** Start and end of each payload in `bytes`. */
  bounds: number[] = [];
  count = 0;

  add(origin: string, from: string, payload: Uint8Array): void {
    const needed = this.length + payload.length;
    if (needed > this.bytes.length) {
      let size = this.bytes.length * 2;
      while (size < needed) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
    }
    this.bytes.set(payload, this.length);
    const i = this.count++;
    this.origins[i] = origin;
    this.senders[i] = from;
    this.bounds[2 * i] = this.length;
    this.bounds[2 * i + 1] = needed;
    this.length = needed;
  }

  clear(): void {
    this.length = 0;
    this.count = 0;
  }
}

/**
 * A bounded, ordered queue of other servers' messages for the main task.
 *
 * @example
 * ```ts
 * import { RemoteInbox } from "./remote_inbox.ts";
 * const inbox = new RemoteInbox({ maxBytes: 1024 });
 * inbox.push("server-a", "alice", new TextEncoder().encode("hi"));
 * await inbox.ready();
 * const seen: string[] = [];
 * inbox.drain((origin, from, payload) => seen.push(`${origin} ${from} ${payload.length}`));
 * if (seen.join() !== "server-a alice 2") throw new Error(seen.join());
 * ```
 */
export class RemoteInbox {
  readonly #maxBytes: number;
  #onWaiting: (() => void) | undefined;
  #filling = new Arena();
  #handedOut = new Arena();
  #wake: (() => void) | undefined;
  #dropped = 0;

  constructor(options: RemoteInboxOptions = {}) {
    this.#maxBytes = options.maxBytes ?? DEFAULT_CLUSTER_INBOX_BYTES;
    this.#onWaiting = options.onWaiting;
  }

  /**
   * Sets (in place of {@linkcode RemoteInboxOptions.onWaiting}) what to call when the inbox
   * goes from empty to holding a message: the server sets it to wake its main task.
   */
  notify(onWaiting: () => void): void {
    this.#onWaiting = onWaiting;
  }

  /** Messages waiting. */
  get size(): number {
    return this.#filling.count;
  }

  /** Payload bytes waiting. */
  get byteLength(): number {
    return this.#filling.length;
  }

  /** Messages dropped because the inbox was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Queues a copy of one message; returns false (and counts it) when it would take the
   * inbox past its bound. An empty inbox always takes one message, however large.
   */
  push(origin: string, from: string, payload: Uint8Array): boolean {
    const filling = this.#filling;
    if (filling.count > 0 && filling.length + payload.length > this.#maxBytes) {
      this.#dropped++;
      return false;
    }
    filling.add(origin, from, payload);
    if (filling.count === 1) this.#onWaiting?.();
    const wake = this.#wake;
    if (wake) {
      this.#wake = undefined;
      wake();
    }
    return true;
  }

  /**
   * Resolves once a message is waiting (at once if one is); rejects when `signal` aborts. One
   * waiter at a time: the main task.
   */
  ready(signal?: AbortSignal): Promise<void> {
    if (this.#filling.count > 0) return Promise.resolve();
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const abort = () => {
        this.#wake = undefined;
        reject(signal!.reason);
      };
      this.#wake = () => {
        signal?.removeEventListener("abort", abort);
        resolve();
      };
      signal?.addEventListener("abort", abort, { once: true });
    });
  }

  /**
   * Hands every waiting message to `each`, oldest first, and empties the inbox. The payloads
   * are views that stay valid until the next `drain()`. Returns how many were handed.
   */
  drain(each: (origin: string, from: string, payload: Uint8Array) => void): number {
    const arena = this.#filling;
    this.#filling = this.#handedOut;
    this.#filling.clear();
    this.#handedOut = arena;
    const { bytes, origins, senders, bounds, count } = arena;
    for (let i = 0; i < count; i++) {
      each(origins[i], senders[i], bytes.subarray(bounds[2 * i], bounds[2 * i + 1]));
    }
    return count;
  }
}
