/**
 * A protocol-free TCP server: the accept loop, the connection registry, the connection
 * limit, accept-error backoff, TLS handshakes under a deadline, and the graceful-shutdown
 * sequence.
 *
 * It plays for raw TCP the part `Deno.serve` plays for HTTP: the caller supplies one
 * async handler per connection and an `AbortSignal`; this module owns everything
 * around it, with `Deno.serve`'s conventions where they apply (`onListen`, handler
 * errors to stderr unless the caller takes them, `await using`, `tls`, `reusePort`).
 * Shutdown is small and explicit (after mini-redis): stop accepting, signal every
 * handler, wait for all of them up to the grace period, then close whatever is left
 * and wait again.
 *
 * @module
 */

import type { ConnectionSlots } from "./connection_slots.ts";
import { delayUnlessAborted, settlesWithin } from "./delay.ts";
import { listenTcp, type TlsCertificate } from "./listen_tcp.ts";
import {
  DEFAULT_ACCEPT_BACKOFF_MS,
  DEFAULT_GRACE_MS,
  DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
  MAX_ACCEPT_BACKOFF_MS,
} from "../defaults.ts";

/** What a handler learns about its connection. */
export interface ConnInfo {
  /** A number unique among this server's connections. */
  readonly id: number;
  /** The peer's address. */
  readonly remoteAddr: Deno.NetAddr;
  /**
   * This connection's own signal: aborted when it must stop (the server's shutdown
   * starts; the grace period then closes what is left), and when its handler has
   * settled, so work the handler started for it stops too. Created on first use: a
   * server holding many idle connections that never asks pays nothing for it.
   */
  readonly signal: AbortSignal;
  /**
   * The server's shutdown signal, one for all connections: aborted when the shutdown
   * starts. Costs nothing per connection, where `signal` costs an `AbortController`.
   */
  readonly shutdownSignal: AbortSignal;
}

/** Serves one connection; the connection is closed when the returned promise settles. */
export type TcpHandler = (conn: Deno.Conn, info: ConnInfo) => Promise<void>;

/** The `tls` option of {@linkcode serveTcp}: a certificate, a key, and the handshake's deadline. */
export interface ServeTlsOptions extends TlsCertificate {
  /**
   * Milliseconds a connection has to complete its TLS handshake before its handler runs;
   * one that does not is closed (and reported to `onHandshakeError`). Default 10000.
   */
  handshakeTimeoutMs?: number;
  /**
   * Leave the handshake to the handler: it runs at once, and the handshake happens on its
   * first read or write, or when it calls `(conn as Deno.TlsConn).handshake()` under a
   * deadline of its own (as parrot does, with its `AUTH` line). Default false.
   */
  handshakeByHandler?: boolean;
}

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
   * Bind with `SO_REUSEPORT`, so that several servers (processes or Workers) share the
   * port and the kernel spreads connections among them. Needs `--unstable-net`. Default false.
   */
  reusePort?: boolean;
  /** Serve TLS with this certificate and key (PEM) instead of plain TCP. */
  tls?: ServeTlsOptions;
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
  /** Called once the listener is bound, with its address (the real port when 0 was asked). */
  onListen?: (addr: Deno.NetAddr) => void;
  /** Called with each connection refused by the limit, before it is closed. */
  onReject?: (conn: Deno.Conn) => void | Promise<void>;
  /** Called when `accept` fails; the loop backs off and retries. */
  onAcceptError?: (error: unknown, heldConnections: number) => void;
  /**
   * Called when a handler throws or rejects; the connection is closed and the server
   * serves on. Default: the error is printed to stderr (as `Deno.serve`'s `onError`).
   */
  onHandlerError?: (error: unknown, info: ConnInfo) => void;
  /**
   * Called when a TLS handshake that the server performs (see `tls`) fails or times out
   * (a `TimeoutError` `DOMException`); the connection is closed. Default: nothing, as a
   * peer that cannot complete a handshake is the peer's failure, not the server's.
   */
  onHandshakeError?: (error: unknown, info: ConnInfo) => void;
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

