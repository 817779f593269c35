/**
 * Async readers of framed input over a connection: `for await (const line of
 * readLines(conn, ...))`. They put a push parser ({@linkcode LineParser},
 * {@linkcode LengthPrefixedParser}, or any {@linkcode PushParser}) on top of a
 * `Deno.Conn` (or any reader with a Deno-style `read`) or a `ReadableStream` of bytes,
 * and add what a server needs around it: an idle deadline (how long to wait for the
 * next line or frame to begin), a read deadline (how long one may take once its first
 * byte arrived: the slow-loris guard), an `AbortSignal`, and a clear error when the
 * connection ends in the middle of one.
 *
 * One timer per reader, whatever the traffic ({@linkcode TimedReader}). The readers
 * never close the connection: on an error the caller decides (usually: close it).
 *
 * @module
 */

import { abortable, isTimeoutError } from "./deadline.ts";
import {
  LengthPrefixedParser,
  type LengthPrefixedParserOptions,
} from "./length_prefixed_parser.ts";
import { LineParser, type LineParserOptions } from "./line_parser.ts";
import { type ByteReader, TimedReader } from "./timed_reader.ts";

/** A byte-level push parser: bytes in as they arrive, complete items out. */
export interface PushParser<T> {
  /** Takes the next bytes; returns the items they completed. May keep none of `chunk`. */
  push(chunk: Uint8Array): T[];
  /** Bytes of an unfinished item held (0 between items). */
  readonly buffered: number;
  /** What one item is called in errors, such as `line` or `frame`. */
  readonly unit: string;
}

/** Where framed input comes from: a `Deno.Conn` (any `read`er) or a byte stream. */
export type ByteSource = ByteReader | ReadableStream<Uint8Array>;

/** Options of {@linkcode readFramed}, {@linkcode readLines} and {@linkcode readLengthPrefixed}. */
export interface ReadFramedOptions {
  /**
   * Milliseconds to wait for the next item to begin; past it the reader throws a
   * `TimeoutError` `DOMException`. Default: no limit.
   */
  idleTimeoutMs?: number;
  /**
   * Milliseconds one item may take to complete once its first byte arrived; past it the
   * reader throws a `TimeoutError` `DOMException`. Default: no limit.
   */
  readTimeoutMs?: number;
  /** Aborting it stops the reader: it throws `signal.reason`. */
  signal?: AbortSignal;
  /** Size of the read buffer, in bytes. Default 16384. */
  bufferBytes?: number;
}

const DEFAULT_BUFFER_BYTES = 16 * 1024;

/**
 * Yields each item `parser` finds in `source`, in order, until the end of the input.
 *
 * @throws {DOMException} A `TimeoutError` when a deadline passes.
 * @throws {Deno.errors.UnexpectedEof} When the input ends inside an item.
 * @throws {unknown} `signal.reason` when the signal aborts; the parser's errors (a line
 * or frame over its limit); the source's errors.
 *
 * @example Any push parser over a connection
 * ```ts
 * import assert from "node:assert/strict";
 * import { LineParser } from "./line_parser.ts";
 * import { readFramed } from "./read_framed.ts";
 *
 * const input = ReadableStream.from([new TextEncoder().encode("a\nb\n")]);
 * const lines: string[] = [];
 * for await (const line of readFramed(input, new LineParser())) {
 *   lines.push(new TextDecoder().decode(line));
 * }
 * assert.deepEqual(lines, ["a", "b"]);
 * ```
 */
