/**
 * The task that serves one parrot connection: admit it, read, decode, enforce the
 * deadlines and the rate limit, and hand complete frames to the main task through the
 * channel.
 *
 * Admission (`admission.ts`) comes first: the TLS handshake and the `AUTH` line. Only
 * an admitted connection joins the hub and has its frames decoded.
 *
 * The read buffer is handed off with the frames that point into it (payloads are
 * views, copied once, later, into the stdout batch), so each read that produced
 * frames gets another buffer. Its size follows the traffic: small while the peer is
 * idle, doubling up to 64 KiB while reads fill it. The smallest buffers are slots of
 * shared slabs and the larger ones come from a pool shared by all connections; the
 * main task gives them back once it has written their frames out, so a busy server
 * reuses a few buffers instead of allocating one per read.
 *
 * An idle connection costs little: it holds a pending read with its callbacks, its
 * session and a slab slot, and no decoder (connections share one until a frame of
 * theirs is left unfinished) and no suspended function (see `ConnectionTask`).
 *
 * Deadlines: after each read the task notes on its session when the client was last
 * heard from and when its unfinished frame began (`Session.heardFrom`); the server's
 * deadline sweep (`deadline_sweep.ts`) acts on them, so a read is never raced against a
 * timer. Time the server makes a connection wait (a full channel, the rate limit) is
 * held (`Session.hold`) and does not count against it.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { MIN_READ_BUFFER_BYTES } from "../defaults.ts";
import { nextReadBufferSize } from "./read_buffer_size.ts";
import type { BufferPool } from "../net/buffer_pool.ts";
import type { Channel } from "../net/channel.ts";
import { delayUnlessAborted } from "../net/delay.ts";
import type { ConnInfo, TcpHandler } from "../net/serve_tcp.ts";
import { TokenBucket } from "../net/token_bucket.ts";
import { type AdmissionPolicy, admit, needsAdmission } from "./admission.ts";
import { type ProtocolError, REASON } from "./frame.ts";
import { ClientFrameDecoder, type RangedFrames } from "./frame_decoder.ts";
import { QUIT_LINE } from "./frame_encoder.ts";
import type { Hub } from "./hub.ts";
import type { ReadBatch, ReadBatchPool } from "./read_batch.ts";
import { Session } from "./session.ts";

const log = getLogger(["parrot", "connection"]);

/** What every connection task shares. */
export interface ConnectionContext {
  /** Connected clients and the relay. */
  hub: Hub;
  /** Where complete frames go; `send` waits while it is full. */
  channel: Channel<ReadBatch>;
  /** Largest payload accepted. */
  maxFrameBytes: number;
  /** Where large read buffers come from, and go back to once their frames are consumed. */
  readBuffers: BufferPool;
  /** Where read batches come from; the consumer of the channel gives them back. */
  readBatches: ReadBatchPool;
  /** The TLS handshake and `AUTH` rule every connection passes first. */
  admission: AdmissionPolicy;
  /** Connections still being admitted (not yet in the hub). */
  admitting: Set<Session>;
  /** Messages per second and burst allowed per connection; unlimited without it. */
  rateLimit?: { ratePerSecond: number; burst: number };
  /** Counters the connection tasks update. */
  counters: ConnectionCounters;
  /**
   * Gives each client its id, unique among every transport's clients. Default: the
   * connection's id from `serveTcp`.
   */
  nextClientId?: () => number;
}

/** What the connection tasks count. */
export interface ConnectionCounters {
  /** Connections served (accepted and not refused by the client limit). */
  connections: number;
  /** Clients closed by the read timeout. */
  readTimeouts: number;
  /** Clients closed by the idle timeout. */
  idleTimeouts: number;
  /** Clients closed for a protocol error. */
  protocolErrors: number;
  /** The same by reason (the `ERR` text), counted once a reason occurs. */
  protocolErrorsByReason: Record<string, number>;
  /** Connections refused for a missing, wrong or late `AUTH`. */
  authFailures: number;
  /** Connections closed because their TLS handshake failed or took too long. */
  tlsFailures: number;
  /** Reads paused by the rate limit. */
  ratePauses: number;
}

/**
 * A new set of {@linkcode ConnectionCounters}, all at zero.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newConnectionCounters } from "./connection.ts";
 *
 * const counters = newConnectionCounters();
 * assert.equal(counters.connections, 0);
 * assert.deepEqual(counters.protocolErrorsByReason, {});
 * ```
 */
export function newConnectionCounters(): ConnectionCounters {
  return {
    connections: 0,
    readTimeouts: 0,
    idleTimeouts: 0,
    protocolErrors: 0,
    protocolErrorsByReason: {},
    authFailures: 0,
    tlsFailures: 0,
    ratePauses: 0,
  };
}

