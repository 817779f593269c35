/**
 * Property-based fuzz of the parrot/1 frame decoders, with fast-check.
 *
 * This module owns the properties that {@linkcode ClientFrameDecoder} and
 * {@linkcode ServerFrameDecoder} must keep whatever bytes arrive and however the
 * socket splits them. The hand-written cases in `lib/parrot/frame_decoder_test.ts` pin
 * the grammar down one frame at a time; these properties generate thousands of streams
 * (binary payloads full of LF, CR and NUL, names, tokens, text lines that look like
 * verbs, malformed headers, overlong lines, a UTF-8 BOM, ...) and cut them at random
 * points, which is where an incremental parser breaks. It lives apart from the unit
 * tests so that the same code runs briefly in `tests/decoder_fuzz_test.ts` and for
 * as long as one likes from a torture run:
 *
 * ```sh
 * deno run scripts/torture/decoder_fuzz.ts --runs 20000 [--seed 42]
 * ```
 *
 * The client decoder is fuzzed twice: through `push()`, and through `pushRanges()`
 * with one reused batch, as the server's connection task runs it, with the `MSG` fast
 * path (`messageAt`) that only `pushRanges()` takes; see {@linkcode rangedClientDecoder}.
 *
 * Every push goes through one reused read buffer that is scribbled over after the
 * frames are copied out, as a socket reader that reuses its buffer does, so a decoder
 * that kept a view of an old chunk is caught too. A failed property never throws: it
 * becomes one message with fast-check's seed, path and shrunk counterexample.
 *
 * @module
 */

import fc from "fast-check";
import { concatBytes } from "../../lib/testing.ts";
import { parseArgs } from "node:util";
import {
  DEFAULT_MAX_FRAME_BYTES,
  MAX_CONTROL_LINE_BYTES,
  MAX_NAME_LENGTH,
} from "../../lib/defaults.ts";
import {
  type ClientFrame,
  ProtocolError,
  REASON,
  type ServerFrame,
} from "../../lib/parrot/frame.ts";
import {
  ClientFrameDecoder,
  type DecodeResult,
  type DecoderOptions,
  type RangedFrames,
  ServerFrameDecoder,
} from "../../lib/parrot/frame_decoder.ts";
import {
  encodeAuth,
  encodeErr,
  encodeHello,
  encodeMsg,
  encodeRelay,
  PING_LINE,
  PONG_LINE,
  QUIT_LINE,
  SUB_LINE,
  UNSUB_LINE,
} from "../../lib/parrot/frame_encoder.ts";

/**
 * What {@linkcode runDecoderFuzz} needs of a decoder: the shape that
 * {@linkcode ClientFrameDecoder} and {@linkcode ServerFrameDecoder} share.
 *
 * @typeParam F The frame type the decoder produces.
 *
 * @example A real decoder is one
 * ```ts
 * import { ClientFrameDecoder } from "../../lib/parrot/frame_decoder.ts";
 * import type { ClientFrame } from "../../lib/parrot/frame.ts";
 * import type { FuzzedDecoder } from "./decoder_fuzz.ts";
 *
 * const decoder: FuzzedDecoder<ClientFrame> = new ClientFrameDecoder({ maxFrameBytes: 16 });
 * decoder.push(new TextEncoder().encode("PING\n"));
 * ```
 */
export interface FuzzedDecoder<F> {
  /** Decodes what `chunk` completes; see {@linkcode ClientFrameDecoder.push}. */
  push(chunk: Uint8Array): DecodeResult<F>;
  /** Whether part of a line or frame is held or expected. */
  readonly pending: boolean;
  /** Bytes of input held. */
  readonly bufferedBytes: number;
}

/** What {@linkcode rangedClientDecoder} drives: the part of a client decoder the server uses. */
export type RangedDecoder = Pick<ClientFrameDecoder, "pushRanges" | "pending" | "bufferedBytes">;

/**
 * A client decoder driven as the server drives it: each push goes through
 * `pushRanges()` into one batch whose arrays are reused from push to push, which takes
 * the `MSG` fast path; each payload range comes back as a `msg` frame with a view of
 * the chunk, so the properties compare it with what was sent.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClientFrameDecoder } from "../../lib/parrot/frame_decoder.ts";
 * import { rangedClientDecoder } from "./decoder_fuzz.ts";
 *
 * const decoder = rangedClientDecoder(new ClientFrameDecoder());
 * const { frames } = decoder.push(new TextEncoder().encode("MSG 2\nhi\nPING\n"));
 * assert.deepEqual(frames, [
 *   { type: "msg", payload: new TextEncoder().encode("hi") },
 *   { type: "ping" },
 * ]);
 * ```
 */
export function rangedClientDecoder(decoder: RangedDecoder): FuzzedDecoder<ClientFrame> {
  const batch: RangedFrames = { frames: [], frameCount: 0, ranges: [], rangeCount: 0 };
  return {
    push(chunk: Uint8Array): DecodeResult<ClientFrame> {
      batch.frameCount = 0;
      batch.rangeCount = 0;
      const error = decoder.pushRanges(chunk, batch);
      const frames: ClientFrame[] = [];
      let range = 0;
      for (let i = 0; i < batch.frameCount; i++) {
        const frame = batch.frames[i];
        if (frame.type !== "range") {
          frames.push(frame);
          continue;
        }
        const start = batch.ranges[range++];
        const end = batch.ranges[range++];
        if (!(0 <= start && start <= end && end <= chunk.length)) {
          throw new Error(`payload range [${start}, ${end}) outside a ${chunk.length}-byte chunk`);
        }
        frames.push({ type: "msg", payload: chunk.subarray(start, end) });
      }
      if (range !== batch.rangeCount) {
        throw new Error(`${batch.rangeCount} range bounds for ${range / 2} payload ranges`);
      }
      return error === undefined ? { frames } : { frames, error };
    },
    get pending() {
      return decoder.pending;
    },
    get bufferedBytes() {
      return decoder.bufferedBytes;
    },
  };
}

