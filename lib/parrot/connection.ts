/**
 * The task that serves one parrot connection: read, decode, enforce the deadlines,
 * and hand complete frames to the main task through the channel.
 *
 * The read buffer is handed off with the frames that point into it (payloads are
 * views, copied once, later, into the stdout batch), so each read that produced
 * frames gets a fresh buffer. Its size follows the traffic: small while the peer is
 * idle, doubling up to 64 KiB while reads fill it.
 *
 * Deadlines: while a frame or line is incomplete it must finish within the read
 * timeout of its first byte (`ERR read timeout`); a connection silent for the idle
 * timeout gets `PING`, and after another idle timeout of silence `ERR idle timeout`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { MAX_READ_BUFFER_BYTES, MIN_READ_BUFFER_BYTES } from "../defaults.ts";
import type { Channel } from "../net/channel.ts";
import { isTimeoutError } from "../net/deadline.ts";
import type { ConnInfo, TcpHandler } from "../net/serve_tcp.ts";
import { TimedReader } from "../net/timed_reader.ts";
import type { ClientFrame } from "./frame.ts";
import { ClientFrameDecoder } from "./frame_decoder.ts";
import { PING_LINE, QUIT_LINE } from "./frame_encoder.ts";
import type { Hub } from "./hub.ts";
import { Session } from "./session.ts";

const log = getLogger(["parrot", "connection"]);

/** Frames decoded from one read of one connection, in the order they arrived. */
export interface ReadBatch {
  /** The connection they came from. */
  session: Session;
  /** The frames; `quit` also stands for the end of the peer's input. */
  frames: ClientFrame[];
}

/** What every connection task shares. */
export interface ConnectionContext {
  /** Connected clients and the relay. */
  hub: Hub;
  /** Where complete frames go; `send` waits while it is full. */
  channel: Channel<ReadBatch>;
  /** Milliseconds a frame may take once its first byte arrived. */
  readTimeoutMs: number;
  /** Milliseconds of silence before `PING`; 0 disables. */
  idleTimeoutMs: number;
  /** Largest payload accepted. */
  maxFrameBytes: number;
  /** Counters the connection tasks update. */
  counters: { readTimeouts: number; idleTimeouts: number; protocolErrors: number };
}

const IMPLICIT_QUIT: ClientFrame[] = [{ type: "quit" }];

/**
 * Builds the toolkit handler that serves parrot connections.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Channel } from "../net/channel.ts";
 * import { createConnectionHandler, type ReadBatch } from "./connection.ts";
 * import { Hub } from "./hub.ts";
 *
 * const handler = createConnectionHandler({
 *   hub: new Hub(),
 *   channel: new Channel<ReadBatch>(16),
 *   readTimeoutMs: 5000,
 *   idleTimeoutMs: 0,
 *   maxFrameBytes: 1024,
 *   counters: { readTimeouts: 0, idleTimeouts: 0, protocolErrors: 0 },
 * });
 * assert.equal(typeof handler, "function");
 * ```
 */
export function createConnectionHandler(context: ConnectionContext): TcpHandler {
  return async (conn: Deno.Conn, info: ConnInfo): Promise<void> => {
    const { hostname, port } = info.remoteAddr;
    const session = new Session(conn, info.id, `${hostname}:${port}`);
    context.hub.add(session);
    const sayQuit = () => session.send(QUIT_LINE);
    if (info.signal.aborted) sayQuit();
    else info.signal.addEventListener("abort", sayQuit, { once: true });
    log.debug("Client {name} connected", { name: session.name });
    try {
      await readLoop(conn, session, context);
    } catch (error) {
      log.debug("Connection of {name} ended: {error}", { name: session.name, error });
    } finally {
      info.signal.removeEventListener("abort", sayQuit);
      context.hub.remove(session);
      session.close();
      log.debug("Client {name} disconnected", { name: session.name });
    }
  };
}

async function readLoop(conn: Deno.Conn, session: Session, context: ConnectionContext) {
  const { channel, readTimeoutMs, idleTimeoutMs, counters } = context;
  const reader = new TimedReader(conn);
  const decoder = new ClientFrameDecoder({ maxFrameBytes: context.maxFrameBytes });
  let buffer = new Uint8Array(MIN_READ_BUFFER_BYTES);
  let frameStartedAt = 0;
  let lastHeardAt = Date.now();
  let pinged = false;
  for (;;) {
    const deadlineAt = decoder.pending
      ? frameStartedAt + readTimeoutMs
      : idleTimeoutMs > 0
      ? lastHeardAt + idleTimeoutMs
      : Infinity;
    let chunk: Uint8Array | null;
    try {
      chunk = await reader.read(buffer, deadlineAt);
    } catch (error) {
      if (!isTimeoutError(error) || session.closed) return;
      if (decoder.pending) {
        counters.readTimeouts++;
        return await session.fail("read timeout");
      }
      if (pinged) {
        counters.idleTimeouts++;
        return await session.fail("idle timeout");
      }
      pinged = true;
      lastHeardAt = Date.now();
      session.send(PING_LINE);
      continue;
    }
    if (chunk === null) {
      // End of input is an implicit QUIT: finish what was sent, answer it, then close.
      await channel.send({ session, frames: IMPLICIT_QUIT });
      return await session.done;
    }
    const wasPending = decoder.pending;
    const { frames, error } = decoder.push(chunk);
    const quitAt = frames.findIndex((frame) => frame.type === "quit");
    if (quitAt >= 0) frames.length = quitAt + 1;
    if (frames.length > 0) await channel.send({ session, frames });
    // The deadlines count from when we can read again: time spent waiting for room in
    // the channel (backpressure) is the server's, not the peer's.
    lastHeardAt = Date.now();
    pinged = false;
    if (decoder.pending && (!wasPending || frames.length > 0)) frameStartedAt = lastHeardAt;
    // Frames point into the buffer, so it is handed off; a full read grows the next one.
    if (frames.length > 0 || chunk.length === buffer.length) {
      buffer = new Uint8Array(nextBufferSize(buffer.length, chunk.length));
    }
    if (quitAt >= 0) return await session.done;
    if (error) {
      counters.protocolErrors++;
      log.info("Closing {name}: {reason}", { name: session.name, reason: error.message });
      return await session.fail(error.reason);
    }
  }
}

function nextBufferSize(current: number, used: number): number {
  if (used === current) return Math.min(current * 2, MAX_READ_BUFFER_BYTES);
  if (used < current / 4) return Math.max(current / 2, MIN_READ_BUFFER_BYTES);
  return current;
}