/** A running server from {@linkcode serveTcp}; `await using` shuts it down at scope exit. */
export interface TcpServer extends AsyncDisposable {
  /** The bound address (with the real port when 0 was asked for). */
  readonly addr: Deno.NetAddr;
  /** Connections currently served. */
  readonly connections: number;
  /** Settles once the server has shut down and every handler has returned. */
  readonly finished: Promise<void>;
  /** Starts the shutdown (same as aborting `signal`) and returns `finished`. */
  shutdown(): Promise<void>;
  /** The same as `shutdown()`: `await using server = serveTcp(...)` shuts down at scope exit. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Accepts TCP (or TLS) connections and runs `handler` for each one in its own async task.
 *
 * Throws at once when the address cannot be bound (for example `Deno.errors.AddrInUse`).
 *
 * @example A server that greets and hangs up
 * ```ts
 * import assert from "node:assert/strict";
 * import { serveTcp } from "./serve_tcp.ts";
 *
 * await using server = serveTcp({ port: 0 }, async (conn) => {
 *   await conn.write(new TextEncoder().encode("hello\n"));
 * });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * const reply = await new Response(conn.readable).text();
 * assert.equal(reply, "hello\n");
 * ```
 */
export function serveTcp(options: ServeTcpOptions, handler: TcpHandler): TcpServer {
  if (options.listener && (options.tls || options.reusePort)) {
    throw new TypeError(
      "Cannot use tls or reusePort with an existing listener: they apply when serveTcp binds",
    );
  }
  const listener = options.listener ?? listenTcp({
    hostname: options.hostname,
    port: options.port,
    backlog: options.backlog,
    reusePort: options.reusePort,
    tls: options.tls,
  });
  const maxConnections = options.maxConnections ?? Infinity;
  const slots = options.connectionSlots;
  const noDelay = options.noDelay ?? true;
  const handlerCloses = options.handlerCloses ?? false;
  const gracePeriodMs = options.gracePeriodMs ?? DEFAULT_GRACE_MS;
  const handshakeMs = options.tls && !options.tls.handshakeByHandler
    ? options.tls.handshakeTimeoutMs ?? DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS
    : undefined;
  const onHandlerError = options.onHandlerError ?? reportHandlerError;
  const shutdownController = new AbortController();
  const shutdownSignal = shutdownController.signal;
  const registry = new Map<number, Connection>();
  let nextId = 1;
  let finishing: Promise<void> | undefined;

  function serve(conn: Deno.Conn): void {
    if (noDelay && "setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    if (!handlerCloses) closeOnlyOnce(conn);
    // Registered before the handler runs: a handler that throws at once still frees its slot.
    const connection = new Connection(nextId++, conn, shutdownSignal);
    registry.set(connection.id, connection);
    const running = handshakeMs === undefined
      ? runHandler(handler, conn, connection)
      : handshakeThenHandle(conn, connection, handshakeMs);
    // Callbacks, not an async wrapper: a wrapper's frame would stay alive per connection.
    connection.done = running.then(() => {
      registry.delete(connection.id);
      slots?.give();
      connection.settled();
      if (!handlerCloses) closeQuietly(conn);
    }, (error) => {
      try {
        onHandlerError(error, connection);
      } finally {
        registry.delete(connection.id);
        slots?.give();
        connection.settled();
        closeQuietly(conn);
      }
    });
  }

  /**
   * Completes the TLS handshake within `ms`, then runs the handler; a failure closes.
   * Closing a `TlsConn` does not interrupt a pending handshake (nor, before one began,
   * close the socket: scripts/repro/tls_close_before_handshake.ts), so the timer stops
   * the waiting and the handshake is left to settle on its own.
   */
  function handshakeThenHandle(conn: Deno.Conn, info: Connection, ms: number): Promise<void> {
    const handshake = (conn as Deno.TlsConn).handshake();
    const { promise: timeUp, resolve: timeIsUp } = Promise.withResolvers<"time up">();
    const timer = setTimeout(() => timeIsUp("time up"), ms);
    return Promise.race([handshake, timeUp]).then((outcome) => {
      clearTimeout(timer);
      if (outcome !== "time up") return runHandler(handler, conn, info);
      handshake.catch(() => {}); // Abandoned: its failure is nobody's.
      handshakeFailed(
        conn,
        info,
        new DOMException(`TLS handshake did not complete within ${ms}ms`, "TimeoutError"),
      );
    }, (error) => {
      clearTimeout(timer);
      handshakeFailed(conn, info, error);
    });
  }

  function handshakeFailed(conn: Deno.Conn, info: Connection, error: unknown): void {
    closeQuietly(conn);
    options.onHandshakeError?.(error, info);
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
    while (!shutdownSignal.aborted) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
        backoffMs = 0;
      } catch (error) {
        if (shutdownSignal.aborted || error instanceof Deno.errors.BadResource) break;
        backoffMs = Math.min(
          backoffMs === 0 ? DEFAULT_ACCEPT_BACKOFF_MS : backoffMs * 2,
          MAX_ACCEPT_BACKOFF_MS,
        );
        options.onAcceptError?.(error, registry.size);
        await delayUnlessAborted(backoffMs, shutdownSignal);
        continue;
      }
      if (registry.size >= maxConnections || (slots && !slots.tryTake())) reject(conn);
      else serve(conn);
    }
  }

