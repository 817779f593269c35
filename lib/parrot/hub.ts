/**
 * The broadcast hub: who is connected, who is subscribed, and the relay with its
 * slow-consumer rule.
 *
 * A relayed message is encoded once and the same bytes are queued for every
 * subscriber. The main task relays a whole batch at a time ({@linkcode Hub.queueRelay},
 * then {@linkcode Hub.flushRelays}): every message of the batch is encoded into one
 * buffer, and a subscriber that sent none of them gets that buffer as one chunk (one
 * that did gets the runs between its own messages). A subscriber is a slow consumer when its queue would grow past
 * `maxOutboundBytes` (an empty queue always takes one message, however large), or when
 * a write to it has been in flight longer than the write timeout
 * ({@linkcode Hub.cutOffStalled}). It gets `ERR slow consumer` in place of its backlog
 * and is closed, so it never slows anyone else down; the hub counts it and the
 * messages it will not receive, and tells `onSlowConsumer`.
 *
 * The hub does not know transports: a session of any kind takes the same encoded chunks
 * through its `Outbound` (`session.ts`), which a TCP session writes as they are and a
 * WebSocket session turns into one WebSocket message per relayed message.
 *
 * @module
 */

import { DEFAULT_MAX_OUTBOUND_BYTES } from "../defaults.ts";
import { BufferPool } from "../net/buffer_pool.ts";
import { settlesWithin } from "../net/delay.ts";
import { REASON } from "./frame.ts";
import { encodeRelays } from "./frame_encoder.ts";
import type { Session } from "./session.ts";
import type { RelayPeers } from "./threads/shard_link.ts";