/**
 * Options of {@linkcode runDecoderFuzz}.
 *
 * @example A short, reproducible run
 * ```ts
 * import { type DecoderFuzzOptions, runDecoderFuzz } from "./decoder_fuzz.ts";
 *
 * const options: DecoderFuzzOptions = { numRuns: 3, seed: 7 };
 * runDecoderFuzz(options);
 * ```
 */
export interface DecoderFuzzOptions {
  /** Generated cases per property. */
  numRuns: number;
  /** fast-check's seed, to replay a run; random when left out. */
  seed?: number;
  /**
   * Makes the client-to-server decoder under test; defaults to
   * `new ClientFrameDecoder(options)`. Lets a torture run fuzz a wrapped decoder.
   */
  createClientDecoder?: (options: DecoderOptions) => FuzzedDecoder<ClientFrame>;
  /**
   * Makes the client decoder fuzzed through `pushRanges()`; defaults to
   * `rangedClientDecoder(new ClientFrameDecoder(options))`.
   */
  createRangedClientDecoder?: (options: DecoderOptions) => FuzzedDecoder<ClientFrame>;
  /**
   * Makes the server-to-client decoder under test; defaults to
   * `new ServerFrameDecoder(options)`.
   */
  createServerDecoder?: (options: DecoderOptions) => FuzzedDecoder<ServerFrame>;
}

/**
 * What {@linkcode runDecoderFuzz} found.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type DecoderFuzzResult, runDecoderFuzz } from "./decoder_fuzz.ts";
 *
 * const result: DecoderFuzzResult = runDecoderFuzz({ numRuns: 2, seed: 1 });
 * assert.equal(result.properties, 15);
 * assert.equal(result.failures.length <= result.properties, true);
 * ```
 */
export interface DecoderFuzzResult {
  /** Properties checked. */
  properties: number;
  /** Cases run over all properties (a failed property stops at its first failure). */
  runs: number;
  /** One message per failed property: its name, the error, seed, path and counterexample. */
  failures: string[];
}

const encoder = new TextEncoder();
const LF = 0x0a;
const CR = 0x0d;
/** Longest counterexample quoted in a failure message. */
const MAX_COUNTEREXAMPLE_CHARS = 4000;
/** The reasons each decoder may give (REASON.unknownFrame is the server grammar's alone). */
const CLIENT_REASONS: ReadonlySet<string> = new Set([
  REASON.invalidName,
  REASON.malformedFrame,
  REASON.frameTooLarge,
  REASON.lineTooLong,
]);
const SERVER_REASONS: ReadonlySet<string> = new Set([
  REASON.malformedFrame,
  REASON.frameTooLarge,
  REASON.lineTooLong,
  REASON.unknownFrame,
]);

// ---------------------------------------------------------------------------
// Bytes

/** Bytes of a string whose characters are all below U+0100 (one byte each). */
function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (char) => char.charCodeAt(0));
}

/** {@linkcode concatBytes} with strings taken as Latin-1 (one byte a character). */
function concat(parts: readonly (Uint8Array | string)[]): Uint8Array {
  return concatBytes(...parts.map((part) => typeof part === "string" ? latin1(part) : part));
}

/** `line` (which ends with LF, as every encoder writes it) with the given line end instead. */
function withEnd(line: Uint8Array, end: string): Uint8Array {
  return end === "\n" ? line : concat([line.subarray(0, -1), end]);
}

/** Quotes bytes readably for a failure message, eliding the middle of long ones. */
function show(bytes: Uint8Array): string {
  const quote = (part: Uint8Array) =>
    Array.from(part, (byte) => {
      if (byte === LF) return "\\n";
      if (byte === CR) return "\\r";
      if (byte === 0x22 || byte === 0x5c) return `\\${String.fromCharCode(byte)}`;
      if (byte >= 0x20 && byte < 0x7f) return String.fromCharCode(byte);
      return `\\x${byte.toString(16).padStart(2, "0")}`;
    }).join("");
  if (bytes.length <= 240) return `"${quote(bytes)}"`;
  return `"${quote(bytes.subarray(0, 160))}"…(${bytes.length} bytes)…"${
    quote(bytes.subarray(-40))
  }"`;
}

