/**
 * The relays between the shards of a server that runs in several Workers.
 *
 * Each shard (see `sharded_server.ts`) has its own clients and its own hub. A message
 * must still reach the subscribers of every shard, so a shard's hub encodes each relay
 * batch once, delivers it to its own subscribers, and hands the same bytes to its
 * {@linkcode ShardLink}, which posts a copy to every other shard that has subscribers
 * (a `MessagePort` per pair of shards). The receiving shard queues the batch for each
 * of its subscribers as it is, under the same slow-consumer rule, and acknowledges it.
 *
 * How many subscribers each shard has lives in shared memory, so that a shard whose
 * peers have none encodes and posts nothing. The bytes posted to a peer and not yet
 * acknowledged are bounded: past {@linkcode DEFAULT_MAX_FORWARD_BYTES} the link is
 * congested and the shard's main task waits ({@linkcode ShardLink.whenClear}) before
 * it takes the next batch, which makes its readers wait in turn. Nothing is dropped
 * and no queue grows without bound. Posts from one shard arrive in order, so each
 * subscriber gets every publisher's messages in the order they were sent.
 *
 * @module
 */

import { DEFAULT_MAX_FORWARD_BYTES, DEFAULT_STALL_MS } from "../../defaults.ts";

/** The other shards, as a hub sees them; {@linkcode ShardLink} is the real one. */
export interface RelayPeers {
  /** Subscribers that the other shards have now. */
  readonly remoteSubscribers: number;
  /** Publishes how many subscribers this shard has. */
  setLocalSubscribers(count: number): void;
  /** Sends an encoded relay batch of `messages` frames to every shard with subscribers. */
  forward(bytes: Uint8Array, messages: number): void;
  /** Whether too many forwarded bytes wait for their acknowledgement. */
  readonly congested: boolean;
  /**
   * Resolves once the link is no longer congested, or after
   * {@linkcode DEFAULT_STALL_MS} at most.
   */
  whenClear(): Promise<void>;
  /**
   * Sets who delivers the batches forwarded by the other shards; `done` must be called
   * once the batch is written to every subscriber (or dropped with a slow one).
   */
  onForwarded(deliver: ForwardedDelivery): void;
}

/** Delivers a batch forwarded by another shard; see {@linkcode RelayPeers.onForwarded}. */
export type ForwardedDelivery = (bytes: Uint8Array, messages: number, done: () => void) => void;

/** Options of {@linkcode ShardLink}. */
export interface ShardLinkOptions {
  /** This shard's index among all shards. */
  index: number;
  /** One `Int32` per shard: how many subscribers each has; shared by all shards. */
  subscriberCounts: SharedArrayBuffer;
  /** A port to each other shard, by index; none at this shard's own index. */
  ports: (MessagePort | undefined)[];
  /** Bytes posted to one shard and not yet acknowledged before the link is congested. */
  maxForwardBytes?: number;
  /** Longest wait of {@linkcode ShardLink.whenClear}, in milliseconds. */
  maxStallMs?: number;
}

/** A forwarded relay batch as posted between shards; an acknowledgement is a number. */
interface ForwardedBatch {
  bytes: Uint8Array;
  messages: number;
}

/** How often a congested link looks again at peers that may have gone (ms). */
const RECHECK_MS = 20;
const NO_DELIVERY: ForwardedDelivery = (_bytes, _messages, done) => done();

/**
 * The link from one shard to all the others.
 *
 * @example Two shards in one thread
 * ```ts
 * import assert from "node:assert/strict";
 * import { ShardLink } from "./shard_link.ts";
 *
 * const counts = new SharedArrayBuffer(8);
 * const { port1, port2 } = new MessageChannel();
 * const a = new ShardLink({ index: 0, subscriberCounts: counts, ports: [undefined, port1] });
 * const b = new ShardLink({ index: 1, subscriberCounts: counts, ports: [port2] });
 * const got = Promise.withResolvers<string>();
 * b.onForwarded((bytes) => got.resolve(new TextDecoder().decode(bytes)));
 * b.setLocalSubscribers(1);
 * assert.equal(a.remoteSubscribers, 1);
 * a.forward(new TextEncoder().encode("MSG ann 2\nhi\n"), 1);
 * assert.equal(await got.promise, "MSG ann 2\nhi\n");
 * a.close();
 * b.close();
 * ```
 */
