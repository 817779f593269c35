/**
 * The HTTP side's two guards against other web sites, checked before anything else.
 *
 * - Host: a page on `evil.example` may resolve its own name to 127.0.0.1 (DNS
 *   rebinding) and then read our answers as same-origin. The browser still sends
 *   `Host: evil.example`, so we answer only the names we serve: the loopback names,
 *   the address we are bound to, and those the operator allows (`--http-allow-host`).
 * - Origin: a WebSocket (and a form POST) is not bound by the same-origin policy, so
 *   any page the operator visits could drive a local parrot through the browser. An
 *   upgrade or a POST whose `Origin` is not the page's own origin (same scheme, host
 *   and port as the request's `Host`) nor allowed (`--http-allow-origin`) is refused.
 *   No `Origin` at all is a non-browser client (curl, a program): allowed.
 *
 * @module
 */

/** Host names every HTTP side serves: loopback, spelled the usual ways. */
export const LOOPBACK_HOST_NAMES: readonly string[] = Object.freeze([
  "localhost",
  "127.0.0.1",
  "::1",
]);

/** What a guard decided: pass, or the response to send instead. */
export type GuardVerdict = { ok: true } | { ok: false; response: Response };

/**
 * The host name of a `Host` header value, lower case, without the port and without the
 * brackets of an IPv6 address; `undefined` when it is not a valid host.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostName } from "./guards.ts";
 *
 * assert.equal(hostName("LocalHost:8081"), "localhost");
 * assert.equal(hostName("[::1]:8081"), "::1");
 * assert.equal(hostName("bad host"), undefined);
 * ```
 */
export function hostName(host: string): string | undefined {
  try {
    const url = new URL(`http://${host}/`);
    // The URL parser accepts `a@b` and paths; a Host header is only host[:port].
    if (url.host !== host.toLowerCase() && `${url.hostname}:80` !== host.toLowerCase()) {
      return undefined;
    }
    return url.hostname.replace(/^\[(.*)\]$/, "$1");
  } catch {
    return undefined;
  }
}

/**
 * A bare host name or address (no port; an IPv6 address with or without brackets) in
 * the form {@linkcode hostName} gives, or `undefined` when it is not one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bareHostName } from "./guards.ts";
 *
 * assert.equal(bareHostName("Parrot.lan"), "parrot.lan");
 * assert.equal(bareHostName("::1"), "::1");
 * assert.equal(bareHostName("parrot.lan:8081"), undefined);
 * ```
 */
export function bareHostName(name: string): string | undefined {
  const bracketed = name.includes(":") && !name.startsWith("[") ? `[${name}]` : name;
  const parsed = hostName(bracketed);
  if (parsed === undefined) return undefined;
  const plain = bracketed.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return parsed === plain ? parsed : undefined;
}

/**
 * Builds the `Host` check: the loopback names, `boundHost` (the address the HTTP side
 * listens on) and `allowHosts` pass; any other name gets 421 with a line that says how
 * to allow it, and a request without a `Host` gets 400.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostGuard } from "./guards.ts";
 *
 * const guard = hostGuard({ boundHost: "127.0.0.1", allowHosts: ["parrot.lan"] });
 * const ask = (host: string) => guard(new Request("http://x/", { headers: { host } })).ok;
 * assert.equal(ask("localhost:8081"), true);
 * assert.equal(ask("parrot.lan:8081"), true);
 * assert.equal(ask("evil.example"), false);
 * ```
 */
export function hostGuard(
  options: { boundHost: string; allowHosts?: readonly string[] },
): (request: Request) => GuardVerdict {
  const allowed = new Set<string>(LOOPBACK_HOST_NAMES);
  for (const name of [options.boundHost, ...options.allowHosts ?? []]) {
    allowed.add(bareHostName(name) ?? name.toLowerCase());
  }
  return (request) => {
    const header = request.headers.get("host");
    if (header === null || header === "") {
      return refuse(400, "Missing the Host header: this server answers only the names it serves");
    }
    const name = hostName(header);
    if (name !== undefined && allowed.has(name)) return { ok: true };
    return refuse(
      421,
      `Cannot serve Host ${
        JSON.stringify(header)
      }: not a name of this server (start it with --http-allow-host ${name ?? header} to allow it)`,
    );
  };
}

/**
 * Builds the `Origin` check for a WebSocket upgrade or a POST: no `Origin` (not a
 * browser), the request's own origin (`http://` + its `Host`) or one of
 * `allowOrigins` pass; anything else, `null` included, gets 403.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { originGuard } from "./guards.ts";
 *
 * const guard = originGuard({ allowOrigins: ["https://dash.example"] });
 * const ask = (origin: string) =>
 *   guard(new Request("http://x/ws", { headers: { host: "127.0.0.1:8081", origin } })).ok;
 * assert.equal(ask("http://127.0.0.1:8081"), true);
 * assert.equal(ask("https://dash.example"), true);
 * assert.equal(ask("http://evil.example"), false);
 * ```
 */
export function originGuard(
  options: { allowOrigins?: readonly string[] } = {},
): (request: Request) => GuardVerdict {
  const allowed = new Set<string>();
  for (const origin of options.allowOrigins ?? []) {
    const normal = normalOrigin(origin);
    if (normal === undefined) throw new RangeError(`Cannot allow origin ${JSON.stringify(origin)}`);
    allowed.add(normal);
  }
  return (request) => {
    const origin = request.headers.get("origin");
    if (origin === null) return { ok: true };
    const host = request.headers.get("host");
    const own = host === null ? undefined : normalOrigin(`http://${host}`);
    const given = normalOrigin(origin);
    if (given !== undefined && (given === own || allowed.has(given))) return { ok: true };
    return refuse(
      403,
      `Cannot accept a request from origin ${
        JSON.stringify(origin)
      }: not this server's page (start it with --http-allow-origin ${origin} to allow it)`,
    );
  };
}

/**
 * `scheme://host[:port]` of an origin as browsers send it (default ports dropped, lower
 * case), or `undefined` when `text` is not an origin (a path, `null`, another scheme).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normalOrigin } from "./guards.ts";
 *
 * assert.equal(normalOrigin("HTTP://Example.com:80"), "http://example.com");
 * assert.equal(normalOrigin("null"), undefined);
 * ```
 */
export function normalOrigin(text: string): string | undefined {
  try {
    const url = new URL(text);
    if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
    if (url.pathname !== "/" || url.search !== "" || url.hash !== "" || url.username !== "") {
      return undefined;
    }
    return url.origin;
  } catch {
    return undefined;
  }
}

function refuse(status: number, message: string): GuardVerdict {
  return {
    ok: false,
    response: new Response(`${message}\n`, {
      status,
      headers: { "content-type": "text/plain; charset=utf-8" },
    }),
  };
}
