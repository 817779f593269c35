/**
 * What a connection must do before it is a client: finish its TLS handshake and, when
 * the server has a token, send `AUTH <token>` as its first line, all within the auth
 * timeout.
 *
 * Until it is admitted a connection is not in the hub (it receives nothing) and the
 * server holds at most one control line of its input in a fixed buffer: no frame
 * payload is read, so an unauthenticated client cannot make the server hold memory.
 * The token is compared in constant time and never logged.
 *
 * @module
 */

import { MAX_CONTROL_LINE_BYTES } from "../defaults.ts";
import { abortable, isTimeoutError } from "../net/deadline.ts";
import { type ByteReader, TimedReader } from "../net/timed_reader.ts";
import { REASON } from "./frame.ts";
import { parseAuthLine } from "./frame_decoder.ts";

/** How a connection is admitted. */
export interface AdmissionPolicy {
  /** The token the first line must carry; without it any client is admitted. */
  token?: Uint8Array;
  /** Milliseconds from the accept to the end of the handshake and the `AUTH` line. */
  authTimeoutMs: number;
}

/** The outcome of {@linkcode admit}. */
export type Admission =
  /** Admitted; `leftover` holds the bytes that came after the `AUTH` line. */
  | { admitted: true; leftover: Uint8Array }
  /** Refused: `reason` goes after `ERR` when the peer can read it, else `undefined`. */
  | { admitted: false; failure: "auth" | "tls"; reason?: string; detail: string };

const LF = 0x0a;
const CR = 0x0d;

/**
 * Runs the admission of one connection: TLS handshake (for a `Deno.TlsConn`), then the
 * `AUTH` line when `policy.token` is set.
 *
 * @example A client that knows the token
 * ```ts
 * import assert from "node:assert/strict";
 * import { admit } from "./admission.ts";
 *
 * const bytes = new TextEncoder().encode("AUTH s3cret\nHELLO ann\n");
 * let served = false;
 * const conn = {
 *   read: (p: Uint8Array) => {
 *     if (served) return Promise.resolve(null);
 *     served = true;
 *     p.set(bytes);
 *     return Promise.resolve(bytes.length);
 *   },
 * };
 * const token = new TextEncoder().encode("s3cret");
 * const result = await admit(conn, { token, authTimeoutMs: 1000 });
 * assert.ok(result.admitted);
 * assert.equal(result.admitted && new TextDecoder().decode(result.leftover), "HELLO ann\n");
 * ```
 */
export async function admit(
  conn: ByteReader,
  policy: AdmissionPolicy,
): Promise<Admission> {
  const deadlineAt = Date.now() + policy.authTimeoutMs;
  if ("handshake" in conn && typeof conn.handshake === "function") {
    try {
      await abortable(
        conn.handshake() as Promise<unknown>,
        AbortSignal.timeout(Math.max(deadlineAt - Date.now(), 0)),
      );
    } catch (error) {
      const detail = isTimeoutError(error)
        ? "the TLS handshake did not finish within the auth timeout"
        : `the TLS handshake failed: ${error instanceof Error ? error.message : error}`;
      return { admitted: false, failure: "tls", detail };
    }
  }
  if (!policy.token) return ADMITTED;
  const reader = new TimedReader(conn);
  try {
    return await readAuthLine(reader, policy.token, deadlineAt);
  } finally {
    reader.dispose();
  }
}

/** The admission of a connection that has nothing to prove: no token, no TLS. */
const ADMITTED: Admission = { admitted: true, leftover: new Uint8Array(0) };

/**
 * Whether `conn` has anything to prove under `policy` (a TLS handshake or a token);
 * when not, it is admitted as it is, without calling {@linkcode admit}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { needsAdmission } from "./admission.ts";
 *
 * const plain = { read: () => Promise.resolve(null) };
 * assert.equal(needsAdmission(plain, { authTimeoutMs: 2000 }), false);
 * assert.equal(needsAdmission(plain, { authTimeoutMs: 2000, token: new Uint8Array(4) }), true);
 * ```
 */
export function needsAdmission(conn: object, policy: AdmissionPolicy): boolean {
  return policy.token !== undefined || "handshake" in conn;
}

async function readAuthLine(
  reader: TimedReader,
  token: Uint8Array,
  deadlineAt: number,
): Promise<Admission> {
  // One control line and its line end, in one fixed buffer.
  const buffer = new Uint8Array(MAX_CONTROL_LINE_BYTES + 2);
  let filled = 0;
  for (;;) {
    let chunk: Uint8Array | null;
    try {
      chunk = await reader.read(buffer.subarray(filled), deadlineAt);
    } catch (error) {
      if (!isTimeoutError(error)) throw error;
      return refuse(REASON.authTimeout, "no AUTH line within the auth timeout");
    }
    if (chunk === null) {
      return { admitted: false, failure: "auth", detail: "the client left before AUTH" };
    }
    const searchFrom = filled;
    filled += chunk.length;
    const lf = buffer.subarray(searchFrom, filled).indexOf(LF);
    if (lf < 0) {
      if (filled === buffer.length) {
        return refuse(REASON.unauthorized, "the first line is too long");
      }
      continue;
    }
    const lineEnd = searchFrom + lf;
    const given = parseAuthLine(
      buffer,
      0,
      lineEnd > 0 && buffer[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd,
    );
    if (!given) return refuse(REASON.unauthorized, "the first line is not AUTH");
    if (!constantTimeEqual(given, token)) {
      return refuse(REASON.unauthorized, "wrong token");
    }
    return { admitted: true, leftover: buffer.subarray(lineEnd + 1, filled) };
  }
}

function refuse(reason: string, detail: string): Admission {
  return { admitted: false, failure: "auth", reason, detail };
}

/**
 * Compares `given` with `secret` in a time that depends on the secret's length only,
 * never on where the first difference is.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { constantTimeEqual } from "./admission.ts";
 *
 * const secret = new TextEncoder().encode("s3cret");
 * assert.equal(constantTimeEqual(new TextEncoder().encode("s3cret"), secret), true);
 * assert.equal(constantTimeEqual(new TextEncoder().encode("s3cre"), secret), false);
 * ```
 */
export function constantTimeEqual(given: Uint8Array, secret: Uint8Array): boolean {
  let difference = given.length ^ secret.length;
  for (let i = 0; i < secret.length; i++) difference |= (given[i] ?? 0) ^ secret[i];
  return difference === 0;
}