/** Quotes a string with everything outside printable ASCII escaped (a BOM is invisible). */
function quote(text: string): string {
  return JSON.stringify(text).replace(
    /[^\x20-\x7e]/g,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** Deterministic bytes: a large payload or line is built from a seed, not byte by byte. */
function filled(length: number, seed: number, avoidLf: boolean): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed | 0;
  for (let i = 0; i < length; i++) {
    // mulberry32
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    const byte = ((t ^ (t >>> 14)) >>> 0) & 0xff;
    out[i] = avoidLf && byte === LF ? 0x0b : byte;
  }
  return out;
}

function filledArb(min: number, max: number, avoidLf = false): fc.Arbitrary<Uint8Array> {
  return fc.record({ length: fc.integer({ min, max }), seed: fc.integer() })
    .map(({ length, seed }) => filled(length, seed, avoidLf));
}

/** Bytes for the body of one line: no LF, and never empty. */
function lineBody(bytes: Uint8Array, maxLength: number): Uint8Array {
  const body = bytes.slice(0, maxLength).map((byte) => byte === LF ? 0x0b : byte);
  return body.length === 0 ? latin1("x") : body;
}

function endsWithCr(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[bytes.length - 1] === CR;
}

function startsWithVerb(bytes: Uint8Array, verb: string): boolean {
  if (bytes.length < verb.length) return false;
  for (let i = 0; i < verb.length; i++) if (bytes[i] !== verb.charCodeAt(i)) return false;
  return bytes.length === verb.length || bytes[verb.length] === 0x20;
}

function isExactly(bytes: Uint8Array, line: string): boolean {
  return bytes.length === line.length && startsWithVerb(bytes, line);
}

/** Whether a line (line end stripped) is a client verb per docs/PROTOCOL.md (and AUTH). */
function isClientVerb(line: Uint8Array): boolean {
  return ["MSG", "HELLO", "AUTH"].some((verb) => startsWithVerb(line, verb)) ||
    ["PING", "PONG", "SUB", "UNSUB", "QUIT"].some((exact) => isExactly(line, exact));
}

/** Whether a line (line end stripped) is a server verb per docs/PROTOCOL.md. */
function isServerVerb(line: Uint8Array): boolean {
  return ["MSG", "ERR"].some((verb) => startsWithVerb(line, verb)) ||
    ["PING", "PONG", "QUIT"].some((exact) => isExactly(line, exact));
}

// ---------------------------------------------------------------------------
// Frames

type AnyFrame = ClientFrame | ServerFrame;

/** Copies the bytes out of a frame: they may be a view of the chunk that is about to be reused. */
function detach<F extends AnyFrame>(frame: F): F {
  if ("payload" in frame) return { ...frame, payload: frame.payload.slice() };
  if ("token" in frame) return { ...frame, token: frame.token.slice() };
  return frame;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameFrame(a: AnyFrame, b: AnyFrame): boolean {
  const keysA = Object.keys(a).sort();
  const keysB = Object.keys(b).sort();
  if (keysA.join() !== keysB.join()) return false;
  const recordA = a as unknown as Record<string, unknown>;
  const recordB = b as unknown as Record<string, unknown>;
  return keysA.every((key) => {
    const valueA = recordA[key];
    const valueB = recordB[key];
    if (valueA instanceof Uint8Array || valueB instanceof Uint8Array) {
      return valueA instanceof Uint8Array && valueB instanceof Uint8Array &&
        sameBytes(valueA, valueB);
    }
    return valueA === valueB;
  });
}

function describeFrame(frame: AnyFrame | undefined): string {
  if (frame === undefined) return "nothing";
  const fields = Object.entries(frame).filter(([key]) => key !== "type").map(([key, value]) =>
    `${key}: ${value instanceof Uint8Array ? show(value) : quote(String(value))}`
  );
  return fields.length === 0 ? frame.type : `${frame.type} { ${fields.join(", ")} }`;
}

function assertSameFrames(actual: AnyFrame[], expected: AnyFrame[], what: string): void {
  const length = Math.max(actual.length, expected.length);
  for (let i = 0; i < length; i++) {
    if (
      actual[i] === undefined || expected[i] === undefined || !sameFrame(actual[i], expected[i])
    ) {
      throw new Error(
        `${what}: frame ${i} (of ${expected.length} expected, ${actual.length} decoded) is ${
          describeFrame(actual[i])
        }, expected ${describeFrame(expected[i])}`,
      );
    }
  }
}

// ---------------------------------------------------------------------------
// Feeding a decoder

interface Limits {
  maxLineBytes: number;
  maxFrameBytes: number;
}

interface Config {
  options: DecoderOptions;
  limits: Limits;
}

function configArb(
  lineRange: [number, number],
  frameRange: [number, number],
): fc.Arbitrary<Config> {
  return fc.record({
    maxLineBytes: fc.option(fc.integer({ min: lineRange[0], max: lineRange[1] }), {
      nil: undefined,
    }),
    maxFrameBytes: fc.option(fc.integer({ min: frameRange[0], max: frameRange[1] }), {
      nil: undefined,
    }),
  }).map(({ maxLineBytes, maxFrameBytes }) => {
    const options: DecoderOptions = {};
    if (maxLineBytes !== undefined) options.maxLineBytes = maxLineBytes;
    if (maxFrameBytes !== undefined) options.maxFrameBytes = maxFrameBytes;
    return {
      options,
      limits: {
        maxLineBytes: maxLineBytes ?? MAX_CONTROL_LINE_BYTES,
        maxFrameBytes: maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      },
    };
  });
}

/** Where to cut a stream: at random points, or every `size` bytes. */
type Chunking = { cuts: number[] } | { every: number };

const chunkingArb: fc.Arbitrary<Chunking> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ cuts: fc.array(fc.nat(), { maxLength: 24 }) }) },
  { weight: 1, arbitrary: fc.record({ every: fc.integer({ min: 1, max: 7 }) }) },
);

function cutPoints(chunking: Chunking, length: number): number[] {
  if ("every" in chunking) {
    const points = [];
    for (let point = chunking.every; point < length; point += chunking.every) points.push(point);
    return points;
  }
  return chunking.cuts.map((cut) => cut % (length + 1)).sort((a, b) => a - b);
}

interface Fed<F> {
  frames: F[];
  error: ProtocolError | undefined;
  pending: boolean;
  bufferedBytes: number;
}

/**
 * Pushes `input` cut at `points` (and then each of `after`) through one reused,
 * scribbled-over read buffer, checking after every push that the decoder did not
 * throw, that an error is a ProtocolError with one of `reasons`, that nothing comes
 * after an error, and that it holds at most `max(maxLineBytes + 1, maxFrameBytes) + 1`
 * bytes: a line is held with at most one byte more than the limit (the possible CR of
 * its CR LF), a payload with the CR that may follow it, and never both at once.
 */
function feed<F extends AnyFrame>(
  decoder: FuzzedDecoder<F>,
  limits: Limits,
  reasons: ReadonlySet<string>,
  input: Uint8Array,
  points: readonly number[],
  after: readonly Uint8Array[] = [],
): Fed<F> {
  const bound = Math.max(limits.maxLineBytes + 1, limits.maxFrameBytes) + 1;
  const pieces: Uint8Array[] = [];
  let previous = 0;
  for (const point of [...points, input.length]) {
    pieces.push(input.subarray(previous, point));
    previous = point;
  }
  pieces.push(...after);
  const scratch = new Uint8Array(pieces.reduce((max, piece) => Math.max(max, piece.length), 1));
  const frames: F[] = [];
  let error: ProtocolError | undefined;
  let offset = 0;
  for (const piece of pieces) {
    scratch.set(piece);
    let result: DecodeResult<F>;
    try {
      result = decoder.push(scratch.subarray(0, piece.length));
    } catch (thrown) {
      throw new Error(`push() threw at byte ${offset}: ${String(thrown)}`);
    }
    const where = `after the push that ended at byte ${offset + piece.length}`;
    offset += piece.length;
    if (error !== undefined) {
      if (result.frames.length > 0) {
        throw new Error(`${where}: decoded ${result.frames.length} frame(s) after an error`);
      }
      if (result.error !== error) {
        throw new Error(`${where}: a failed decoder returned ${String(result.error)}`);
      }
    } else {
      frames.push(...result.frames.map(detach));
      if (result.error !== undefined) {
        if (!(result.error instanceof ProtocolError)) {
          throw new Error(`${where}: the error is not a ProtocolError: ${String(result.error)}`);
        }
        if (!reasons.has(result.error.reason)) {
          throw new Error(`${where}: unexpected reason ${JSON.stringify(result.error.reason)}`);
        }
        error = result.error;
      }
    }
    scratch.fill(0xee);
    const { pending, bufferedBytes } = decoder;
    if (!Number.isInteger(bufferedBytes) || bufferedBytes < 0 || bufferedBytes > bound) {
      throw new Error(`${where}: bufferedBytes is ${bufferedBytes}, the bound is ${bound}`);
    }
    if (!pending && bufferedBytes !== 0) {
      throw new Error(`${where}: not pending but holds ${bufferedBytes} bytes`);
    }
    if (error !== undefined && pending) throw new Error(`${where}: pending after an error`);
  }
  return { frames, error, pending: decoder.pending, bufferedBytes: decoder.bufferedBytes };
}

