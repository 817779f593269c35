/**
 * Tests of WebSocket clients: a real `WebSocket` against `ParrotServer.upgradeWebSocket`
 * behind `Deno.serve`, in the same conversation as raw TCP clients, and every limit.
 */

import assert from "node:assert/strict";
import { RecordingWriter, runDeno, TextConn, waitFor } from "../testing.ts";
import { type ParrotServer, type ParrotServerOptions, startParrotServer } from "./server.ts";
import { closeCodeFor, WebSocketTransport } from "./websocket_session.ts";

const TOKEN = "s3cret-token";
const encoder = new TextEncoder();

/** A parrot server plus an HTTP server whose every request goes to upgradeWebSocket(). */
class Setup {
  readonly server: ParrotServer;
  readonly output = new RecordingWriter();
  readonly #http: Deno.HttpServer<Deno.NetAddr>;

  constructor(options: ParrotServerOptions = {}) {
    this.server = startParrotServer({ port: 0, output: this.output, ...options });
    this.#http = Deno.serve(
      { port: 0, hostname: "127.0.0.1", onListen() {} },
      (request, info) => this.server.upgradeWebSocket(request, info),
    );
  }

  get httpPort(): number {
    return this.#http.addr.port;
  }

  url(query = ""): string {
    return `ws://127.0.0.1:${this.httpPort}/ws${query}`;
  }

  /** A WebSocket client, open. */
  async ws(query = ""): Promise<WsClient> {
    const client = new WsClient(this.url(query));
    await client.opened;
    return client;
  }

  /** A raw TCP client that said HELLO `name` and got PONG (it is admitted). */
  async tcp(name: string, auth = ""): Promise<TextConn> {
    const conn = await TextConn.connect(this.server.addr.port);
    await conn.write(`${auth}HELLO ${name}\nPING\n`);
    await conn.until("PONG\n");
    return conn;
  }

  async close(): Promise<void> {
    await this.server.shutdown();
    await this.#http.shutdown();
  }
}

/** A WebSocket client that keeps what it receives. */
class WsClient {
  readonly socket: WebSocket;
  readonly received: (string | Uint8Array)[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.socket.binaryType = "arraybuffer";
    this.socket.onmessage = (event) =>
      this.received.push(
        typeof event.data === "string" ? event.data : new Uint8Array(event.data),
      );
    this.opened = new Promise((resolve, reject) => {
      this.socket.onopen = () => resolve();
      this.socket.onerror = () => reject(new Error(`Cannot open ${url}`));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.socket.onclose = (event) => resolve({ code: event.code, reason: event.reason });
    });
  }

  send(control: Record<string, unknown>): void {
    this.socket.send(JSON.stringify(control));
  }

  /** The parsed text messages received. */
  controls(): Record<string, unknown>[] {
    return this.received.filter((m) => typeof m === "string").map((m) => JSON.parse(m as string));
  }

  /** Sends `ping` and waits for its `pong`: every message sent before is on stdout. */
  async ping(): Promise<void> {
    const pongs = () => this.controls().filter((c) => c.type === "pong").length;
    const before = pongs();
    this.send({ type: "ping" });
    await waitFor(() => pongs() > before, "pong");
  }

  async close(): Promise<void> {
    if (this.socket.readyState < WebSocket.CLOSING) this.socket.close();
    await this.closed;
  }
}

