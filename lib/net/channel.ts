/**
 * A bounded async channel with backpressure, shaped like the unstable
 * `Channel` of `@std/async` (which this project cannot import, as JSR is not
 * reachable).
 *
 * It owns the hand-over of values between concurrent tasks, e.g. between the
 * connection tasks of a server and its main task: senders wait while the
 * buffer is full, receivers wait while it is empty, and closing it lets the
 * receivers drain what is left. It sits on a server's hot path, so the buffer
 * and the wait queues are ring buffers with O(1) push and shift, and nothing
 * is allocated per value beyond the promises that the API returns.
 *
 * @example Producer and consumer
 * ```ts
 * import { Channel } from "./channel.ts";
 * import assert from "node:assert/strict";
 *
 * const channel = new Channel<number>(2);
 * const producer = (async () => {
 *   for (let i = 1; i <= 5; i++) await channel.send(i);
 *   channel.close();
 * })();
 *
 * const received: number[] = [];
 * for await (const value of channel) received.push(value);
 * await producer;
 * assert.deepEqual(received, [1, 2, 3, 4, 5]);
 * ```
 *
 * @module
 */

const RESOLVED: Promise<void> = Promise.resolve();
const EMPTY: { readonly ok: false } = Object.freeze({ ok: false });

/**
 * A FIFO queue on a power-of-two ring buffer: O(1) `push` and `shift`, and a
 * linear `remove` for the rare cancelled waiter.
 */
class RingQueue<T> {
  #items: (T | undefined)[];
  #head = 0;
  #length = 0;

  constructor(initialSize: number) {
    this.#items = new Array(initialSize);
  }

  get length(): number {
    return this.#length;
  }

  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    const items = this.#items;
    items[(this.#head + this.#length) & (items.length - 1)] = item;
    this.#length++;
  }

  /** Removes and returns the oldest item; the queue must not be empty. */
  shift(): T {
    const items = this.#items;
    const item = items[this.#head] as T;
    items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (items.length - 1);
    this.#length--;
    return item;
  }

  /** Removes the first occurrence of `item`, keeping the order of the others. */
  remove(item: T): boolean {
    const items = this.#items;
    const mask = items.length - 1;
    const head = this.#head;
    const length = this.#length;
    for (let i = 0; i < length; i++) {
      if (items[(head + i) & mask] !== item) continue;
      for (let j = i + 1; j < length; j++) {
        items[(head + j - 1) & mask] = items[(head + j) & mask];
      }
      items[(head + length - 1) & mask] = undefined;
      this.#length--;
      return true;
    }
    return false;
  }

  #grow(): void {
    const old = this.#items;
    const mask = old.length - 1;
    const items = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.#length; i++) items[i] = old[(this.#head + i) & mask];
    this.#items = items;
    this.#head = 0;
  }
}

/**
 * A suspended `send` or `receive`. It is its own abort listener, so waiting
 * with a signal costs no extra closure.
 */
abstract class Waiter implements EventListenerObject {
  readonly #queue: RingQueue<Waiter>;
  readonly #reject: (reason: unknown) => void;
  readonly #signal: AbortSignal | undefined;

  constructor(
    queue: RingQueue<Waiter>,
    reject: (reason: unknown) => void,
    signal: AbortSignal | undefined,
  ) {
    this.#queue = queue;
    this.#reject = reject;
    this.#signal = signal;
    signal?.addEventListener("abort", this, { once: true });
    queue.push(this);
  }

  /** Called on abort: leaves the queue and rejects with the abort reason. */
  handleEvent(): void {
    this.#queue.remove(this);
    this.#reject(this.#signal!.reason);
  }

  /** Rejects a waiter that was already taken off the queue. */
  reject(reason: unknown): void {
    this.detach();
    this.#reject(reason);
  }

  protected detach(): void {
    this.#signal?.removeEventListener("abort", this);
  }
}

class SendWaiter<T> extends Waiter {
  readonly value: T;
  readonly #resolve: () => void;

  constructor(
    queue: RingQueue<SendWaiter<T>>,
    value: T,
    resolve: () => void,
    reject: (reason: unknown) => void,
    signal: AbortSignal | undefined,
  ) {
    super(queue, reject, signal);
    this.value = value;
    this.#resolve = resolve;
  }

