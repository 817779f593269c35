/**
 * A byte-level push parser for lines: bytes go in as they arrive, complete lines come
 * out. A line may be split across chunks at any byte (even between `\r` and `\n`); an
 * unfinished line is a normal state, held until its end arrives. A line longer than the
 * limit is an error as soon as its bytes exceed it, before they are all buffered: a
 * peer cannot make the parser hold more than the limit by never sending `\n`.
 *
 * Lines end at `\n`; a `\r` just before it is dropped too, so `\r\n` clients work.
 * Lines are bytes, never decoded: binary-safe, and the caller picks the text decoding.
 *
 * @module
 */

import { DEFAULT_MAX_LINE_BYTES } from "../defaults.ts";

const LF = 0x0a;
const CR = 0x0d;

/** Options of {@linkcode LineParser}. */
export interface LineParserOptions {
  /** Longest line accepted, in bytes, without its line end. Default 65536. */
  maxLineBytes?: number;
}

/** A line over the parser's `maxLineBytes`: the stream cannot be trusted past it. */
export class LineTooLongError extends Error {
  /** The limit that was exceeded, in bytes. */
  readonly maxLineBytes: number;

  /** An error for a line over `maxLineBytes`. */
  constructor(maxLineBytes: number) {
    super(`Cannot read a line: it is longer than the limit of ${maxLineBytes} bytes`);
    this.name = "LineTooLongError";
    this.maxLineBytes = maxLineBytes;
  }
}

/**
 * Splits a byte stream into lines; see the module documentation.
 *
 * After a {@linkcode LineTooLongError} the parser stays failed (every `push` throws it
 * again): where the next line starts is unknown, so the connection should be closed.
 *
 * @example Lines split across chunks
 * ```ts
 * import assert from "node:assert/strict";
 * import { LineParser } from "./line_parser.ts";
 *
 * const parser = new LineParser({ maxLineBytes: 64 });
 * const encoder = new TextEncoder();
 * const decode = (lines: Uint8Array[]) => lines.map((line) => new TextDecoder().decode(line));
 * assert.deepEqual(decode(parser.push(encoder.encode("GET ke"))), []);
 * assert.equal(parser.buffered, 6); // an unfinished line: normal, kept for the next push
 * assert.deepEqual(decode(parser.push(encoder.encode("y\r\nSET a 1\nDEL"))), ["GET key", "SET a 1"]);
 * assert.deepEqual(decode(parser.push(encoder.encode(" a\n"))), ["DEL a"]);
 * ```
 */
export class LineParser {
  readonly #maxLineBytes: number;
  /** The unfinished line, `#length` bytes of it. */
  #buffer = new Uint8Array(0);
  #length = 0;
  #failure: LineTooLongError | undefined;

  /** A parser with no input yet. */
  constructor(options: LineParserOptions = {}) {
    const max = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    if (!(Number.isInteger(max) && max >= 0)) {
      throw new RangeError(`Cannot use maxLineBytes ${max}: expected a whole number of bytes`);
    }
    this.#maxLineBytes = max;
  }

  /** What one parsed item is called in errors: `line`. */
  get unit(): string {
    return "line";
  }

  /** Bytes of an unfinished line held (0 between lines). */
  get buffered(): number {
    return this.#length;
  }

  /**
   * Takes the next bytes of the stream; returns the lines they completed, in order,
   * without their line ends. Each line is a copy, the caller's to keep; `chunk` is not
   * kept, so the caller may reuse it.
   *
   * @throws {LineTooLongError} When a line exceeds `maxLineBytes`.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failure) throw this.#failure;
    const lines: Uint8Array[] = [];
    let start = 0;
    while (start < chunk.length) {
      const end = chunk.indexOf(LF, start);
      if (end === -1) {
        this.#hold(chunk, start, chunk.length);
        break;
      }
      let line: Uint8Array;
      if (this.#length === 0) {
        this.#checkComplete(end - start, chunk[end - 1] === CR && end > start);
        line = chunk.slice(start, end);
      } else {
        const length = this.#length + end - start;
        const lastByte = end > start ? chunk[end - 1] : this.#buffer[this.#length - 1];
        this.#checkComplete(length, lastByte === CR);
        line = new Uint8Array(length);
        line.set(this.#buffer.subarray(0, this.#length));
        line.set(chunk.subarray(start, end), this.#length);
        this.#length = 0;
      }
      lines.push(line.length > 0 && line[line.length - 1] === CR ? line.subarray(0, -1) : line);
      start = end + 1;
    }
    return lines;
  }

  /** Keeps `chunk[from, to)`, the start of a line whose end has not come yet. */
  #hold(chunk: Uint8Array, from: number, to: number): void {
    const length = this.#length + to - from;
    // One byte over the limit may still be the `\r` of a `\r\n`; more may not.
    if (length > this.#maxLineBytes + 1 || (length > this.#maxLineBytes && chunk[to - 1] !== CR)) {
      this.#fail();
    }
    if (length > this.#buffer.length) {
      const grown = new Uint8Array(
        Math.min(Math.max(length, this.#buffer.length * 2, 64), this.#maxLineBytes + 1),
      );
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    this.#buffer.set(chunk.subarray(from, to), this.#length);
    this.#length = length;
  }

  /** Checks a complete line of `length` bytes (with its `\r`, if `endsWithCr`). */
  #checkComplete(length: number, endsWithCr: boolean): void {
    if (length - (endsWithCr ? 1 : 0) > this.#maxLineBytes) this.#fail();
  }

  #fail(): never {
    this.#failure = new LineTooLongError(this.#maxLineBytes);
    this.#length = 0;
    this.#buffer = new Uint8Array(0);
    throw this.#failure;
  }
}