// ---------------------------------------------------------------------------
// Generators

/** A piece of a stream and the frames it decodes to. */
interface Item<F> {
  wire: Uint8Array;
  frames: F[];
}

/** A stream, printed readably in a counterexample. */
interface Stream<F> extends Item<F> {
  [fc.toStringMethod](): string;
}

function streamOf<F extends AnyFrame>(items: Item<F>[]): Stream<F> {
  const wire = concat(items.map((item) => item.wire));
  const frames = items.flatMap((item) => item.frames);
  return {
    wire,
    frames,
    [fc.toStringMethod]: () =>
      `stream ${show(wire)} -> [${frames.map((frame) => frame.type).join(", ")}]`,
  };
}

function streamArb<F extends AnyFrame>(item: fc.Arbitrary<Item<F>>): fc.Arbitrary<Stream<F>> {
  return fc.array(item, { maxLength: 24 }).map(streamOf);
}

/** A stream of raw bytes (valid or not), printed readably. */
interface Raw {
  bytes: Uint8Array;
  [fc.toStringMethod](): string;
}

function rawOf(bytes: Uint8Array): Raw {
  return { bytes, [fc.toStringMethod]: () => show(bytes) };
}

const lineEndArb = fc.constantFrom("\n", "\r\n");
const emptyLineArb = lineEndArb.map((end): Item<never> => ({ wire: latin1(end), frames: [] }));
const TRICKY_BYTES = [LF, CR, 0x00, 0x20, 0x4d, 0x53, 0x47, 0x33, 0xef, 0xbb, 0xbf, 0xff];
/** Line starts that look like verbs but are not (when the next bytes keep them so). */
const TEXT_STARTS = [
  "ping",
  "PING ",
  "PINGx",
  "PONGG",
  "MSGx",
  "MSG\t",
  "MSG\r",
  "msg 5",
  " MSG 5",
  "HELLOx",
  "HELLO\t",
  "AUTHx",
  "SUB ",
  "UNSUB ",
  "QUIT ",
  "QUITx",
  "ERR x",
  "\x00",
  "\r",
  "\xef\xbb\xbf",
  "\xff",
];
/** Dictionary for random input: verbs, numbers, line ends and odd bytes. */
const TOKENS = [
  ...TEXT_STARTS,
  "MSG ",
  "MSG",
  "HELLO ",
  "AUTH ",
  "ERR ",
  "PING\n",
  "PONG\r\n",
  "SUB\n",
  "UNSUB\n",
  "QUIT\n",
  "MSG 3\n",
  "MSG bob 3\n",
  "0",
  "5",
  "-1",
  "4294967296",
  "99999999999999999999999",
  "\n",
  "\r\n",
  "\r",
  "\r\r\n",
  " ",
];

function payloadArb(maxFrameBytes: number): fc.Arbitrary<Uint8Array> {
  const small = Math.min(maxFrameBytes, 64);
  const large = maxFrameBytes <= 65_536
    ? filledArb(Math.max(0, maxFrameBytes - 16), maxFrameBytes)
    : filledArb(0, 65_536);
  return fc.oneof(
    { weight: 4, arbitrary: fc.uint8Array({ maxLength: small }) },
    {
      weight: 3,
      arbitrary: fc.array(fc.constantFrom(...TRICKY_BYTES), { maxLength: small })
        .map((bytes) => Uint8Array.from(bytes)),
    },
    { weight: 2, arbitrary: filledArb(0, Math.min(maxFrameBytes, 4096)) },
    { weight: 1, arbitrary: large },
  );
}

/** `MSG <head><n>` and the payload, in all their spellings (leading zeros, CR LF). */
function msgWireArb(
  limits: Limits,
  head: string,
  canonical: (payload: Uint8Array) => Uint8Array,
): fc.Arbitrary<{ payload: Uint8Array; wire: Uint8Array }> {
  return fc.record({
    payload: payloadArb(limits.maxFrameBytes),
    zeros: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, fc.integer({ min: 1, max: 12 })),
    headerEnd: lineEndArb,
    trailerEnd: lineEndArb,
  }).map(({ payload, zeros, headerEnd, trailerEnd }) => ({
    payload,
    wire: zeros === 0 && headerEnd === "\n" && trailerEnd === "\n" ? canonical(payload) : concat([
      `MSG ${head}${"0".repeat(zeros)}${payload.length}${headerEnd}`,
      payload,
      trailerEnd,
    ]),
  }));
}

const nameArb = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).map((code) => String.fromCharCode(code)),
  minLength: 1,
  maxLength: MAX_NAME_LENGTH,
});

