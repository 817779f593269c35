/**
 * Incremental decoders for the parrot/1 wire protocol, one per direction.
 *
 * This module owns the byte-level parsing of everything that arrives on a
 * socket: {@linkcode ClientFrameDecoder} is what the server runs on each
 * connection and {@linkcode ServerFrameDecoder} is what a client runs. Both are
 * thin grammars over one shared push parser, which owns the state machine that
 * the two directions have in common:
 *
 * - accumulating a control line up to LF, stripping one CR before it, and
 *   refusing a line longer than `maxLineBytes` as soon as the unfinished line
 *   is longer (a peer cannot make it buffer more than the limit);
 * - collecting the `n` payload bytes of a length-prefixed `MSG` and checking
 *   that LF or CR LF follows them.
 *
 * The parser is a push parser in the style of nats.js's: the socket reader
 * pushes whatever bytes it read, and gets back every frame those bytes
 * completed. A frame may be split at any byte and a chunk may hold many
 * frames; an incomplete frame is the normal state between two pushes, not an
 * error. Like tokio mini-redis's `frame.rs`, checking and parsing are one pass
 * over the bytes, and a frame length is checked against the limit before a
 * single payload byte is buffered.
 *
 * It sits on the server's hot path, so it avoids work per byte: it finds line
 * ends with `Uint8Array.prototype.indexOf`, parses lengths straight from the
 * bytes, never turns a payload into a string, and hands out payloads without
 * copying them when it can.
 *
 * **Zero-copy contract**: a payload (of `msg` or `text`) that lies wholly
 * inside the chunk given to `push` is a `subarray` view of that chunk. The
 * caller must not overwrite or reuse the chunk while it still uses the frames
 * that `push` returned (copy a payload with `slice()` to keep it longer). The
 * decoder itself never keeps a view of a chunk after `push` returns: bytes it
 * needs later are copied, so the caller may reuse the chunk for its next read
 * once it is done with the frames.
 *
 * @module
 */

import { DEFAULT_MAX_FRAME_BYTES, MAX_CONTROL_LINE_BYTES, MAX_NAME_LENGTH } from "../defaults.ts";
import {
  type ClientFrame,
  isValidName,
  MAX_HISTORY_COUNT,
  ProtocolError,
  REASON,
  type ServerFrame,
} from "./frame.ts";

/**
 * Limits of a decoder.
 *
 * @example Accept smaller frames than the default
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClientFrameDecoder, type DecoderOptions } from "./frame_decoder.ts";
 *
 * const options: DecoderOptions = { maxFrameBytes: 4 };
 * const decoder = new ClientFrameDecoder(options);
 * const { error } = decoder.push(new TextEncoder().encode("MSG 5\n"));
 * assert.equal(error?.reason, "frame too large");
 * ```
 */
export interface DecoderOptions {
  /**
   * Longest control line in bytes, without its line end; a longer line is a
   * protocol error. Defaults to {@linkcode MAX_CONTROL_LINE_BYTES} (4096).
   */
  maxLineBytes?: number;
  /**
   * Largest `MSG` payload in bytes, at most 2^32; a larger length is a
   * protocol error. Defaults to {@linkcode DEFAULT_MAX_FRAME_BYTES} (1 MiB).
   */
  maxFrameBytes?: number;
}

/**
 * What one {@linkcode ClientFrameDecoder.push} or
 * {@linkcode ServerFrameDecoder.push} decoded.
 *
 * @typeParam F The frame type of the decoder.
 *
 * @example Handle frames, then the error
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ClientFrame } from "./frame.ts";
 * import { ClientFrameDecoder, type DecodeResult } from "./frame_decoder.ts";
 *
 * const decoder = new ClientFrameDecoder();
 * const result: DecodeResult<ClientFrame> = decoder.push(
 *   new TextEncoder().encode("PING\nMSG x\n"),
 * );
 * assert.deepEqual(result.frames, [{ type: "ping" }]);
 * assert.equal(result.error?.reason, "malformed frame");
 * ```
 */
export interface DecodeResult<F> {
  /** The frames the pushed bytes completed, in order; those before an error too. */
  frames: F[];
  /** The protocol error the decoder hit, if any; it stays failed from then on. */
  error?: ProtocolError;
}

/**
 * Stands, in the frames of {@linkcode ClientFrameDecoder.pushRanges}, for a `MSG`
 * payload that lies wholly in the pushed chunk; its bounds are the next two numbers
 * of the `ranges` array. One shared object: marking a payload allocates nothing.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PAYLOAD_RANGE } from "./frame_decoder.ts";
 *
 * assert.equal(PAYLOAD_RANGE.type, "range");
 * ```
 */
export const PAYLOAD_RANGE: PayloadRange = Object.freeze({ type: "range" as const });

/** The type of {@linkcode PAYLOAD_RANGE}. */
export interface PayloadRange {
  /** Always `"range"`. */
  readonly type: "range";
}