  /** Resolves a waiter that was already taken off the queue. */
  resolve(): void {
    this.detach();
    this.#resolve();
  }
}

class ReceiveWaiter<T> extends Waiter {
  readonly #resolve: (value: T) => void;

  constructor(
    queue: RingQueue<ReceiveWaiter<T>>,
    resolve: (value: T) => void,
    reject: (reason: unknown) => void,
    signal: AbortSignal | undefined,
  ) {
    super(queue, reject, signal);
    this.#resolve = resolve;
  }

  /** Resolves a waiter that was already taken off the queue. */
  resolve(value: T): void {
    this.detach();
    this.#resolve(value);
  }
}

/**
 * The error of an operation on a closed {@linkcode Channel}: every `send`
 * after (or waiting at) `close()`, and every `receive` once a channel that
 * was closed without a reason is drained.
 *
 * @example Sending to a closed channel
 * ```ts
 * import { Channel, ChannelClosedError } from "./channel.ts";
 * import assert from "node:assert/strict";
 *
 * const channel = new Channel<number>(1);
 * channel.close();
 * await assert.rejects(channel.send(1), ChannelClosedError);
 * ```
 */
export class ChannelClosedError extends Error {
  /**
   * Creates the error.
   *
   * @param message What failed and why.
   *
   * @example Usage
   * ```ts
   * import { ChannelClosedError } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * const error = new ChannelClosedError("Cannot send to the channel: it is closed");
   * assert.equal(error.name, "ChannelClosedError");
   * ```
   */
  constructor(message: string) {
    super(message);
    this.name = "ChannelClosedError";
  }
}

/**
 * The result of {@linkcode Channel.tryReceive}: `{ ok: true, value }` when a
 * value was ready, `{ ok: false }` when none was (the channel is empty, or
 * closed and drained; see {@linkcode Channel.closed}).
 *
 * @typeParam T The type of the values in the channel.
 */
export type ChannelTryReceiveResult<T> = { ok: true; value: T } | { ok: false };

/**
 * An async FIFO channel with a bounded buffer and backpressure.
 *
 * - `send()` resolves once the value is buffered or handed to a waiting
 *   receiver, and waits while the buffer is full. With a capacity of 0 (a
 *   rendezvous channel) every `send()` waits for a receiver.
 * - `receive()` resolves with the oldest value and waits while there is none.
 * - Waiting senders and receivers are each served in arrival order, so the
 *   values of one sender arrive in the order it sent them.
 * - `close()` rejects the waiting and future senders with a
 *   {@linkcode ChannelClosedError}; receivers still get the buffered values,
 *   then are rejected with the close reason, or a `ChannelClosedError`.
 * - Every value goes to exactly one receiver.
 *
 * @typeParam T The type of the values in the channel.
 *
 * @example Backpressure
 * ```ts
 * import { Channel } from "./channel.ts";
 * import assert from "node:assert/strict";
 *
 * const channel = new Channel<string>(1);
 * await channel.send("a");
 * let sent = false;
 * const sending = channel.send("b").then(() => (sent = true));
 * await Promise.resolve();
 * assert.equal(sent, false); // the buffer is full
 *
 * assert.equal(await channel.receive(), "a");
 * await sending;
 * assert.equal(sent, true);
 * assert.equal(await channel.receive(), "b");
 * ```
 */
export class Channel<T> implements AsyncIterable<T>, Disposable, AsyncDisposable {
  readonly #capacity: number;
  readonly #buffer: RingQueue<T>;
  readonly #senders: RingQueue<SendWaiter<T>> = new RingQueue(4);
  readonly #receivers: RingQueue<ReceiveWaiter<T>> = new RingQueue(4);
  #closed = false;
  #closeReason: unknown = undefined;

