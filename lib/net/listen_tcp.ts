/**
 * Binding a TCP or TLS listener with the options a server wants: the listen queue
 * length, `SO_REUSEPORT`, and TLS from a PEM certificate and key.
 *
 * {@linkcode serveTcp} binds through it; it is its own module for the few callers that
 * must hold the listener before they serve it (to learn the port first, or to hand it
 * to a server that runs elsewhere). Its one rule beyond `Deno.listen`: `reusePort`
 * without `--unstable-net` throws a clear error, where Deno would exit the process.
 *
 * @module
 */

import { DEFAULT_TCP_BACKLOG } from "../defaults.ts";

/** A PEM certificate chain and its private key, as `Deno.listenTls` takes them. */
export interface TlsCertificate {
  /** The certificate chain, PEM. */
  cert: string;
  /** The private key, PEM. */
  key: string;
}

/** Options of {@linkcode listenTcp}. */
export interface ListenTcpOptions {
  /** Address to bind. Default `127.0.0.1`. */
  hostname?: string;
  /** Port to bind; 0 picks a free one. Default 0. */
  port?: number;
  /** Listen queue length (capped by the kernel's somaxconn). Default 4096. */
  backlog?: number;
  /**
   * Let several listeners (in other processes or Workers) bind the same port, the kernel
   * spreading connections among them (`SO_REUSEPORT`). Needs `--unstable-net`. Default false.
   */
  reusePort?: boolean;
  /** Serve TLS with this certificate and key instead of plain TCP. */
  tls?: TlsCertificate;
}

/**
 * Binds a listener: TLS when `tls` is given, plain TCP otherwise.
 *
 * @throws {Error} If `reusePort` is asked for without `--unstable-net`.
 * @throws {Deno.errors.AddrInUse} If the address is taken.
 *
 * @example Bind first, serve later
 * ```ts
 * import assert from "node:assert/strict";
 * import { listenTcp } from "./listen_tcp.ts";
 *
 * const listener = listenTcp({ port: 0 });
 * const { hostname, port } = listener.addr as Deno.NetAddr;
 * assert.equal(hostname, "127.0.0.1");
 * assert.ok(port > 0);
 * listener.close();
 * ```
 */
export function listenTcp(options: ListenTcpOptions = {}): Deno.Listener {
  const listenOptions: Deno.TcpListenOptions = {
    hostname: options.hostname ?? "127.0.0.1",
    port: options.port ?? 0,
    tcpBacklog: options.backlog ?? DEFAULT_TCP_BACKLOG,
  };
  if (options.reusePort) {
    if (!unstableNetEnabled()) {
      throw new Error("Cannot listen with reusePort: run deno with --unstable-net");
    }
    (listenOptions as { reusePort?: boolean }).reusePort = true;
  }
  return options.tls
    ? Deno.listenTls({ ...listenOptions, cert: options.tls.cert, key: options.tls.key })
    : Deno.listen(listenOptions);
}

/**
 * Whether `--unstable-net` was given: `reusePort` needs it, and without it Deno exits
 * the process rather than throw. `Deno.listenDatagram` exists only with it.
 */
function unstableNetEnabled(): boolean {
  return typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function";
}
