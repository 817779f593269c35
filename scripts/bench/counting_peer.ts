/**
 * One connection of the fan-out roles that counts what it reads instead of decoding it:
 * parrot's or NATS's wire through one {@linkcode RelayCounter}, so the generator spends the
 * same on each relayed message whichever server it measures.
 *
 * It owns the socket I/O of such a connection: connecting (no Nagle delay), the greeting
 * and the PING/PONG that confirms it, writing a buffer whole, answering the server's PINGs,
 * and the PING/PONG barrier. Every wait is bounded by a deadline.
 *
 * @module
 */

import { RelayCounter, type RelayWire } from "./relay_counter.ts";

const encoder = new TextEncoder();

/** A counting generator connection. */
export class CountingPeer {
  readonly conn: Deno.TcpConn;
  readonly counter: RelayCounter;
  /** PONGs of the last read. */
  pongs = 0;
  readonly #buffer: Uint8Array;
  readonly #lineEnd: string;
  #closed = false;

  private constructor(conn: Deno.TcpConn, wire: RelayWire, readBufferBytes: number) {
    this.conn = conn;
    this.counter = new RelayCounter(wire);
    this.#buffer = new Uint8Array(readBufferBytes);
    this.#lineEnd = wire === "nats" ? "\r\n" : "\n";
  }

  /**
   * Connects to 127.0.0.1:`port`, writes `greeting` (parrot's `HELLO ...`, NATS's
   * `CONNECT ...` and `SUB ...`) and a PING, and returns once the PONG has come.
   */
  static async connect(
    port: number,
    wire: RelayWire,
    greeting: string,
    deadline: number,
    readBufferBytes = 4096,
  ): Promise<CountingPeer> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    const peer = new CountingPeer(conn, wire, readBufferBytes);
    try {
      await peer.barrier(deadline, greeting);
    } catch (error) {
      peer.close();
      throw error;
    }
    return peer;
  }

  /** Writes all of `data`. */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    for (let done = 0; done < bytes.length;) done += await this.conn.write(bytes.subarray(done));
  }

  /**
   * Reads once; returns how many messages it completed (answering the server's PINGs), or
   * null when the server closed the connection; throws on the server's error line or a
   * decoding error. Sets `pongs` to the PONGs it held.
   */
  async read(): Promise<number | null> {
    const n = await this.conn.read(this.#buffer);
    if (n === null) return null;
    const counts = this.counter.push(this.#buffer.subarray(0, n));
    if (counts.error !== null) throw new Error(`the server sent ${counts.error}`);
    for (let i = 0; i < counts.pings; i++) await this.write(`PONG${this.#lineEnd}`);
    this.pongs = counts.pongs;
    return counts.msgs;
  }

  /**
   * The barrier: writes `before` and a PING, then reads until the PONG (throws on an error,
   * on close, or after `deadline`). Messages read meanwhile are returned.
   */
  async barrier(deadline: number, before = ""): Promise<number> {
    await this.write(`${before}PING${this.#lineEnd}`);
    let messages = 0;
    for (;;) {
      if (Date.now() > deadline) throw new Error("waiting for PONG ran out of time");
      const read = await this.read();
      if (read === null) throw new Error("the server closed the connection before PONG");
      messages += read;
      if (this.pongs > 0) return messages;
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
