/**
 * Encoders for the frames of the parrot/1 wire protocol, in both directions.
 *
 * This module owns turning frames into bytes, the mirror of
 * `frame_decoder.ts`: what it writes, the decoders read back unchanged. Each
 * function makes exactly one allocation of the exact output size (a relayed
 * message is written to every subscriber, so it is built once and shared), and
 * the fixed lines are allocated once for the whole process. As in tokio
 * mini-redis's `frame.rs` and nats.js's protocol handler, the header of a
 * length-prefixed frame is written straight into the buffer that holds the
 * payload, so a payload is copied once and never turned into a string.
 *
 * The fixed lines ({@linkcode PING_LINE} and the others) are shared: write
 * them, never modify them.
 *
 * @module
 */

import { MAX_NAME_LENGTH } from "../defaults.ts";
import { isValidName } from "./frame.ts";

export { isValidName } from "./frame.ts";

const LF = 0x0a;
const textEncoder = new TextEncoder();

/**
 * Writes the ASCII `header`, `payload` and a final LF into one buffer of the
 * exact size.
 */
function framed(header: string, payload: Uint8Array): Uint8Array {
  const headerBytes = header.length;
  const out = new Uint8Array(headerBytes + payload.length + 1);
  for (let i = 0; i < headerBytes; i++) out[i] = header.charCodeAt(i);
  out.set(payload, headerBytes);
  out[out.length - 1] = LF;
  return out;
}

function checkName(name: string, what: string): void {
  if (isValidName(name)) return;
  const rule = `a name is 1 to ${MAX_NAME_LENGTH} visible ASCII characters without spaces`;
  throw new RangeError(`Cannot encode ${what} ${JSON.stringify(name)}: ${rule}`);
}

/**
 * Encodes a message a client sends: `MSG <n>` LF, the n payload bytes, LF.
 *
 * The payload may hold any bytes, LF and CR included.
 *
 * @param payload The message bytes.
 * @returns The frame, in one new buffer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeMsg } from "./frame_encoder.ts";
 *
 * const frame = encodeMsg(new TextEncoder().encode("hi\n"));
 * assert.equal(new TextDecoder().decode(frame), "MSG 3\nhi\n\n");
 * ```
 */
export function encodeMsg(payload: Uint8Array): Uint8Array {
  return framed(`MSG ${payload.length}\n`, payload);
}

/**
 * Encodes a message the server relays: `MSG <from> <n>` LF, the n payload
 * bytes, LF.
 *
 * @param from The name of the client that sent the message.
 * @param payload The message bytes.
 * @returns The frame, in one new buffer.
 * @throws {RangeError} If `from` is not a valid name (see
 * {@linkcode isValidName}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeRelay } from "./frame_encoder.ts";
 *
 * const frame = encodeRelay("alice", new TextEncoder().encode("hi"));
 * assert.equal(new TextDecoder().decode(frame), "MSG alice 2\nhi\n");
 * assert.throws(() => encodeRelay("a b", new Uint8Array()), RangeError);
 * ```
 */
export function encodeRelay(from: string, payload: Uint8Array): Uint8Array {
  checkName(from, "sender name");
  return framed(`MSG ${from} ${payload.length}\n`, payload);
}

/**
 * Encodes many relayed messages into one buffer: for each, `header` (`MSG <from> `, see
 * `Session.relayHeader`), the payload length in decimal, LF, the payload and LF. The
 * i-th payload is `sources[i][bounds[2i], bounds[2i+1])`, so that a batch of messages
 * read into one buffer needs no view per message.
 *
 * @param headers The `MSG <from> ` bytes of each message.
 * @param sources The bytes each payload lies in (often the same buffer for many).
 * @param bounds Start and end of each payload in its source, two numbers a message.
 * @param allocate Gives the buffer to encode into, of at least the size asked for
 * (a new one by default); the frames are written from its start.
 * @param count How many messages to encode, from the start of the arrays (all of
 * `headers` by default), for arrays that are reused from batch to batch.
 * @returns The frames (a view of the buffer), and where each frame ends in it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeRelays } from "./frame_encoder.ts";
 *
 * const text = new TextEncoder();
 * const read = text.encode("MSG 2\nhi\nMSG 0\n\n");
 * const { bytes, ends } = encodeRelays(
 *   [text.encode("MSG ann "), text.encode("MSG bob ")],
 *   [read, read],
 *   [6, 8, 15, 15],
 * );
 * assert.equal(new TextDecoder().decode(bytes), "MSG ann 2\nhi\nMSG bob 0\n\n");
 * assert.deepEqual(ends, [13, 24]);
 * ```
 */