/** Options of {@linkcode Hub}. */
export interface HubOptions {
  /** Bytes queued for one client before it counts as a slow consumer. */
  maxOutboundBytes?: number;
  /** Called once for each client cut off as a slow consumer. */
  onSlowConsumer?: (cutOff: SlowConsumer) => void;
  /**
   * The other shards of a server that runs in several Workers: each relay batch is
   * also forwarded to them, and they learn how many subscribers this hub has.
   */
  peers?: RelayPeers;
  /**
   * Called when a session joins the subscribers (admitted, or `SUB`): it gets every
   * message relayed from the next {@linkcode Hub.flushRelays} on.
   */
  onSubscribe?: (session: Session) => void;
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
  /** `#subscribers` as an array; null after a change (see `#subscriberArray`). */
  #subscriberList: Session[] | null = null;
  #maxOutboundBytes: number;
  /** Subscribers whose queue passed half the limit in the last flush. */
  #behind = new Set<Session>();
  #onSlowConsumer?: (cutOff: SlowConsumer) => void;
  #peers?: RelayPeers;
  #onSubscribe?: (session: Session) => void;
  /** Clients cut off as slow consumers since the hub was made. */
  slowConsumers = 0;
  /** Messages queued for slow consumers that they did not receive. */
  slowConsumerDrops = 0;
  /**
   * Buffers the batches are encoded into. One goes back once every subscriber's queue
   * is done with it (written or copied), counted by {@linkcode Hub.flushRelays}; a
   * fresh one per batch would be a new mapping, with its page faults, each time.
   */
  #relayedBytes = 0;
  #relayBuffers = new BufferPool({
    minBytes: MIN_RELAY_BUFFER_BYTES,
    maxBytes: MAX_POOLED_RELAY_BUFFER_BYTES,
    maxFreeBytes: MAX_FREE_RELAY_BUFFER_BYTES,
  });
  // The batch that flushRelays() sends: sender, header, and the payload as a range of
  // its source (two numbers), so that queueing a message makes no object. The first
  // #queued entries are the batch; the arrays keep their length (and backing store)
  // from batch to batch, since V8 lets go of an array's store when it is emptied and
  // growing it again costs a copy and garbage per message. trim() lets go of them.
  #queued = 0;
  #senders: Session[] = [];
  #headers: Uint8Array[] = [];
  #sources: Uint8Array[] = [];
  #bounds: number[] = [];

  /** Creates an empty hub. */
  constructor(options: HubOptions = {}) {
    this.#maxOutboundBytes = options.maxOutboundBytes ?? DEFAULT_MAX_OUTBOUND_BYTES;
    this.#onSlowConsumer = options.onSlowConsumer;
    this.#peers = options.peers;
    this.#onSubscribe = options.onSubscribe;
  }

  /** Bytes of relayed messages queued for subscribers since start (their wire frames). */
  get relayedBytes(): number {
    return this.#relayedBytes;
  }

  /** Connected clients. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Every connected session. */
  sessions(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /**
   * Adds a session, subscribed as every new connection is; with `relayNow: false` it
   * joins the subscribers only at its first {@linkcode Hub.subscribe}.
   */
  add(session: Session, relayNow = true): void {
    this.#sessions.add(session);
    if (relayNow) this.subscribe(session, session.subscribed);
  }

  /** Forgets a session. */
  remove(session: Session): void {
    this.#sessions.delete(session);
    this.#behind.delete(session);
    if (this.#subscribers.delete(session)) this.#subscribersChanged();
  }

  /** Starts (`SUB`) or stops (`UNSUB`) relaying to `session`. */
  subscribe(session: Session, subscribed: boolean): void {
    session.setSubscribed(subscribed);
    const before = this.#subscribers.size;
    if (subscribed && this.#sessions.has(session)) this.#subscribers.add(session);
    else this.#subscribers.delete(session);
    if (this.#subscribers.size !== before) {
      this.#subscribersChanged();
      if (subscribed) this.#onSubscribe?.(session);
    }
  }

  #subscribersChanged(): void {
    this.#subscriberList = null;
    this.#peers?.setLocalSubscribers(this.#subscribers.size);
  }

  /**
   * The subscribers as an array, made again only after a change: a flush walks it
   * without the iterator a `Set` needs (garbage for every batch).
   */
  #subscriberArray(): Session[] {
    return this.#subscriberList ??= [...this.#subscribers];
  }

  /** Relays `payload` from `from` to every other subscriber at once; returns how many got it. */
  relay(from: Session, payload: Uint8Array): number {
    this.queueRelay(from, payload);
    return this.flushRelays();
  }

  /**
   * Whether a message from `from` would reach anyone now: a subscriber other than it,
   * here or on another shard.
   */
  relaysFrom(from: Session): boolean {
    const subscribers = this.#subscribers;
    return subscribers.size > 1 || (subscribers.size === 1 && !subscribers.has(from)) ||
      (this.#peers !== undefined && this.#peers.remoteSubscribers > 0);
  }

  /**
   * Adds a message to the batch that {@linkcode Hub.flushRelays} relays: the payload
   * `bytes[start, end)` (all of `bytes` by default), which must stay unchanged until
   * then. The sender's name is taken now.
   */
  queueRelay(from: Session, bytes: Uint8Array, start = 0, end = bytes.length): void {
    if (!this.relaysFrom(from)) return;
    const i = this.#queued++;
    this.#senders[i] = from;
    this.#headers[i] = from.relayHeader;
    this.#sources[i] = bytes;
    this.#bounds[2 * i] = start;
    this.#bounds[2 * i + 1] = end;
  }

  /**
   * Relays the queued messages to every subscriber but their senders, encoded into one
   * buffer, and forwards that buffer to the other shards that have subscribers; returns
   * how many deliveries that made here (messages times subscribers).
   */
  flushRelays(): number {
    const senders = this.#senders;
    const count = this.#queued;
    if (count === 0) return 0;
    this.#queued = 0;
    let delivered = 0;
    const peers = this.#peers !== undefined && this.#peers.remoteSubscribers > 0
      ? this.#peers
      : undefined;
    if (peers || this.#reachesASubscriber(senders, count)) {
      let buffer: Uint8Array = EMPTY;
      const { bytes, ends } = encodeRelays(
        this.#headers,
        this.#sources,
        this.#bounds,
        (size) => buffer = this.#relayBuffers.take(relayBufferSize(size)),
        count,
      );
      const pool = this.#relayBuffers;
      const { hold, release } = referenceCount(() => pool.give(buffer));
      // The senders that are subscribers too get the batch without their own messages.
      let inBatch: Set<Session> | undefined;
      for (let i = 0; i < count; i++) {
        if (senders[i].subscribed) (inBatch ??= new Set()).add(senders[i]);
      }
      const subscribers = this.#subscriberArray();
      for (let i = 0; i < subscribers.length; i++) {
        const subscriber = subscribers[i];
        if (subscriber.closed) continue;
        delivered += inBatch?.has(subscriber)
          ? this.#deliverRuns(subscriber, bytes, ends, senders, count, hold)
          : this.#deliver(subscriber, [bytes], bytes.length, count, hold);
      }
      peers?.forward(bytes, count);
      release();
    }
    return delivered;
  }

  /** Whether a subscriber here gets any of the first `count` messages, from `senders`. */
  #reachesASubscriber(senders: Session[], count: number): boolean {
    const subscribers = this.#subscribers;
    if (subscribers.size > 1) return true;
    if (subscribers.size === 0) return false;
    for (let i = 0; i < count; i++) {
      if (!subscribers.has(senders[i])) return true;
    }
    return false;
  }

  /**
   * Queues a relay batch that another shard encoded (`messages` frames, none from a
   * client of this hub) for every subscriber here, under the same slow-consumer rule;
   * returns how many deliveries that made. `done` is called once every subscriber's
   * queue is done with `bytes` (written, or dropped with a slow consumer).
   */
  deliverForwarded(bytes: Uint8Array, messages: number, done: () => void): number {
    const { hold, release } = referenceCount(done);
    let delivered = 0;
    for (const subscriber of this.#subscribers) {
      if (!subscriber.closed) {
        delivered += this.#deliver(subscriber, [bytes], bytes.length, messages, hold);
      }
    }
    release();
    return delivered;
  }

  /** Delivers the frames of `bytes` not sent by `subscriber`, as runs of frames. */
  #deliverRuns(
    subscriber: Session,
    bytes: Uint8Array,
    ends: number[],
    senders: Session[],
    count: number,
    hold: () => () => void,
  ): number {
    const runs: Uint8Array[] = [];
    let size = 0;
    let messages = 0;
    let runStart = -1;
    for (let i = 0; i <= count; i++) {
      const own = i === count || senders[i] === subscriber;
      const frameStart = i === 0 ? 0 : ends[i - 1];
      if (!own && runStart < 0) runStart = frameStart;
      if (own && runStart >= 0) {
        runs.push(bytes.subarray(runStart, frameStart));
        size += frameStart - runStart;
        runStart = -1;
      }
      if (!own) messages++;
    }
    return messages === 0 ? 0 : this.#deliver(subscriber, runs, size, messages, hold);
  }

  /**
   * Queues `chunks` (`size` bytes, `messages` messages) for `subscriber`, unless it is
   * slow; `hold()` takes a reference to their buffer for each chunk queued.
   */
  #deliver(
    subscriber: Session,
    chunks: Uint8Array[],
    size: number,
    messages: number,
    hold: () => () => void,
  ): number {
    const backlog = subscriber.buffered;
    if (backlog > 0 && backlog + size > this.#maxOutboundBytes) {
      this.#cutOff(subscriber, "max outbound", messages);
      return 0;
    }
    for (const chunk of chunks) subscriber.send(chunk, hold());
    subscriber.messagesOut += messages;
    this.#relayedBytes += size;
    if (subscriber.buffered > this.#maxOutboundBytes / 2) this.#behind.add(subscriber);
    return messages;
  }

  /** Whether {@linkcode Hub.whenCaughtUp} has anyone to wait for now. */
  get fallingBehind(): boolean {
    return this.#behind.size > 0 || this.#peers?.congested === true;
  }

  /**
   * Gives the subscribers that fell behind (more than half the outbound limit queued)
   * up to `maxMs` to catch up, so that a burst slows its senders down for a moment
   * before anyone is cut off as a slow consumer; resolves at once when none did. The
   * main task awaits it between batches, so a subscriber that keeps up on average is
   * never cut off by one fast burst, and one that stopped reading delays the others by
   * `maxMs` per batch, a few batches at most, until the limit cuts it off. On a shard
   * it then waits until the link to the other shards is no longer congested
   * ({@linkcode RelayPeers.whenClear}), which is bounded by the link's own stall limit.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { Hub } from "./hub.ts";
   * import { Session } from "./session.ts";
   *
   * const conn = { write: (p: Uint8Array) => Promise.resolve(p.length), close: () => {} };
   * const hub = new Hub({ maxOutboundBytes: 16 });
   * const alice = new Session(conn, 1, "alice");
   * const bob = new Session(conn, 2, "bob");
   * hub.add(alice);
   * hub.add(bob);
   * hub.relay(alice, new TextEncoder().encode("hello")); // 18 bytes queued for bob: over half
   * await hub.whenCaughtUp(50); // bob's socket took them
   * assert.equal(bob.outbound.buffered, 0);
   * ```
   */
  async whenCaughtUp(maxMs: number): Promise<void> {
    if (this.#behind.size > 0) {
      const behind = [...this.#behind];
      this.#behind.clear();
      const flushed = Promise.allSettled(behind.map((session) => session.outbound.flush()));
      await settlesWithin(flushed, maxMs);
    }
    if (this.#peers?.congested) await this.#peers.whenClear();
  }

  /**
   * Lets go of the free relay buffers kept for reuse, of the batch arrays with the
   * senders and payloads of the last batch, and of the outbound queue of every client
   * that has nothing queued (for a server that has gone quiet); buffers still queued
   * for a subscriber go back to the pool as before.
   *
   * @example Relaying goes on after a trim, with a new buffer
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
   * hub.relay(alice, new TextEncoder().encode("hi"));
   * await bob.outbound.flush();
   * hub.trim();
   * hub.relay(alice, new TextEncoder().encode("yo"));
   * await bob.outbound.flush();
   * assert.deepEqual(received, ["MSG alice 2\nhi\n", "MSG alice 2\nyo\n"]);
   * ```
   */
  trim(): void {
    for (const session of this.#sessions) session.releaseIdleOutbound();
    this.#relayBuffers.clear();
    if (this.#queued === 0) {
      this.#senders = [];
      this.#headers = [];
      this.#sources = [];
      this.#bounds = [];
    }
  }

  /**
   * Cuts off every client with a write in flight since before `stalledSince`
   * (milliseconds since the epoch); returns how many.
   */
  cutOffStalled(stalledSince: number): number {
    let cut = 0;
    for (const session of this.#sessions) {
      const startedAt = session.writeStartedAt;
      if (startedAt !== 0 && startedAt < stalledSince && !session.closed) {
        this.#cutOff(session, "write timeout", 0);
        cut++;
      }
    }
    return cut;
  }

  #cutOff(session: Session, cause: SlowConsumer["cause"], refused: number): void {
    if (this.#subscribers.delete(session)) this.#subscribersChanged();
    const dropped = session.discardQueued() + refused;
    this.slowConsumers++;
    this.slowConsumerDrops += dropped;
    this.#onSlowConsumer?.({ session, cause, dropped });
    session.fail(REASON.slowConsumer);
  }
}

const EMPTY = new Uint8Array(0);
/** Smallest relay buffer: a batch of a few messages. */
const MIN_RELAY_BUFFER_BYTES = 4 * 1024;
/** Largest relay buffer kept for reuse; a batch is at most about 2 MiB with the defaults. */
const MAX_POOLED_RELAY_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * Most bytes of free relay buffers kept for reuse: four of the largest. With room for
 * one only, a busy fan-out took a fresh 4 MiB mapping whenever more than one batch was
 * still queued for a subscriber, and faulted in every page of it (64 publishers x 64 B
 * to one subscriber: 50,000 page faults a run and 1.6M msgs/s, against 7,000 and 3.0M
 * with four). The idle collection empties the pool (`trim`).
 */
const MAX_FREE_RELAY_BUFFER_BYTES = 4 * MAX_POOLED_RELAY_BUFFER_BYTES;

/** The pooled size for a batch of `size` bytes: the next power of two, at least 4 KiB. */
function relayBufferSize(size: number): number {
  if (size <= MIN_RELAY_BUFFER_BYTES) return MIN_RELAY_BUFFER_BYTES;
  return 2 ** Math.ceil(Math.log2(size));
}

/**
 * Counts the references to a buffer that several outbound queues share: one for the
 * caller, released when it has queued the buffer everywhere, and one per `hold()`,
 * released when that queue is done with it. `free` runs once the last one goes.
 */
function referenceCount(free: () => void): { hold: () => () => void; release: () => void } {
  let references = 1;
  const release = () => {
    if (--references === 0) free();
  };
  return { hold: () => (references++, release), release };
}