/** What one read brought, as far as the rest of its turn needs it. */
interface InputStep {
  /** Frames the read completed. */
  frameCount: number;
  /** Messages among them (counted only under a rate limit). */
  messages: number;
  error: ProtocolError | undefined;
  /** Whether the frames end with a QUIT. */
  quit: boolean;
  /** Whether a frame was unfinished before the read. */
  wasPending: boolean;
  /** The read buffer, when it went with the frames (or back to the pool). */
  handedOff: Uint8Array | undefined;
  /** Bytes the read filled. */
  used: number;
}

/**
 * Builds the toolkit handler that serves parrot connections.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BufferPool } from "../net/buffer_pool.ts";
 * import { Channel } from "../net/channel.ts";
 * import { createConnectionHandler, newConnectionCounters } from "./connection.ts";
 * import { Hub } from "./hub.ts";
 * import { type ReadBatch, ReadBatchPool } from "./read_batch.ts";
 *
 * const handler = createConnectionHandler({
 *   hub: new Hub(),
 *   channel: new Channel<ReadBatch>(16),
 *   maxFrameBytes: 1024,
 *   readBuffers: new BufferPool({ minBytes: 4096, maxBytes: 65536, maxFreeBytes: 1 << 20 }),
 *   readBatches: new ReadBatchPool(),
 *   admission: { authTimeoutMs: 2000 },
 *   admitting: new Set(),
 *   counters: newConnectionCounters(),
 * });
 * assert.equal(typeof handler, "function");
 * ```
 */
export function createConnectionHandler(context: ConnectionContext): TcpHandler {
  const decoders = new SharedDecoder(context.maxFrameBytes);
  return (conn: Deno.Conn, info: ConnInfo): Promise<void> =>
    new ConnectionTask(conn, info, context, decoders).start();
}

/**
 * The frame decoder that connections without an unfinished frame share.
 *
 * Between reads a decoder holds nothing unless a frame is unfinished, so a connection
 * needs one of its own only from then on: the connection whose read leaves the shared
 * decoder with an unfinished frame (or failed) keeps it, and a fresh one is shared from
 * then on. An idle connection holds no decoder.
 */
class SharedDecoder {
  readonly #maxFrameBytes: number;
  #decoder: ClientFrameDecoder;

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
    this.#decoder = new ClientFrameDecoder({ maxFrameBytes });
  }

  /** The decoder to push a read into, for a connection that has none of its own. */
  get decoder(): ClientFrameDecoder {
    return this.#decoder;
  }

  /** Hands the shared decoder (with its state) to one connection; a fresh one is shared. */
  takeOver(): ClientFrameDecoder {
    const taken = this.#decoder;
    this.#decoder = new ClientFrameDecoder({ maxFrameBytes: this.#maxFrameBytes });
    return taken;
  }
}

/**
 * What the server does to its connections when it starts to shut down: every client
 * is told `QUIT` (and keeps being read until it leaves or the grace period ends), and
 * every connection still being admitted is closed.
 */
export function closeForShutdown(context: Pick<ConnectionContext, "hub" | "admitting">): void {
  for (const session of context.admitting) session.close();
  for (const session of context.hub.sessions()) session.send(QUIT_LINE);
}

/**
 * One connection's task, armed one read at a time.
 *
 * An idle connection is the common case (10,000 of them must stay cheap), so while it
 * waits for input nothing of this task is suspended: one pending `conn.read` holds a
 * callback, and `#turn()` handles what it returns and arms the next read. (An `async`
 * loop would keep its frame, and the frames of everything awaiting it, alive per
 * connection: over 1 KB of heap.) A turn is synchronous unless the server makes the
 * connection wait (a full channel, the rate limit, the main task finishing a QUIT),
 * which only busy connections meet; then it goes on in a promise callback. No deadline
 * needs a timer of its own either (see `deadline_sweep.ts`).
 */
class ConnectionTask {
  readonly #conn: Deno.Conn;
  readonly #context: ConnectionContext;
  readonly #shutdown: AbortSignal;
  readonly #session: Session;
  #resolveFinished!: () => void;
  readonly #finished: Promise<void> = new Promise((resolve) => this.#resolveFinished = resolve);
  readonly #decoders: SharedDecoder;
  /** This connection's own decoder, once a frame of it was left unfinished by a read. */
  #decoder: ClientFrameDecoder | undefined;
  #bucket: TokenBucket | undefined;
  #buffer: Uint8Array;
  /** Whether the last read filled its buffer (see nextReadBufferSize). */
  #lastReadFilled = false;
  #admitted = false;
  #ended = false;
  readonly #onRead = (n: number | null): void => {
    if (this.#session.closed) return this.#end();
    this.#turn(n === null ? null : this.#buffer.subarray(0, n));
  };
  /** A failed read, or a failed wait of a turn: the connection ends. */
  readonly #onError = (error: unknown): void => this.#end(error);

