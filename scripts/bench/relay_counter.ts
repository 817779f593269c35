/**
 * The fan-out subscribers' reader: a byte-level push decoder that counts the relayed
 * messages of a server's stream, in parrot's wire (`MSG <from> <n>\n<payload>\n`) or
 * NATS's (`MSG <subject> <sid> <n>\r\n<payload>\r\n`), and the PINGs and PONGs between them.
 *
 * Owned apart from the project's own decoder so that the fan-out rows compare the servers,
 * not the generator's reading: both wires are counted by this one loop, which skips each
 * payload without looking at it and allocates nothing per message (a control line whole in
 * one push is read where it lies; only one split across pushes is copied). Like the
 * project's decoders (nats.js's shape) it takes a stream split at any byte, and caps a
 * control line's length and a payload's size before it trusts them.
 *
 * @module
 */

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;

/** Longest control line taken (NATS's `INFO` is the longest, about 1 KiB). */
export const MAX_RELAY_LINE = 64 * 1024;
/** Largest payload taken (parrot's `--max-frame` and nats-server's `max_payload` are lower). */
export const MAX_RELAY_PAYLOAD = 64 * 1024 * 1024;

/** The wire a {@linkcode RelayCounter} reads. */
export type RelayWire = "parrot" | "nats";

/** What one push of bytes held. */
export interface RelayCounts {
  msgs: number;
  pings: number;
  pongs: number;
  /**
   * The first `ERR`/`-ERR` line, parrot's `QUIT`, or a decoding error; the rest of the stream
   * is not trusted.
   */
  error: string | null;
}

/** The letter of `byte`, lower case (ASCII letters only; other bytes pass unchanged). */
function lower(byte: number): number {
  return byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte;
}

/** The text of `line[start, end)`, at most 200 bytes of it. */
function text(line: Uint8Array, start: number, end: number): string {
  return new TextDecoder().decode(line.subarray(start, Math.min(end, start + 200)));
}

/** Counts the frames of a server's byte stream, split anywhere. */
export class RelayCounter {
  readonly wire: RelayWire;
  /** Bytes after a payload: LF (parrot) or CR LF (NATS). */
  readonly #trailer: number;
  readonly #line = new Uint8Array(MAX_RELAY_LINE);
  #lineLength = 0;
  /** Payload bytes (and the line end after them) still to skip. */
  #skip = 0;
  #failed: string | null = null;
  readonly #counts: RelayCounts = { msgs: 0, pings: 0, pongs: 0, error: null };

  constructor(wire: RelayWire) {
    this.wire = wire;
    this.#trailer = wire === "nats" ? 2 : 1;
  }

  /** Takes the next bytes; returns the frames they completed (the object is reused). */
  push(bytes: Uint8Array): RelayCounts {
    const counts = this.#counts;
    counts.msgs = 0;
    counts.pings = 0;
    counts.pongs = 0;
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
      if (this.#lineLength + (end - i) > MAX_RELAY_LINE) {
        this.#failed = `a control line is longer than ${MAX_RELAY_LINE} bytes`;
        break;
      }
      if (lf !== -1 && this.#lineLength === 0) {
        this.#endLine(bytes, i, end, counts); // Whole in this push.
      } else {
        this.#line.set(bytes.subarray(i, end), this.#lineLength);
        this.#lineLength += end - i;
        if (lf === -1) break;
        const length = this.#lineLength;
        this.#lineLength = 0;
        this.#endLine(this.#line, 0, length, counts);
      }
      i = lf + 1;
    }
    counts.error = this.#failed;
    return counts;
  }

  /** The control line `line[start, end)` (without its LF) is complete. */
  #endLine(line: Uint8Array, start: number, end: number, counts: RelayCounts): void {
    if (end > start && line[end - 1] === CR) end--;
    const length = end - start;
    if (length === 0) return;
    const first = lower(line[start]);
    const second = length > 1 ? lower(line[start + 1]) : 0;
    if (first === 0x6d && second === 0x73 && length > 4 && line[start + 3] === SPACE) { // MSG
      const size = lastNumber(line, start, end);
      if (size === null || size > MAX_RELAY_PAYLOAD) {
        this.#failed = `Cannot read the size of a MSG frame: "${text(line, start, end)}"`;
        return;
      }
      counts.msgs++;
      this.#skip = size + this.#trailer;
    } else if (first === 0x70 && length === 4 && second === 0x69) counts.pings++; // PING
    else if (first === 0x70 && length === 4 && second === 0x6f) counts.pongs++; // PONG
    else if (this.wire === "nats" && (first === 0x2b || first === 0x69)) {
      // +OK, INFO: nothing to count.
    } else {
      // parrot's ERR <reason> or QUIT, NATS's -ERR, or anything else.
      this.#failed = text(line, start, end);
    }
  }
}

/** The number at the end of the control line `line[start, end)` (a MSG's size), or null. */
function lastNumber(line: Uint8Array, start: number, end: number): number | null {
  while (end > start && line[end - 1] === SPACE) end--;
  let digits = end;
  while (digits > start && line[digits - 1] >= 0x30 && line[digits - 1] <= 0x39) digits--;
  if (digits === end || end - digits > 10 || digits === start || line[digits - 1] !== SPACE) {
    return null;
  }
  let value = 0;
  for (let i = digits; i < end; i++) value = value * 10 + (line[i] - 0x30);
  return value;
}