export function encodeRelays(
  headers: readonly Uint8Array[],
  sources: readonly Uint8Array[],
  bounds: readonly number[],
  allocate: (size: number) => Uint8Array = (size) => new Uint8Array(size),
  count: number = headers.length,
): { bytes: Uint8Array; ends: number[] } {
  let total = 0;
  for (let i = 0; i < count; i++) {
    const length = bounds[2 * i + 1] - bounds[2 * i];
    total += headers[i].length + decimalLength(length) + length + 2;
  }
  const bytes = allocate(total).subarray(0, total);
  const ends: number[] = new Array(count);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const header = headers[i];
    for (let k = 0; k < header.length; k++) bytes[at++] = header[k];
    const source = sources[i];
    const start = bounds[2 * i];
    const end = bounds[2 * i + 1];
    at = writeDecimal(bytes, at, end - start);
    bytes[at++] = 0x0a;
    if (end - start > SHORT_COPY_BYTES) {
      bytes.set(source.subarray(start, end), at);
      at += end - start;
    } else {
      for (let k = start; k < end; k++) bytes[at++] = source[k];
    }
    bytes[at++] = 0x0a;
    ends[i] = at;
  }
  return { bytes, ends };
}

/** Payloads up to this long are copied byte by byte rather than through a view. */
const SHORT_COPY_BYTES = 64;

function decimalLength(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

function writeDecimal(bytes: Uint8Array, at: number, n: number): number {
  const end = at + decimalLength(n);
  let i = end;
  do {
    bytes[--i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  return end;
}

/**
 * Encodes the line a client names itself with: `HELLO <name>` LF.
 *
 * @param name The client's name.
 * @returns The line, in one new buffer.
 * @throws {RangeError} If `name` is not a valid name (see
 * {@linkcode isValidName}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeHello } from "./frame_encoder.ts";
 *
 * assert.equal(new TextDecoder().decode(encodeHello("bob")), "HELLO bob\n");
 * assert.throws(() => encodeHello(""), RangeError);
 * ```
 */
export function encodeHello(name: string): Uint8Array {
  checkName(name, "name");
  return textEncoder.encode(`HELLO ${name}\n`);
}

/**
 * Encodes the line a client sends first to a server that requires a token:
 * `AUTH <token>` LF.
 *
 * @param token The server's token; not empty, and without CR or LF.
 * @returns The line, in one new buffer.
 * @throws {RangeError} If `token` is empty or holds CR or LF.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeAuth } from "./frame_encoder.ts";
 *
 * assert.equal(new TextDecoder().decode(encodeAuth("s3cret")), "AUTH s3cret\n");
 * assert.throws(() => encodeAuth("a\nb"), RangeError);
 * ```
 */
export function encodeAuth(token: string): Uint8Array {
  if (token.length === 0 || /[\r\n]/.test(token)) {
    throw new RangeError("Cannot encode the token: it must be non-empty and on one line");
  }
  return textEncoder.encode(`AUTH ${token}\n`);
}

/**
 * Encodes the line the server sends before it closes a connection for a
 * reason: `ERR <reason>` LF.
 *
 * @param reason The reason, e.g. a `ProtocolError.reason`; not
 * empty, and without CR or LF.
 * @returns The line, in one new buffer.
 * @throws {RangeError} If `reason` is empty or holds CR or LF.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeErr } from "./frame_encoder.ts";
 *
 * const line = encodeErr("too many clients");
 * assert.equal(new TextDecoder().decode(line), "ERR too many clients\n");
 * assert.throws(() => encodeErr("two\nlines"), RangeError);
 * ```
 */
export function encodeErr(reason: string): Uint8Array {
  if (reason.length === 0 || reason.includes("\n") || reason.includes("\r")) {
    throw new RangeError(
      `Cannot encode error reason ${JSON.stringify(reason)}: it must be one non-empty line`,
    );
  }
  return textEncoder.encode(`ERR ${reason}\n`);
}

/**
 * The line `PING` LF, sent by either side to check that the other is alive.
 * Shared: don't modify it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PING_LINE } from "./frame_encoder.ts";
 *
 * assert.deepEqual(PING_LINE, new TextEncoder().encode("PING\n"));
 * ```
 */
export const PING_LINE: Uint8Array = textEncoder.encode("PING\n");

/**
 * The line `PONG` LF, the answer to `PING`. Shared: don't modify it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PONG_LINE } from "./frame_encoder.ts";
 *
 * assert.deepEqual(PONG_LINE, new TextEncoder().encode("PONG\n"));
 * ```
 */
export const PONG_LINE: Uint8Array = textEncoder.encode("PONG\n");

/**
 * The line `QUIT` LF, sent by either side before it closes the connection.
 * Shared: don't modify it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { QUIT_LINE } from "./frame_encoder.ts";
 *
 * assert.deepEqual(QUIT_LINE, new TextEncoder().encode("QUIT\n"));
 * ```
 */
export const QUIT_LINE: Uint8Array = textEncoder.encode("QUIT\n");

/**
 * The line `SUB` LF, sent by a client. Shared: don't modify it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SUB_LINE } from "./frame_encoder.ts";
 *
 * assert.deepEqual(SUB_LINE, new TextEncoder().encode("SUB\n"));
 * ```
 */
export const SUB_LINE: Uint8Array = textEncoder.encode("SUB\n");

/**
 * The line `UNSUB` LF, sent by a client. Shared: don't modify it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { UNSUB_LINE } from "./frame_encoder.ts";
 *
 * assert.deepEqual(UNSUB_LINE, new TextEncoder().encode("UNSUB\n"));
 * ```
 */
export const UNSUB_LINE: Uint8Array = textEncoder.encode("UNSUB\n");