  constructor(
    conn: Deno.Conn,
    info: ConnInfo,
    context: ConnectionContext,
    decoders: SharedDecoder,
  ) {
    this.#conn = conn;
    this.#context = context;
    this.#decoders = decoders;
    this.#buffer = context.readBuffers.take(MIN_READ_BUFFER_BYTES);
    this.#shutdown = info.shutdownSignal;
    // The connection's own address object: the session makes its text only when asked.
    this.#session = new Session(conn, context.nextClientId?.() ?? info.id, info.remoteAddr);
  }

  /** Admits the connection and arms its first read; settles once the connection is done. */
  start(): Promise<void> {
    const context = this.#context;
    const session = this.#session;
    context.counters.connections++;
    // Until it is admitted, the server's shutdown closes it (see closeForShutdown).
    context.admitting.add(session);
    if (this.#shutdown.aborted) session.close();
    this.#admit();
    return this.#finished;
  }

  async #admit(): Promise<void> {
    const context = this.#context;
    const session = this.#session;
    try {
      const admission = needsAdmission(this.#conn, context.admission)
        ? await admit(this.#conn, context.admission)
        : undefined;
      context.admitting.delete(session);
      if (admission && !admission.admitted) {
        if (admission.failure === "tls") context.counters.tlsFailures++;
        else context.counters.authFailures++;
        log.info("Refused {name}: {detail}", { name: session.label, detail: admission.detail });
        if (admission.reason) await session.fail(admission.reason);
        return this.#end();
      }
      if (session.closed) return this.#end();
      this.#admitted = true;
      // Subscribed from now on, as the protocol says: a client that only listens
      // need not say anything first.
      context.hub.add(session);
      log.debug("Client {name} connected", () => ({ name: session.label }));
      if (context.rateLimit) this.#bucket = new TokenBucket(context.rateLimit);
      session.heardFrom(Date.now(), 0);
      // Bytes that came with the AUTH line are decoded before the first read.
      const leftover = admission?.leftover;
      if (leftover && leftover.length > 0) this.#turn(leftover);
      else this.#arm();
    } catch (error) {
      this.#end(error);
    }
  }

  /** Reads once; no timer: the deadline sweep closes the connection, which ends the read. */
  #arm(): void {
    this.#conn.read(this.#buffer).then(this.#onRead, this.#onError);
  }

  /**
   * Handles one chunk of input (null: the peer's end of input) and arms the next read.
   * Synchronous unless the server makes the connection wait; a read is never raced
   * against anything.
   */
  #turn(chunk: Uint8Array | null): void {
    try {
      if (chunk === null) return this.#settle(this.#endOfInput());
      const { channel, readBuffers, readBatches } = this.#context;
      const session = this.#session;
      const decoder = this.#decoder ?? this.#decoders.decoder;
      const wasPending = decoder.pending;
      const batch = readBatches.take(session);
      const error = decoder.pushRanges(chunk, batch);
      if (!this.#decoder && (decoder.pending || error)) this.#decoder = this.#decoders.takeOver();
      const quitAt = indexOfQuit(batch);
      if (quitAt >= 0) batch.frameCount = quitAt + 1;
      const frameCount = batch.frameCount;
      // Frames point into the buffer, so it goes with them (back to the pool once they
      // are consumed) and the next read gets another, sized by nextReadBufferSize(). It
      // is taken once the batch is in the channel: a reader waiting for room holds one
      // buffer, not two. (The bytes that came with AUTH are not in the read buffer.)
      const buffer = this.#buffer;
      const handOff = chunk.buffer === buffer.buffer &&
        (frameCount > 0 || chunk.length === buffer.length);
      const step: InputStep = {
        frameCount,
        // Counted now: once in the channel, the batch is the consumer's.
        messages: this.#bucket ? countMessages(batch) : 0,
        error,
        quit: quitAt >= 0,
        wasPending,
        handedOff: handOff ? buffer : undefined,
        used: chunk.length,
      };
      // Time spent waiting for room in the channel (backpressure) or for the rate limit
      // is the server's, not the peer's: no deadline runs meanwhile.
      session.hold();
      if (frameCount > 0) {
        // Once per read, not per message: the start of the wait the histogram measures.
        batch.readAt = performance.now();
        batch.chunk = chunk;
        batch.buffer = step.handedOff;
        if (!channel.trySend(batch)) {
          return this.#settle(channel.send(batch).then(() => this.#afterSend(step)));
        }
      } else {
        readBatches.give(batch);
        if (handOff) readBuffers.give(buffer);
      }
      this.#settle(this.#afterSend(step));
    } catch (error) {
      this.#end(error);
    }
  }

  /** Once the frames are in the channel: the next buffer and the rate limit. */
  #afterSend(step: InputStep): Promise<void> | undefined {
    const { readBuffers, hub, counters } = this.#context;
    if (step.handedOff) {
      const size = nextReadBufferSize(
        step.handedOff.length,
        step.used,
        hub.size,
        this.#lastReadFilled,
      );
      this.#buffer = readBuffers.take(size);
    }
    this.#lastReadFilled = step.handedOff !== undefined && step.used === step.handedOff.length;
    if (this.#bucket && !this.#shutdown.aborted) {
      const pauseMs = this.#bucket.take(step.messages);
      if (pauseMs > 0) {
        counters.ratePauses++;
        return delayUnlessAborted(pauseMs, this.#shutdown).then(() => this.#resume(step));
      }
    }
    return this.#resume(step);
  }

  /** The deadlines count again from here; then a QUIT, an error, or the next read. */
  #resume(step: InputStep): Promise<void> | undefined {
    const session = this.#session;
    const now = Date.now();
    // An unfinished frame began with this read, unless it was there before and the read
    // completed none.
    const frameStartedAt = !this.#framePending
      ? 0
      : !step.wasPending || step.frameCount > 0
      ? now
      : session.frameStartedAt;
    session.heardFrom(now, frameStartedAt);
    if (step.quit) return session.done.then(() => this.#end());
    if (step.error) {
      countProtocolError(this.#context.counters, step.error.reason);
      log.info("Closing {name}: {reason}", { name: session.label, reason: step.error.message });
      return session.fail(step.error.reason).then(() => this.#end());
    }
    this.#arm();
  }

  /** The peer ended its input: an implicit QUIT, unless it stopped inside a frame. */
  async #endOfInput(): Promise<void> {
    const session = this.#session;
    if (this.#framePending) {
      countProtocolError(this.#context.counters, REASON.truncatedFrame);
      log.info("Closing {name}: it ended its input in the middle of a frame", {
        name: session.label,
      });
      await session.fail(REASON.truncatedFrame);
      return this.#end();
    }
    // Finish what was sent, answer it, then close.
    await this.#context.channel.send(this.#context.readBatches.endOfInput(session));
    await session.done;
    this.#end();
  }

  /** Ends the connection if `waiting` (what the turn waits for) fails. */
  #settle(waiting: Promise<void> | undefined): void {
    waiting?.catch(this.#onError);
  }

  /** Whether a frame of this connection is unfinished. */
  get #framePending(): boolean {
    return this.#decoder?.pending ?? false;
  }

  /** Leaves the hub, closes the connection and settles the task. Idempotent. */
  #end(error?: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    const session = this.#session;
    if (error !== undefined) {
      log.debug("Connection of {name} ended: {error}", { name: session.label, error });
    }
    this.#context.admitting.delete(session);
    this.#context.hub.remove(session);
    session.close();
    if (this.#admitted) log.debug("Client {name} disconnected", () => ({ name: session.label }));
    this.#resolveFinished();
  }
}

/**
 * Counts a client closed for a protocol error, in all and by `reason` (the text after
 * `ERR`), as every session transport should.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { countProtocolError } from "./connection.ts";
 *
 * const counters = { protocolErrors: 0, protocolErrorsByReason: {} };
 * countProtocolError(counters, "frame too large");
 * assert.deepEqual(counters.protocolErrorsByReason, { "frame too large": 1 });
 * ```
 */
export function countProtocolError(
  counters: Pick<ConnectionCounters, "protocolErrors" | "protocolErrorsByReason">,
  reason: string,
): void {
  counters.protocolErrors++;
  counters.protocolErrorsByReason[reason] = (counters.protocolErrorsByReason[reason] ?? 0) + 1;
}

function countMessages(batch: RangedFrames): number {
  const frames = batch.frames;
  let messages = 0;
  for (let i = 0; i < batch.frameCount; i++) {
    const type = frames[i].type;
    if (type === "range" || type === "msg" || type === "text") messages++;
  }
  return messages;
}

/** Where the batch's first `QUIT` is, or -1. */
function indexOfQuit(batch: RangedFrames): number {
  const frames = batch.frames;
  for (let i = 0; i < batch.frameCount; i++) {
    if (frames[i].type === "quit") return i;
  }
  return -1;
}
