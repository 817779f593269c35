/**
 * The little of NATS's text protocol the bench's fan-out rows speak to a real `nats-server`,
 * so that the same generator, messages and checks measure parrot and NATS side by side.
 *
 * Owned here: the frames a client sends (`CONNECT {"verbose":false,"pedantic":false}`,
 * `SUB <subject> <sid>`, `PUB <subject> <n>\r\n<payload>\r\n`, `PING`, `PONG`) and a
 * byte-level push decoder of what the server sends, which counts `MSG` frames (skipping
 * their payloads) and `PING`/`PONG`s, and reports `-ERR`. Like the project's own decoders
 * (nats.js's shape) it takes a stream split at any byte, and caps a control line's length
 * and a payload's size before it trusts them.
 *
 * @module
 */

const encoder = new TextEncoder();
const CR = 0x0d;
const LF = 0x0a;

/** The subject the fan-out rows publish on and subscribe to. */
export const NATS_SUBJECT = "bench";
/** The client's first line: no `+OK` after every frame. */
export const NATS_CONNECT = `CONNECT {"verbose":false,"pedantic":false}\r\n`;
/** Longest control line taken (`INFO` is the longest, about 1 KiB). */
export const MAX_NATS_LINE = 64 * 1024;
/** Largest payload taken (nats-server's default `max_payload` is 1 MiB). */
export const MAX_NATS_PAYLOAD = 64 * 1024 * 1024;

/** `PUB <subject> <n>\r\n` + `size` bytes of `x` + `\r\n`, the frame a publisher repeats. */
export function natsPubFrame(size: number, subject = NATS_SUBJECT): Uint8Array {
  return encoder.encode(`PUB ${subject} ${size}\r\n${"x".repeat(size)}\r\n`);
}

/** Bytes of one relayed `MSG <subject> <sid> <n>\r\n<payload>\r\n` frame. */
export function natsMsgFrameBytes(size: number, subject = NATS_SUBJECT, sid = "1"): number {
  return `MSG ${subject} ${sid} ${size}\r\n`.length + size + 2;
}

/** What one push of bytes held. */
export interface NatsCounts {
  msgs: number;
  pings: number;
  pongs: number;
  /** The first `-ERR ...` line, or a decoding error; the rest of the stream is not trusted. */
  error: string | null;
}

/** Counts the frames of a server's byte stream, split anywhere. */
export class NatsCounter {
  readonly #line = new Uint8Array(MAX_NATS_LINE);
  #lineLength = 0;
  /** Payload bytes (and the CR LF after them) still to skip. */
  #skip = 0;
  #failed: string | null = null;
  readonly #counts: NatsCounts = { msgs: 0, pings: 0, pongs: 0, error: null };

  /** Takes the next bytes; returns the frames they completed (the object is reused). */
  push(bytes: Uint8Array): NatsCounts {
    const counts = this.#counts;
    counts.msgs = 0;
    counts.pings = 0;
    counts.pongs = 0;
    counts.error = this.#failed;
    let i = 0;
    while (i < bytes.length && this.#failed === null) {
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, bytes.length - i);
        this.#skip -= take;
        i += take;
        continue;
      }
      const lf = bytes.indexOf(LF, i);
      const end = lf === -1 ? bytes.length : lf;
      if (this.#lineLength + (end - i) > MAX_NATS_LINE) {
        this.#fail(`a control line is longer than ${MAX_NATS_LINE} bytes`);
        break;
      }
      this.#line.set(bytes.subarray(i, end), this.#lineLength);
      this.#lineLength += end - i;
      if (lf === -1) break;
      i = lf + 1;
      this.#endLine(counts);
    }
    counts.error = this.#failed;
    return counts;
  }

  #fail(reason: string): void {
    this.#failed ??= reason;
  }

  /** One control line is complete (without its LF). */
  #endLine(counts: NatsCounts): void {
    let length = this.#lineLength;
    this.#lineLength = 0;
    if (length > 0 && this.#line[length - 1] === CR) length--;
    const line = this.#line.subarray(0, length);
    const word = String.fromCharCode(...line.subarray(0, Math.min(5, length))).toUpperCase();
    if (word.startsWith("MSG ")) {
      const size = lastNumber(line);
      if (size === null || size > MAX_NATS_PAYLOAD) {
        this.#fail(`Cannot read the size of a MSG frame`);
        return;
      }
      counts.msgs++;
      this.#skip = size + 2;
    } else if (word === "PING") counts.pings++;
    else if (word === "PONG") counts.pongs++;
    else if (word.startsWith("-ERR")) {
      this.#fail(new TextDecoder().decode(line.subarray(0, Math.min(200, length))));
    } else if (!word.startsWith("+OK") && !word.startsWith("INFO") && length > 0) {
      this.#fail(`Cannot read a frame starting "${word}"`);
    }
  }
}

/** The number at the end of a control line (a MSG frame's payload size), or null. */
function lastNumber(line: Uint8Array): number | null {
  let end = line.length;
  while (end > 0 && line[end - 1] === 0x20) end--;
  let start = end;
  while (start > 0 && line[start - 1] >= 0x30 && line[start - 1] <= 0x39) start--;
  if (start === end || end - start > 10 || start === 0 || line[start - 1] !== 0x20) return null;
  let value = 0;
  for (let i = start; i < end; i++) value = value * 10 + (line[i] - 0x30);
  return value;
}

/** A generator connection to a `nats-server`: writes bytes, counts what it reads. */
export class NatsPeer {
  readonly conn: Deno.TcpConn;
  readonly counter: NatsCounter = new NatsCounter();
  readonly #buffer: Uint8Array;
  #closed = false;

  private constructor(conn: Deno.TcpConn, readBufferBytes: number) {
    this.conn = conn;
    this.#buffer = new Uint8Array(readBufferBytes);
  }

  /**
   * Connects to 127.0.0.1:`port`, says CONNECT (and `SUB <subject> <sid>` when given),
   * then PING, and returns once the PONG has come (the subscription is in place).
   */
  static async connect(
    port: number,
    deadline: number,
    options: { readBufferBytes?: number; subscribe?: { subject: string; sid: string } } = {},
  ): Promise<NatsPeer> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    const peer = new NatsPeer(conn, options.readBufferBytes ?? 4096);
    try {
      const sub = options.subscribe;
      await peer.write(
        `${NATS_CONNECT}${sub ? `SUB ${sub.subject} ${sub.sid}\r\n` : ""}PING\r\n`,
      );
      await peer.untilPong(deadline);
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
   * Reads once; returns how many MSG frames it completed (answering the server's PINGs), or
   * null when the server closed the connection; throws on `-ERR` or a decoding error.
   * Sets `pongs` to the PONGs it held.
   */
  async read(): Promise<number | null> {
    const n = await this.conn.read(this.#buffer);
    if (n === null) return null;
    const counts = this.counter.push(this.#buffer.subarray(0, n));
    if (counts.error !== null) throw new Error(`nats-server sent ${counts.error}`);
    for (let i = 0; i < counts.pings; i++) await this.write("PONG\r\n");
    this.pongs = counts.pongs;
    return counts.msgs;
  }

  /** PONGs of the last read. */
  pongs = 0;

  /** Reads until a `PONG`; throws on `-ERR`, on close, or after `deadline`. */
  async untilPong(deadline: number): Promise<void> {
    for (;;) {
      if (Date.now() > deadline) throw new Error("waiting for PONG ran out of time");
      const msgs = await this.read();
      if (msgs === null) throw new Error("nats-server closed the connection before PONG");
      if (this.pongs > 0) return;
    }
  }

  /** Closes the connection (once). */
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
