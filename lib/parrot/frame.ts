/**
 * The frames of the parrot/1 wire protocol and the error a peer gets for
 * breaking it.
 *
 * This module owns the vocabulary that the decoder
 * (`frame_decoder.ts`) produces and the encoder (`frame_encoder.ts`) writes: one tagged union per direction, the
 * short wire reasons sent after `ERR`, and the name rule of `HELLO`. Keeping
 * them apart from both codecs lets each side import them without a cycle, the
 * way tokio mini-redis keeps its `Frame` enum and its parse error in
 * `frame.rs`, apart from the connection that reads them.
 *
 * @module
 */

import { MAX_NAME_LENGTH } from "../defaults.ts";

/**
 * Largest count a decoded `HISTORY <n>` carries: a larger n (of any number of digits)
 * is taken as this, and the server caps it further (`--history-replay-max`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MAX_HISTORY_COUNT } from "./frame.ts";
 *
 * assert.equal(MAX_HISTORY_COUNT, 2 ** 31 - 1);
 * ```
 */
export const MAX_HISTORY_COUNT = 2 ** 31 - 1;

/**
 * A frame a client sends to the server, as the server decodes it.
 *
 * - `auth`: `AUTH <token>`, the client proves it may connect (its first line when
 *   the server requires a token). The token is raw bytes, never printed.
 * - `hello`: `HELLO <name>`, the client names itself.
 * - `msg`: `MSG <n>` and n binary-safe payload bytes.
 * - `text`: any other non-empty line, sent as a message without its line end.
 * - `history`: `HISTORY <n>`, the client asks for the last `count` stored messages
 *   (`count` is capped at {@linkcode MAX_HISTORY_COUNT} when decoded).
 * - `ping`, `pong`, `sub`, `unsub`, `quit`: the exact lines `PING`, `PONG`,
 *   `SUB`, `UNSUB` and `QUIT`.
 *
 * Payloads are raw bytes and are never decoded to strings.
 *
 * @example Switch on the frame type
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ClientFrame } from "./frame.ts";
 *
 * function describe(frame: ClientFrame): string {
 *   switch (frame.type) {
 *     case "hello":
 *       return `hello from ${frame.name}`;
 *     case "msg":
 *     case "text":
 *       return `${frame.payload.length} bytes`;
 *     default:
 *       return frame.type;
 *   }
 * }
 *
 * assert.equal(describe({ type: "hello", name: "bob" }), "hello from bob");
 * assert.equal(describe({ type: "msg", payload: new Uint8Array(3) }), "3 bytes");
 * assert.equal(describe({ type: "quit" }), "quit");
 * ```
 */
export type ClientFrame =
  | { type: "auth"; token: Uint8Array }
  | { type: "hello"; name: string }
  | { type: "msg"; payload: Uint8Array }
  | { type: "text"; payload: Uint8Array }
  | { type: "history"; count: number }
  | { type: "ping" }
  | { type: "pong" }
  | { type: "sub" }
  | { type: "unsub" }
  | { type: "quit" };

/**
 * A frame the server sends to a client, as the client decodes it.
 *
 * - `msg`: `MSG <from> <n>` and n payload bytes, a message relayed from the
 *   client named `from`.
 * - `ping`, `pong`, `quit`: the exact lines `PING`, `PONG` and `QUIT`.
 * - `err`: `ERR <reason>`, the server's reason for closing the connection.
 *
 * @example Print a relayed message
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ServerFrame } from "./frame.ts";
 *
 * const frame: ServerFrame = {
 *   type: "msg",
 *   from: "alice",
 *   payload: new TextEncoder().encode("hi"),
 * };
 * assert.equal(frame.type === "msg" && frame.from, "alice");
 * ```
 */
export type ServerFrame =
  | { type: "msg"; from: string; payload: Uint8Array }
  | { type: "ping" }
  | { type: "pong" }
  | { type: "quit" }
  | { type: "err"; reason: string };

/**
 * The short reasons the decoders give, exactly as they go on the wire after
 * `ERR `.
 *
 * @example Send the reason of a decoding error
 * ```ts
 * import assert from "node:assert/strict";
 * import { REASON } from "./frame.ts";
 *
 * assert.equal(`ERR ${REASON.frameTooLarge}`, "ERR frame too large");
 * ```
 */
