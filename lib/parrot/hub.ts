/**
 * The broadcast hub: who is connected, who is subscribed, and the relay with its
 * slow-consumer rule.
 *
 * A relayed message is encoded once and the same bytes are queued for every
 * subscriber. A subscriber is a slow consumer when its queue would grow past
 * `maxOutboundBytes` (an empty queue always takes one message, however large), or when
 * a write to it has been in flight longer than the write timeout
 * ({@linkcode Hub.cutOffStalled}). It gets `ERR slow consumer` in place of its backlog
 * and is closed, so it never slows anyone else down; the hub counts it and the
 * messages it will not receive, and tells `onSlowConsumer`.
 *
 * @module
 */

import { DEFAULT_MAX_OUTBOUND_BYTES } from "../defaults.ts";
import { encodeRelay } from "./frame_encoder.ts";
import type { Session } from "./session.ts";

/** Options of {@linkcode Hub}. */
export interface HubOptions {
  /** Bytes queued for one client before it counts as a slow consumer. */
  maxOutboundBytes?: number;
  /** Called once for each client cut off as a slow consumer. */
  onSlowConsumer?: (cutOff: SlowConsumer) => void;
}

/** A client cut off as a slow consumer, as {@linkcode HubOptions.onSlowConsumer} hears it. */
export interface SlowConsumer {
  /** The client. */
  session: Session;
  /** Why: its queue outgrew the limit, or a write to it stalled. */
  cause: "max outbound" | "write timeout";
  /** Messages (and the odd control line) queued for it that it will not receive. */
  dropped: number;
}

/**
 * Tracks sessions and relays messages to the subscribed ones.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Hub } from "./hub.ts";
 * import { Session } from "./session.ts";
 *
 * const received: string[] = [];
 * const conn = (log: string[]) => ({
 *   write: (p: Uint8Array) => (log.push(new TextDecoder().decode(p)), Promise.resolve(p.length)),
 *   close: () => {},
 * });
 * const hub = new Hub();
 * const alice = new Session(conn([]), 1, "alice");
 * const bob = new Session(conn(received), 2, "bob");
 * hub.add(alice);
 * hub.add(bob);
 * assert.equal(hub.relay(alice, new TextEncoder().encode("hi")), 1);
 * await bob.outbound.flush();
 * assert.deepEqual(received, ["MSG alice 2\nhi\n"]);
 * ```
 */
export class Hub {
  #sessions = new Set<Session>();
  #subscribers = new Set<Session>();
  #maxOutboundBytes: number;
  #onSlowConsumer?: (cutOff: SlowConsumer) => void;
  /** Clients cut off as slow consumers since the hub was made. */
  slowConsumers = 0;
  /** Messages queued for slow consumers that they did not receive. */
  slowConsumerDrops = 0;

  /** Creates an empty hub. */
  constructor(options: HubOptions = {}) {
    this.#maxOutboundBytes = options.maxOutboundBytes ?? DEFAULT_MAX_OUTBOUND_BYTES;
    this.#onSlowConsumer = options.onSlowConsumer;
  }

  /** Connected clients. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Every connected session. */
  sessions(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /** Adds a session, subscribed as every new connection is. */
  add(session: Session): void {
    this.#sessions.add(session);
    this.subscribe(session, session.subscribed);
  }

  /** Forgets a session. */
  remove(session: Session): void {
    this.#sessions.delete(session);
    this.#subscribers.delete(session);
  }

  /** Starts (`SUB`) or stops (`UNSUB`) relaying to `session`. */
  subscribe(session: Session, subscribed: boolean): void {
    session.subscribed = subscribed;
    if (subscribed && this.#sessions.has(session)) this.#subscribers.add(session);
    else this.#subscribers.delete(session);
  }

  /** Relays `payload` from `from` to every other subscriber; returns how many got it. */
  relay(from: Session, payload: Uint8Array): number {
    if (
      this.#subscribers.size === 0 || (this.#subscribers.size === 1 && this.#subscribers.has(from))
    ) return 0;
    const frame = encodeRelay(from.name, payload);
    let delivered = 0;
    for (const subscriber of this.#subscribers) {
      if (subscriber === from || subscriber.closed) continue;
      const backlog = subscriber.outbound.buffered;
      if (backlog > 0 && backlog + frame.length > this.#maxOutboundBytes) {
        this.#cutOff(subscriber, "max outbound", 1);
        continue;
      }
      subscriber.send(frame);
      delivered++;
    }
    return delivered;
  }

  /**
   * Cuts off every client with a write in flight since before `stalledSince`
   * (milliseconds since the epoch); returns how many.
   */
  cutOffStalled(stalledSince: number): number {
    let cut = 0;
    for (const session of this.#sessions) {
      const startedAt = session.outbound.writeStartedAt;
      if (startedAt !== 0 && startedAt < stalledSince && !session.closed) {
        this.#cutOff(session, "write timeout", 0);
        cut++;
      }
    }
    return cut;
  }

  #cutOff(session: Session, cause: SlowConsumer["cause"], refused: number): void {
    this.#subscribers.delete(session);
    const dropped = session.outbound.discardQueued() + refused;
    this.slowConsumers++;
    this.slowConsumerDrops += dropped;
    this.#onSlowConsumer?.({ session, cause, dropped });
    session.fail("slow consumer");
  }
}
