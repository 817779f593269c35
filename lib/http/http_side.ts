/**
 * The server's HTTP side (`--http <port>`): `Deno.serve` in the same process as the TCP
 * server, answering `/healthz`, `/metrics`, `/login`, `/ws` (the WebSocket clients, a
 * hook) and the live page (a hook).
 *
 * Every request passes the guards first, in this order: the `Host` check (against DNS
 * rebinding; `guards.ts`), the `Origin` check for a WebSocket upgrade or a POST, then
 * the token (`http_auth.ts`) for everything but `/healthz` and the login form. `/ws`
 * without the token still reaches the hook, told `authenticated: false`, because a
 * WebSocket client that cannot send headers proves the token in its first message.
 *
 * It never writes to stdout (the messages' stream): `Deno.serve` would announce itself
 * there, so the listening line goes to the log.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { settlesWithin } from "../net/delay.ts";
import { DEFAULT_HOST, HTTP_SHUTDOWN_MS } from "../defaults.ts";
import { hostGuard, originGuard } from "./guards.ts";
import type { Health } from "./health.ts";
import { HttpAuth } from "./http_auth.ts";
import { METRICS_CONTENT_TYPE } from "./metrics.ts";

const log = getLogger(["parrot", "http"]);

/** What the `/ws` hook learns besides the request. */
export interface WebSocketInfo {
  /** The peer's address. */
  remoteAddr: Deno.NetAddr;
  /**
   * Whether the HTTP side has checked the token already (a valid Bearer header or
   * session cookie): then the session needs no `AUTH` of its own. False when the
   * server has no token, or the request did not carry it.
   */
  authenticated: boolean;
}

/** Serves `/ws`: upgrades the request (`ParrotServer.upgradeWebSocket`). */
export type WebSocketHook = (request: Request, info: WebSocketInfo) => Response;

/**
 * Serves the page's paths (`/`, its assets, its feed); `undefined` for a path that is
 * not the page's (then 404).
 */
export type PageHook = (request: Request) => Response | Promise<Response> | undefined;

/** Options of {@linkcode startHttpSide}. */
export interface HttpSideOptions {
  /** Address to bind. Default `127.0.0.1` (the TCP side's default). */
  hostname?: string;
  /** Port to bind; 0 picks a free one. Default 0. */
  port?: number;
  /** Asked on every `/healthz`: 200 `ok`, or 503 with the reason. */
  health: () => Health;
  /** The `/metrics` text, in the Prometheus exposition format (see `metrics.ts`). */
  metrics: () => string;
  /** The server's token: required for every path but `/healthz` and `/login`. */
  token?: string;
  /** Origins besides the page's own that may open `/ws` or POST (`--http-allow-origin`). */
  allowOrigins?: readonly string[];
  /** Host names besides loopback and the bound address served (`--http-allow-host`). */
  allowHosts?: readonly string[];
  /** Serves `/ws`; until given, `/ws` answers 404. */
  webSocket?: WebSocketHook;
  /** Serves the page; until given, `/` is a placeholder that lists the endpoints. */
  page?: PageHook;
  /** Aborting it shuts the HTTP side down (as {@linkcode HttpSide.shutdown}). */
  signal?: AbortSignal;
  /** Called once listening. Default: logs `HTTP side listening on http://host:port/`. */
  onListen?: (addr: Deno.NetAddr) => void;
}

/** A running HTTP side. */
export interface HttpSide {
  /** The bound address, with the real port. */
  readonly addr: Deno.NetAddr;
  /** Resolves once it has stopped. */
  readonly finished: Promise<void>;
  /**
   * Stops accepting and lets the requests in flight finish; resolves once they have,
   * or after `HTTP_SHUTDOWN_MS` (a stream that never ends is logged and left to the
   * process's exit). Idempotent.
   */
  shutdown(): Promise<void>;
}

/**
 * The URL of an HTTP side at `addr`, as logged and as a browser opens it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { httpUrl } from "./http_side.ts";
 *
 * assert.equal(httpUrl({ transport: "tcp", hostname: "::1", port: 8081 }), "http://[::1]:8081/");
 * ```
 */
export function httpUrl(addr: Deno.NetAddr): string {
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return `http://${host}:${addr.port}/`;
}

/**
 * Starts the HTTP side. Throws at once when the address cannot be bound.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { startHttpSide } from "./http_side.ts";
 *
 * const side = startHttpSide({
 *   port: 0,
 *   health: () => ({ ok: true }),
 *   metrics: () => "",
 *   onListen: () => {},
 * });
 * const response = await fetch(`http://127.0.0.1:${side.addr.port}/healthz`);
 * assert.equal(await response.text(), "ok\n");
 * await side.shutdown();
 * ```
 */
