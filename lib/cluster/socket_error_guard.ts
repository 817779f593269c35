/**
 * Keeps a NATS socket's late error from stopping the whole server.
 *
 * The NATS client (`@nats-io/transport-node`, on Deno's `node:net`) takes its listeners off
 * a socket before it is done with it: between reading the server's `INFO` and setting up its
 * handlers, and when it closes a connection the server refused (a wrong token: the server says
 * `-ERR 'Authorization Violation'` and resets the connection). A `read ECONNRESET` that arrives
 * then is an `error` event without a listener, which Node semantics make an uncaught exception,
 * and Deno ends the process on one. Seen here after a few reconnect attempts with a wrong token.
 *
 * The connection is gone either way and the client reconnects on its own, so such an error is
 * logged (debug) and dropped: only a socket error (`code` such as `ECONNRESET`) thrown from
 * Deno's Node compatibility layer, which parrot's own sockets (`Deno.listen`) never use. Any
 * other uncaught error still ends the process as before.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["parrot", "cluster"]);

/** Socket error codes that only say the connection went away. */
const CONNECTION_GONE = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
]);

let installed = false;

/**
 * Whether `error` is a Node-layer socket error saying the connection went away.
 *
 * @example
 * ```ts
 * import { isOrphanSocketError } from "./socket_error_guard.ts";
 * const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
 * reset.stack = "Error: read ECONNRESET\n    at TCPWrap.onStreamRead (ext:deno_node/internal/stream_base_commons.ts:1:1)";
 * if (!isOrphanSocketError(reset)) throw new Error("not recognised");
 * if (isOrphanSocketError(new Error("a bug"))) throw new Error("too broad");
 * ```
 */
export function isOrphanSocketError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === "string" && CONNECTION_GONE.has(code) &&
    (error.stack ?? "").includes("ext:deno_node/");
}

/**
 * Installs (once per process) the listener that drops {@linkcode isOrphanSocketError} errors
 * instead of ending the process. `ClusterLink` calls it when it opens.
 *
 * @example
 * ```ts
 * import { guardOrphanSocketErrors } from "./socket_error_guard.ts";
 * guardOrphanSocketErrors();
 * guardOrphanSocketErrors(); // once is enough; a second call does nothing
 * ```
 */
export function guardOrphanSocketErrors(): void {
  if (installed) return;
  installed = true;
  globalThis.addEventListener("error", (event) => {
    if (!isOrphanSocketError(event.error)) return;
    event.preventDefault();
    log.debug("Ignored a NATS socket error after its connection was closed: {reason}", {
      reason: (event.error as Error).message,
    });
  });
}
