/**
 * Where a parrot server listens, as a client names it: a {@linkcode ServerAddress}, its
 * text form `host:port` (`[::1]:8080` for an IPv6 address), and the parser of that form.
 *
 * It is its own module because the client, the reconnecting client (which moves from one
 * server to the next) and the command-line programs all name servers the same way, and
 * their log lines must print them the same way.
 *
 * @module
 */

import { DEFAULT_HOST } from "../defaults.ts";

/** One server a client may connect to. */
export interface ServerAddress {
  /** Host name or address. Default `127.0.0.1`. */
  hostname?: string;
  /** TCP port. */
  port: number;
}

/**
 * `host:port`, with an IPv6 address in brackets; a missing hostname is `127.0.0.1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatServerAddress } from "./server_address.ts";
 *
 * assert.equal(formatServerAddress({ port: 8080 }), "127.0.0.1:8080");
 * assert.equal(formatServerAddress({ hostname: "::1", port: 8080 }), "[::1]:8080");
 * ```
 */
export function formatServerAddress(address: ServerAddress): string {
  const hostname = address.hostname ?? DEFAULT_HOST;
  return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${address.port}`;
}

/**
 * Parses `host:port`, `[ipv6]:port`, or a bare port (then the hostname is
 * `defaultHostname`). The port must be 1 to 65535.
 *
 * @throws {RangeError} With a one-line reason, if `text` is none of these forms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseServerAddress } from "./server_address.ts";
 *
 * assert.deepEqual(parseServerAddress("example.com:8080"), { hostname: "example.com", port: 8080 });
 * assert.deepEqual(parseServerAddress("[::1]:8080"), { hostname: "::1", port: 8080 });
 * assert.deepEqual(parseServerAddress("8080", "10.0.0.2"), { hostname: "10.0.0.2", port: 8080 });
 * assert.throws(() => parseServerAddress("example.com"), RangeError);
 * ```
 */
export function parseServerAddress(
  text: string,
  defaultHostname: string = DEFAULT_HOST,
): Required<ServerAddress> {
  const bracketed = /^\[([^\]]+)\]:([^:]*)$/.exec(text);
  const plain = bracketed ? null : /^([^:[\]]+):([^:]*)$/.exec(text);
  const hostname = bracketed?.[1] ?? plain?.[1] ?? defaultHostname;
  const portText = bracketed?.[2] ?? plain?.[2] ?? text;
  if (!bracketed && !plain && !/^\d+$/.test(text)) {
    throw new RangeError(
      `Cannot parse server address "${text}": expected host:port, [ipv6]:port or a port`,
    );
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) {
    throw new RangeError(
      `Cannot parse server address "${text}": the port must be a number from 1 to 65535`,
    );
  }
  return { hostname, port };
}