export function startHttpSide(options: HttpSideOptions): HttpSide {
  const hostname = options.hostname ?? DEFAULT_HOST;
  const handle = createHttpHandler(options, hostname);
  const onListen = options.onListen ??
    ((addr: Deno.NetAddr) => log.info("HTTP side listening on {url}", { url: httpUrl(addr) }));
  const server = Deno.serve({
    hostname,
    port: options.port ?? 0,
    onListen: (addr) => onListen(addr),
    onError: (error) => {
      log.error("HTTP request failed: {error}", { error: String(error) });
      return text(500, "Internal server error");
    },
  }, handle);
  let stopping: Promise<void> | undefined;
  const shutdown = () => {
    stopping ??= (async () => {
      if (!await settlesWithin(server.shutdown(), HTTP_SHUTDOWN_MS)) {
        log.warn("HTTP side: requests still open after {ms}ms were cut off", {
          ms: HTTP_SHUTDOWN_MS,
        });
      }
    })();
    return stopping;
  };
  if (options.signal?.aborted) shutdown();
  options.signal?.addEventListener("abort", shutdown, { once: true });
  return {
    addr: server.addr,
    finished: server.finished.then(() => options.signal?.removeEventListener("abort", shutdown)),
    shutdown,
  };
}

/**
 * The request handler of the HTTP side, without the listener: the guards, then the
 * routes. `boundHost` is the address listened on (a Host name served).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createHttpHandler } from "./http_side.ts";
 *
 * const handle = createHttpHandler(
 *   { health: () => ({ ok: true }), metrics: () => "" },
 *   "127.0.0.1",
 * );
 * const info = { remoteAddr: { transport: "tcp" as const, hostname: "127.0.0.1", port: 1 } };
 * const evil = new Request("http://evil.example/healthz", { headers: { host: "evil.example" } });
 * assert.equal((await handle(evil, info)).status, 421);
 * ```
 */
export function createHttpHandler(
  options: HttpSideOptions,
  boundHost: string,
): (request: Request, info: { remoteAddr: Deno.NetAddr }) => Promise<Response> {
  const hostCheck = hostGuard({ boundHost, allowHosts: options.allowHosts });
  const originCheck = originGuard({ allowOrigins: options.allowOrigins });
  const auth = new HttpAuth(options.token);
  return async (request, info) => {
    const host = hostCheck(request);
    if (!host.ok) return host.response;
    const path = new URL(request.url).pathname;
    const upgrade = (request.headers.get("upgrade") ?? "").toLowerCase() === "websocket";
    if (upgrade || path === "/ws" || !SAFE_METHODS.has(request.method)) {
      const origin = originCheck(request);
      if (!origin.ok) return origin.response;
    }
    if (path === "/healthz") {
      if (!SAFE_METHODS.has(request.method)) return notAllowed();
      const health = options.health();
      return health.ok ? text(200, "ok") : text(503, health.reason);
    }
    if (path === "/login" && auth.required) {
      if (request.method === "POST") return await auth.login(request, remote(info.remoteAddr));
      if (!SAFE_METHODS.has(request.method)) return notAllowed();
      return auth.authenticated(request)
        ? new Response(null, { status: 303, headers: { location: "/" } })
        : auth.loginForm();
    }
    if (path === "/logout" && auth.required && request.method === "POST") {
      return auth.logout(request);
    }
    const authenticated = auth.required && auth.authenticated(request);
    if (path === "/ws") {
      if (!options.webSocket) return text(404, "Not found: /ws is not served yet");
      return options.webSocket(request, { remoteAddr: info.remoteAddr, authenticated });
    }
    if (auth.required && !authenticated) return auth.challenge(request);
    if (path === "/metrics") {
      if (!SAFE_METHODS.has(request.method)) return notAllowed();
      return new Response(options.metrics(), {
        headers: { "content-type": METRICS_CONTENT_TYPE, "cache-control": "no-store" },
      });
    }
    if (options.page) {
      const response = await options.page(request);
      if (response) return response;
    } else if (path === "/") {
      return placeholderPage(auth.required);
    }
    return text(404, `Not found: ${path}`);
  };
}

const SAFE_METHODS = new Set(["GET", "HEAD"]);

function text(status: number, body: string): Response {
  return new Response(`${body}\n`, {
    status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "x-content-type-options": "nosniff",
      "cache-control": "no-store",
    },
  });
}

function notAllowed(): Response {
  const response = text(405, "Method not allowed");
  response.headers.set("allow", "GET, HEAD");
  return response;
}

function remote(addr: Deno.NetAddr): string {
  return `${addr.hostname}:${addr.port}`;
}

function placeholderPage(withToken: boolean): Response {
  const logout = withToken
    ? '\n<form method="post" action="/logout"><button>Log out</button></form>'
    : "";
  return new Response(
    `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>parrot</title></head>
<body>
<h1>parrot</h1>
<ul>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/healthz">/healthz</a>: health check</li>
<li>/ws: WebSocket clients</li>
</ul>${logout}
</body>
</html>
`,
    {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
        "x-content-type-options": "nosniff",
      },
    },
  );
}
