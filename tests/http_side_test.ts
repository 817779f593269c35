/**
 * Integration tests of the HTTP side (`--http`): the real server process on port 0 for
 * both sides, TCP clients in the conversation, and HTTP requests as a browser, curl or
 * Prometheus would send them.
 */

import assert from "node:assert/strict";
import {
  DENO,
  httpListeningPort,
  RawClient,
  rawHttp,
  SERVER_ENV,
  SERVER_RUN_ARGS,
  spawn,
  startServer,
} from "../lib/testing.ts";

/** The server with `--http 0` and `args`, and the base URL of its HTTP side. */
async function startWithHttp(args: string[] = [], env?: Record<string, string>) {
  const server = await startServer(["--http", "0", ...args], { env });
  const httpPort = await httpListeningPort(server);
  return { server, httpPort, base: `http://127.0.0.1:${httpPort}` };
}

async function get(url: string, init?: RequestInit) {
  const response = await fetch(url, { redirect: "manual", ...init });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

/** The value of the one sample `line` (a name with its labels) in a metrics text. */
function sample(metrics: string, line: string): number {
  const found = metrics.split("\n").filter((l) => l.startsWith(`${line} `));
  assert.equal(found.length, 1, `one sample ${line} in:\n${metrics}`);
  return Number(found[0].slice(line.length + 1));
}

Deno.test("server --http logs the HTTP side's URL after the TCP line, answers /healthz, exits 0", async () => {
  const { server, base } = await startWithHttp();
  try {
    const stderr = server.stderr.text();
    assert.ok(
      stderr.indexOf(`listening on 127.0.0.1:${server.port}`) <
        stderr.indexOf(`HTTP side listening on ${base}/`),
      stderr,
    );
    assert.deepEqual(await get(`${base}/healthz`).then((r) => [r.status, r.body]), [200, "ok\n"]);
    assert.match((await get(`${base}/`)).body, /<title>parrot live<\/title>/, "the live page");
  } finally {
    server.kill("SIGTERM");
  }
  assert.equal((await server.status).code, 0);
  assert.equal(server.stdout.text(), "", "nothing of the HTTP side on stdout");
});

Deno.test("server --http answers /healthz 503 once the shutdown has begun, during the grace period", async () => {
  const { server, base } = await startWithHttp(["--grace", "30s"]);
  const stubborn = await RawClient.connect(server.port); // never answers QUIT
  try {
    await stubborn.ping();
    assert.equal((await get(`${base}/healthz`)).status, 200);
    server.kill("SIGTERM");
    await stubborn.received.waitForText("QUIT\n");
    const during = await get(`${base}/healthz`);
    assert.deepEqual([during.status, during.body], [503, "shutting down\n"]);
  } finally {
    await stubborn.close();
  }
  assert.equal((await server.status).code, 0);
});

Deno.test("server --http counts TCP clients' messages, protocol errors and waits in /metrics", async () => {
  const { server, base } = await startWithHttp();
  const ann = await RawClient.connect(server.port);
  try {
    await ann.write("HELLO ann\nMSG 2\nhi\nMSG 5\nthere\nhello in a line\n");
    await ann.ping();
    const bad = await RawClient.connect(server.port);
    await bad.write("MSG abc\n");
    await bad.closedByServer();
    await bad.close();
    const response = await get(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    const metrics = response.body;
    assert.equal(sample(metrics, 'parrot_clients{transport="tcp"}'), 1);
    assert.equal(sample(metrics, "parrot_messages_in_total"), 3);
    assert.equal(sample(metrics, "parrot_bytes_in_total"), 2 + 5 + "hello in a line".length);
    assert.equal(sample(metrics, "parrot_output_messages_total"), 3);
    assert.equal(
      sample(metrics, "parrot_output_bytes_total"),
      "ann: hi\nann: there\nann: hello in a line\n".length,
    );
    assert.equal(sample(metrics, 'parrot_protocol_errors_total{reason="malformed frame"}'), 1);
    assert.equal(sample(metrics, "parrot_output_wait_seconds_count"), 3);
    assert.equal(sample(metrics, 'parrot_output_wait_seconds_bucket{le="+Inf"}'), 3);
    assert.ok(sample(metrics, "process_resident_memory_bytes") > 0, "memory is measured");
    assert.ok(sample(metrics, "parrot_heap_used_bytes") > 0);
  } finally {
    await ann.close();
    server.kill("SIGTERM");
  }
  assert.equal((await server.status).code, 0);
  assert.equal(server.stdout.text(), "ann: hi\nann: there\nann: hello in a line\n");
});

Deno.test("server --http refuses a Host it does not serve (DNS rebinding) and serves an allowed one", async () => {
  const { server, httpPort } = await startWithHttp(["--http-allow-host", "parrot.lan"]);
  try {
    const evil = await rawHttp(httpPort, "/metrics", { host: `evil.example:${httpPort}` });
    assert.equal(evil.status, 421);
    assert.match(evil.body, /^Cannot serve Host "evil\.example:\d+": not a name of this server/);
    const allowed = await rawHttp(httpPort, "/healthz", { host: `parrot.lan:${httpPort}` });
    assert.deepEqual([allowed.status, allowed.body], [200, "ok\n"]);
  } finally {
    server.kill("SIGTERM");
  }
  assert.equal((await server.status).code, 0);
});

Deno.test("server --http refuses a cross-origin upgrade of /ws with 403", async () => {
  const { server, base } = await startWithHttp(["--http-allow-origin", "http://dash.example"]);
  try {
    const upgrade = (origin: string) =>
      get(`${base}/ws`, { headers: { origin, upgrade: "websocket", connection: "upgrade" } });
    const foreign = await upgrade("http://evil.example");
    assert.equal(foreign.status, 403);
    assert.match(foreign.body, /origin "http:\/\/evil\.example": not this server's page/);
    // Past the guard (no WebSocket sessions in this build yet: 404, not 403).
    assert.notEqual((await upgrade(base)).status, 403);
    assert.notEqual((await upgrade("http://dash.example")).status, 403);
  } finally {
    server.kill("SIGTERM");
  }
  assert.equal((await server.status).code, 0);
});

Deno.test("server --http with a token: 401 without it, Bearer and the login cookie let in, /healthz stays open", async () => {
  const token = "http-test-token";
  const { server, base } = await startWithHttp([], { PARROT_TOKEN: token });
  try {
    const without = await get(`${base}/metrics`);
    assert.equal(without.status, 401);
    assert.equal(without.headers.get("www-authenticate"), 'Bearer realm="parrot"');
    const bearer = await get(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(bearer.status, 200);
    assert.equal((await get(`${base}/healthz`)).status, 200);
    const browser = await get(`${base}/`, { headers: { accept: "text/html" } });
    assert.deepEqual([browser.status, browser.headers.get("location")], [303, "/login"]);
    const wrong = await get(`${base}/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "token=guess",
    });
    assert.equal(wrong.status, 401);
    const login = await get(`${base}/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token }).toString(),
    });
    assert.equal(login.status, 303);
    const setCookie = login.headers.get("set-cookie")!;
    assert.match(setCookie, /HttpOnly; SameSite=Strict/);
    const page = await get(`${base}/`, { headers: { cookie: setCookie.split(";")[0] } });
    assert.equal(page.status, 200);
  } finally {
    server.kill("SIGTERM");
  }
  assert.equal((await server.status).code, 0);
  assert.ok(!server.stderr.text().includes(token), "the token is in no log line");
});

Deno.test("server refuses --http with --threads 2 in one line, exit 2", async () => {
  const running = spawn(DENO, [...SERVER_RUN_ARGS, "0", "--http", "0", "--threads", "2"], {
    env: SERVER_ENV,
  });
  const status = await running.status;
  assert.equal(status.code, 2);
  assert.match(
    running.stderr.text(),
    /^error: Cannot use --http with --threads 2: .*give --threads 1\n/,
  );
});

Deno.test("server --http on a non-loopback address without a token warns, and with one does not", async () => {
  const envs: Record<string, string>[] = [{}, { PARROT_TOKEN: "http-test-token" }];
  for (const env of envs) {
    const { server, base } = await startWithHttp(["--http-host", "0.0.0.0"], env);
    try {
      assert.equal((await get(`${base}/healthz`)).status, 200);
    } finally {
      server.kill("SIGTERM");
    }
    assert.equal((await server.status).code, 0);
    const warned = /HTTP side on 0\.0\.0\.0 without a token/.test(server.stderr.text());
    assert.equal(warned, !("PARROT_TOKEN" in env), server.stderr.text());
  }
});

/** The next message of `socket`, as text (binary frames are not expected here). */
function nextMessage(socket: WebSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.addEventListener("message", (event) => resolve(String(event.data)), { once: true });
    socket.addEventListener("close", () => reject(new Error("The socket closed")), { once: true });
  });
}