export class ShardLink implements RelayPeers {
  readonly #index: number;
  readonly #counts: Int32Array;
  readonly #ports: (MessagePort | undefined)[];
  readonly #unacknowledged: number[];
  readonly #maxForwardBytes: number;
  readonly #maxStallMs: number;
  #deliver: ForwardedDelivery = NO_DELIVERY;
  #clear: PromiseWithResolvers<void> | undefined;
  #recheck: ReturnType<typeof setInterval> | undefined;
  #stallEnd: ReturnType<typeof setTimeout> | undefined;

  /** Links shard `index` to the shards at the other ends of `ports`. */
  constructor(options: ShardLinkOptions) {
    this.#index = options.index;
    this.#counts = new Int32Array(options.subscriberCounts);
    this.#ports = options.ports;
    this.#unacknowledged = options.ports.map(() => 0);
    this.#maxForwardBytes = options.maxForwardBytes ?? DEFAULT_MAX_FORWARD_BYTES;
    this.#maxStallMs = options.maxStallMs ?? DEFAULT_STALL_MS;
    options.ports.forEach((port, peer) => {
      if (port) port.onmessage = (event) => this.#receive(port, peer, event.data);
    });
  }

  get remoteSubscribers(): number {
    let total = 0;
    for (let peer = 0; peer < this.#ports.length; peer++) {
      if (peer !== this.#index) total += Atomics.load(this.#counts, peer);
    }
    return total;
  }

  setLocalSubscribers(count: number): void {
    Atomics.store(this.#counts, this.#index, count);
  }

  forward(bytes: Uint8Array, messages: number): void {
    this.#ports.forEach((port, peer) => {
      if (!port || Atomics.load(this.#counts, peer) === 0) return;
      // A copy per peer: posting transfers it, and the caller reuses its buffer.
      const copy = bytes.slice();
      this.#unacknowledged[peer] += copy.length; // Before the transfer empties it.
      port.postMessage({ bytes: copy, messages } satisfies ForwardedBatch, [copy.buffer]);
    });
  }

  get congested(): boolean {
    for (let peer = 0; peer < this.#ports.length; peer++) {
      if (this.#unacknowledged[peer] <= this.#maxForwardBytes) continue;
      // A shard without subscribers drops what it gets (or has shut down): no need to wait.
      if (Atomics.load(this.#counts, peer) === 0) this.#unacknowledged[peer] = 0;
      else return true;
    }
    return false;
  }

  whenClear(): Promise<void> {
    if (!this.congested) return Promise.resolve();
    if (!this.#clear) {
      this.#clear = Promise.withResolvers();
      this.#recheck = setInterval(() => this.#settleIfClear(), RECHECK_MS);
      this.#stallEnd = setTimeout(() => this.#settle(), this.#maxStallMs);
    }
    return this.#clear.promise;
  }

  onForwarded(deliver: ForwardedDelivery): void {
    this.#deliver = deliver;
  }

  /** Closes the ports; a pending {@linkcode ShardLink.whenClear} resolves. */
  close(): void {
    for (const port of this.#ports) port?.close();
    this.#unacknowledged.fill(0);
    this.#settleIfClear();
  }

  #receive(port: MessagePort, peer: number, data: ForwardedBatch | number): void {
    if (typeof data === "number") {
      this.#unacknowledged[peer] = Math.max(0, this.#unacknowledged[peer] - data);
      this.#settleIfClear();
      return;
    }
    const length = data.bytes.length;
    this.#deliver(data.bytes, data.messages, () => {
      try {
        port.postMessage(length);
      } catch {
        // The link was closed: the peer no longer counts what it sent.
      }
    });
  }

  #settleIfClear(): void {
    if (!this.congested) this.#settle();
  }

  #settle(): void {
    if (!this.#clear) return;
    clearInterval(this.#recheck);
    clearTimeout(this.#stallEnd);
    this.#clear.resolve();
    this.#clear = undefined;
  }
}

/**
 * A `MessageChannel` between every pair of `shards` shards: `ports[i][j]` is shard i's
 * end toward shard j (none at `ports[i][i]`), ready for {@linkcode ShardLinkOptions.ports}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { shardPorts } from "./shard_link.ts";
 *
 * const ports = shardPorts(3);
 * assert.equal(ports[0][0], undefined);
 * assert.ok(ports[0][2] instanceof MessagePort);
 * for (const port of ports.flat()) port?.close();
 * ```
 */
export function shardPorts(shards: number): (MessagePort | undefined)[][] {
  const ports: (MessagePort | undefined)[][] = Array.from(
    { length: shards },
    () => new Array(shards).fill(undefined),
  );
  for (let i = 0; i < shards; i++) {
    for (let j = i + 1; j < shards; j++) {
      const { port1, port2 } = new MessageChannel();
      ports[i][j] = port1;
      ports[j][i] = port2;
    }
  }
  return ports;
}
