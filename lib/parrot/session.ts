/**
 * One connected client as the rest of the server sees it: its name, whether it wants
 * relayed messages, its outbound queue, and the times its deadlines count from.
 *
 * Everything the server sends to a client goes through {@linkcode Session.send}, as
 * parrot/1 wire bytes (relayed `MSG` frames, `PING`, `PONG`, `QUIT`, `ERR`), onto the
 * session's {@linkcode Outbound}: the one thing that differs between transports. A TCP
 * or TLS client's is a write coalescer (one write in flight per connection) that writes
 * the bytes as they are; a WebSocket client's (`websocket_session.ts`) turns each frame
 * into one WebSocket message. The hub, the main task and the deadline sweep see only a
 * `Session`, whatever the transport. Closing is owned here too, so that an error line,
 * a goodbye and a forced close each happen once.
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

/** How a client is connected. */
export type Transport = "tcp" | "tls" | "websocket";

/**
 * Where a session's bytes go: parrot/1 server frames, always whole ones, in order. The
 * hub's slow-consumer rule reads {@linkcode Outbound.buffered} and
 * {@linkcode Outbound.writeStartedAt}; `WriteCoalescer` is the TCP implementation.
 */
export interface Outbound {
  /** Bytes queued or being written and not yet taken by the peer's transport. */
  readonly buffered: number;
  /** When the write now stalled began (ms since the epoch), or 0 when none is. */
  readonly writeStartedAt: number;
  /**
   * Queues `bytes` (whole frames). `done`, if given, is called once when the bytes are
   * no longer needed: written, copied or dropped.
   */
  write(bytes: Uint8Array, done?: ChunkDone): void;
  /** Drops what is queued and not yet handed to the transport; returns how many chunks. */
  discardQueued(): number;
  /** Resolves once everything queued so far has been handed to the peer. */
  flush(): Promise<void>;
}

/**
 * A transport that brings its own {@linkcode Outbound} (a WebSocket), as opposed to a
 * byte connection (`Deno.Conn`) that a session wraps in a write coalescer.
 */
export interface SessionTransport {
  /** What the transport is. */
  readonly transport: Transport;
  /** Where the session's bytes go. */
  readonly outbound: Outbound;
  /** Closes the connection at once. */
  close(): void;
}

/** A byte connection: a `Deno.Conn` (or `Deno.TlsConn`), or a test's stand-in. */
export interface ByteConnection {
  /** Writes some of `p` and resolves with how many bytes were written. */
  write(p: Uint8Array): Promise<number>;
  /** Closes the connection. */
  close(): void;
}

/** A client's address as a connection gives it (`Deno.NetAddr` is one). */
export interface PeerAddress {
  /** The peer's IP address. */
  readonly hostname: string;
  /** The peer's port. */
  readonly port: number;
}

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
  /** Its address as given: made into `ip:port` text when asked (see {@linkcode Session.address}). */
  readonly #address: string | PeerAddress;
  /**
   * The client's outbound queue: a TCP client's is made when something is to be sent and
   * let go of while idle ({@linkcode Session.releaseIdleOutbound}), so that a quiet
   * connection holds none; a WebSocket client's is its transport's.
   */
  #outbound: Outbound | undefined;
  /** When the client connected (ms since the epoch). */
  readonly connectedAt: number = Date.now();
  /** Messages taken from this client by the main task. */
  messagesIn = 0;
  /** Relayed messages queued for this client (delivered unless it is cut off). */
  messagesOut = 0;
  #subscribed = true;
  #lastHeardAt: number = Date.now();
  #frameStartedAt = 0;
  #pinged = false;
  #held = false;
  /** The name of its `HELLO`; before one, undefined until {@linkcode Session.name} is asked for. */
  #name: string | undefined;
  #prefix: Uint8Array | undefined;
  #relayHeader: Uint8Array | undefined;
  #conn: ByteConnection | SessionTransport;
  #closed = false;
  #closing: Promise<void> | undefined;
  #done: PromiseWithResolvers<void> | undefined;

  /**
   * Wraps `conn`: a byte connection gets a write coalescer, a {@linkcode SessionTransport}
   * brings its own outbound. The client is called by `address` (text, or the connection's
   * own address object, made into `ip:port` text only when asked) until it says `HELLO`.
   */
  constructor(
    conn: ByteConnection | SessionTransport,
    id: number,
    address: string | PeerAddress,
  ) {
    this.#conn = conn;
    this.id = id;
    this.#address = address;
    if ("outbound" in conn) this.#outbound = conn.outbound;
  }

  /**
   * The name it had before any `HELLO`: its address, `ip:port`. Made when asked rather
   * than held: the string, its halves and its port's digits were about 200 of the 3,750
   * bytes of heap an idle connection cost (`scripts/heap_per_connection.ts`).
   */
  get address(): string {
    const address = this.#address;
    return typeof address === "string" ? address : `${address.hostname}:${address.port}`;
  }

  /** The client's outbound queue, made now if it has none (see {@linkcode Session.releaseIdleOutbound}). */
  get outbound(): Outbound {
    return this.#outbound ??= new WriteCoalescer(this.#conn as ByteConnection);
  }

  /** Bytes queued for the client or being written (0 without a queue; see `Outbound.buffered`). */
  get buffered(): number {
    return this.#outbound?.buffered ?? 0;
  }

  /** When the write now stalled began (ms since the epoch), or 0 when none is. */
  get writeStartedAt(): number {
    return this.#outbound?.writeStartedAt ?? 0;
  }

  /** Drops what is queued and not yet written; returns how many chunks (see `Outbound.discardQueued`). */
  discardQueued(): number {
    return this.#outbound?.discardQueued() ?? 0;
  }

  /**
   * Lets go of a TCP client's outbound queue while it has nothing to do (nothing queued
   * or being written, no one waiting, no failure): the next send makes a new one. A
   * quiet connection then holds no queue (184 bytes of heap each). Returns whether it
   * did. The server calls it for every client before its idle collection.
   */
  releaseIdleOutbound(): boolean {
    const outbound = this.#outbound;
    if (!(outbound instanceof WriteCoalescer) || !outbound.idle) return false;
    this.#outbound = undefined;
    return true;
  }

  /** How the client is connected (derived, so that a session holds no field for it). */
  get transport(): Transport {
    const conn = this.#conn;
    if ("transport" in conn) return conn.transport;
    return "handshake" in conn ? "tls" : "tcp";
  }

  /** How logs name the client: `ann (127.0.0.1:5000)` after `HELLO ann`, else its address. */
  get label(): string {
    const address = this.address;
    const name = this.#name;
    return name === undefined || name === address ? address : `${name} (${address})`;
  }

  /** The sender name printed in front of this client's messages. */
  get name(): string {
    // Kept once asked for: the drain asks for it at every read of a client that sends.
    return this.#name ??= this.address;
  }

  /** `"<name>: "` as bytes, ready to be copied in front of each message on stdout. */
  get prefix(): Uint8Array {
    // Made at the first message: an idle client never needs it.
    return this.#prefix ??= encoder.encode(`${this.name}: `);
  }

  /** `"MSG <name> "` as bytes: the start of every message relayed from this client. */
  get relayHeader(): Uint8Array {
    return this.#relayHeader ??= encoder.encode(`MSG ${this.name} `);
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
    if (this.#outbound) await settlesWithin(this.#outbound.flush(), CLOSE_FLUSH_TIMEOUT_MS);
    this.close();
  }
}
