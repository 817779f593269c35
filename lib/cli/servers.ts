/**
 * The servers a client program connects to, from its command line: the positional
 * `<port>` (or `<host:port>`) with `--host`, and `--server host:port`, repeatable or a
 * comma list. The client and the launcher both take them, so they parse them here, the
 * same way, with the same one-line errors.
 *
 * @module
 */

import { DEFAULT_HOST } from "../defaults.ts";
import { parseServerAddress, type ServerAddress } from "../parrot/server_address.ts";
import { parsePort, UsageError } from "./args.ts";

/** The options naming the servers (spread into a program's parseArgs options). */
export const SERVER_OPTIONS = {
  host: { type: "string", default: DEFAULT_HOST },
  server: { type: "string", multiple: true },
} as const;

/**
 * The servers named by `positional` (a port, or `host:port`; may be absent when
 * `--server` is given) and the `--server` values, in that order. `--host` is the hostname
 * of every entry given as a bare port.
 *
 * @throws {UsageError} With one line naming the bad entry, when one is not an address,
 * is port 0, is given twice, or when no server is given at all.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseServers } from "./servers.ts";
 *
 * assert.deepEqual(
 *   parseServers({ host: "127.0.0.1", server: ["example.com:8081,8082"] }, "8080"),
 *   [
 *     { hostname: "127.0.0.1", port: 8080 },
 *     { hostname: "example.com", port: 8081 },
 *     { hostname: "127.0.0.1", port: 8082 },
 *   ],
 * );
 * ```
 */
export function parseServers(
  values: Record<string, unknown>,
  positional: string | undefined,
): Required<ServerAddress>[] {
  const host = (values.host as string | undefined) ?? DEFAULT_HOST;
  const listed = (values.server as string[] | undefined) ?? [];
  const servers: Required<ServerAddress>[] = [];
  if (positional !== undefined || listed.length === 0) {
    servers.push(positionalServer(positional, host));
  }
  for (const list of listed) {
    for (const entry of list.split(",")) {
      servers.push(listedServer(entry.trim(), host));
    }
  }
  const seen = new Set<string>();
  for (const { hostname, port } of servers) {
    const key = `${hostname} ${port}`;
    if (seen.has(key)) {
      throw new UsageError(`Cannot use the server ${hostname}:${port} twice: give it once`);
    }
    seen.add(key);
  }
  return servers;
}

/** The positional `<port>` (checked as it always was) or `<host:port>`. */
function positionalServer(text: string | undefined, host: string): Required<ServerAddress> {
  if (text === undefined || !text.includes(":")) {
    if (text === undefined) {
      throw new UsageError(
        "Missing the server: give its port (or host:port), or --server host:port",
      );
    }
    const port = parsePort(text);
    if (port === 0) throw new UsageError("Cannot connect to port 0: give the server's port");
    return { hostname: host, port };
  }
  try {
    return parseServerAddress(text, host);
  } catch (error) {
    throw new UsageError(reworded(error, `Cannot use "${text}"`));
  }
}

function listedServer(text: string, host: string): Required<ServerAddress> {
  try {
    return parseServerAddress(text, host);
  } catch (error) {
    throw new UsageError(reworded(error, `Cannot use --server "${text}"`));
  }
}

/** parseServerAddress's reason after our own opening. */
function reworded(error: unknown, opening: string): string {
  const message = error instanceof Error ? error.message : String(error);
  return `${opening}: ${message.replace(/^Cannot parse server address "(?:[^"\\]|\\.)*": /, "")}`;
}