export const REASON = {
  /** `HELLO` without a valid name. */
  invalidName: "invalid name",
  /** A frame whose header or line end does not follow the grammar. */
  malformedFrame: "malformed frame",
  /** A `MSG` length above the decoder's `maxFrameBytes`. */
  frameTooLarge: "frame too large",
  /** A control line longer than the decoder's `maxLineBytes`. */
  lineTooLong: "control line too long",
  /** A first line that is not `AUTH` with the server's token. */
  unauthorized: "unauthorized",
  /** No `AUTH` line (or no TLS handshake) within the auth timeout. */
  authTimeout: "auth timeout",
  /** An unfinished frame or line that did not complete within the read timeout. */
  readTimeout: "read timeout",
  /** A connection silent for twice the idle timeout. */
  idleTimeout: "idle timeout",
  /** A connection that ended in the middle of a frame. */
  truncatedFrame: "truncated frame",
  /** A line the client decoder does not know. */
  unknownFrame: "unknown frame",
  /** A connection over the server's client limit. */
  tooManyClients: "too many clients",
  /** A subscriber that did not take its relays fast enough (queue limit or write timeout). */
  slowConsumer: "slow consumer",
  /** The server cannot write messages to its output (stdout) any more, and stops. */
  outputFailed: "output failed",
} as const;

/**
 * One of the reasons in {@linkcode REASON}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ProtocolReason, REASON } from "./frame.ts";
 *
 * const reason: ProtocolReason = REASON.invalidName;
 * assert.equal(reason, "invalid name");
 * ```
 */
export type ProtocolReason = typeof REASON[keyof typeof REASON];

/**
 * A peer broke the parrot/1 protocol.
 *
 * {@linkcode ProtocolError.reason} is the short text to send after `ERR `
 * (usually one of {@linkcode REASON}); the message explains the problem for
 * logs.
 *
 * @example Tell the peer, log the details
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProtocolError, REASON } from "./frame.ts";
 *
 * const error = new ProtocolError(
 *   REASON.malformedFrame,
 *   'Cannot parse frame length "abc": not a number',
 * );
 * assert.equal(error.reason, "malformed frame");
 * assert.equal(error.message, 'Cannot parse frame length "abc": not a number');
 * assert.equal(error.name, "ProtocolError");
 * assert.ok(error instanceof Error);
 * ```
 */
export class ProtocolError extends Error {
  /** The exact text that goes after `ERR ` on the wire. */
  readonly reason: string;

  /**
   * Creates a protocol error.
   *
   * @param reason The short wire reason, e.g. {@linkcode REASON.malformedFrame}.
   * @param message A specific explanation in sentence case; defaults to the
   * reason with an upper-case first letter.
   * @param options The standard error options, e.g. a `cause`.
   */
  constructor(reason: string, message?: string, options?: ErrorOptions) {
    super(message ?? reason.charAt(0).toUpperCase() + reason.slice(1), options);
    this.name = "ProtocolError";
    this.reason = reason;
  }
}

/**
 * Tells whether `name` is a valid client name: 1 to
 * {@linkcode MAX_NAME_LENGTH} (64) visible ASCII characters (`!` to `~`, so
 * no spaces and no control characters).
 *
 * `HELLO` carries such a name and a relayed `MSG` names its sender with one;
 * the decoders and the encoder all check it here.
 *
 * @param name The name to check.
 * @returns `true` if `name` is valid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isValidName } from "./frame.ts";
 *
 * assert.equal(isValidName("bob"), true);
 * assert.equal(isValidName("a".repeat(64)), true);
 * assert.equal(isValidName(""), false);
 * assert.equal(isValidName("a b"), false);
 * assert.equal(isValidName("a".repeat(65)), false);
 * assert.equal(isValidName("zoë"), false);
 * ```
 */
export function isValidName(name: string): boolean {
  const length = name.length;
  if (length === 0 || length > MAX_NAME_LENGTH) return false;
  for (let i = 0; i < length; i++) {
    const code = name.charCodeAt(i);
    if (code < 0x21 || code > 0x7e) return false;
  }
  return true;
}