/** A body that is not a valid name: a bad byte (or a BOM, or `ë`) amid name characters. */
const invalidNameArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(
    fc.string({ unit: fc.constantFrom("a", "Z", "0", "~", "!"), maxLength: 6 }),
    fc.oneof(
      fc.integer({ min: 0, max: 0x20 }).filter((byte) => byte !== LF).map((byte) =>
        String.fromCharCode(byte)
      ),
      fc.integer({ min: 0x7f, max: 0xff }).map((byte) => String.fromCharCode(byte)),
      fc.constantFrom("\xef\xbb\xbf", "\xc3\xab", "\xe2\x80\x8b"),
    ),
    fc.string({ unit: fc.constantFrom("b", "Y", "9"), maxLength: 6 }),
  ).map(([before, bad, after]) => {
    const body = latin1(before + bad + after);
    // A CR right before the line end would be taken as part of a CR LF.
    return endsWithCr(body) ? concat([body, "x"]) : body;
  }),
  fc.integer({ min: MAX_NAME_LENGTH + 1, max: 120 }).map((length) => latin1("n".repeat(length))),
);

/** A line that no grammar knows as a verb, under `maxLength` bytes (line end stripped). */
function textBodyArb(maxLength: number, isVerb: (line: Uint8Array) => boolean) {
  return fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 80 }) },
    {
      weight: 3,
      arbitrary: fc.tuple(fc.constantFrom(...TEXT_STARTS), fc.uint8Array({ maxLength: 12 }))
        .map(([start, rest]) => concat([start, rest])),
    },
    { weight: 1, arbitrary: filledArb(Math.max(1, maxLength - 8), maxLength, true) },
  ).map((bytes) => {
    const body = lineBody(bytes, maxLength);
    if (isVerb(body)) body[0] = 0x5f; // "_"
    return body;
  });
}

/** A line with the given body; a body that ends with CR needs CR LF to keep it. */
function lineArb(body: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(body, lineEndArb).map(([bytes, end]) =>
    concat([bytes, endsWithCr(bytes) ? "\r\n" : end])
  );
}

function clientItemArb(limits: Limits): fc.Arbitrary<Item<ClientFrame>> {
  const fixed = fc.tuple(
    fc.constantFrom(
      [PING_LINE, { type: "ping" }] as const,
      [PONG_LINE, { type: "pong" }] as const,
      [SUB_LINE, { type: "sub" }] as const,
      [UNSUB_LINE, { type: "unsub" }] as const,
      [QUIT_LINE, { type: "quit" }] as const,
    ),
    lineEndArb,
  ).map(([[line, frame], end]): Item<ClientFrame> => ({
    wire: withEnd(line, end),
    frames: [frame],
  }));
  const msg = msgWireArb(limits, "", encodeMsg).map(({ payload, wire }): Item<ClientFrame> => ({
    wire,
    frames: [{ type: "msg", payload }],
  }));
  const hello = fc.tuple(nameArb, lineEndArb).map(([name, end]): Item<ClientFrame> => ({
    wire: withEnd(encodeHello(name), end),
    frames: [{ type: "hello", name }],
  }));
  const tokenRoom = limits.maxLineBytes - "AUTH ".length;
  const auth = fc.oneof(
    fc.tuple(fc.string({ unit: "grapheme", minLength: 1, maxLength: 12 }), lineEndArb)
      .filter(([token]) => !/[\r\n]/.test(token) && encoder.encode(token).length <= tokenRoom)
      .map(([token, end]): Item<ClientFrame> => ({
        wire: withEnd(encodeAuth(token), end),
        frames: [{ type: "auth", token: encoder.encode(token) }],
      })),
    lineArb(
      fc.uint8Array({ minLength: 1, maxLength: Math.min(100, tokenRoom) }).map((bytes) =>
        concat(["AUTH ", lineBody(bytes, tokenRoom)])
      ),
    ).map((wire): Item<ClientFrame> => {
      const end = wire[wire.length - 2] === CR ? 2 : 1;
      return { wire, frames: [{ type: "auth", token: wire.slice(5, wire.length - end) }] };
    }),
    fc.tuple(fc.constantFrom("AUTH", "AUTH "), lineEndArb).map((
      [line, end],
    ): Item<ClientFrame> => ({
      wire: latin1(line + end),
      frames: [{ type: "auth", token: new Uint8Array(0) }],
    })),
  );
  const text = lineArb(textBodyArb(limits.maxLineBytes, isClientVerb)).map(
    (wire): Item<ClientFrame> => {
      const end = wire[wire.length - 2] === CR ? 2 : 1;
      return { wire, frames: [{ type: "text", payload: wire.slice(0, wire.length - end) }] };
    },
  );
  return fc.oneof(
    { weight: 4, arbitrary: msg },
    { weight: 3, arbitrary: text },
    { weight: 2, arbitrary: hello },
    { weight: 1, arbitrary: auth },
    { weight: 2, arbitrary: fixed },
    { weight: 1, arbitrary: emptyLineArb },
  );
}

/** Reasons an `ERR` may carry: a well-formed string without CR or LF. */
function reasonArb(maxBytes: number): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constantFrom(...Object.values(REASON)),
    fc.string({ unit: "grapheme", minLength: 1, maxLength: 24 }),
    fc.tuple(fc.constantFrom(" ", "\uFEFF", "ERR ", "\t", "é", "\0", "\u2028"), fc.string())
      .map(([start, rest]) => start + rest),
  ).filter((reason) =>
    reason.length > 0 && !/[\r\n]/.test(reason) && reason.isWellFormed() &&
    encoder.encode(reason).length <= maxBytes
  );
}

function serverItemArb(limits: Limits): fc.Arbitrary<Item<ServerFrame>> {
  const fixed = fc.tuple(
    fc.constantFrom(
      [PING_LINE, { type: "ping" }] as const,
      [PONG_LINE, { type: "pong" }] as const,
      [QUIT_LINE, { type: "quit" }] as const,
    ),
    lineEndArb,
  ).map(([[line, frame], end]): Item<ServerFrame> => ({
    wire: withEnd(line, end),
    frames: [frame],
  }));
  const msg = nameArb.chain((from) =>
    msgWireArb(limits, `${from} `, (payload) => encodeRelay(from, payload)).map(
      ({ payload, wire }): Item<ServerFrame> => ({
        wire,
        frames: [{ type: "msg", from, payload }],
      }),
    )
  );
  const err = fc.tuple(reasonArb(limits.maxLineBytes - "ERR ".length), lineEndArb).map((
    [reason, end],
  ): Item<ServerFrame> => ({
    wire: withEnd(encodeErr(reason), end),
    frames: [{ type: "err", reason }],
  }));
  return fc.oneof(
    { weight: 4, arbitrary: msg },
    { weight: 2, arbitrary: err },
    { weight: 2, arbitrary: fixed },
    { weight: 1, arbitrary: emptyLineArb },
  );
}

