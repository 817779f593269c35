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
 * idle, doubling up to 64 KiB while reads fill it. Buffers of the largest size come
 * from a pool shared by all connections, and the main task gives them back once it has
 * written their frames out: a busy server reuses a few buffers instead of allocating
 * one per read.
 *
 * Deadlines: after each read the task notes on its session when the client was last
 * heard from and when its unfinished frame began; the server's deadline sweep
 * (`deadline_sweep.ts`) acts on them, so a read is never raced against a timer. Time
 * the server makes a connection wait (a full channel, the rate limit) is marked
 * `held` and does not count against it.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { MIN_READ_BUFFER_BYTES } from "../defaults.ts";
import { nextReadBufferSize } from "./read_buffer_size.ts";
import type { BufferPool } from "../net/buffer_pool.ts";
import type { Channel } from "../net/channel.ts";
import { delay } from "../net/delay.ts";
import type { ConnInfo, TcpHandler } from "../net/serve_tcp.ts";
import { TokenBucket } from "../net/token_bucket.ts";
import { type AdmissionPolicy, admit, needsAdmission } from "./admission.ts";
import { type ClientFrame, REASON } from "./frame.ts";
import { ClientFrameDecoder, type PayloadRange } from "./frame_decoder.ts";
import { QUIT_LINE } from "./frame_encoder.ts";
import type { Hub } from "./hub.ts";
import { Session } from "./session.ts";

const log = getLogger(["parrot", "connection"]);

/** Frames decoded from one read of one connection, in the order they arrived. */
export interface ReadBatch {
  /** The connection they came from. */
  session: Session;
  /**
   * The frames; `quit` also stands for the end of the peer's input. A
   * `PAYLOAD_RANGE` is a message whose payload is `chunk[ranges[2i],
   * ranges[2i+1])`, for the i-th range in order.
   */
  frames: (ClientFrame | PayloadRange)[];
  /** Start and end of each `PAYLOAD_RANGE` payload in `chunk`. */
  ranges?: number[];
  /** The bytes the ranges point into. */
  chunk?: Uint8Array;
  /**
   * The read buffer the frames point into, if it came from the pool: the consumer gives
   * it back once it is done with the frames.
   */
  buffer?: Uint8Array;
}

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
  /** The TLS handshake and `AUTH` rule every connection passes first. */
  admission: AdmissionPolicy;
  /** Connections still being admitted (not yet in the hub). */
  admitting: Set<Session>;
  /** Messages per second and burst allowed per connection; unlimited without it. */
  rateLimit?: { ratePerSecond: number; burst: number };
  /** Counters the connection tasks update. */
  counters: ConnectionCounters;
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
  /** Connections refused for a missing, wrong or late `AUTH`. */
  authFailures: number;
  /** Connections closed because their TLS handshake failed or took too long. */
  tlsFailures: number;
  /** Reads paused by the rate limit. */
  ratePauses: number;
}

const IMPLICIT_QUIT: ClientFrame[] = [{ type: "quit" }];

/**
 * Builds the toolkit handler that serves parrot connections.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BufferPool } from "../net/buffer_pool.ts";
 * import { Channel } from "../net/channel.ts";
 * import { createConnectionHandler, type ReadBatch } from "./connection.ts";
 * import { Hub } from "./hub.ts";
 *
 * const handler = createConnectionHandler({
 *   hub: new Hub(),
 *   channel: new Channel<ReadBatch>(16),
 *   maxFrameBytes: 1024,
 *   readBuffers: new BufferPool({ minBytes: 4096, maxBytes: 65536, maxFreeBytes: 1 << 20 }),
 *   admission: { authTimeoutMs: 2000 },
 *   admitting: new Set(),
 *   counters: {
 *     connections: 0,
 *     readTimeouts: 0,
 *     idleTimeouts: 0,
 *     protocolErrors: 0,
 *     authFailures: 0,
 *     tlsFailures: 0,
 *     ratePauses: 0,
 *   },
 * });
 * assert.equal(typeof handler, "function");
 * ```
 */
