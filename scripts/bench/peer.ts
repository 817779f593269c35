/**
 * One connection of the load generator to the server, as the generator's roles use it.
 *
 * It owns the generator's socket I/O: connecting (no Nagle delay), writing a buffer
 * whole, and reading what the server sends through the project's own
 * {@linkcode ServerFrameDecoder}, so that a `PONG`, a relayed `MSG` or an `ERR` is
 * recognised exactly as a parrot client would. Every wait is bounded by a deadline.
 *
 * @module
 */

import type { ServerFrame } from "../../lib/parrot/frame.ts";
import { ServerFrameDecoder } from "../../lib/parrot/frame_decoder.ts";

const encoder = new TextEncoder();

/** Throws when `deadline` (a `Date.now()` value) has passed. */
export function checkDeadline(deadline: number, what: string): void {
  if (Date.now() > deadline) throw new Error(`${what} ran out of time`);
}

/** A generator connection: writes bytes, reads frames. */
export class Peer {
  readonly conn: Deno.TcpConn;
  readonly decoder: ServerFrameDecoder = new ServerFrameDecoder();
  #buffer: Uint8Array;
  #closed = false;

  private constructor(conn: Deno.TcpConn, readBufferBytes: number) {
    this.conn = conn;
    this.#buffer = new Uint8Array(readBufferBytes);
  }

  /** Connects to the server on 127.0.0.1:`port`; reads go through a buffer of this size. */
  static async connect(port: number, readBufferBytes = 4096): Promise<Peer> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    return new Peer(conn, readBufferBytes);
  }

  /** Writes all of `data`. */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    for (let done = 0; done < bytes.length;) done += await this.conn.write(bytes.subarray(done));
  }

  /**
   * Reads once and decodes. Returns the frames (their payloads are views of the read
   * buffer, valid until the next read), or null when the server closed the connection.
   * Throws on a protocol error.
   */
  async read(): Promise<ServerFrame[] | null> {
    const n = await this.conn.read(this.#buffer);
    if (n === null) return null;
    const { frames, error } = this.decoder.push(this.#buffer.subarray(0, n));
    if (error) throw new Error(`Cannot decode what the server sent: ${error.message}`);
    return frames;
  }

  /** Reads until a `PONG`; throws on `ERR`, on close, or after `deadline`. */
  async untilPong(deadline: number): Promise<void> {
    for (;;) {
      checkDeadline(deadline, "waiting for PONG");
      const frames = await this.read();
      if (frames === null) throw new Error("The server closed the connection before PONG");
      for (const frame of frames) {
        if (frame.type === "pong") return;
        if (frame.type === "err") throw new Error(`The server sent ERR ${frame.reason}`);
      }
    }
  }

  /** Closes the connection (once; an already closed one is fine). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // Closed by the server already.
    }
  }
}

/** `MSG <size>\n` + `size` bytes of `x` + `\n`, the frame a sender repeats. */
export function msgFrame(size: number): Uint8Array {
  return encoder.encode(`MSG ${size}\n${"x".repeat(size)}\n`);
}

/** `frame` repeated to fill at most `batchBytes` (at least once), and how many it holds. */
export function frameBatch(frame: Uint8Array, batchBytes: number): {
  batch: Uint8Array;
  perBatch: number;
} {
  const perBatch = Math.max(1, Math.floor(batchBytes / frame.length));
  const batch = new Uint8Array(perBatch * frame.length);
  for (let i = 0; i < perBatch; i++) batch.set(frame, i * frame.length);
  return { batch, perBatch };
}