/** Bytes that are sure to fail, and the reason they must fail with. */
interface InvalidCase {
  wire: Uint8Array;
  reason: string;
}

/** An invalid case, printed readably in a counterexample. */
function invalidCase(wire: Uint8Array, reason: string): InvalidCase {
  return { wire, reason, [fc.toStringMethod]: () => `${show(wire)} -> ${reason}` } as InvalidCase;
}

/** Length texts that are not a plain decimal number; each needs a line end after it. */
const badLengthArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.constantFrom("", "-1", "+1", "1.5", "0x10", " 1", "1 ", "1 2", "abc", "1\0", "\0", "1e3")
    .map(latin1),
  fc.tuple(
    fc.string({ unit: fc.constantFrom("0", "7", "9"), maxLength: 8 }),
    fc.integer({ min: 0, max: 0xff }).filter((byte) => (byte < 0x30 || byte > 0x39) && byte !== LF),
    fc.uint8Array({ maxLength: 12 }),
  ).map(([digits, bad, rest]) => {
    const text = concat([digits, Uint8Array.of(bad), lineBody(rest, 12)]);
    return endsWithCr(text) ? concat([text, "x"]) : text;
  }),
);

/** A decimal length above `maxFrameBytes`, maybe with leading zeros or hundreds of digits. */
function tooLargeArb(limits: Limits, room: number): fc.Arbitrary<string> {
  const digits = String(limits.maxFrameBytes).length;
  return fc.tuple(
    fc.oneof(
      fc.integer({ min: 1, max: 1_000_000 }).map((extra) => String(limits.maxFrameBytes + extra)),
      fc.tuple(
        fc.integer({ min: 1, max: 9 }),
        fc.string({
          unit: fc.constantFrom("0", "1", "5", "9"),
          minLength: digits,
          maxLength: Math.max(digits, room - 16),
        }),
      ).map(([first, rest]) => `${first}${rest}`),
    ),
    fc.integer({ min: 0, max: 12 }),
  ).map(([number, zeros]) => "0".repeat(zeros) + number);
}

/** A line longer than `maxLineBytes`, with or without its line end. */
function tooLongArb(limits: Limits): fc.Arbitrary<Uint8Array> {
  const max = limits.maxLineBytes;
  return fc.tuple(
    fc.constantFrom("", "MSG ", "MSG 0000", "HELLO ", "AUTH ", "ERR ", "PING"),
    filledArb(max + 1, max + 48, true),
    fc.constantFrom("", "\n", "\r\n"),
  ).map(([start, fill, end]) => {
    const body = concat([start, fill]).subarray(0, Math.max(max + 1, fill.length));
    // One byte over the limit may still be the CR of a CR LF: make that byte something else.
    if (body.length === max + 1 && body[max] === CR) body[max] = 0x2e;
    return concat([body, end]);
  });
}

/** `header` (with its line end), a payload, then bytes that are not its line end. */
function missingEndArb(limits: Limits, header: (length: number) => string) {
  return fc.tuple(
    fc.uint8Array({ maxLength: Math.min(limits.maxFrameBytes, 64) }),
    lineEndArb,
    fc.oneof(
      fc.integer({ min: 0, max: 0xff }).filter((byte) => byte !== LF && byte !== CR)
        .map((byte) => Uint8Array.of(byte)),
      fc.integer({ min: 0, max: 0xff }).filter((byte) => byte !== LF)
        .map((byte) => Uint8Array.of(CR, byte)),
    ),
  ).map(([payload, end, after]) => concat([header(payload.length), end, payload, after]));
}

function clientInvalidArb(limits: Limits): fc.Arbitrary<InvalidCase> {
  const malformed = (wire: Uint8Array) => invalidCase(wire, REASON.malformedFrame);
  return fc.oneof(
    lineArb(badLengthArb.map((text) => concat(["MSG ", text]))).map(malformed),
    lineEndArb.map((end) => malformed(latin1(`MSG${end}`))),
    missingEndArb(limits, (length) => `MSG ${length}`).map(malformed),
    fc.tuple(tooLargeArb(limits, limits.maxLineBytes - 4), lineEndArb).map(([length, end]) =>
      invalidCase(latin1(`MSG ${length}${end}`), REASON.frameTooLarge)
    ),
    tooLongArb(limits).map((wire) => invalidCase(wire, REASON.lineTooLong)),
    fc.oneof(
      lineArb(invalidNameArb.map((name) => concat(["HELLO ", name]))),
      fc.tuple(fc.constantFrom("HELLO", "HELLO "), lineEndArb).map(([line, end]) =>
        latin1(line + end)
      ),
    ).map((wire) => invalidCase(wire, REASON.invalidName)),
  );
}

function serverInvalidArb(limits: Limits): fc.Arbitrary<InvalidCase> {
  const malformed = (wire: Uint8Array) => invalidCase(wire, REASON.malformedFrame);
  return fc.oneof(
    lineArb(
      fc.tuple(nameArb, badLengthArb).map(([from, text]) => concat([`MSG ${from} `, text])),
    ).map(malformed),
    lineArb(invalidNameArb.map((from) => concat(["MSG ", from, " 2"]))).map(malformed),
    fc.tuple(fc.constantFrom("MSG", "MSG ", "MSG bob", "MSG  2", "ERR", "ERR "), lineEndArb)
      .map(([line, end]) => malformed(latin1(line + end))),
    nameArb.chain((from) => missingEndArb(limits, (length) => `MSG ${from} ${length}`))
      .map(malformed),
    fc.tuple(nameArb, tooLargeArb(limits, limits.maxLineBytes - 70), lineEndArb).map((
      [from, length, end],
    ) => invalidCase(latin1(`MSG ${from} ${length}${end}`), REASON.frameTooLarge)),
    tooLongArb(limits).map((wire) => invalidCase(wire, REASON.lineTooLong)),
    lineArb(textBodyArb(limits.maxLineBytes, isServerVerb)).map((wire) =>
      invalidCase(wire, REASON.unknownFrame)
    ),
  );
}