export async function* readFramed<T>(
  source: ByteSource,
  parser: PushParser<T>,
  options: ReadFramedOptions = {},
): AsyncGenerator<T, void, undefined> {
  const { idleTimeoutMs, readTimeoutMs, signal } = options;
  const stream = source instanceof ReadableStream ? new StreamReader(source) : undefined;
  const reader = new TimedReader(stream ?? (source as ByteReader));
  const buffer = new Uint8Array(options.bufferBytes ?? DEFAULT_BUFFER_BYTES);
  /** When the first byte of the unfinished item arrived. */
  let startedAt = 0;
  try {
    for (;;) {
      signal?.throwIfAborted();
      const unfinished = parser.buffered > 0;
      const limitMs = unfinished ? readTimeoutMs : idleTimeoutMs;
      const deadlineAt = limitMs === undefined
        ? Infinity
        : (unfinished ? startedAt : Date.now()) + limitMs;
      let chunk: Uint8Array | null;
      try {
        const reading = reader.read(buffer, deadlineAt);
        chunk = signal ? await abortable(reading, signal) : await reading;
      } catch (error) {
        if (!isTimeoutError(error) || error === signal?.reason) throw error;
        throw new DOMException(
          unfinished
            ? `Cannot read a ${parser.unit}: it did not complete within ${readTimeoutMs}ms of its first byte`
            : `Cannot read a ${parser.unit}: none began within ${idleTimeoutMs}ms`,
          "TimeoutError",
        );
      }
      if (chunk === null) {
        if (parser.buffered === 0) return;
        throw new Deno.errors.UnexpectedEof(
          `Cannot read a ${parser.unit}: the input ended after ${parser.buffered} bytes of it`,
        );
      }
      const items = parser.push(chunk);
      if (parser.buffered > 0 && (items.length > 0 || !unfinished)) startedAt = Date.now();
      for (const item of items) yield item;
    }
  } finally {
    reader.dispose();
    stream?.release();
  }
}

/**
 * Yields each line of `source` (bytes, without the `\n` or `\r\n`), as {@linkcode readFramed}
 * does with a {@linkcode LineParser}.
 *
 * @throws {LineTooLongError} For a line over `maxLineBytes` (default 65536).
 *
 * @example A line protocol with deadlines
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLines } from "./read_framed.ts";
 *
 * const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
 * const writer = writable.getWriter();
 * writer.write(new TextEncoder().encode("PING\r\nQUIT\n"));
 * const heard: string[] = [];
 * try {
 *   for await (const line of readLines(readable, { maxLineBytes: 1024, idleTimeoutMs: 50 })) {
 *     heard.push(new TextDecoder().decode(line));
 *   }
 * } catch (error) {
 *   assert.equal((error as DOMException).name, "TimeoutError"); // nothing more within 50ms
 * }
 * assert.deepEqual(heard, ["PING", "QUIT"]);
 * ```
 */
export function readLines(
  source: ByteSource,
  options: ReadFramedOptions & LineParserOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  return readFramed(source, new LineParser(options), options);
}

/**
 * Yields each length-prefixed frame of `source` (4-byte big-endian length, then the
 * bytes; see {@linkcode LengthPrefixedParser}), without its header.
 *
 * @throws {FrameTooLargeError} For a frame over `maxFrameBytes` (default 1048576).
 *
 * @example Frames from a stream
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeLengthPrefixed } from "./length_prefixed_parser.ts";
 * import { readLengthPrefixed } from "./read_framed.ts";
 *
 * const input = ReadableStream.from([
 *   encodeLengthPrefixed(new Uint8Array([1, 2])),
 *   encodeLengthPrefixed(new Uint8Array([3])),
 * ]);
 * const frames: Uint8Array[] = [];
 * for await (const frame of readLengthPrefixed(input, { maxFrameBytes: 16 })) frames.push(frame);
 * assert.deepEqual(frames, [new Uint8Array([1, 2]), new Uint8Array([3])]);
 * ```
 */
export function readLengthPrefixed(
  source: ByteSource,
  options: ReadFramedOptions & LengthPrefixedParserOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  return readFramed(source, new LengthPrefixedParser(options), options);
}

/** A `ReadableStream` of bytes behind a Deno-style `read`. */
class StreamReader implements ByteReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #rest: Uint8Array | undefined;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#rest === undefined || this.#rest.length === 0) {
      const { done, value } = await this.#reader.read();
      if (done) return null;
      this.#rest = value;
    }
    const n = Math.min(p.length, this.#rest.length);
    p.set(this.#rest.subarray(0, n));
    this.#rest = this.#rest.subarray(n);
    return n;
  }

  /** Lets go of the stream (a pending read ends), leaving it to others. */
  release(): void {
    this.#reader.releaseLock();
  }
}