export function createConnectionHandler(context: ConnectionContext): TcpHandler {
  return async (conn: Deno.Conn, info: ConnInfo): Promise<void> => {
    const { hostname, port } = info.remoteAddr;
    context.counters.connections++;
    const session = new Session(conn, info.id, `${hostname}:${port}`);
    // Until it is admitted, the server's shutdown closes it (see closeForShutdown).
    context.admitting.add(session);
    if (info.signal.aborted) session.close();
    let admitted = false;
    try {
      const admission = needsAdmission(conn, context.admission)
        ? await admit(conn, context.admission)
        : undefined;
      context.admitting.delete(session);
      if (admission && !admission.admitted) {
        if (admission.failure === "tls") context.counters.tlsFailures++;
        else context.counters.authFailures++;
        log.info("Refused {name}: {detail}", { name: session.name, detail: admission.detail });
        if (admission.reason) await session.fail(admission.reason);
        return;
      }
      if (session.closed) return;
      admitted = true;
      // Relayed messages start once the main task has taken its first input, so a
      // client that starts with UNSUB never gets one (see server.ts).
      context.hub.add(session, false);
      log.debug("Client {name} connected", { name: session.name });
      await readLoop(conn, session, context, admission?.leftover, info.signal);
    } catch (error) {
      log.debug("Connection of {name} ended: {error}", { name: session.name, error });
    } finally {
      context.admitting.delete(session);
      context.hub.remove(session);
      session.close();
      if (admitted) log.debug("Client {name} disconnected", { name: session.name });
    }
  };
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

async function readLoop(
  conn: Deno.Conn,
  session: Session,
  context: ConnectionContext,
  leftover: Uint8Array | undefined,
  shutdown: AbortSignal,
) {
  const { channel, counters } = context;
  const decoder = new ClientFrameDecoder({ maxFrameBytes: context.maxFrameBytes });
  const bucket = context.rateLimit && new TokenBucket(context.rateLimit);
  let buffer: Uint8Array = new Uint8Array(MIN_READ_BUFFER_BYTES);
  session.lastHeardAt = Date.now();
  // Bytes that came with the AUTH line are decoded before the first read.
  let unread: Uint8Array | undefined = leftover && leftover.length > 0 ? leftover : undefined;
  for (;;) {
    let chunk: Uint8Array | null;
    if (unread) {
      chunk = unread;
      unread = undefined;
    } else {
      // No timer here: the deadline sweep closes the connection, which ends this read.
      const n = await conn.read(buffer);
      chunk = n === null ? null : buffer.subarray(0, n);
      if (session.closed) return;
    }
    if (chunk === null) {
      if (decoder.pending) {
        counters.protocolErrors++;
        log.info("Closing {name}: it ended its input in the middle of a frame", {
          name: session.name,
        });
        return await session.fail(REASON.truncatedFrame);
      }
      // End of input is an implicit QUIT: finish what was sent, answer it, then close.
      await channel.send({ session, frames: IMPLICIT_QUIT });
      return await session.done;
    }
    const wasPending = decoder.pending;
    const ranges: number[] = [];
    const { frames, error } = decoder.pushRanges(chunk, ranges);
    const quitAt = frames.findIndex((frame) => frame.type === "quit");
    if (quitAt >= 0) frames.length = quitAt + 1;
    // Frames point into the buffer, so it goes with them (back to the pool once they
    // are consumed) and the next read gets another, sized by nextReadBufferSize(). It
    // is taken once the batch is in the channel: a reader waiting for room holds one
    // buffer, not two. (The bytes that came with AUTH are not in the read buffer.)
    const handOff = chunk.buffer === buffer.buffer &&
      (frames.length > 0 || chunk.length === buffer.length);
    const handedOff = buffer;
    // Time spent waiting for room in the channel (backpressure) or for the rate limit
    // is the server's, not the peer's: no deadline runs meanwhile.
    session.held = true;
    if (frames.length > 0) {
      await channel.send({
        session,
        frames,
        ranges,
        chunk,
        buffer: handOff ? handedOff : undefined,
      });
    } else if (handOff) {
      context.readBuffers.give(handedOff);
    }
    if (handOff) {
      buffer = context.readBuffers.take(
        nextReadBufferSize(handedOff.length, chunk.length, context.hub.size),
      );
    }
    if (bucket && !shutdown.aborted) {
      const pauseMs = bucket.take(countMessages(frames));
      if (pauseMs > 0) {
        counters.ratePauses++;
        await delay(pauseMs, shutdown);
      }
    }
    session.held = false;
    // The deadlines count from when we can read again.
    const now = Date.now();
    session.lastHeardAt = now;
    session.pinged = false;
    if (!decoder.pending) session.frameStartedAt = 0;
    else if (!wasPending || frames.length > 0) session.frameStartedAt = now;
    if (quitAt >= 0) return await session.done;
    if (error) {
      counters.protocolErrors++;
      log.info("Closing {name}: {reason}", { name: session.name, reason: error.message });
      return await session.fail(error.reason);
    }
  }
}

function countMessages(frames: (ClientFrame | PayloadRange)[]): number {
  let messages = 0;
  for (const frame of frames) {
    if (frame.type === "range" || frame.type === "msg" || frame.type === "text") messages++;
  }
  return messages;
}