/**
 * Frames that {@linkcode ClientFrameDecoder.pushRanges} appends to arrays that the
 * caller uses again from read to read: the first `frameCount` entries of `frames` and
 * the first `rangeCount` numbers of `ranges` are the frames so far; entries beyond them
 * are left over from earlier reads. Reusing the arrays spares growing new ones, which
 * would cost a copy and some garbage per message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClientFrameDecoder, PAYLOAD_RANGE, type RangedFrames } from "./frame_decoder.ts";
 *
 * const into: RangedFrames = { frames: [], frameCount: 0, ranges: [], rangeCount: 0 };
 * new ClientFrameDecoder().pushRanges(new TextEncoder().encode("MSG 2\nhi\n"), into);
 * assert.equal(into.frameCount, 1);
 * assert.equal(into.frames[0], PAYLOAD_RANGE);
 * assert.deepEqual(into.ranges.slice(0, into.rangeCount), [6, 8]);
 * ```
 */
export interface RangedFrames {
  /** The frames, `frameCount` of them. */
  frames: (ClientFrame | PayloadRange)[];
  /** How many entries of `frames` are in use. */
  frameCount: number;
  /** Start and end of each `PAYLOAD_RANGE` payload in the chunk, in frame order. */
  ranges: number[];
  /** How many numbers of `ranges` are in use (two a range). */
  rangeCount: number;
}

/** Where the parser appends: a fresh array for `push()`, reused ones for `pushRanges()`. */
interface FrameSink<F> {
  frames: F[];
  frameCount: number;
  /** With it, a payload wholly in the chunk becomes `PAYLOAD_RANGE` and two numbers. */
  ranges?: number[];
  rangeCount: number;
}

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
/** Largest accepted `maxFrameBytes`; keeps length arithmetic exact. */
const MAX_FRAME_BYTES_LIMIT = 2 ** 32;
/** Most bytes of a peer's input quoted in an error message. */
const PREVIEW_BYTES = 32;
/** Smallest buffer for a control line that spans pushes. */
const MIN_LINE_BUFFER_BYTES = 128;
const NAME_RULE = `a name is 1 to ${MAX_NAME_LENGTH} visible ASCII characters without spaces`;

/**
 * The one decoder for names and reasons; payloads are never decoded. A leading BOM is
 * kept: it is part of the name or reason, not a mark to drop.
 */
const textDecoder = new TextDecoder("utf-8", { ignoreBOM: true });

function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

const VERB_MSG = ascii("MSG");
const VERB_HELLO = ascii("HELLO");
const VERB_HISTORY = ascii("HISTORY");
const VERB_AUTH = ascii("AUTH");
const VERB_ERR = ascii("ERR");
const LINE_PING = ascii("PING");
const LINE_PONG = ascii("PONG");
const LINE_SUB = ascii("SUB");
const LINE_UNSUB = ascii("UNSUB");
const LINE_QUIT = ascii("QUIT");

/** Whether `bytes[start, end)` is exactly `line`. */
function isLine(bytes: Uint8Array, start: number, end: number, line: Uint8Array): boolean {
  if (end - start !== line.length) return false;
  for (let i = 0; i < line.length; i++) {
    if (bytes[start + i] !== line[i]) return false;
  }
  return true;
}

/** Whether `bytes[start, end)` is `verb` alone or `verb` followed by a space. */
function isVerb(bytes: Uint8Array, start: number, end: number, verb: Uint8Array): boolean {
  const length = verb.length;
  if (end - start < length) return false;
  for (let i = 0; i < length; i++) {
    if (bytes[start + i] !== verb[i]) return false;
  }
  return end - start === length || bytes[start + length] === SPACE;
}

/**
 * The token of an `AUTH <token>` line, as a view of `line` (the line without its line
 * end); `undefined` when the line is not `AUTH`. The one parser of `AUTH`: the server's
 * admission reads the first line with it, and the client decoder its `auth` frames.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseAuthLine } from "./frame_decoder.ts";
 *
 * const line = new TextEncoder().encode("AUTH s3cret");
 * assert.equal(new TextDecoder().decode(parseAuthLine(line, 0, line.length)), "s3cret");
 * assert.equal(parseAuthLine(new TextEncoder().encode("AUTHX"), 0, 5), undefined);
 * ```
 */
export function parseAuthLine(
  line: Uint8Array,
  start: number,
  end: number,
): Uint8Array | undefined {
  if (!isVerb(line, start, end, VERB_AUTH)) return undefined;
  return line.subarray(Math.min(start + VERB_AUTH.length + 1, end), end);
}

/** Quotes (at most the first {@linkcode PREVIEW_BYTES} of) a peer's input for an error message. */
function preview(bytes: Uint8Array, start: number, end: number): string {
  const length = end - start;
  if (length <= PREVIEW_BYTES) {
    return JSON.stringify(textDecoder.decode(bytes.subarray(start, end)));
  }
  const head = textDecoder.decode(bytes.subarray(start, start + PREVIEW_BYTES));
  return `${JSON.stringify(head)}… (${length} bytes)`;
}

