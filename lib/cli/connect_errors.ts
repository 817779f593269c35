/**
 * Why a client could not connect, as advice a user can act on.
 *
 * It owns turning the TLS library's terse verdicts (`invalid peer certificate:
 * UnknownIssuer`, `Other(OtherError(CaUsedAsEndEntity))`, `certificate not valid for
 * name ...`) into one line that says what is wrong and which flag or recipe fixes it.
 * The verdict's own name stays in parentheses, so the line can still be searched for.
 * Anything it does not recognise is described as {@linkcode describeError} does.
 *
 * @module
 */

import { describeError } from "../parrot/reconnecting_client.ts";

/** Where the client tried to connect, for the advice. */
export interface ConnectTarget {
  /** The `--host` given (a name or an address). */
  hostname: string;
  /** Whether the client spoke TLS. */
  tls: boolean;
}

/**
 * One line on why connecting to `target` failed with `error`, with the fix when there is
 * a known one.
 *
 * @example A self-signed certificate the client was not told to trust
 * ```ts
 * import assert from "node:assert/strict";
 * import { explainConnectError } from "./connect_errors.ts";
 *
 * const error = new Error("invalid peer certificate: UnknownIssuer");
 * assert.match(
 *   explainConnectError(error, { hostname: "127.0.0.1", tls: true }),
 *   /not signed by an authority this client trusts \(UnknownIssuer\): trust it with --ca <file>/,
 * );
 * ```
 */
export function explainConnectError(error: unknown, target: ConnectTarget): string {
  if (error instanceof Deno.errors.ConnectionRefused) {
    return "connection refused (is the server running?)";
  }
  const message = error instanceof Error ? error.message : String(error);
  if (/CaUsedAsEndEntity/.test(message)) {
    return "the server's certificate is a CA certificate, which TLS refuses for a server " +
      "(CaUsedAsEndEntity): regenerate it with -addext basicConstraints=critical,CA:FALSE";
  }
  if (/UnknownIssuer/.test(message)) {
    return "the server's certificate is not signed by an authority this client trusts " +
      "(UnknownIssuer): trust it with --ca <file> (the server's certificate, or its CA's)";
  }
  if (/BadSignature/.test(message)) {
    return "the server's certificate is not signed by the certificate given with --ca " +
      "(BadSignature): give --ca the server's own certificate, or the CA that signed it";
  }
  if (/not valid for name|NotValidForName/.test(message)) {
    const names = certificateNames(message);
    return `the server's certificate is not valid for "${target.hostname}"` +
      `${names.length === 0 ? "" : ` (it names ${names.join(", ")})`}: ` +
      "--host must be a name or address the certificate carries";
  }
  if (/Expired|NotValidYet/.test(message)) {
    return `the server's certificate is outside its validity period ` +
      `(${/\b(Expired\w*|NotValidYet\w*)/.exec(message)?.[1]}): renew it`;
  }
  if (target.tls && /InvalidContentType|corrupt message/.test(message)) {
    return "the server does not speak TLS (it answered the handshake with something else): " +
      "drop --tls and --ca";
  }
  return describeError(error);
}

/** The names a certificate carries, from rustls's "only valid for DnsName(...)" text. */
function certificateNames(message: string): string[] {
  const names: string[] = [];
  for (const match of message.matchAll(/(?:DnsName|IpAddress)\(\s*"?([^")]+?)"?\s*\)/g)) {
    names.push(match[1]);
  }
  return names;
}
