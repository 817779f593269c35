/**
 * A protocol-free TCP server: the accept loop, the connection registry, the connection
 * limit, accept-error backoff and the graceful-shutdown sequence.
 *
 * It plays for raw TCP the part `Deno.serve` plays for HTTP: the caller supplies one
 * async handler per connection and an `AbortSignal`; this module owns everything
 * around it. Shutdown is small and explicit (after mini-redis): stop accepting,
 * signal every handler, wait for all of them up to the grace period, then close
 * whatever is left and wait again.
 *
 * @module
 */

import type { ConnectionSlots } from "./connection_slots.ts";
import { delayUnlessAborted, settlesWithin } from "./delay.ts";
import {
  DEFAULT_ACCEPT_BACKOFF_MS,
  DEFAULT_GRACE_MS,
  DEFAULT_TCP_BACKLOG,
  MAX_ACCEPT_BACKOFF_MS,
} from "../defaults.ts";

/** What a handler learns about its connection. */
export interface ConnInfo {
  /** A number unique among this server's connections. */
  readonly id: number;
  /** The peer's address. */
  readonly remoteAddr: Deno.NetAddr;
  /** Aborted when the server starts to shut down: say goodbye, finish, return. */
  readonly signal: AbortSignal;
}

/** Serves one connection; the connection is closed when the returned promise settles. */
export type TcpHandler = (conn: Deno.Conn, info: ConnInfo) => Promise<void>;

/** Options of {@linkcode serveTcp}. */
export interface ServeTcpOptions {
  /** Address to bind when no `listener` is given. Default `127.0.0.1`. */
  hostname?: string;
  /** Port to bind when no `listener` is given; 0 picks a free one. Default 0. */
  port?: number;
  /** An existing listener to serve instead of binding a new one. */
  listener?: Deno.Listener;
  /** Listen queue length when binding (capped by the kernel's somaxconn). Default 4096. */
  backlog?: number;
  /**
   * Set `TCP_NODELAY` on each TCP connection, so small writes go out at once instead of
   * waiting for the peer's delayed ACK (up to 40 ms). Default true: a server that
   * batches its own writes gains nothing from Nagle's algorithm.
   */
  noDelay?: boolean;
  /**
   * Whether every handler closes its own connection before it settles. Then a handler
   * that returns leaves its connection to itself (one that throws still has it closed),
   * and nothing is done per connection to make a second close harmless. Default false:
   * the connection is closed once the handler settles, whatever the handler did.
   */
  handlerCloses?: boolean;
  /** Most connections served at once. Default unlimited. */
  maxConnections?: number;
  /**
   * A limit shared with other servers (listeners in other Workers): each connection
   * takes a slot before it is served and gives it back when its handler settles; one
   * that finds none free is refused like one over `maxConnections`.
   */
  connectionSlots?: ConnectionSlots;
  /** Called with each connection refused by the limit, before it is closed. */
  onReject?: (conn: Deno.Conn) => void | Promise<void>;
  /** Called when `accept` fails; the loop backs off and retries. */
  onAcceptError?: (error: unknown, heldConnections: number) => void;
  /** Called when a handler throws. */
  onHandlerError?: (error: unknown, info: ConnInfo) => void;
  /**
   * Called once when the shutdown starts, after accepting stopped and before waiting
   * for the handlers: one place to tell every connection, instead of a listener on
   * `ConnInfo.signal` per connection.
   */
  onShutdown?: () => void;
  /** Aborting it shuts the server down. */
  signal?: AbortSignal;
  /** Milliseconds handlers get to finish after the shutdown signal. Default 5000. */
  gracePeriodMs?: number;
}

/** A running server from {@linkcode serveTcp}. */
export interface TcpServer {
  /** The bound address (with the real port when 0 was asked for). */
  readonly addr: Deno.NetAddr;
  /** Connections currently served. */
  readonly connections: number;
  /** Settles once the server has shut down and every handler has returned. */
  readonly finished: Promise<void>;
  /** Starts the shutdown (same as aborting `signal`) and returns `finished`. */
  shutdown(): Promise<void>;
}

/**
 * Accepts TCP connections and runs `handler` for each one in its own async task.
 *
 * Throws at once when the address cannot be bound (for example `Deno.errors.AddrInUse`).
 *
 * @example A server that greets and hangs up
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveTcp } from "./serve_tcp.ts";
 *
 * const server = serveTcp({ port: 0 }, async (conn) => {
 *   await conn.write(new TextEncoder().encode("hello\n"));
 * });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * const reply = await new Response(conn.readable).text();
 * assert.equal(reply, "hello\n");
 * await server.shutdown();
 * ```
 */