Deno.test("server --http puts a WebSocket client on /ws in the TCP clients' conversation", async () => {
  const { server, base } = await startWithHttp();
  const tcp = await RawClient.connect(server.port);
  const socket = new WebSocket(`${base.replace("http", "ws")}/ws?name=web`);
  try {
    await new Promise((resolve) => socket.addEventListener("open", resolve, { once: true }));
    await tcp.write("HELLO ann\n");
    await tcp.ping(); // ann is admitted and subscribed before the web user speaks
    // The WebSocket client's PONG says it is admitted too.
    const pong = nextMessage(socket);
    socket.send(JSON.stringify({ type: "ping" }));
    assert.deepEqual(JSON.parse(await pong), { type: "pong" });

    socket.send(JSON.stringify({ type: "msg", text: "hello from the page" }));
    await tcp.received.waitForText("MSG web 19\nhello from the page\n");
    await server.stdout.waitForText("web: hello from the page\n");

    const relayed = nextMessage(socket);
    await tcp.write("hi web\n");
    assert.deepEqual(JSON.parse(await relayed), { type: "msg", from: "ann", text: "hi web" });

    const metrics = (await get(`${base}/metrics`)).body;
    assert.equal(sample(metrics, 'parrot_clients{transport="websocket"}'), 1);
    assert.equal(sample(metrics, 'parrot_clients{transport="tcp"}'), 1);
  } finally {
    const closed = new Promise((resolve) => socket.addEventListener("close", resolve));
    server.kill("SIGTERM");
    const close = (await closed) as CloseEvent;
    assert.equal(close.code, 1001, "the server's close on shutdown");
    await tcp.close();
  }
  assert.equal((await server.status).code, 0);
});