  /**
   * Creates a channel.
   *
   * @param capacity How many values the buffer holds; 0 makes every `send()`
   * wait for a receiver.
   * @throws {RangeError} If `capacity` is not a non-negative integer.
   *
   * @example Usage
   * ```ts
   * import { Channel } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Channel<number>(8).capacity, 8);
   * assert.throws(() => new Channel<number>(-1), RangeError);
   * ```
   */
  constructor(capacity = 0) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) {
      throw new RangeError(
        `Cannot create a channel with capacity ${capacity}: expected a non-negative integer`,
      );
    }
    this.#capacity = capacity;
    let size = 1;
    while (size < capacity && size < 16) size *= 2;
    this.#buffer = new RingQueue(size);
  }

  /**
   * How many values the buffer holds at most.
   *
   * @returns The capacity given to the constructor.
   *
   * @example Usage
   * ```ts
   * import { Channel } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * assert.equal(new Channel<number>().capacity, 0);
   * ```
   */
  get capacity(): number {
    return this.#capacity;
  }

  /**
   * How many values are buffered now (not counting waiting senders).
   *
   * @returns The number of buffered values.
   *
   * @example Usage
   * ```ts
   * import { Channel } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * const channel = new Channel<number>(4);
   * await channel.send(1);
   * await channel.send(2);
   * assert.equal(channel.size, 2);
   * ```
   */
  get size(): number {
    return this.#buffer.length;
  }

  /**
   * Whether {@linkcode Channel.close} was called. A closed channel may still
   * hold buffered values for its receivers.
   *
   * @returns `true` once the channel is closed.
   *
   * @example Usage
   * ```ts
   * import { Channel } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * const channel = new Channel<number>();
   * assert.equal(channel.closed, false);
   * channel.close();
   * assert.equal(channel.closed, true);
   * ```
   */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends a value, waiting while the buffer is full.
   *
   * If the signal aborts while the send waits, the value is not delivered.
   * A signal is ignored when the value can be delivered at once.
   *
   * @param value The value to send.
   * @param options `signal` cancels a waiting send.
   * @returns A promise that resolves once the value is buffered or handed to
   * a receiver.
   * @throws {ChannelClosedError} If the channel is closed, or is closed while
   * the send waits.
   * @throws {unknown} The signal's `reason` if it aborts while the send waits.
   *
   * @example Cancelling a waiting send
   * ```ts
   * import { Channel } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * const channel = new Channel<number>(); // rendezvous: send waits for a receiver
   * const controller = new AbortController();
   * const sending = channel.send(1, { signal: controller.signal });
   * controller.abort(new Error("Gave up"));
   * await assert.rejects(sending, { message: "Gave up" });
   * assert.equal(channel.tryReceive().ok, false);
   * ```
   */
  send(value: T, options?: { signal?: AbortSignal }): Promise<void> {
    if (this.#closed) return Promise.reject(this.#sendError());
    if (this.#receivers.length > 0) {
      this.#receivers.shift().resolve(value);
      return RESOLVED;
    }
    if (this.#buffer.length < this.#capacity) {
      this.#buffer.push(value);
      return RESOLVED;
    }
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      new SendWaiter(this.#senders, value, resolve, reject, signal);
    });
  }

  /**
   * Receives the oldest value, waiting while there is none.
   *
   * @param options `signal` cancels a waiting receive.
   * @returns A promise of the next value.
   * @throws {ChannelClosedError} If the channel is closed (without a reason)
   * and drained.
   * @throws {unknown} The reason given to {@linkcode Channel.close} once the
   * channel is drained, or the signal's `reason` if it aborts while the
   * receive waits.
   *
   * @example Usage
   * ```ts
   * import { Channel } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * const channel = new Channel<number>();
   * const receiving = channel.receive();
   * await channel.send(7);
   * assert.equal(await receiving, 7);
   * ```
   */
  receive(options?: { signal?: AbortSignal }): Promise<T> {
    if (this.#buffer.length > 0) return Promise.resolve(this.#shift());
    if (this.#senders.length > 0) {
      const sender = this.#senders.shift();
      sender.resolve();
      return Promise.resolve(sender.value);
    }
    if (this.#closed) return Promise.reject(this.#receiveError());
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      new ReceiveWaiter(this.#receivers, resolve, reject, signal);
    });
  }

  /**
   * Sends a value if that is possible without waiting: hands it to a waiting
   * receiver, or buffers it.
   *
   * @param value The value to send.
   * @returns `true` if the value was delivered, `false` if the buffer is
   * full (always, with capacity 0 and no waiting receiver) or the channel is
   * closed.
   *
   * @example Usage
   * ```ts
   * import { Channel } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * const channel = new Channel<number>(1);
   * assert.equal(channel.trySend(1), true);
   * assert.equal(channel.trySend(2), false);
   * ```
   */
  trySend(value: T): boolean {
    if (this.#closed) return false;
    if (this.#receivers.length > 0) {
      this.#receivers.shift().resolve(value);
      return true;
    }
    if (this.#buffer.length < this.#capacity) {
      this.#buffer.push(value);
      return true;
    }
    return false;
  }

  /**
   * Receives a value if one is ready: buffered, or offered by a waiting
   * sender.
   *
   * @returns `{ ok: true, value }`, or `{ ok: false }` if no value is ready.
   *
   * @example Usage
   * ```ts
   * import { Channel } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * const channel = new Channel<number>(1);
   * channel.trySend(5);
   * assert.deepEqual(channel.tryReceive(), { ok: true, value: 5 });
   * assert.deepEqual(channel.tryReceive(), { ok: false });
   * ```
   */
  tryReceive(): ChannelTryReceiveResult<T> {
    if (this.#buffer.length > 0) return { ok: true, value: this.#shift() };
    if (this.#senders.length > 0) {
      const sender = this.#senders.shift();
      sender.resolve();
      return { ok: true, value: sender.value };
    }
    return EMPTY;
  }

  /**
   * Closes the channel; later calls do nothing.
   *
   * Waiting and later senders are rejected with a
   * {@linkcode ChannelClosedError} and their values are not delivered.
   * Receivers still get the buffered values; after that they are rejected
   * with `reason`, or with a `ChannelClosedError` if `reason` is `undefined`.
   *
   * @param reason What receivers are rejected with once the channel is
   * drained, e.g. the error that stopped the producer.
   *
   * @example Draining a closed channel
   * ```ts
   * import { Channel, ChannelClosedError } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * const channel = new Channel<number>(2);
   * await channel.send(1);
   * channel.close();
   * assert.equal(await channel.receive(), 1);
   * await assert.rejects(channel.receive(), ChannelClosedError);
   * ```
   */
  close(reason?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeReason = reason;
    const senders = this.#senders;
    while (senders.length > 0) senders.shift().reject(this.#sendError());
    // Receivers only wait while the buffer is empty: none has a value left.
    const receivers = this.#receivers;
    while (receivers.length > 0) receivers.shift().reject(this.#receiveError());
  }

  /**
   * Yields the values until the channel is closed and drained.
   *
   * The iteration ends normally if the channel was closed without a reason,
   * and throws the reason otherwise.
   *
   * @returns An async iterator over the received values.
   *
   * @example Usage
   * ```ts
   * import { Channel } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * const channel = new Channel<number>(3);
   * await channel.send(1);
   * await channel.send(2);
   * channel.close();
   * assert.deepEqual(await Array.fromAsync(channel), [1, 2]);
   * ```
   */
  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    while (true) {
      let value: T;
      try {
        value = await this.receive();
      } catch (error) {
        if (error instanceof ChannelClosedError && this.#closeReason === undefined) return;
        throw error;
      }
      yield value;
    }
  }

  /**
   * Closes the channel, for `using`.
   *
   * @example Usage
   * ```ts
   * import { Channel } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * let channel: Channel<number>;
   * {
   *   using scoped = new Channel<number>();
   *   channel = scoped;
   * }
   * assert.equal(channel.closed, true);
   * ```
   */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Closes the channel, for `await using`.
   *
   * @returns A promise that resolves at once.
   *
   * @example Usage
   * ```ts
   * import { Channel } from "./channel.ts";
   * import assert from "node:assert/strict";
   *
   * let channel: Channel<number>;
   * {
   *   await using scoped = new Channel<number>();
   *   channel = scoped;
   * }
   * assert.equal(channel.closed, true);
   * ```
   */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return RESOLVED;
  }

  /** Takes the oldest buffered value and moves the oldest waiting sender's value into the freed slot. */
  #shift(): T {
    const value = this.#buffer.shift();
    if (this.#senders.length > 0) {
      const sender = this.#senders.shift();
      this.#buffer.push(sender.value);
      sender.resolve();
    }
    return value;
  }

  #sendError(): ChannelClosedError {
    return new ChannelClosedError("Cannot send to the channel: it is closed");
  }

  #receiveError(): unknown {
    return this.#closeReason === undefined
      ? new ChannelClosedError("Cannot receive from the channel: it is closed and drained")
      : this.#closeReason;
  }
}