export function serveTcp(options: ServeTcpOptions, handler: TcpHandler): TcpServer {
  const listener = options.listener ??
    Deno.listen({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port ?? 0,
      tcpBacklog: options.backlog ?? DEFAULT_TCP_BACKLOG,
    });
  const maxConnections = options.maxConnections ?? Infinity;
  const slots = options.connectionSlots;
  const noDelay = options.noDelay ?? true;
  const handlerCloses = options.handlerCloses ?? false;
  const gracePeriodMs = options.gracePeriodMs ?? DEFAULT_GRACE_MS;
  const shutdownController = new AbortController();
  const registry = new Map<number, { conn: Deno.Conn; done: Promise<void> }>();
  let nextId = 1;
  let finishing: Promise<void> | undefined;

  function serve(conn: Deno.Conn): void {
    if (noDelay && "setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    if (!handlerCloses) closeOnlyOnce(conn);
    const info: ConnInfo = {
      id: nextId++,
      remoteAddr: conn.remoteAddr as Deno.NetAddr,
      signal: shutdownController.signal,
    };
    // Registered before the handler runs: a handler that throws at once still frees its slot.
    const entry = { conn, done: HANDLED };
    registry.set(info.id, entry);
    // Callbacks, not an async wrapper: a wrapper's frame would stay alive per connection.
    entry.done = runHandler(handler, conn, info).then(() => {
      registry.delete(info.id);
      slots?.give();
      if (!handlerCloses) closeQuietly(conn);
    }, (error) => {
      try {
        options.onHandlerError?.(error, info);
      } finally {
        registry.delete(info.id);
        slots?.give();
        closeQuietly(conn);
      }
    });
  }

  function reject(conn: Deno.Conn): void {
    (async () => {
      try {
        await options.onReject?.(conn);
      } catch {
        // The peer may already be gone; refusing it is all that matters.
      } finally {
        closeQuietly(conn);
      }
    })();
  }

  async function acceptLoop(): Promise<void> {
    let backoffMs = 0;
    while (!shutdownController.signal.aborted) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
        backoffMs = 0;
      } catch (error) {
        if (shutdownController.signal.aborted || error instanceof Deno.errors.BadResource) break;
        backoffMs = Math.min(
          backoffMs === 0 ? DEFAULT_ACCEPT_BACKOFF_MS : backoffMs * 2,
          MAX_ACCEPT_BACKOFF_MS,
        );
        options.onAcceptError?.(error, registry.size);
        await delayUnlessAborted(backoffMs, shutdownController.signal);
        continue;
      }
      if (registry.size >= maxConnections || (slots && !slots.tryTake())) reject(conn);
      else serve(conn);
    }
  }

  const accepting = acceptLoop();

  async function shutdownSequence(): Promise<void> {
    shutdownController.abort();
    closeQuietly(listener);
    await accepting;
    options.onShutdown?.();
    const handlers = () => Promise.all([...registry.values()].map((entry) => entry.done));
    if (!await settlesWithin(handlers(), gracePeriodMs)) {
      for (const { conn } of registry.values()) closeQuietly(conn);
    }
    await handlers();
  }

  function shutdown(): Promise<void> {
    if (!finishing) {
      // Set before the sequence starts: aborting inside it calls shutdown() again.
      const sequence = Promise.withResolvers<void>();
      finishing = sequence.promise;
      shutdownSequence().then(sequence.resolve, sequence.reject);
    }
    return finishing;
  }

  const finished = new Promise<void>((resolve, rejectFinished) => {
    const start = () => shutdown().then(resolve, rejectFinished);
    if (options.signal?.aborted) start();
    else options.signal?.addEventListener("abort", start, { once: true });
    shutdownController.signal.addEventListener("abort", start, { once: true });
  });

  return {
    addr: listener.addr as Deno.NetAddr,
    get connections() {
      return registry.size;
    },
    finished,
    shutdown() {
      shutdown();
      return finished;
    },
  };
}

const HANDLED: Promise<void> = Promise.resolve();

/** Runs `handler`, turning a synchronous throw into a rejected promise. */
function runHandler(handler: TcpHandler, conn: Deno.Conn, info: ConnInfo): Promise<void> {
  try {
    return Promise.resolve(handler(conn, info));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Makes `conn.close()` idempotent. A handler usually closes its connection and the
 * server closes it again when the handler returns; a second `close` would throw
 * `BadResource`, and building that error (with its stack) costs more than the close.
 */
function closeOnlyOnce(conn: Deno.Conn): void {
  const close = conn.close.bind(conn);
  let open = true;
  conn.close = () => {
    if (!open) return;
    open = false;
    close();
  };
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch {
    // Already closed.
  }
}