/** Limits under which the valid streams are generated (lines of up to 128 bytes fit). */
const VALID_CONFIG = configArb([128, MAX_CONTROL_LINE_BYTES], [0, 20_000]);
/** Limits for random input: tiny ones too, so that every limit is hit. */
const ANY_CONFIG = configArb([1, 300], [0, 5_000]);
/** The limits the pieces of random input are made for (the decoder's may differ). */
const FRAGMENT_LIMITS: Limits = { maxLineBytes: 200, maxFrameBytes: 300 };

/** Random input: dictionary tokens, random bytes, valid and invalid frames of both directions. */
const rawArb: fc.Arbitrary<Raw> = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...TOKENS).map(latin1) },
    {
      weight: 2,
      arbitrary: fc.array(fc.constantFrom(...TRICKY_BYTES, 0x30, 0x39, 0x41, 0x2d), {
        maxLength: 16,
      }).map((bytes) => Uint8Array.from(bytes)),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 32 }) },
    { weight: 2, arbitrary: clientItemArb(FRAGMENT_LIMITS).map((item) => item.wire) },
    { weight: 2, arbitrary: serverItemArb(FRAGMENT_LIMITS).map((item) => item.wire) },
    { weight: 1, arbitrary: clientInvalidArb(FRAGMENT_LIMITS).map((item) => item.wire) },
    { weight: 1, arbitrary: serverInvalidArb(FRAGMENT_LIMITS).map((item) => item.wire) },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.integer({ min: 0, max: 0xff }), fc.integer({ min: 1, max: 5_000 }))
        .map(([byte, length]) => new Uint8Array(length).fill(byte)),
    },
  ),
  { maxLength: 20 },
).map((parts) => rawOf(concat(parts)));

// ---------------------------------------------------------------------------
// Properties

interface Direction<F extends AnyFrame> {
  name: string;
  reasons: ReadonlySet<string>;
  create: (options: DecoderOptions) => FuzzedDecoder<F>;
  item: (limits: Limits) => fc.Arbitrary<Item<F>>;
  invalid: (limits: Limits) => fc.Arbitrary<InvalidCase>;
}

interface NamedProperty {
  name: string;
  property: fc.IProperty<unknown[]>;
}

function directionProperties<F extends AnyFrame>(direction: Direction<F>): NamedProperty[] {
  const { name, reasons, create, item, invalid } = direction;
  const validCase = VALID_CONFIG.chain((config) =>
    streamArb(item(config.limits)).map((stream) => ({ config, stream }))
  );
  const checkValid = (config: Config, stream: Stream<F>, fed: Fed<F>) => {
    if (fed.error !== undefined) throw new Error(`valid stream failed: ${fed.error.message}`);
    assertSameFrames(fed.frames, stream.frames, "valid stream");
    if (fed.pending || fed.bufferedBytes !== 0) {
      throw new Error(`still pending (${fed.bufferedBytes} bytes held) after a whole stream`);
    }
    return config;
  };
  const invalidCase = VALID_CONFIG.chain((config) =>
    fc.record({
      config: fc.constant(config),
      before: streamArb(item(config.limits)),
      bad: invalid(config.limits),
      after: rawArb,
    })
  );
  return [
    {
      name: `${name} decodes valid frames split into random chunks`,
      property: fc.property(validCase, chunkingArb, ({ config, stream }, chunking) => {
        const decoder = create(config.options);
        const points = cutPoints(chunking, stream.wire.length);
        checkValid(config, stream, feed(decoder, config.limits, reasons, stream.wire, points));
      }),
    },
    {
      name: `${name} decodes valid frames pushed in two halves`,
      property: fc.property(validCase, fc.nat(), ({ config, stream }, split) => {
        const decoder = create(config.options);
        const points = [split % (stream.wire.length + 1)];
        checkValid(config, stream, feed(decoder, config.limits, reasons, stream.wire, points));
      }),
    },
    {
      name: `${name} survives random input in random chunks and stays failed after an error`,
      property: fc.property(ANY_CONFIG, rawArb, chunkingArb, (config, raw, chunking) => {
        const decoder = create(config.options);
        const points = cutPoints(chunking, raw.bytes.length);
        // Valid frames after the input: a failed decoder must decode none of them.
        const after = [concat([PING_LINE, "MSG 0\n\n"]), PING_LINE];
        feed(decoder, config.limits, reasons, raw.bytes, points, after);
      }),
    },
    {
      name: `${name} decodes random input the same however it is chunked`,
      property: fc.property(ANY_CONFIG, rawArb, chunkingArb, (config, raw, chunking) => {
        const whole = feed(create(config.options), config.limits, reasons, raw.bytes, []);
        const points = cutPoints(chunking, raw.bytes.length);
        const cut = feed(create(config.options), config.limits, reasons, raw.bytes, points);
        assertSameFrames(cut.frames, whole.frames, "chunked against whole");
        if (
          cut.error?.reason !== whole.error?.reason || cut.error?.message !== whole.error?.message
        ) {
          throw new Error(
            `chunked input ended in ${String(cut.error)}, whole in ${String(whole.error)}`,
          );
        }
        if (cut.pending !== whole.pending || cut.bufferedBytes !== whole.bufferedBytes) {
          throw new Error(
            `chunked input left pending=${cut.pending} with ${cut.bufferedBytes} bytes, ` +
              `whole pending=${whole.pending} with ${whole.bufferedBytes}`,
          );
        }
      }),
    },
    {
      name: `${name} rejects definitely invalid input with the expected reason`,
      property: fc.property(invalidCase, chunkingArb, (testCase, chunking) => {
        const { config, before, bad, after } = testCase;
        const input = concat([before.wire, bad.wire, after.bytes]);
        const decoder = create(config.options);
        const points = cutPoints(chunking, input.length);
        const fed = feed(decoder, config.limits, reasons, input, points, [PING_LINE]);
        if (fed.error?.reason !== bad.reason) {
          throw new Error(
            `${show(bad.wire)} ended in ${
              fed.error === undefined ? "no error" : JSON.stringify(fed.error.reason)
            }, expected ${JSON.stringify(bad.reason)}`,
          );
        }
        assertSameFrames(fed.frames, before.frames, "frames before the invalid input");
      }),
    },
  ];
}

