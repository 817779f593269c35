import assert from "node:assert/strict";
import {
  cookie,
  HttpAuth,
  MAX_HTTP_SESSIONS,
  MAX_LOGIN_BODY_BYTES,
  SESSION_COOKIE,
} from "./http_auth.ts";

function loginRequest(token: string): Request {
  return new Request("http://x/login", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token }).toString(),
  });
}

/** The session cookie a response sets, as a request header value. */
function sessionOf(response: Response): string {
  const set = response.headers.get("set-cookie") ?? "";
  return set.split(";")[0];
}

Deno.test("HttpAuth.authenticated() lets everything in without a token", () => {
  const auth = new HttpAuth(undefined);
  assert.equal(auth.required, false);
  assert.equal(auth.authenticated(new Request("http://x/metrics")), true);
});

Deno.test("HttpAuth.authenticated() takes the right Bearer token only", () => {
  const auth = new HttpAuth("s3cret");
  const ask = (authorization: string) =>
    auth.authenticated(new Request("http://x/", { headers: { authorization } }));
  assert.equal(ask("Bearer s3cret"), true);
  assert.equal(ask("bearer s3cret"), true, "the scheme is case-insensitive");
  assert.equal(ask("Bearer s3cre"), false);
  assert.equal(ask("Bearer s3crett"), false);
  assert.equal(ask("Basic s3cret"), false);
  assert.equal(auth.authenticated(new Request("http://x/")), false);
});

Deno.test("HttpAuth.login() with the right token sets an HttpOnly SameSite=Strict session cookie, not the token", async () => {
  const auth = new HttpAuth("s3cret");
  const response = await auth.login(loginRequest("s3cret"), "127.0.0.1:5");
  assert.equal(response.status, 303);
  assert.equal(response.headers.get("location"), "/");
  const set = response.headers.get("set-cookie")!;
  assert.match(
    set,
    new RegExp(`^${SESSION_COOKIE}=[\\w-]{43}; Path=/; HttpOnly; SameSite=Strict$`),
  );
  assert.ok(!set.includes("s3cret"));
  const next = new Request("http://x/", { headers: { cookie: sessionOf(response) } });
  assert.equal(auth.authenticated(next), true);
  const forged = new Request("http://x/", { headers: { cookie: `${SESSION_COOKIE}=s3cret` } });
  assert.equal(auth.authenticated(forged), false);
});

Deno.test("HttpAuth.login() with a wrong token shows the form again with 401 and sets no cookie", async () => {
  const auth = new HttpAuth("s3cret");
  const response = await auth.login(loginRequest("guess"), "127.0.0.1:5");
  assert.equal(response.status, 401);
  assert.equal(response.headers.get("set-cookie"), null);
  assert.match(await response.text(), /Wrong token/);
});

Deno.test("HttpAuth.login() refuses a body over MAX_LOGIN_BODY_BYTES with 413", async () => {
  const auth = new HttpAuth("s3cret");
  const response = await auth.login(loginRequest("x".repeat(MAX_LOGIN_BODY_BYTES)), "127.0.0.1:5");
  assert.equal(response.status, 413);
});

Deno.test("HttpAuth.logout() forgets the session and clears the cookie", async () => {
  const auth = new HttpAuth("s3cret");
  const session = sessionOf(await auth.login(loginRequest("s3cret"), "127.0.0.1:5"));
  const request = () =>
    new Request("http://x/logout", { method: "POST", headers: { cookie: session } });
  const response = auth.logout(request());
  assert.equal(response.status, 303);
  assert.match(response.headers.get("set-cookie")!, /Max-Age=0/);
  assert.equal(auth.authenticated(request()), false);
});

Deno.test("HttpAuth.login() forgets the oldest session beyond MAX_HTTP_SESSIONS", async () => {
  const auth = new HttpAuth("t");
  const first = sessionOf(await auth.login(loginRequest("t"), "a"));
  let last = "";
  for (let i = 0; i < MAX_HTTP_SESSIONS; i++) {
    last = sessionOf(await auth.login(loginRequest("t"), "a"));
  }
  const has = (session: string) =>
    auth.authenticated(new Request("http://x/", { headers: { cookie: session } }));
  assert.equal(has(first), false);
  assert.equal(has(last), true);
});

Deno.test("HttpAuth.challenge() sends a browser to /login and anything else a 401 Bearer challenge", () => {
  const auth = new HttpAuth("s3cret");
  const page = auth.challenge(new Request("http://x/", { headers: { accept: "text/html,*/*" } }));
  assert.equal(page.status, 303);
  assert.equal(page.headers.get("location"), "/login");
  const api = auth.challenge(new Request("http://x/metrics"));
  assert.equal(api.status, 401);
  assert.equal(api.headers.get("www-authenticate"), 'Bearer realm="parrot"');
});

Deno.test("HttpAuth.loginForm() posts the token to /login in a password field", async () => {
  const response = new HttpAuth("s3cret").loginForm();
  assert.equal(response.status, 200);
  const html = await response.text();
  assert.match(html, /<form method="post" action="\/login">/);
  assert.match(html, /name="token" type="password"/);
  assert.ok(!html.includes("s3cret"));
});

Deno.test("cookie() finds a cookie among others, trimmed", () => {
  const request = new Request("http://x/", { headers: { cookie: "a=1;  b = 2 ; c=3=4" } });
  assert.equal(cookie(request, "b"), "2");
  assert.equal(cookie(request, "c"), "3=4");
  assert.equal(cookie(new Request("http://x/"), "a"), undefined);
});