/**
 * Parses the decimal `MSG` length in `bytes[start, end)` without building a
 * string or a large number.
 *
 * Only ASCII digits are allowed (no sign, point, space or prefix). Digits stop
 * being accumulated once the value is above `maxFrameBytes`, which caps the
 * digits parsed at those of `maxFrameBytes` plus one: a length of hundreds of
 * digits is `frame too large` and never overflows.
 */
function parseLength(
  bytes: Uint8Array,
  start: number,
  end: number,
  maxFrameBytes: number,
): number | ProtocolError {
  if (start >= end) {
    return new ProtocolError(REASON.malformedFrame, "Cannot parse frame length: it is missing");
  }
  let length = 0;
  for (let i = start; i < end; i++) {
    const digit = bytes[i] - 0x30;
    if (digit < 0 || digit > 9) {
      return new ProtocolError(
        REASON.malformedFrame,
        `Cannot parse frame length ${preview(bytes, start, end)}: not a number`,
      );
    }
    if (length <= maxFrameBytes) length = length * 10 + digit;
  }
  if (length > maxFrameBytes) {
    return new ProtocolError(
      REASON.frameTooLarge,
      `Cannot accept frame length ${
        preview(bytes, start, end)
      }: the limit is ${maxFrameBytes} bytes`,
    );
  }
  return length;
}

/**
 * The direction-specific half of a decoder: what a control line means and
 * what frame a payload completes.
 */
interface Grammar<F> {
  /**
   * Decodes the non-empty control line `bytes[start, end)` (line end
   * stripped). Returns a frame, a payload length to collect before
   * {@linkcode Grammar.payload} is called, or a protocol error. `transient`
   * tells that `bytes` is the parser's own buffer, which is reused: a frame
   * must copy what it keeps of it.
   */
  line(
    bytes: Uint8Array,
    start: number,
    end: number,
    transient: boolean,
  ): F | number | ProtocolError;
  /** Builds the frame that the announced payload completes. */
  payload(payload: Uint8Array): F;
  /**
   * The hot path, if the grammar has one: a whole message frame at `chunk[pos]`,
   * appended to `out` as a range. Returns the position after it, or -1 for anything
   * else, which the general path then decodes (errors included). Only called with
   * `out.ranges`, and only between frames.
   */
  messageAt?(chunk: Uint8Array, pos: number, end: number, out: FrameSink<F>): number;
}

const STATE_LINE = 0;
const STATE_PAYLOAD = 1;
const STATE_PAYLOAD_END = 2;
const STATE_PAYLOAD_CR = 3;
const STATE_FAILED = 4;
type State =
  | typeof STATE_LINE
  | typeof STATE_PAYLOAD
  | typeof STATE_PAYLOAD_END
  | typeof STATE_PAYLOAD_CR
  | typeof STATE_FAILED;

/** The push parser that both decoders share; see the module documentation. */
class FrameParser<F> {
  readonly #grammar: Grammar<F>;
  readonly #maxLineBytes: number;
  #state: State = STATE_LINE;
  /** Holds a control line that spans pushes; grows up to `maxLineBytes + 1`. */
  #line: Uint8Array | null = null;
  #lineLength = 0;
  /** Length of the payload being collected. */
  #expected = 0;
  /** Holds a payload that spans pushes; exactly `#expected` bytes. */
  #payload: Uint8Array | null = null;
  #filled = 0;
  #error: ProtocolError | undefined;

  /** Whether to try the grammar's hot path: its lines are within the limit. */
  readonly #fastMessages: boolean;

  constructor(maxLineBytes: number, grammar: Grammar<F>) {
    this.#maxLineBytes = maxLineBytes;
    this.#grammar = grammar;
    this.#fastMessages = grammar.messageAt !== undefined && maxLineBytes >= MAX_FAST_LINE_BYTES;
  }

  get pending(): boolean {
    return this.#state === STATE_LINE ? this.#lineLength > 0 : this.#state !== STATE_FAILED;
  }

  get bufferedBytes(): number {
    return this.#lineLength + this.#filled + (this.#state === STATE_PAYLOAD_CR ? 1 : 0);
  }

