/**
 * A byte-level push parser for length-prefixed frames: each frame is a 4-byte
 * big-endian unsigned length, then that many bytes. Bytes go in as they arrive,
 * complete frames come out; a frame (its header included) may be split at any byte,
 * and an unfinished frame is a normal state. The length is checked against the limit
 * before anything is allocated for it: a peer cannot make the parser reserve 4 GiB by
 * sending four bytes.
 *
 * {@linkcode encodeLengthPrefixed} writes the same format.
 *
 * @module
 */

import { DEFAULT_MAX_PREFIXED_FRAME_BYTES } from "../defaults.ts";

/** Bytes of the length header. */
const HEADER_BYTES = 4;

/** Options of {@linkcode LengthPrefixedParser}. */
export interface LengthPrefixedParserOptions {
  /** Largest frame accepted, in bytes, without its header. Default 1048576. */
  maxFrameBytes?: number;
}

/** A frame whose announced length is over the parser's `maxFrameBytes`. */
export class FrameTooLargeError extends Error {
  /** The length the header announced, in bytes. */
  readonly size: number;
  /** The limit it exceeds, in bytes. */
  readonly maxFrameBytes: number;

  /** An error for a frame of `size` bytes over `maxFrameBytes`. */
  constructor(size: number, maxFrameBytes: number) {
    super(`Cannot read a frame of ${size} bytes: the limit is ${maxFrameBytes} bytes`);
    this.name = "FrameTooLargeError";
    this.size = size;
    this.maxFrameBytes = maxFrameBytes;
  }
}

/**
 * Prefixes `payload` with its length: 4 bytes, big-endian.
 *
 * @throws {RangeError} If `payload` is 4 GiB or more.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeLengthPrefixed } from "./length_prefixed_parser.ts";
 *
 * assert.deepEqual(encodeLengthPrefixed(new Uint8Array([7, 8])), new Uint8Array([0, 0, 0, 2, 7, 8]));
 * ```
 */
export function encodeLengthPrefixed(payload: Uint8Array): Uint8Array {
  if (payload.length > 0xffff_ffff) {
    throw new RangeError(`Cannot encode a frame of ${payload.length} bytes: the most is 4 GiB - 1`);
  }
  const frame = new Uint8Array(HEADER_BYTES + payload.length);
  new DataView(frame.buffer).setUint32(0, payload.length);
  frame.set(payload, HEADER_BYTES);
  return frame;
}

/**
 * Splits a byte stream into length-prefixed frames; see the module documentation.
 *
 * After a {@linkcode FrameTooLargeError} the parser stays failed (every `push` throws it
 * again): the stream cannot be followed past a frame it will not read.
 *
 * @example A frame split inside its header
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeLengthPrefixed, LengthPrefixedParser } from "./length_prefixed_parser.ts";
 *
 * const parser = new LengthPrefixedParser({ maxFrameBytes: 1024 });
 * const bytes = encodeLengthPrefixed(new TextEncoder().encode("hello"));
 * assert.deepEqual(parser.push(bytes.subarray(0, 2)), []);
 * assert.equal(parser.buffered, 2); // an unfinished frame: normal
 * const [frame] = parser.push(bytes.subarray(2));
 * assert.equal(new TextDecoder().decode(frame), "hello");
 * ```
 */
export class LengthPrefixedParser {
  readonly #maxFrameBytes: number;
  /** The header read so far, `#headerLength` bytes of it. */
  readonly #header = new Uint8Array(HEADER_BYTES);
  #headerLength = 0;
  /** The frame whose header is read, `#filled` bytes of it so far. */
  #frame: Uint8Array | undefined;
  #filled = 0;
  #failure: FrameTooLargeError | undefined;

  /** A parser with no input yet. */
  constructor(options: LengthPrefixedParserOptions = {}) {
    const max = options.maxFrameBytes ?? DEFAULT_MAX_PREFIXED_FRAME_BYTES;
    if (!(Number.isInteger(max) && max >= 0)) {
      throw new RangeError(`Cannot use maxFrameBytes ${max}: expected a whole number of bytes`);
    }
    this.#maxFrameBytes = max;
  }

  /** What one parsed item is called in errors: `frame`. */
  get unit(): string {
    return "frame";
  }

  /** Bytes of an unfinished frame held, its header included (0 between frames). */
  get buffered(): number {
    return this.#headerLength + this.#filled;
  }

  /**
   * Takes the next bytes of the stream; returns the frames they completed, in order,
   * without their headers. Each frame is a copy, the caller's to keep; `chunk` is not
   * kept, so the caller may reuse it.
   *
   * @throws {FrameTooLargeError} When a header announces more than `maxFrameBytes`.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#failure) throw this.#failure;
    const frames: Uint8Array[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.#frame === undefined) {
        let length: number;
        if (this.#headerLength === 0 && chunk.length - at >= HEADER_BYTES) {
          length = readLength(chunk, at);
          at += HEADER_BYTES;
        } else {
          const take = Math.min(HEADER_BYTES - this.#headerLength, chunk.length - at);
          this.#header.set(chunk.subarray(at, at + take), this.#headerLength);
          this.#headerLength += take;
          at += take;
          if (this.#headerLength < HEADER_BYTES) break;
          length = readLength(this.#header, 0);
        }
        if (length > this.#maxFrameBytes) this.#fail(length);
        if (chunk.length - at >= length) { // The whole frame is here: one copy.
          frames.push(chunk.slice(at, at + length));
          at += length;
          this.#headerLength = 0;
          continue;
        }
        this.#frame = new Uint8Array(length);
        this.#filled = 0;
      }
      const frame = this.#frame;
      const take = Math.min(frame.length - this.#filled, chunk.length - at);
      frame.set(chunk.subarray(at, at + take), this.#filled);
      this.#filled += take;
      at += take;
      if (this.#filled === frame.length) {
        frames.push(frame);
        this.#frame = undefined;
        this.#filled = 0;
        this.#headerLength = 0;
      }
    }
    return frames;
  }

  #fail(length: number): never {
    this.#failure = new FrameTooLargeError(length, this.#maxFrameBytes);
    this.#headerLength = 0;
    throw this.#failure;
  }
}

function readLength(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) >>> 0) + (bytes[at + 1] << 16) + (bytes[at + 2] << 8) + bytes[at + 3];
}