  const addr = listener.addr as Deno.NetAddr;
  try {
    options.onListen?.(addr);
  } catch (error) {
    closeQuietly(listener);
    throw error;
  }
  const accepting = acceptLoop();

  async function shutdownSequence(): Promise<void> {
    shutdownController.abort(new DOMException("The server is shutting down", "AbortError"));
    for (const connection of registry.values()) connection.stop();
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
    shutdownSignal.addEventListener("abort", start, { once: true });
  });

  const stop = () => {
    shutdown();
    return finished;
  };
  return {
    addr,
    get connections() {
      return registry.size;
    },
    finished,
    shutdown: stop,
    [Symbol.asyncDispose]: stop,
  };
}

/**
 * One served connection: its registry entry and its {@linkcode ConnInfo} in one object
 * (a server may hold tens of thousands). Its own signal is made on first use.
 */
class Connection implements ConnInfo {
  readonly id: number;
  readonly conn: Deno.Conn;
  readonly shutdownSignal: AbortSignal;
  /** Settles once the handler has settled and the connection is forgotten. */
  done: Promise<void> = HANDLED;
  #controller: AbortController | undefined;

  constructor(id: number, conn: Deno.Conn, shutdownSignal: AbortSignal) {
    this.id = id;
    this.conn = conn;
    this.shutdownSignal = shutdownSignal;
  }

  get remoteAddr(): Deno.NetAddr {
    return this.conn.remoteAddr as Deno.NetAddr;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.shutdownSignal.aborted) this.#controller.abort(this.shutdownSignal.reason);
    }
    return this.#controller.signal;
  }

  /** The shutdown started: this connection must stop. */
  stop(): void {
    if (this.#controller && !this.#controller.signal.aborted) {
      this.#controller.abort(this.shutdownSignal.reason);
    }
  }

  /** The handler settled: whatever it left running for this connection stops. */
  settled(): void {
    if (this.#controller && !this.#controller.signal.aborted) {
      this.#controller.abort(
        new DOMException("The connection's handler has finished", "AbortError"),
      );
    }
  }
}

/** The default `onHandlerError`: like `Deno.serve`'s `onError`, print it to stderr. */
function reportHandlerError(error: unknown, info: ConnInfo): void {
  const { hostname, port } = info.remoteAddr;
  console.error(
    `serveTcp: the handler of connection ${info.id} (${hostname}:${port}) failed:`,
    error,
  );
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