Deno.test("upgradeWebSocket() joins WebSocket and TCP clients in one conversation, text and binary", async () => {
  const setup = new Setup();
  const bob = await setup.tcp("bob");
  const ann = await setup.ws("?name=ann");
  try {
    ann.send({ type: "msg", text: "hi from the web" });
    ann.socket.send(new Uint8Array([0, 0xff, 10]));
    await ann.ping();
    assert.equal(await bob.until("MSG ann 15\nhi from the web\n"), "MSG ann 15\nhi from the web\n");
    assert.equal(await bob.until("MSG ann 3\n"), "MSG ann 3\n");
    // stdout: the name and each message, the binary one as its bytes.
    const stdout = setup.output.bytes();
    const expected = new Uint8Array([
      ...encoder.encode("ann: hi from the web\nann: "),
      0,
      0xff,
      10,
      10,
    ]);
    assert.deepEqual(stdout, expected);
    await bob.write("MSG 5\nhello\nMSG 5\nzoë\n\n");
    await waitFor(() => ann.received.length >= 3, "two relays and a pong");
    const relays = ann.received.filter((m) => m !== '{"type":"pong"}');
    assert.deepEqual(relays[0], '{"type":"msg","from":"bob","text":"hello"}');
    assert.deepEqual(JSON.parse(relays[1] as string), { type: "msg", from: "bob", text: "zoë\n" });
    const clients = setup.server.clients().sort((a, b) => a.id - b.id);
    assert.deepEqual(clients.map((c) => [c.name, c.transport]), [
      ["bob", "tcp"],
      ["ann", "websocket"],
    ]);
    assert.equal(clients[1].messagesIn, 2);
    assert.equal(clients[1].messagesOut, 2);
    assert.equal(clients[0].messagesOut, 2);
    assert.equal(clients[0].messagesIn, 2);
    assert.notEqual(clients[0].id, clients[1].id);
  } finally {
    bob.close();
    await ann.close();
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() relays a payload that is not UTF-8 as a binary message with its sender", async () => {
  const setup = new Setup();
  const ann = await setup.ws("?name=ann");
  const bob = await setup.tcp("bob");
  try {
    await bob.write(new Uint8Array([...encoder.encode("MSG 3\n"), 0xff, 0, 0xfe, 10]));
    await waitFor(() => ann.received.length >= 1, "the relay");
    assert.deepEqual(ann.received[0], new Uint8Array([3, 98, 111, 98, 0xff, 0, 0xfe]));
    // And a WebSocket's binary message reaches a TCP subscriber byte for byte.
    ann.socket.send(new Uint8Array([0xc0, 10, 0]));
    assert.equal(await bob.until("MSG ann 3\n"), "MSG ann 3\n");
  } finally {
    bob.close();
    await ann.close();
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() takes hello, sub and unsub controls, and subscribe=0", async () => {
  const setup = new Setup();
  const listener = await setup.ws("?subscribe=0");
  const bob = await setup.tcp("bob");
  try {
    listener.send({ type: "hello", name: "carol" });
    await listener.ping();
    await bob.write("MSG 3\none\n");
    await bob.write("PING\n");
    await bob.until("PONG\n");
    listener.send({ type: "sub" });
    await listener.ping();
    await bob.write("MSG 3\ntwo\n");
    await waitFor(() => listener.controls().some((c) => c.type === "msg"), "a relay");
    listener.send({ type: "msg", text: "named" });
    await listener.ping();
    assert.deepEqual(
      listener.controls().filter((c) => c.type === "msg"),
      [{ type: "msg", from: "bob", text: "two" }],
    );
    assert.match(setup.output.text(), /^bob: one\nbob: two\ncarol: named\n$/);
  } finally {
    bob.close();
    await listener.close();
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() takes a history control: the replay, then live messages", async () => {
  const recorded: { sender: string; payload: Uint8Array }[] = [];
  const setup = new Setup({
    history: {
      get lastId() {
        return recorded.length;
      },
      recordRange: (sender, bytes, start, end) =>
        recorded.push({ sender, payload: bytes.slice(start, end) }),
      last: (n, upToId = Infinity) => recorded.slice(0, upToId).slice(-n),
    },
  });
  const bob = await setup.tcp("bob");
  try {
    await bob.write("MSG 3\none\nMSG 3\ntwo\nPING\n");
    await bob.until("PONG\n");
    const listener = await setup.ws("?subscribe=0");
    listener.send({ type: "history", n: 1 });
    listener.send({ type: "sub" });
    await listener.ping();
    await bob.write("MSG 5\nthree\n");
    await waitFor(() => listener.controls().filter((c) => c.type === "msg").length === 2, "relays");
    assert.deepEqual(listener.controls().filter((c) => c.type === "msg"), [
      { type: "msg", from: "bob", text: "two" },
      { type: "msg", from: "bob", text: "three" },
    ]);
    const bad = await setup.ws();
    bad.send({ type: "history", n: -1 });
    assert.deepEqual(await bad.closed, {
      code: 1008,
      reason: 'malformed frame: "n" must be a whole number, 0 or more',
    });
    await listener.close();
  } finally {
    bob.close();
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() answers 400 to a request that is not an upgrade, or with a bad name", async () => {
  const setup = new Setup();
  try {
    const plain = await fetch(`http://127.0.0.1:${setup.httpPort}/ws`);
    assert.equal(plain.status, 400);
    assert.match(await plain.text(), /^Cannot serve this request: it is not a WebSocket upgrade/);
    const badName = new WsClient(setup.url("?name=a%20b"));
    await assert.rejects(badName.opened);
    await badName.closed;
    assert.equal(setup.server.clients().length, 0);
  } finally {
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() closes bad control input with 1008 and a reason; a TCP client goes on", async () => {
  const setup = new Setup();
  const bob = await setup.tcp("bob");
  try {
    const cases: [string, RegExp][] = [
      ["hello there", /^malformed frame: a text message is a JSON object/],
      ['{"type":"shout"}', /^malformed frame: unknown type "shout"/],
      ['{"type":"msg","text":5}', /^malformed frame: "text" must be a string/],
      ['{"type":"hello","name":"a b"}', /^invalid name$/],
      ["[1]", /^malformed frame/],
    ];
    for (const [input, reason] of cases) {
      const web = await setup.ws();
      web.socket.send(input);
      const closed = await web.closed;
      assert.equal(closed.code, 1008, input);
      assert.match(closed.reason, reason);
    }
    assert.equal(setup.server.stats().protocolErrors, cases.length);
    await bob.write("MSG 2\nok\nPING\n");
    await bob.until("PONG\n");
    assert.match(setup.output.text(), /bob: ok\n$/);
  } finally {
    bob.close();
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() closes an oversized message with 1009; a TCP client goes on", async () => {
  const setup = new Setup({ maxFrameBytes: 100 });
  const bob = await setup.tcp("bob");
  try {
    const text = await setup.ws();
    text.send({ type: "msg", text: "x".repeat(101) });
    assert.deepEqual(await text.closed, { code: 1009, reason: "frame too large" });
    const binary = await setup.ws();
    binary.socket.send(new Uint8Array(101));
    assert.deepEqual(await binary.closed, { code: 1009, reason: "frame too large" });
    const fits = await setup.ws("?name=fits");
    fits.send({ type: "msg", text: "y".repeat(100) });
    await fits.ping();
    await fits.close();
    await bob.write("MSG 2\nok\nPING\n");
    await bob.until("PONG\n");
    assert.equal(setup.output.text(), `fits: ${"y".repeat(100)}\nbob: ok\n`);
  } finally {
    bob.close();
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() survives invalid UTF-8 in a text frame: that client is dropped, others go on", async () => {
  const setup = new Setup();
  const bob = await setup.tcp("bob");
  const conn = await TextConn.connect(setup.httpPort);
  try {
    // A browser cannot send it: a raw client does the handshake and one masked text frame.
    await conn.write(
      "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    await conn.until("\r\n\r\n");
    await waitFor(() => setup.server.clients().length === 2, "the WebSocket client");
    await conn.write(new Uint8Array([0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe]));
    // Deno's WebSocket drops the connection itself (no close frame).
    await conn.rest();
    await waitFor(() => setup.server.clients().length === 1, "the client to leave");
    assert.equal(setup.server.stats().protocolErrors, 1);
    await bob.write("MSG 2\nok\nPING\n");
    await bob.until("PONG\n");
    assert.equal(setup.output.text(), "bob: ok\n");
  } finally {
    conn.close();
    bob.close();
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() shares the client limit with TCP: a third client of either kind is refused", async () => {
  const setup = new Setup({ maxClients: 2 });
  const bob = await setup.tcp("bob");
  const ann = await setup.ws("?name=ann");
  try {
    const web = new WsClient(setup.url());
    assert.deepEqual(await web.closed, { code: 1013, reason: "too many clients" });
    const tcp = await TextConn.connect(setup.server.addr.port);
    assert.equal(await tcp.rest(), "ERR too many clients\n");
    tcp.close();
    assert.equal(setup.server.stats().rejected, 2);
    // Once the WebSocket client leaves, its slot is free for a TCP client.
    await ann.close();
    await waitFor(() => setup.server.clients().length === 1, "ann to leave");
    const carol = await setup.tcp("carol");
    carol.close();
  } finally {
    bob.close();
    await ann.close();
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() with a token: an auth control admits, a missing or wrong one is refused (1008)", async () => {
  const setup = new Setup({ token: TOKEN, authTimeoutMs: 300 });
  const bob = await setup.tcp("bob", `AUTH ${TOKEN}\n`);
  try {
    const good = await setup.ws("?name=ann");
    good.send({ type: "auth", token: TOKEN });
    good.send({ type: "msg", text: "in" });
    await good.ping();
    assert.equal(await bob.until("MSG ann 2\nin\n"), "MSG ann 2\nin\n");

    const wrong = await setup.ws();
    wrong.send({ type: "auth", token: "nope" });
    assert.deepEqual(await wrong.closed, { code: 1008, reason: "unauthorized" });
    const first = await setup.ws();
    first.send({ type: "msg", text: "let me in" });
    assert.deepEqual(await first.closed, { code: 1008, reason: "unauthorized" });
    const silent = await setup.ws();
    assert.deepEqual(await silent.closed, { code: 1008, reason: "auth timeout" });
    assert.equal(setup.server.stats().authFailures, 3);
    assert.equal(setup.output.text(), "ann: in\n");
    await good.close();
  } finally {
    bob.close();
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() with a token admits a request the HTTP side authenticated, or with Authorization: Bearer", async () => {
  const server = startParrotServer({ port: 0, output: null, token: TOKEN });
  const http = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (request, info) =>
      server.upgradeWebSocket(request, info, {
        authenticated: new URL(request.url).pathname === "/checked",
      }),
  );
  try {
    const checked = new WsClient(`ws://127.0.0.1:${http.addr.port}/checked`);
    await checked.opened;
    await checked.ping();
    await checked.close();
    // Deno's WebSocket client sends the headers it is given.
    const bearer = new WebSocket(`ws://127.0.0.1:${http.addr.port}/ws`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    } as unknown as string[]);
    const pong = new Promise((resolve) => bearer.onmessage = (e) => resolve(e.data));
    bearer.onopen = () => bearer.send('{"type":"ping"}');
    assert.equal(await pong, '{"type":"pong"}');
    const closed = new Promise((resolve) => bearer.onclose = resolve);
    bearer.close();
    await closed;
    assert.equal(server.stats().authFailures, 0);
  } finally {
    await server.shutdown();
    await http.shutdown();
  }
});

Deno.test("upgradeWebSocket() under a rate limit slows a flood down without dropping it", async () => {
  const setup = new Setup({ rateLimit: { ratePerSecond: 100, burst: 10 } });
  const bob = await setup.tcp("bob");
  try {
    const flood = await setup.ws("?name=flood");
    for (let i = 0; i < 30; i++) flood.send({ type: "msg", text: `m${i}` });
    await flood.ping();
    const lines = setup.output.text().trim().split("\n");
    assert.deepEqual(lines, Array.from({ length: 30 }, (_, i) => `flood: m${i}`));
    assert.ok(setup.server.stats().ratePauses > 0);
    await bob.write("MSG 2\nok\nPING\n");
    await bob.until("PONG\n");
    await flood.close();
  } finally {
    bob.close();
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() closes a client whose unread input outgrows its queue (flood)", async () => {
  // A rate of 1 a second holds the queue; 64 KiB of it is the most a client may have waiting.
  const setup = new Setup({
    rateLimit: { ratePerSecond: 1, burst: 1 },
    maxOutboundBytes: 64 * 1024,
    maxFrameBytes: 16 * 1024,
  });
  const bob = await setup.tcp("bob");
  try {
    const flood = await setup.ws("?name=flood");
    for (let i = 0; i < 10; i++) flood.send({ type: "msg", text: "z".repeat(16 * 1024) });
    await waitFor(() => setup.server.stats().protocolErrors === 1, "the flood to be closed");
    const closed = await flood.closed;
    // Still sending when the server closed, it may see only the connection's end.
    if (closed.code !== 1006 && closed.code !== 0) {
      assert.deepEqual(closed, { code: 1008, reason: "flood" });
    }
    await bob.write("MSG 2\nok\nPING\n");
    await bob.until("PONG\n");
    assert.match(setup.output.text(), /bob: ok\n$/);
  } finally {
    bob.close();
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() counts waiting controls against the queue too: a ping flood is closed", async () => {
  const setup = new Setup({
    rateLimit: { ratePerSecond: 1, burst: 1 },
    maxOutboundBytes: 64 * 1024,
    maxFrameBytes: 1024,
  });
  try {
    const flood = await setup.ws("?name=flood");
    // Two messages: the second waits for the rate limit, and whatever follows waits behind it.
    flood.send({ type: "msg", text: "a" });
    flood.send({ type: "msg", text: "b" });
    for (let i = 0; i < 5000; i++) flood.send({ type: "ping" });
    // The client may still be sending when the server closes: it may see the close frame
    // (1008 flood) or only the connection's end; the server's side is what counts.
    await waitFor(() => setup.server.stats().protocolErrors === 1, "the flood to be closed");
    const closed = await flood.closed;
    if (closed.code !== 1006 && closed.code !== 0) {
      assert.deepEqual(closed, { code: 1008, reason: "flood" });
    }
    await waitFor(() => setup.server.clients().length === 0, "the client to leave");
  } finally {
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() cuts off a client that stops reading, with 1008 slow consumer; the sender goes on", async () => {
  const setup = new Setup({ maxOutboundBytes: 256 * 1024, output: null });
  const bob = await setup.tcp("bob");
  // A raw WebSocket client that completes the handshake and then never reads.
  const stuck = await TextConn.connect(setup.httpPort);
  try {
    await stuck.write(
      "GET /ws?name=stuck HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
        "Sec-WebSocket-Version: 13\r\n\r\n",
    );
    await stuck.until("\r\n\r\n");
    await waitFor(() => setup.server.clients().length === 2, "the stuck client");
    const payload = "p".repeat(16 * 1024);
    const batch = `MSG ${payload.length}\n${payload}\n`.repeat(16);
    while (setup.server.stats().slowConsumers === 0) {
      await bob.write(batch + "PING\n");
      await bob.until("PONG\n");
    }
    assert.equal(setup.server.stats().slowConsumers, 1);
    assert.ok(setup.server.stats().slowConsumerDrops > 0);
    await waitFor(() => setup.server.clients().length === 1, "the stuck client to go");
    await bob.write("PING\n");
    assert.equal(await bob.until("PONG\n"), "PONG\n");
  } finally {
    stuck.close();
    bob.close();
    await setup.close();
  }
});

Deno.test("shutdown() delivers what was sent to a WebSocket client, then closes it with 1001", async () => {
  const setup = new Setup();
  const bob = await setup.tcp("bob");
  const ann = await setup.ws("?name=ann");
  try {
    await bob.write("MSG 4\nlast\nPING\n");
    await bob.until("PONG\n");
    const finished = setup.server.shutdown();
    assert.deepEqual(await ann.closed, { code: 1001, reason: "server shutting down" });
    assert.deepEqual(ann.controls(), [{ type: "msg", from: "bob", text: "last" }]);
    await bob.until("QUIT\n");
    bob.close();
    await finished;
    const late = await setup.server.upgradeWebSocket(
      new Request("http://x/ws", { headers: { upgrade: "websocket" } }),
      { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } },
    );
    assert.equal(late.status, 503);
  } finally {
    bob.close();
    await setup.close();
  }
});

Deno.test("WebSocketTransport turns PING, PONG, QUIT and ERR lines into controls and closes", () => {
  const sent: (string | Uint8Array)[] = [];
  const closes: [number | undefined, string | undefined][] = [];
  const transport = new WebSocketTransport({
    readyState: 1,
    bufferedAmount: 0,
    send: (data) => void sent.push(data),
    close: (code, reason) => void closes.push([code, reason]),
  });
  transport.write(encoder.encode("PING\nPONG\n"));
  transport.write(encoder.encode("ERR slow consumer\n"));
  transport.close();
  assert.deepEqual(sent, ['{"type":"ping"}', '{"type":"pong"}']);
  assert.deepEqual(closes, [[1008, "slow consumer"]]);
  transport.write(encoder.encode("QUIT\n"));
  assert.deepEqual(closes[1], [1001, "server shutting down"]);
  assert.equal(closeCodeFor("output failed"), 1011);
});

Deno.test("WebSocketTransport.writeStartedAt counts from when its buffer stopped shrinking; the hub cuts it off", async () => {
  const { Hub } = await import("./hub.ts");
  const { Session } = await import("./session.ts");
  const socket = {
    readyState: 1,
    bufferedAmount: 0,
    send: (data: string | Uint8Array) => void (socket.bufferedAmount += data.length),
    close: () => void (socket.readyState = 3),
  };
  const transport = new WebSocketTransport(socket);
  assert.equal(transport.writeStartedAt, 0);
  const cutOff: string[] = [];
  const hub = new Hub({
    onSlowConsumer: ({ session, cause }) => cutOff.push(`${session.name} ${cause}`),
  });
  const tab = new Session(transport, 1, "tab");
  const bob = new Session({ write: (p) => Promise.resolve(p.length), close() {} }, 2, "bob");
  hub.add(tab);
  hub.add(bob);
  hub.relay(bob, encoder.encode("hi"));
  const stalledSince = transport.writeStartedAt;
  assert.ok(stalledSince > 0);
  assert.equal(tab.messagesOut, 1);
  // No progress: the stall keeps its start, and a sweep after the write timeout cuts it off.
  assert.equal(transport.writeStartedAt, stalledSince);
  assert.equal(hub.cutOffStalled(stalledSince), 0);
  assert.equal(hub.cutOffStalled(stalledSince + 1), 1);
  assert.deepEqual(cutOff, ["tab write timeout"]);
  await tab.done;
  assert.equal(socket.readyState, 3);
});

Deno.test("upgradeWebSocket() pings a silent client, then closes it with 1008 idle timeout", async () => {
  const setup = new Setup({ idleTimeoutMs: 100 });
  try {
    const quiet = await setup.ws("?name=quiet");
    assert.deepEqual(await quiet.closed, { code: 1008, reason: "idle timeout" });
    assert.deepEqual(quiet.controls(), [{ type: "ping" }]);
    assert.equal(setup.server.stats().idleTimeouts, 1);
  } finally {
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() answers a quit once what came before is out, closing with 1000 bye", async () => {
  const setup = new Setup();
  const bob = await setup.tcp("bob");
  try {
    const ann = await setup.ws("?name=ann");
    ann.send({ type: "msg", text: "one" });
    ann.send({ type: "quit" });
    assert.deepEqual(await ann.closed, { code: 1000, reason: "bye" });
    assert.equal(setup.output.text(), "ann: one\n");
    await waitFor(() => setup.server.clients().length === 1, "ann to leave");
  } finally {
    bob.close();
    await setup.close();
  }
});

Deno.test("upgradeWebSocket() closes with 1011 output failed when stdout fails", async () => {
  const failing = { write: () => Promise.reject(new Error("Broken pipe")) };
  const setup = new Setup({ output: failing });
  try {
    const ann = await setup.ws("?name=ann");
    ann.send({ type: "msg", text: "lost" });
    assert.deepEqual(await ann.closed, { code: 1011, reason: "output failed" });
  } finally {
    await setup.close().catch(() => {});
  }
});

Deno.test("upgradeWebSocket() on a sharded server answers 501, and clients() lists none", async () => {
  // Shards need --unstable-net, which the tests do not run with: a process of its own.
  const script = `
    import { startShardedServer } from "./lib/parrot/threads/sharded_server.ts";
    const server = await startShardedServer({ shards: 2, port: 0, stdout: false });
    const response = server.upgradeWebSocket(
      new Request("http://x/ws", { headers: { upgrade: "websocket" } }),
      { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 1 } },
    );
    console.log(response.status, JSON.stringify(server.clients()), await response.text());
    await server.shutdown();
  `;
  const { code, stdout, stderr } = await runDeno(["eval", "--unstable-net", script]);
  assert.equal(code, 0, stderr);
  assert.equal(
    stdout,
    "501 [] Cannot accept a WebSocket client: WebSocket clients need --threads 1\n\n",
  );
});