  /**
   * Decodes `chunk`, appending its frames to `out`; returns the protocol error, if
   * any. With `out.ranges`, a payload wholly in the chunk becomes
   * {@linkcode PAYLOAD_RANGE} in the frames and its start and end in `ranges`,
   * instead of a frame with a view.
   */
  push(chunk: Uint8Array, out: FrameSink<F>): ProtocolError | undefined {
    if (this.#error !== undefined) return this.#error;
    const grammar = this.#grammar;
    const frames = out.frames;
    const ranges = out.ranges;
    const end = chunk.length;
    let pos = 0;
    const fast = ranges !== undefined && this.#fastMessages;
    while (pos < end) {
      switch (this.#state) {
        case STATE_LINE: {
          if (fast && this.#lineLength === 0) {
            const next = grammar.messageAt!(chunk, pos, end, out);
            if (next >= 0) {
              pos = next;
              break;
            }
          }
          const lf = chunk.indexOf(LF, pos);
          if (lf === -1) {
            const error = this.#bufferLine(chunk, pos, end);
            if (error !== undefined) return this.#fail(error);
            pos = end;
            break;
          }
          let bytes = chunk;
          let start = pos;
          let lineEnd = lf;
          let transient = false;
          if (this.#lineLength > 0) {
            // The line began in an earlier push: complete it in the buffer.
            const total = this.#lineLength + (lf - pos);
            if (total > this.#maxLineBytes + 1) return this.#fail(this.#lineTooLong());
            bytes = this.#appendLine(chunk, pos, lf);
            start = 0;
            lineEnd = total;
            transient = true;
            this.#lineLength = 0;
          }
          pos = lf + 1;
          if (lineEnd > start && bytes[lineEnd - 1] === CR) lineEnd--;
          if (lineEnd - start > this.#maxLineBytes) return this.#fail(this.#lineTooLong());
          if (lineEnd === start) break; // An empty line is ignored.
          const decoded = grammar.line(bytes, start, lineEnd, transient);
          if (typeof decoded === "number") {
            this.#expected = decoded;
            this.#state = STATE_PAYLOAD;
          } else if (decoded instanceof ProtocolError) {
            return this.#fail(decoded);
          } else {
            frames[out.frameCount++] = decoded;
          }
          break;
        }
        case STATE_PAYLOAD: {
          const expected = this.#expected;
          let payload = this.#payload;
          if (payload === null) {
            // Nothing collected yet: if the payload and its line end are all
            // in this chunk, hand out a view of it.
            const after = pos + expected;
            if (after < end) {
              const terminator = chunk[after];
              if (terminator === LF) {
                this.#payloadInChunk(chunk, pos, after, out);
                pos = after + 1;
                this.#state = STATE_LINE;
                break;
              }
              if (terminator !== CR) {
                return this.#fail(missingLineEnd(expected, terminator));
              }
              if (after + 1 < end) {
                const next = chunk[after + 1];
                if (next !== LF) return this.#fail(missingLineEnd(expected, next));
                this.#payloadInChunk(chunk, pos, after, out);
                pos = after + 2;
                this.#state = STATE_LINE;
                break;
              }
            }
            // The payload or its line end is in a later chunk: copy it out,
            // as the caller may reuse this chunk once `push` returns.
            payload = this.#payload = new Uint8Array(expected);
          }
          const take = Math.min(expected - this.#filled, end - pos);
          if (take > 0) {
            payload.set(chunk.subarray(pos, pos + take), this.#filled);
            this.#filled += take;
            pos += take;
          }
          if (this.#filled === expected) this.#state = STATE_PAYLOAD_END;
          break;
        }
        case STATE_PAYLOAD_END: {
          const byte = chunk[pos++];
          if (byte === LF) {
            frames[out.frameCount++] = this.#takePayload();
          } else if (byte === CR) {
            this.#state = STATE_PAYLOAD_CR;
          } else {
            return this.#fail(missingLineEnd(this.#expected, byte));
          }
          break;
        }
        case STATE_PAYLOAD_CR: {
          const byte = chunk[pos++];
          if (byte !== LF) return this.#fail(missingLineEnd(this.#expected, byte));
          frames[out.frameCount++] = this.#takePayload();
          break;
        }
        default:
          // Unreachable: a failed parser returns before the loop.
          return this.#error;
      }
    }
    return undefined;
  }

  /** Buffers `chunk[start, end)`, the start or middle of a line, unless that makes it too long. */
  #bufferLine(chunk: Uint8Array, start: number, end: number): ProtocolError | undefined {
    const total = this.#lineLength + (end - start);
    // One byte over the limit is fine only while it may be the CR of a CR LF.
    if (
      total > this.#maxLineBytes + 1 ||
      (total === this.#maxLineBytes + 1 && chunk[end - 1] !== CR)
    ) {
      return this.#lineTooLong();
    }
    this.#appendLine(chunk, start, end);
    this.#lineLength = total;
    return undefined;
  }

  /** Appends `chunk[start, end)` to the line buffer, growing it, and returns the buffer. */
  #appendLine(chunk: Uint8Array, start: number, end: number): Uint8Array {
    const needed = this.#lineLength + (end - start);
    let buffer = this.#line;
    if (buffer === null || buffer.length < needed) {
      const capacity = Math.min(
        Math.max(needed, (buffer?.length ?? 0) * 2, MIN_LINE_BUFFER_BYTES),
        this.#maxLineBytes + 1,
      );
      const grown = new Uint8Array(capacity);
      if (buffer !== null && this.#lineLength > 0) {
        grown.set(buffer.subarray(0, this.#lineLength));
      }
      buffer = this.#line = grown;
    }
    buffer.set(chunk.subarray(start, end), this.#lineLength);
    return buffer;
  }

  /** Appends the payload `chunk[start, end)`: a range when `out` takes them, else a frame. */
  #payloadInChunk(chunk: Uint8Array, start: number, end: number, out: FrameSink<F>): void {
    if (out.ranges) appendRange(out, start, end);
    else out.frames[out.frameCount++] = this.#grammar.payload(chunk.subarray(start, end));
  }

  #takePayload(): F {
    const payload = this.#payload!;
    this.#payload = null;
    this.#filled = 0;
    this.#state = STATE_LINE;
    return this.#grammar.payload(payload);
  }

  #lineTooLong(): ProtocolError {
    return new ProtocolError(
      REASON.lineTooLong,
      `Cannot accept a control line longer than ${this.#maxLineBytes} bytes`,
    );
  }

  #fail(error: ProtocolError): ProtocolError {
    this.#error = error;
    this.#state = STATE_FAILED;
    this.#line = null;
    this.#lineLength = 0;
    this.#payload = null;
    this.#filled = 0;
    return error;
  }
}

/** Appends {@linkcode PAYLOAD_RANGE} for the payload `[start, end)` of the chunk to `out`. */
function appendRange<F>(out: FrameSink<F>, start: number, end: number): void {
  out.frames[out.frameCount++] = PAYLOAD_RANGE as F;
  out.ranges![out.rangeCount++] = start;
  out.ranges![out.rangeCount++] = end;
}

/** Decodes `chunk` into a fresh array, for `push()`. */
function pushFresh<F>(parser: FrameParser<F>, chunk: Uint8Array): DecodeResult<F> {
  const out: FrameSink<F> = { frames: [], frameCount: 0, rangeCount: 0 };
  const error = parser.push(chunk, out);
  return error === undefined ? { frames: out.frames } : { frames: out.frames, error };
}

function missingLineEnd(payloadBytes: number, got: number): ProtocolError {
  const byte = `0x${got.toString(16).padStart(2, "0")}`;
  return new ProtocolError(
    REASON.malformedFrame,
    `Cannot find the line end after a ${payloadBytes}-byte payload: got byte ${byte} instead of LF`,
  );
}

function malformed(message: string): ProtocolError {
  return new ProtocolError(REASON.malformedFrame, message);
}

/** The grammar of the lines a client sends. */
class ClientGrammar implements Grammar<ClientFrame | PayloadRange> {
  readonly #maxFrameBytes: number;

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  line(
    bytes: Uint8Array,
    start: number,
    end: number,
    transient: boolean,
  ): ClientFrame | number | ProtocolError {
    switch (bytes[start]) {
      case 0x4d: // M
        if (isVerb(bytes, start, end, VERB_MSG)) {
          return parseLength(bytes, start + 4, end, this.#maxFrameBytes);
        }
        break;
      case 0x48: // H
        if (isVerb(bytes, start, end, VERB_HELLO)) return hello(bytes, start + 6, end);
        if (isVerb(bytes, start, end, VERB_HISTORY)) return history(bytes, start + 8, end);
        break;
      case 0x41: { // A
        const token = parseAuthLine(bytes, start, end);
        // Copied: the frame may outlive the read buffer.
        if (token) return { type: "auth", token: token.slice() };
        break;
      }
      case 0x50: // P
        if (isLine(bytes, start, end, LINE_PING)) return { type: "ping" };
        if (isLine(bytes, start, end, LINE_PONG)) return { type: "pong" };
        break;
      case 0x53: // S
        if (isLine(bytes, start, end, LINE_SUB)) return { type: "sub" };
        break;
      case 0x55: // U
        if (isLine(bytes, start, end, LINE_UNSUB)) return { type: "unsub" };
        break;
      case 0x51: // Q
        if (isLine(bytes, start, end, LINE_QUIT)) return { type: "quit" };
        break;
    }
    // Any other line is a message of its own.
    return {
      type: "text",
      payload: transient ? bytes.slice(start, end) : bytes.subarray(start, end),
    };
  }

  payload(payload: Uint8Array): ClientFrame {
    return { type: "msg", payload };
  }

  /**
   * `MSG <n>\n<payload>\n` wholly in `chunk`, the frame a busy client sends: read
   * without a line search. Whatever else is at `pos` (another line, a CR, a length
   * over the limit or of more than {@linkcode MAX_FAST_DIGITS} digits, a frame that
   * the chunk cuts) is left to the general path.
   */
  messageAt(
    chunk: Uint8Array,
    pos: number,
    end: number,
    out: FrameSink<ClientFrame | PayloadRange>,
  ): number {
    if (
      chunk[pos] !== 0x4d || chunk[pos + 1] !== 0x53 || chunk[pos + 2] !== 0x47 ||
      chunk[pos + 3] !== SPACE
    ) {
      return -1;
    }
    const digitsStart = pos + 4;
    const digitsEnd = Math.min(end, digitsStart + MAX_FAST_DIGITS);
    let i = digitsStart;
    let length = 0;
    for (; i < digitsEnd; i++) {
      const digit = chunk[i] - 0x30;
      if (digit < 0 || digit > 9) break;
      length = length * 10 + digit;
    }
    if (i === digitsStart || chunk[i] !== LF || length > this.#maxFrameBytes) return -1;
    const start = i + 1;
    const after = start + length;
    if (after >= end || chunk[after] !== LF) return -1;
    appendRange(out, start, after);
    return after + 1;
  }
}

/** Digits of a length that the hot path reads; a longer one takes the general path. */
const MAX_FAST_DIGITS = 9;
/** The longest line the hot path reads: `MSG ` and its digits. */
const MAX_FAST_LINE_BYTES = 4 + MAX_FAST_DIGITS;

/** Decodes the name of `HELLO <name>`, which starts at `start` (past `end` if missing). */
function hello(bytes: Uint8Array, start: number, end: number): ClientFrame | ProtocolError {
  const length = end - start;
  if (length <= 0) {
    return new ProtocolError(REASON.invalidName, `Cannot accept an empty name: ${NAME_RULE}`);
  }
  // A valid name is ASCII, so it has as many bytes as characters.
  const name = length > MAX_NAME_LENGTH ? "" : textDecoder.decode(bytes.subarray(start, end));
  if (!isValidName(name)) {
    return new ProtocolError(
      REASON.invalidName,
      `Cannot accept name ${preview(bytes, start, end)}: ${NAME_RULE}`,
    );
  }
  return { type: "hello", name };
}

/**
 * Decodes the count of `HISTORY <n>`, which starts at `start` (past `end` if missing):
 * decimal digits only; a value above {@linkcode MAX_HISTORY_COUNT} (of any number of
 * digits) is taken as it, without overflowing.
 */
function history(bytes: Uint8Array, start: number, end: number): ClientFrame | ProtocolError {
  if (start >= end) {
    return new ProtocolError(REASON.malformedFrame, "Cannot parse HISTORY count: it is missing");
  }
  let count = 0;
  for (let i = start; i < end; i++) {
    const digit = bytes[i] - 0x30;
    if (digit < 0 || digit > 9) {
      return new ProtocolError(
        REASON.malformedFrame,
        `Cannot parse HISTORY count ${preview(bytes, start, end)}: not a number`,
      );
    }
    count = Math.min(count * 10 + digit, MAX_HISTORY_COUNT);
  }
  return { type: "history", count };
}

/** The grammar of the lines the server sends. */
class ServerGrammar implements Grammar<ServerFrame> {
  readonly #maxFrameBytes: number;
  /** Sender of the relayed message whose payload is being collected. */
  #from = "";

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  line(bytes: Uint8Array, start: number, end: number): ServerFrame | number | ProtocolError {
    switch (bytes[start]) {
      case 0x4d: // M
        if (isVerb(bytes, start, end, VERB_MSG)) return this.#relay(bytes, start, end);
        break;
      case 0x45: // E
        if (isVerb(bytes, start, end, VERB_ERR)) {
          if (end - start <= 4) return malformed("Cannot decode an ERR line: the reason is empty");
          return { type: "err", reason: textDecoder.decode(bytes.subarray(start + 4, end)) };
        }
        break;
      case 0x50: // P
        if (isLine(bytes, start, end, LINE_PING)) return { type: "ping" };
        if (isLine(bytes, start, end, LINE_PONG)) return { type: "pong" };
        break;
      case 0x51: // Q
        if (isLine(bytes, start, end, LINE_QUIT)) return { type: "quit" };
        break;
    }
    return new ProtocolError(
      REASON.unknownFrame,
      `Cannot decode server line ${preview(bytes, start, end)}: unknown frame`,
    );
  }

  payload(payload: Uint8Array): ServerFrame {
    const from = this.#from;
    this.#from = "";
    return { type: "msg", from, payload };
  }

  /** Decodes the header `MSG <from> <n>` in `bytes[start, end)`. */
  #relay(bytes: Uint8Array, start: number, end: number): number | ProtocolError {
    const from = start + 4;
    // A valid sender is at most MAX_NAME_LENGTH bytes, so its space is near.
    const limit = Math.min(end, from + MAX_NAME_LENGTH + 1);
    let space = -1;
    for (let i = from; i < limit; i++) {
      if (bytes[i] === SPACE) {
        space = i;
        break;
      }
    }
    if (space === -1 && limit === end) {
      return malformed(
        `Cannot parse relayed message header ${
          preview(bytes, start, end)
        }: expected "MSG <from> <n>"`,
      );
    }
    const nameEnd = space === -1 ? end : space;
    const name = space === -1 ? "" : textDecoder.decode(bytes.subarray(from, space));
    if (!isValidName(name)) {
      return malformed(`Cannot accept sender name ${preview(bytes, from, nameEnd)}: ${NAME_RULE}`);
    }
    const length = parseLength(bytes, space + 1, end, this.#maxFrameBytes);
    if (typeof length === "number") this.#from = name;
    return length;
  }
}

function resolveLimit(
  value: number | undefined,
  fallback: number,
  name: string,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(
      `Cannot create a frame decoder: ${name} must be an integer from ${min} to ${max}, got ${value}`,
    );
  }
  return value;
}

function createParser<F>(
  options: DecoderOptions,
  grammar: (maxFrameBytes: number) => Grammar<F>,
): FrameParser<F> {
  const maxLineBytes = resolveLimit(
    options.maxLineBytes,
    MAX_CONTROL_LINE_BYTES,
    "maxLineBytes",
    1,
    Number.MAX_SAFE_INTEGER - 1,
  );
  const maxFrameBytes = resolveLimit(
    options.maxFrameBytes,
    DEFAULT_MAX_FRAME_BYTES,
    "maxFrameBytes",
    0,
    MAX_FRAME_BYTES_LIMIT,
  );
  return new FrameParser(maxLineBytes, grammar(maxFrameBytes));
}

/**
 * Decodes the bytes a client sends into {@linkcode ClientFrame}s; the server
 * runs one per connection.
 *
 * Push each chunk read from the socket; every frame the chunk completes comes
 * back in order. A payload wholly inside the pushed chunk is a view of it:
 * don't reuse the chunk while you still use the frames (see the module
 * documentation).
 *
 * @example Decode frames that arrive in pieces
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClientFrameDecoder } from "./frame_decoder.ts";
 *
 * const bytes = (text: string) => new TextEncoder().encode(text);
 * const decoder = new ClientFrameDecoder();
 *
 * assert.deepEqual(decoder.push(bytes("HELLO bob\r\nMSG 5\nhe")), {
 *   frames: [{ type: "hello", name: "bob" }],
 * });
 * assert.equal(decoder.pending, true);
 *
 * const { frames } = decoder.push(bytes("l\nl\nhi there\n"));
 * assert.deepEqual(frames, [
 *   { type: "msg", payload: bytes("hel\nl") },
 *   { type: "text", payload: bytes("hi there") },
 * ]);
 * assert.equal(decoder.pending, false);
 * ```
 *
 * @example Stop at a protocol error
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClientFrameDecoder } from "./frame_decoder.ts";
 *
 * const decoder = new ClientFrameDecoder();
 * const { frames, error } = decoder.push(new TextEncoder().encode("PING\nHELLO a b\n"));
 * assert.deepEqual(frames, [{ type: "ping" }]);
 * assert.equal(error?.reason, "invalid name");
 * // The decoder stays failed.
 * assert.equal(decoder.push(new TextEncoder().encode("PING\n")).error, error);
 * ```
 */
export class ClientFrameDecoder {
  // Its frames include PAYLOAD_RANGE only where pushRanges() asks for ranges.
  readonly #parser: FrameParser<ClientFrame | PayloadRange>;

  /**
   * Creates a decoder for one connection.
   *
   * @param options The limits; see {@linkcode DecoderOptions}.
   * @throws {RangeError} If a limit is not an integer in its range.
   */
  constructor(options: DecoderOptions = {}) {
    this.#parser = createParser(options, (max) => new ClientGrammar(max));
  }

  /**
   * Decodes everything `chunk` completes.
   *
   * Returns the frames in order. On a protocol error it returns the frames
   * decoded before it and the error; the decoder is then failed and every
   * later push returns no frames and the same error. It never throws.
   *
   * @param chunk The next bytes from the client; a payload wholly inside it
   * is returned as a view of it, so don't reuse it while you use the frames.
   * @returns The decoded frames and the error, if any.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ClientFrameDecoder } from "./frame_decoder.ts";
   *
   * const decoder = new ClientFrameDecoder();
   * const { frames } = decoder.push(new TextEncoder().encode("PING\nSUB\n"));
   * assert.deepEqual(frames, [{ type: "ping" }, { type: "sub" }]);
   * ```
   */
  push(chunk: Uint8Array): DecodeResult<ClientFrame> {
    return pushFresh(this.#parser, chunk) as DecodeResult<ClientFrame>;
  }

  /**
   * Like {@linkcode ClientFrameDecoder.push}, but the frames are appended to `into`,
   * whose arrays the caller uses again from read to read, and a `MSG` payload that lies
   * wholly in `chunk` comes out as {@linkcode PAYLOAD_RANGE}, its start and end
   * appended to `into.ranges`: no object per message, and no array grown per read.
   * The server's hot path uses it; a payload that spans pushes still comes out as a
   * `msg` frame. Returns the protocol error, if any (the frames before it are in
   * `into`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ClientFrameDecoder, PAYLOAD_RANGE, type RangedFrames } from "./frame_decoder.ts";
   *
   * const into: RangedFrames = { frames: [], frameCount: 0, ranges: [], rangeCount: 0 };
   * const chunk = new TextEncoder().encode("PING\nMSG 2\nhi\n");
   * const error = new ClientFrameDecoder().pushRanges(chunk, into);
   * assert.equal(error, undefined);
   * assert.deepEqual(into.frames.slice(0, into.frameCount), [{ type: "ping" }, PAYLOAD_RANGE]);
   * assert.deepEqual(into.ranges.slice(0, into.rangeCount), [11, 13]);
   * ```
   */
  pushRanges(chunk: Uint8Array, into: RangedFrames): ProtocolError | undefined {
    return this.#parser.push(chunk, into);
  }

  /**
   * Whether part of a line or frame is buffered or expected: the server
   * arms its read deadline while this is `true`. `false` once failed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ClientFrameDecoder } from "./frame_decoder.ts";
   *
   * const decoder = new ClientFrameDecoder();
   * decoder.push(new TextEncoder().encode("MSG 3\n"));
   * assert.equal(decoder.pending, true);
   * decoder.push(new TextEncoder().encode("abc\n"));
   * assert.equal(decoder.pending, false);
   * ```
   */
  get pending(): boolean {
    return this.#parser.pending;
  }

  /**
   * Bytes of input the decoder holds: the unfinished line, plus the payload
   * bytes collected so far (and a CR after them). At most `maxLineBytes + 1`
   * plus the current frame's length; 0 between frames and once failed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ClientFrameDecoder } from "./frame_decoder.ts";
   *
   * const decoder = new ClientFrameDecoder();
   * decoder.push(new TextEncoder().encode("MSG 10\nabcd"));
   * assert.equal(decoder.bufferedBytes, 4);
   * ```
   */
  get bufferedBytes(): number {
    return this.#parser.bufferedBytes;
  }
}

/**
 * Decodes the bytes the server sends into {@linkcode ServerFrame}s; a client
 * runs one on its connection.
 *
 * It works like {@linkcode ClientFrameDecoder}, with the server's grammar:
 * `MSG <from> <n>`, `PING`, `PONG`, `QUIT` and `ERR <reason>`; any other
 * non-empty line is the protocol error `unknown frame`.
 *
 * @example Decode a relayed message and an error
 * ```ts
 * import assert from "node:assert/strict";
 * import { ServerFrameDecoder } from "./frame_decoder.ts";
 *
 * const bytes = (text: string) => new TextEncoder().encode(text);
 * const decoder = new ServerFrameDecoder();
 * const { frames } = decoder.push(bytes("MSG alice 2\nhi\nERR too many clients\n"));
 * assert.deepEqual(frames, [
 *   { type: "msg", from: "alice", payload: bytes("hi") },
 *   { type: "err", reason: "too many clients" },
 * ]);
 * ```
 */
export class ServerFrameDecoder {
  readonly #parser: FrameParser<ServerFrame>;

  /**
   * Creates a decoder for one connection.
   *
   * @param options The limits; see {@linkcode DecoderOptions}.
   * @throws {RangeError} If a limit is not an integer in its range.
   */
  constructor(options: DecoderOptions = {}) {
    this.#parser = createParser(options, (max) => new ServerGrammar(max));
  }

  /**
   * Decodes everything `chunk` completes; see
   * {@linkcode ClientFrameDecoder.push}. It never throws.
   *
   * @param chunk The next bytes from the server; a payload wholly inside it
   * is returned as a view of it, so don't reuse it while you use the frames.
   * @returns The decoded frames and the error, if any.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ServerFrameDecoder } from "./frame_decoder.ts";
   *
   * const decoder = new ServerFrameDecoder();
   * const { frames, error } = decoder.push(new TextEncoder().encode("PING\nHELLO\n"));
   * assert.deepEqual(frames, [{ type: "ping" }]);
   * assert.equal(error?.reason, "unknown frame");
   * ```
   */
  push(chunk: Uint8Array): DecodeResult<ServerFrame> {
    return pushFresh(this.#parser, chunk);
  }

  /**
   * Whether part of a line or frame is buffered or expected; `false` once
   * failed.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ServerFrameDecoder } from "./frame_decoder.ts";
   *
   * const decoder = new ServerFrameDecoder();
   * decoder.push(new TextEncoder().encode("PI"));
   * assert.equal(decoder.pending, true);
   * ```
   */
  get pending(): boolean {
    return this.#parser.pending;
  }

  /**
   * Bytes of input the decoder holds; see
   * {@linkcode ClientFrameDecoder.bufferedBytes}.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { ServerFrameDecoder } from "./frame_decoder.ts";
   *
   * const decoder = new ServerFrameDecoder();
   * decoder.push(new TextEncoder().encode("PI"));
   * assert.equal(decoder.bufferedBytes, 2);
   * ```
   */
  get bufferedBytes(): number {
    return this.#parser.bufferedBytes;
  }
}