function formatFailure(name: string, details: fc.RunDetails<unknown[]>): string {
  const error = details.errorInstance instanceof Error
    ? details.errorInstance.message
    : String(details.errorInstance);
  let counterexample = details.counterexample === null
    ? "none"
    : fc.stringify(details.counterexample);
  if (counterexample.length > MAX_COUNTEREXAMPLE_CHARS) {
    counterexample = `${counterexample.slice(0, MAX_COUNTEREXAMPLE_CHARS)}…`;
  }
  return [
    `${name}: failed after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s): ${error}`,
    `  seed: ${details.seed}, path: ${JSON.stringify(details.counterexamplePath)}`,
    `  counterexample: ${counterexample}`,
  ].join("\n");
}

/**
 * Checks the properties of both frame decoders with fast-check and reports what
 * failed, without throwing.
 *
 * For `ClientFrameDecoder` through `push()`, the same through `pushRanges()` (the
 * server's path, see {@linkcode rangedClientDecoder}), and `ServerFrameDecoder` (five
 * properties each):
 *
 * 1. random valid frames (binary payloads with LF, CR and NUL up to `maxFrameBytes`,
 *    names, tokens, non-verb text lines up to `maxLineBytes`, LF and CR LF line ends,
 *    leading zeros, empty lines), encoded and cut into random chunks, decode to
 *    exactly the frames sent;
 * 2. the same streams pushed in two halves decode the same;
 * 3. random input in random chunks never makes `push` throw; an error is a
 *    `ProtocolError` with one of the decoder's `REASON`s; later pushes return no
 *    frames and the same error; `bufferedBytes` never exceeds
 *    `max(maxLineBytes + 1, maxFrameBytes) + 1` (a line may hold the CR of its
 *    CR LF beyond the limit, a payload the CR after it; never both);
 * 4. random input decodes the same frames and error whole as in chunks;
 * 5. valid frames, then definitely invalid bytes (a non-numeric, missing or too
 *    large `MSG` length, a NUL in a header, an overlong line with or without its
 *    line end, a payload not followed by its line end, a bad `HELLO` name or sender,
 *    an unknown server line, an empty `ERR`), then anything: the valid frames, then
 *    an error with the reason those bytes deserve.
 *
 * @param options How many cases per property, the seed, and optionally the decoders.
 * @returns The number of properties and of cases run, and one message per failed
 * property.
 *
 * @example Fuzz the decoders briefly
 * ```ts
 * import assert from "node:assert/strict";
 * import { runDecoderFuzz } from "./decoder_fuzz.ts";
 *
 * const { properties, runs, failures } = runDecoderFuzz({ numRuns: 5, seed: 42 });
 * assert.equal(properties, 15);
 * assert.equal(runs <= 75, true);
 * for (const failure of failures) console.error(failure);
 * ```
 *
 * @example A broken decoder is reported, not thrown
 * ```ts
 * import assert from "node:assert/strict";
 * import { ClientFrameDecoder } from "../../lib/parrot/frame_decoder.ts";
 * import { runDecoderFuzz } from "./decoder_fuzz.ts";
 *
 * const { failures } = runDecoderFuzz({
 *   numRuns: 20,
 *   seed: 1,
 *   // Forgets every other push.
 *   createClientDecoder: (options) => {
 *     const decoder = new ClientFrameDecoder(options);
 *     let pushes = 0;
 *     return {
 *       push: (chunk) => pushes++ % 2 === 0 ? decoder.push(chunk) : { frames: [] },
 *       get pending() {
 *         return decoder.pending;
 *       },
 *       get bufferedBytes() {
 *         return decoder.bufferedBytes;
 *       },
 *     };
 *   },
 * });
 * assert.equal(failures.some((failure) => failure.includes("seed: 1")), true);
 * ```
 */
export function runDecoderFuzz(options: DecoderFuzzOptions): DecoderFuzzResult {
  const properties = [
    ...directionProperties<ClientFrame>({
      name: "ClientFrameDecoder",
      reasons: CLIENT_REASONS,
      create: options.createClientDecoder ?? ((limits) => new ClientFrameDecoder(limits)),
      item: clientItemArb,
      invalid: clientInvalidArb,
    }),
    ...directionProperties<ClientFrame>({
      name: "ClientFrameDecoder.pushRanges()",
      reasons: CLIENT_REASONS,
      create: options.createRangedClientDecoder ??
        ((limits) => rangedClientDecoder(new ClientFrameDecoder(limits))),
      item: clientItemArb,
      invalid: clientInvalidArb,
    }),
    ...directionProperties<ServerFrame>({
      name: "ServerFrameDecoder",
      reasons: SERVER_REASONS,
      create: options.createServerDecoder ?? ((limits) => new ServerFrameDecoder(limits)),
      item: serverItemArb,
      invalid: serverInvalidArb,
    }),
  ];
  const parameters: fc.Parameters<unknown[]> = { numRuns: options.numRuns };
  if (options.seed !== undefined) parameters.seed = options.seed;
  const failures: string[] = [];
  let runs = 0;
  for (const { name, property } of properties) {
    const details = fc.check(property, parameters);
    runs += details.numRuns;
    if (details.failed || details.interrupted) failures.push(formatFailure(name, details));
  }
  return { properties: properties.length, runs, failures };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { runs: { type: "string", default: "1000" }, seed: { type: "string" } },
  });
  const numRuns = Number(values.runs);
  const seed = values.seed === undefined ? Date.now() | 0 : Number(values.seed);
  const started = performance.now();
  const result = runDecoderFuzz({ numRuns, seed });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `decoder fuzz: ${result.properties} properties, ${result.runs} runs, seed ${seed}, ${seconds}s`,
  );
  for (const failure of result.failures) console.error(failure);
  if (result.failures.length > 0) Deno.exit(1);
}
