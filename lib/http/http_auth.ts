/**
 * The token on the HTTP side: who may see the page, `/metrics` and `/ws`.
 *
 * With a token set, a request proves it knows it one of two ways:
 * - `Authorization: Bearer <token>` (Prometheus, curl, programs), compared in constant
 *   time;
 * - a session cookie from the login form: `GET /login` shows it, `POST /login` with
 *   the token in the form body sets `parrot_session`, a random id (256 bits) that this
 *   process remembers. The cookie is `HttpOnly` (no script reads it) and
 *   `SameSite=Strict` (no other site's page sends it). The token itself never travels
 *   in a URL, a cookie or a log line.
 *
 * Sessions live in memory until `POST /logout` or the server stops; the oldest are
 * forgotten beyond {@linkcode MAX_HTTP_SESSIONS}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { constantTimeEqual } from "../parrot/admission.ts";

const log = getLogger(["parrot", "http"]);
const encoder = new TextEncoder();

/** The session cookie's name. */
export const SESSION_COOKIE = "parrot_session";
/** Sessions remembered at once; a login beyond it forgets the oldest. */
export const MAX_HTTP_SESSIONS = 1000;
/** Largest `POST /login` body read, in bytes. */
export const MAX_LOGIN_BODY_BYTES = 4096;

/**
 * Checks requests against the server's token and runs the login form.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HttpAuth } from "./http_auth.ts";
 *
 * const auth = new HttpAuth("s3cret");
 * const bearer = new Request("http://x/metrics", { headers: { authorization: "Bearer s3cret" } });
 * assert.equal(auth.authenticated(bearer), true);
 * assert.equal(auth.authenticated(new Request("http://x/metrics")), false);
 * assert.equal(new HttpAuth(undefined).required, false);
 * ```
 */
export class HttpAuth {
  readonly #token: Uint8Array | undefined;
  /** Session ids, oldest first (a Set keeps insertion order). */
  readonly #sessions = new Set<string>();

  /** Without a token, every request is let in. */
  constructor(token: string | undefined) {
    this.#token = token === undefined ? undefined : encoder.encode(token);
  }

  /** Whether requests must prove they know the token. */
  get required(): boolean {
    return this.#token !== undefined;
  }

  /** Whether `request` carries the token (Bearer) or a live session cookie. */
  authenticated(request: Request): boolean {
    const token = this.#token;
    if (token === undefined) return true;
    const authorization = request.headers.get("authorization");
    if (authorization !== null) {
      const match = /^Bearer +(\S+) *$/i.exec(authorization);
      return match !== null && constantTimeEqual(encoder.encode(match[1]), token);
    }
    const session = cookie(request, SESSION_COOKIE);
    return session !== undefined && this.#sessions.has(session);
  }

  /**
   * The answer to a request that is not authenticated: a browser asking for a page
   * (`Accept: text/html`) is sent to the login form (303); anything else gets 401 with
   * `WWW-Authenticate: Bearer`.
   */
  challenge(request: Request): Response {
    const wantsPage = (request.method === "GET" || request.method === "HEAD") &&
      (request.headers.get("accept") ?? "").includes("text/html");
    if (wantsPage) return new Response(null, { status: 303, headers: { location: "/login" } });
    return new Response(
      "Unauthorized: send the token as Authorization: Bearer <token>, or log in at /login\n",
      {
        status: 401,
        headers: {
          "content-type": "text/plain; charset=utf-8",
          "www-authenticate": 'Bearer realm="parrot"',
        },
      },
    );
  }

  /** `GET /login`: the form (`failed`: after a wrong token, with 401). */
  loginForm(failed = false): Response {
    return new Response(loginPage(failed), {
      status: failed ? 401 : 200,
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy":
          "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        "cache-control": "no-store",
      },
    });
  }

  /**
   * `POST /login`: a form body `token=<token>`. The right token gets a new session
   * cookie and 303 to `/`; a wrong one the form again with 401; a body over
   * {@linkcode MAX_LOGIN_BODY_BYTES} 413.
   */
  async login(request: Request, remote: string): Promise<Response> {
    const token = this.#token;
    if (token === undefined) return redirectHome();
    const body = await readCapped(request, MAX_LOGIN_BODY_BYTES);
    if (body === undefined) {
      return new Response("Cannot log in: the form is too large\n", { status: 413 });
    }
    const given = new URLSearchParams(body).get("token") ?? "";
    if (!constantTimeEqual(encoder.encode(given), token)) {
      log.info("HTTP login from {remote} refused: wrong token", { remote });
      return this.loginForm(true);
    }
    const id = randomId();
    this.#sessions.add(id);
    if (this.#sessions.size > MAX_HTTP_SESSIONS) {
      this.#sessions.delete(this.#sessions.values().next().value!);
    }
    log.info("HTTP login from {remote}", { remote });
    return redirectHome(
      `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict`,
    );
  }

  /** `POST /logout`: forgets the request's session and clears its cookie. */
  logout(request: Request): Response {
    const session = cookie(request, SESSION_COOKIE);
    if (session !== undefined) this.#sessions.delete(session);
    return new Response(null, {
      status: 303,
      headers: {
        location: "/login",
        "set-cookie": `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`,
      },
    });
  }
}

/**
 * The value of cookie `name` in `request`, if it has one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cookie } from "./http_auth.ts";
 *
 * const request = new Request("http://x/", { headers: { cookie: "a=1; parrot_session=abc" } });
 * assert.equal(cookie(request, "parrot_session"), "abc");
 * assert.equal(cookie(request, "b"), undefined);
 * ```
 */
export function cookie(request: Request, name: string): string | undefined {
  const header = request.headers.get("cookie");
  if (header === null) return undefined;
  for (const part of header.split(";")) {
    const at = part.indexOf("=");
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

function redirectHome(setCookie?: string): Response {
  const headers: Record<string, string> = { location: "/", "cache-control": "no-store" };
  if (setCookie) headers["set-cookie"] = setCookie;
  return new Response(null, { status: 303, headers });
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(
    /=+$/,
    "",
  );
}

/** The body as text, or `undefined` once it is longer than `maxBytes`. */
async function readCapped(request: Request, maxBytes: number): Promise<string | undefined> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > maxBytes) return undefined;
  if (request.body === null) return "";
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of request.body) {
    length += chunk.length;
    if (length > maxBytes) return undefined;
    chunks.push(chunk);
  }
  const all = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(all);
}

function loginPage(failed: boolean): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>parrot: log in</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 24rem; margin: 4rem auto; padding: 0 1rem; }
input, button { font: inherit; padding: 0.4rem; }
input { width: 100%; box-sizing: border-box; margin: 0.5rem 0; }
.error { color: #b00020; }
</style>
</head>
<body>
<h1>parrot</h1>
<p>This server needs its token (<code>--token</code>, <code>--token-file</code> or <code>PARROT_TOKEN</code>).</p>
${
    failed
      ? '<p class="error" role="alert">Wrong token: try again</p>\n'
      : ""
  }<form method="post" action="/login">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form>
</body>
</html>
`;
}
