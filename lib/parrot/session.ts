/**
 * One connected client as the rest of the server sees it: its name, whether it wants
 * relayed messages, its outbound queue, and the times its deadlines count from.
 *
 * Everything the server sends to a client goes through {@linkcode Session.send}, which
 * queues on a write coalescer (one write in flight per connection). Closing is owned
 * here too, so that an error line, a goodbye and a forced close each happen once.
 *
 * The state others change is changed through methods, each with one caller: the
 * connection task notes when it heard from the client ({@linkcode Session.heardFrom})
 * and when the server holds it ({@linkcode Session.hold}); the deadline sweep reads
 * those and sends the idle `PING` ({@linkcode Session.ping}); the hub records
 * `SUB`/`UNSUB` ({@linkcode Session.setSubscribed}). The fields live here, not in an
 * object of their own, so that an idle connection costs no extra object.
 *
 * @module
 */

import { CLOSE_FLUSH_TIMEOUT_MS } from "../defaults.ts";
import { settlesWithin } from "../net/delay.ts";
import { type ChunkDone, WriteCoalescer } from "../net/write_coalescer.ts";
import { encodeErr, PING_LINE } from "./frame_encoder.ts";

const encoder = new TextEncoder();
const CLOSED: Promise<void> = Promise.resolve();

/**
 * The server's view of one client connection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Session } from "./session.ts";
 *
 * const written: Uint8Array[] = [];
 * const conn = {
 *   write: (p: Uint8Array) => (written.push(p.slice()), Promise.resolve(p.length)),
 *   close: () => {},
 * };
 * const session = new Session(conn, 1, "127.0.0.1:5000");
 * assert.equal(session.name, "127.0.0.1:5000");
 * session.setName("alice");
 * assert.equal(new TextDecoder().decode(session.prefix), "alice: ");
 * await session.fail("malformed frame");
 * assert.equal(new TextDecoder().decode(written[0]), "ERR malformed frame\n");
 * assert.ok(session.closed);
 * ```
 */
export class Session {
  /** A number unique among the server's connections. */
  readonly id: number;
  /** The name it had before any `HELLO`: its address, `ip:port`. */
  readonly address: string;
  /** The client's outbound queue. */
  readonly outbound: WriteCoalescer;
  #subscribed = true;
  #lastHeardAt: number = Date.now();
  #frameStartedAt = 0;
  #pinged = false;
  #held = false;
  #name = "";
  #prefix: Uint8Array | undefined;
  #relayHeader: Uint8Array | undefined;
  #conn: { close(): void };
  #closed = false;
  #closing: Promise<void> | undefined;
  #done: PromiseWithResolvers<void> | undefined;

  /** Wraps `conn`; the client is called `name` until it says `HELLO`. */
  constructor(
    conn: { write(p: Uint8Array): Promise<number>; close(): void },
    id: number,
    name: string,
  ) {
    this.#conn = conn;
    this.id = id;
    this.address = name;
    this.outbound = new WriteCoalescer(conn);
    this.setName(name);
  }

  /** How logs name the client: `ann (127.0.0.1:5000)` after `HELLO ann`, else its address. */
  get label(): string {
    return this.#name === this.address ? this.address : `${this.#name} (${this.address})`;
  }

  /** The sender name printed in front of this client's messages. */
  get name(): string {
    return this.#name;
  }

  /** `"<name>: "` as bytes, ready to be copied in front of each message on stdout. */
  get prefix(): Uint8Array {
    // Made at the first message: an idle client never needs it.
    return this.#prefix ??= encoder.encode(`${this.#name}: `);
  }

  /** `"MSG <name> "` as bytes: the start of every message relayed from this client. */
  get relayHeader(): Uint8Array {
    return this.#relayHeader ??= encoder.encode(`MSG ${this.#name} `);
  }

  /** Settles when the connection has been closed by this session. */
  get done(): Promise<void> {
    // Made when first asked for: most sessions never wait for it.
    if (this.#closed) return CLOSED;
    this.#done ??= Promise.withResolvers();
    return this.#done.promise;
  }

  /** Whether the connection has been closed (or is closing). */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /** Whether relayed messages are sent to this client (`SUB`/`UNSUB`; see `Hub.subscribe`). */
  get subscribed(): boolean {
    return this.#subscribed;
  }

  /** When the client was last heard from (ms since the epoch): the idle deadline counts from it. */
  get lastHeardAt(): number {
    return this.#lastHeardAt;
  }

  /** When the frame the client has not finished began, or 0 when none is unfinished. */
  get frameStartedAt(): number {
    return this.#frameStartedAt;
  }

  /** Whether the idle `PING` went out since the client was last heard from. */
  get pinged(): boolean {
    return this.#pinged;
  }

  /** Whether the server is making the client wait (full channel, rate limit): no deadline runs. */
  get held(): boolean {
    return this.#held;
  }

  /** Records `SUB` (true) or `UNSUB` (false); the hub's to call, as it keeps the subscribers. */
  setSubscribed(subscribed: boolean): void {
    this.#subscribed = subscribed;
  }

  /**
   * The server makes the client wait (a full channel, the rate limit): no deadline runs
   * until {@linkcode Session.heardFrom}. The connection task's to call.
   */
  hold(): void {
    this.#held = true;
  }

  /**
   * The client was heard from at `now` and is no longer held; its unfinished frame began
   * at `frameStartedAt` (0: none is unfinished). The connection task's to call.
   */
  heardFrom(now: number, frameStartedAt: number): void {
    this.#held = false;
    this.#lastHeardAt = now;
    this.#pinged = false;
    this.#frameStartedAt = frameStartedAt;
  }

  /**
   * Sends the idle `PING` at `now`: the client has another idle period, counted from
   * now, to answer. The deadline sweep's to call.
   */
  ping(now: number): void {
    this.#pinged = true;
    this.#lastHeardAt = now;
    this.send(PING_LINE);
  }

  /** Renames the client (its `HELLO`). */
  setName(name: string): void {
    this.#name = name;
    this.#prefix = undefined;
    this.#relayHeader = undefined;
  }

  /**
   * Queues `bytes` for the client unless the connection is closing. `done`, if given,
   * is called once the bytes are no longer needed (see `WriteCoalescer.write`), at once
   * when they are not queued.
   */
  send(bytes: Uint8Array, done?: ChunkDone): void {
    if (this.#closing === undefined) this.outbound.write(bytes, done);
    else done?.();
  }

  /**
   * Sends `ERR <reason>` after what is queued, and closes. (To put the error in place of
   * a backlog that will never drain, discard the backlog first.)
   */
  fail(reason: string): Promise<void> {
    if (this.#closing) return this.#closing;
    this.outbound.write(encodeErr(reason));
    return this.finish();
  }

  /** Closes after the queued bytes are written, or after a short timeout. Idempotent. */
  finish(): Promise<void> {
    this.#closing ??= this.#flushThenClose();
    return this.#closing;
  }

  /** Closes at once, dropping anything queued. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing ??= Promise.resolve();
    try {
      this.#conn.close();
    } catch {
      // Already closed by the peer or the toolkit.
    }
    this.#done?.resolve();
  }

  async #flushThenClose(): Promise<void> {
    await settlesWithin(this.outbound.flush(), CLOSE_FLUSH_TIMEOUT_MS);
    this.close();
  }
}
