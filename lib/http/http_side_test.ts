import assert from "node:assert/strict";
import { rawHttp } from "../testing.ts";
import type { Health } from "./health.ts";
import { type HttpSideOptions, httpUrl, startHttpSide, type WebSocketInfo } from "./http_side.ts";

/** An HTTP side on a free port, with the test's options; `base` is its URL. */
function start(options: Partial<HttpSideOptions> = {}) {
  const side = startHttpSide({
    port: 0,
    health: () => ({ ok: true }),
    metrics: () => "parrot_clients 0\n",
    onListen: () => {},
    ...options,
  });
  return { side, base: `http://127.0.0.1:${side.addr.port}` };
}

async function get(url: string, init?: RequestInit) {
  const response = await fetch(url, { redirect: "manual", ...init });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

Deno.test("startHttpSide() answers /healthz from health(): 200 ok, then 503 with the reason", async () => {
  let health: Health = { ok: true };
  const { side, base } = start({ health: () => health });
  try {
    assert.deepEqual(
      [(await get(`${base}/healthz`)).status, (await get(`${base}/healthz`)).body],
      [200, "ok\n"],
    );
    health = { ok: false, reason: "shutting down" };
    const after = await get(`${base}/healthz`);
    assert.equal(after.status, 503);
    assert.equal(after.body, "shutting down\n");
  } finally {
    await side.shutdown();
  }
});

Deno.test("startHttpSide() serves /metrics as Prometheus text", async () => {
  const { side, base } = start();
  try {
    const response = await get(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assert.equal(response.body, "parrot_clients 0\n");
  } finally {
    await side.shutdown();
  }
});

Deno.test("startHttpSide() refuses a Host it does not serve with 421, on every path", async () => {
  const { side, base } = start();
  try {
    const port = side.addr.port;
    for (const path of ["/", "/healthz", "/metrics", "/ws"]) {
      const response = await rawHttp(port, path, { host: "evil.example" });
      assert.equal(response.status, 421, path);
      assert.match(response.body, /^Cannot serve Host "evil\.example"/);
    }
    assert.equal((await rawHttp(port, "/healthz", { host: `localhost:${port}` })).status, 200);
    assert.equal((await get(`${base}/healthz`)).status, 200);
  } finally {
    await side.shutdown();
  }
});

Deno.test("startHttpSide() answers /ws 404 until the hook is given, then hands it the request", async () => {
  const bare = start();
  try {
    assert.equal((await get(`${bare.base}/ws`)).status, 404);
  } finally {
    await bare.side.shutdown();
  }
  const seen: WebSocketInfo[] = [];
  const { side, base } = start({
    webSocket: (_request, info) => {
      seen.push(info);
      return new Response("upgraded", { status: 200 });
    },
  });
  try {
    assert.equal((await get(`${base}/ws`)).body, "upgraded");
    assert.equal(seen.length, 1);
    assert.equal(seen[0].remoteAddr.hostname, "127.0.0.1");
    assert.equal(seen[0].authenticated, false, "no token here to have checked");
  } finally {
    await side.shutdown();
  }
});

Deno.test("startHttpSide() refuses a cross-origin upgrade of /ws with 403 and lets its own origin in", async () => {
  let calls = 0;
  const { side, base } = start({
    allowOrigins: ["http://dash.example"],
    webSocket: () => {
      calls++;
      return new Response("upgraded");
    },
  });
  try {
    const upgrade = (origin: string) =>
      get(`${base}/ws`, { headers: { origin, upgrade: "websocket" } });
    const foreign = await upgrade("http://evil.example");
    assert.equal(foreign.status, 403);
    assert.match(foreign.body, /^Cannot accept a request from origin "http:\/\/evil\.example"/);
    assert.equal(calls, 0);
    const plain = await get(`${base}/ws`, { headers: { origin: "http://evil.example" } });
    assert.equal(plain.status, 403, "a foreign origin on /ws, upgrade header or not");
    assert.equal(calls, 0);
    assert.equal((await upgrade(base)).status, 200, "the page's own origin");
    assert.equal((await upgrade("http://dash.example")).status, 200, "an allowed origin");
    assert.equal(calls, 2);
  } finally {
    await side.shutdown();
  }
});

Deno.test("startHttpSide() with a token: 401 without it, 200 with Bearer, /healthz open", async () => {
  const { side, base } = start({ token: "s3cret" });
  try {
    const without = await get(`${base}/metrics`);
    assert.equal(without.status, 401);
    assert.equal(without.headers.get("www-authenticate"), 'Bearer realm="parrot"');
    const wrong = await get(`${base}/metrics`, { headers: { authorization: "Bearer nope" } });
    assert.equal(wrong.status, 401);
    const bearer = await get(`${base}/metrics`, { headers: { authorization: "Bearer s3cret" } });
    assert.equal(bearer.status, 200);
    assert.equal((await get(`${base}/healthz`)).status, 200);
    const browser = await get(`${base}/`, { headers: { accept: "text/html" } });
    assert.equal(browser.status, 303);
    assert.equal(browser.headers.get("location"), "/login");
  } finally {
    await side.shutdown();
  }
});

Deno.test("startHttpSide() with a token: the login form's cookie opens the page and /ws", async () => {
  const seen: WebSocketInfo[] = [];
  const { side, base } = start({
    token: "s3cret",
    webSocket: (_request, info) => {
      seen.push(info);
      return new Response("upgraded");
    },
  });
  try {
    const form = await get(`${base}/login`);
    assert.equal(form.status, 200);
    assert.match(form.body, /action="\/login"/);
    const login = await get(`${base}/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "token=s3cret",
    });
    assert.equal(login.status, 303);
    const session = login.headers.get("set-cookie")!.split(";")[0];
    const page = await get(`${base}/`, { headers: { cookie: session } });
    assert.equal(page.status, 200);
    assert.match(page.body, /\/metrics/);
    await get(`${base}/ws`, { headers: { cookie: session } });
    await get(`${base}/ws`);
    assert.deepEqual(seen.map((info) => info.authenticated), [true, false]);
  } finally {
    await side.shutdown();
  }
});

Deno.test("startHttpSide() refuses a cross-origin login POST with 403", async () => {
  const { side, base } = start({ token: "s3cret" });
  try {
    const response = await get(`${base}/login`, {
      method: "POST",
      headers: {
        origin: "http://evil.example",
        "content-type": "application/x-www-form-urlencoded",
      },
      body: "token=s3cret",
    });
    assert.equal(response.status, 403);
  } finally {
    await side.shutdown();
  }
});

Deno.test("startHttpSide() hands the page hook its paths and answers 404 for what it declines", async () => {
  const { side, base } = start({
    page: (request) => new URL(request.url).pathname === "/" ? new Response("the page") : undefined,
  });
  try {
    assert.equal((await get(`${base}/`)).body, "the page");
    assert.equal((await get(`${base}/nothing`)).status, 404);
  } finally {
    await side.shutdown();
  }
});

Deno.test("startHttpSide() stops when its signal is aborted, and logs its URL on listening", async () => {
  const controller = new AbortController();
  const listened: string[] = [];
  const side = startHttpSide({
    port: 0,
    health: () => ({ ok: true }),
    metrics: () => "",
    signal: controller.signal,
    onListen: (addr) => listened.push(httpUrl(addr)),
  });
  assert.deepEqual(listened, [`http://127.0.0.1:${side.addr.port}/`]);
  controller.abort();
  await side.finished;
  await assert.rejects(fetch(`http://127.0.0.1:${side.addr.port}/healthz`));
});
