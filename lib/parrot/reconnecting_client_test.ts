import assert from "node:assert/strict";
import { TextConn, waitFor } from "../testing.ts";
import {
  type ReconnectEvent,
  ReconnectingClient,
  type ReconnectingClientOptions,
} from "./reconnecting_client.ts";

const HOST = "127.0.0.1";

/** A listener that can be stopped and started again on the same port. */
class Flaky {
  readonly port: number;
  #listener: Deno.Listener | undefined;

  constructor() {
    this.#listener = Deno.listen({ hostname: HOST, port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
  }

  async accept(): Promise<TextConn> {
    return new TextConn(await this.#listener!.accept());
  }

  stop(): void {
    this.#listener?.close();
    this.#listener = undefined;
  }

  start(): void {
    this.#listener = Deno.listen({ hostname: HOST, port: this.port });
  }
}

/** Reads a client's events one by one. */
class Events {
  #iterator: AsyncIterator<ReconnectEvent>;
  seen: ReconnectEvent[] = [];

  constructor(client: ReconnectingClient) {
    this.#iterator = client[Symbol.asyncIterator]();
  }

  /** The next event; throws if the client ended instead. */
  async next(): Promise<ReconnectEvent> {
    const { value, done } = await this.#iterator.next();
    if (done) throw new Error(`The events ended after ${JSON.stringify(this.seen)}`);
    this.seen.push(value);
    return value;
  }

  /** Skips events until one of `type`, and returns it. */
  async until<T extends ReconnectEvent["type"]>(
    type: T,
  ): Promise<Extract<ReconnectEvent, { type: T }>> {
    for (;;) {
      const event = await this.next();
      if (event.type === type) return event as Extract<ReconnectEvent, { type: T }>;
    }
  }

  /** The remaining events, until the client is done. */
  async rest(): Promise<ReconnectEvent[]> {
    const rest: ReconnectEvent[] = [];
    for (;;) {
      const { value, done } = await this.#iterator.next();
      if (done) return rest;
      rest.push(value);
    }
  }
}

/** A short, fixed backoff: every delay is 5ms. */
const FAST: Partial<ReconnectingClientOptions> = {
  initialDelayMs: 10,
  maxDelayMs: 10,
  random: () => 0.5,
};

/**
 * Runs `body` with a {@linkcode Flaky} server, a {@linkcode ReconnectingClient} on its
 * port (with `options` and the {@linkcode FAST} backoff) and the client's events;
 * then closes the client and stops the server, whatever happened.
 */
async function withClient(
  options: Partial<ReconnectingClientOptions>,
  body: (setup: { server: Flaky; client: ReconnectingClient; events: Events }) => Promise<void>,
): Promise<void> {
  const server = new Flaky();
  const client = new ReconnectingClient({ port: server.port, ...options, ...FAST });
  const events = new Events(client);
  try {
    await body({ server, client, events });
  } finally {
    await client.close();
    server.stop();
  }
}

/** Reads the opening lines and the PING of one connection and answers PONG. */
async function confirm(peer: TextConn): Promise<string> {
  const opening = await peer.until("PING\n");
  await peer.write("PONG\n");
  return opening;
}

Deno.test("ReconnectingClient says AUTH and HELLO again on every connection", async () => {
  await withClient({ name: "ann", token: "s3" }, async ({ server, client, events }) => {
    const first = await server.accept();
    assert.equal(await confirm(first), "AUTH s3\nHELLO ann\nPING\n");
    const address = `${HOST}:${server.port}`;
    assert.deepEqual(await events.next(), { type: "connected", server: address });

    first.close();
    const retrying = await events.next();
    assert.deepEqual(retrying, {
      type: "retrying",
      reason: "the server closed the connection",
      delayMs: 5,
      attempt: 1,
      maxAttempts: 10,
      wasConnected: true,
      server: address,
    });
    const second = await server.accept();
    assert.equal(await confirm(second), "AUTH s3\nHELLO ann\nPING\n");
    assert.deepEqual(await events.next(), {
      type: "reconnected",
      server: address,
      previousServer: address,
      resent: 0,
      dropped: 0,
    });
    const closing = client.close();
    assert.equal(await second.until("QUIT\n"), "QUIT\n");
    second.close();
    await closing;
    assert.deepEqual(await events.rest(), []);
  });
});

Deno.test("ReconnectingClient re-sends the messages sent while disconnected, in order", async () => {
  await withClient({ name: "ann", maxAttempts: 1_000 }, async ({ server, client, events }) => {
    const first = await server.accept();
    await confirm(first);
    await events.until("connected");
    server.stop();
    first.close();
    await events.until("retrying");
    assert.equal(client.connected, false);
    assert.equal(client.send("one"), 3);
    client.send("two");
    client.send(new Uint8Array([0x21]));
    assert.equal(client.unsent, 3);

    server.start();
    const second = await server.accept();
    assert.equal(await confirm(second), "HELLO ann\nMSG 3\none\nMSG 3\ntwo\nMSG 1\n!\nPING\n");
    const { resent, dropped } = await events.until("reconnected");
    assert.deepEqual({ resent, dropped }, { resent: 3, dropped: 0 });
    assert.equal(client.unsent, 0, "confirmed messages are forgotten");
    second.close();
  });
});

Deno.test("ReconnectingClient keeps at most maxUnsent messages, dropping the oldest", async () => {
  const server = new Flaky();
  server.stop();
  const client = new ReconnectingClient({
    port: server.port,
    maxUnsent: 2,
    maxAttempts: 1_000,
    ...FAST,
  });
  const events = new Events(client);
  try {
    const refused = await events.until("retrying");
    assert.equal(refused.reason, "connection refused");
    assert.equal(refused.wasConnected, false);
    for (const n of [1, 2, 3, 4, 5]) client.send(`m${n}`);
    assert.equal(client.unsent, 2);
    assert.equal(client.dropped, 3);

    server.start();
    const peer = await server.accept();
    assert.equal(await confirm(peer), "MSG 2\nm4\nMSG 2\nm5\nPING\n");
    // The first confirmed connection is "connected"; the count is on the client.
    assert.deepEqual(await events.until("connected"), {
      type: "connected",
      server: `${HOST}:${server.port}`,
    });
    assert.equal(client.dropped, 3);
    peer.close();
  } finally {
    await client.close();
    server.stop();
  }
});

Deno.test("ReconnectingClient reports the messages dropped during an outage on reconnect", async () => {
  await withClient({ maxUnsent: 1, maxAttempts: 1_000 }, async ({ server, client, events }) => {
    const first = await server.accept();
    await confirm(first);
    await events.until("connected");
    server.stop();
    first.close();
    await events.until("retrying");
    for (const n of [1, 2, 3]) client.send(`m${n}`);
    server.start();
    const second = await server.accept();
    assert.equal(await confirm(second), "MSG 2\nm3\nPING\n");
    const { resent, dropped } = await events.until("reconnected");
    assert.deepEqual({ resent, dropped }, { resent: 1, dropped: 2 });
    second.close();
  });
});

Deno.test("ReconnectingClient forwards relayed messages and reconnects after an ERR", async () => {
  await withClient({}, async ({ server, events }) => {
    const first = await server.accept();
    await confirm(first);
    await first.write("MSG bob 2\nhi\nERR slow consumer\n");
    first.close();
    const message = await events.until("message");
    assert.equal(message.from, "bob");
    assert.equal(new TextDecoder().decode(message.payload), "hi");
    assert.equal((await events.until("retrying")).reason, "ERR slow consumer");
    const second = await server.accept();
    await confirm(second);
    await events.until("reconnected");
    second.close();
  });
});

Deno.test("ReconnectingClient stops for good on ERR unauthorized", async () => {
  await withClient({ token: "wrong" }, async ({ server, client, events }) => {
    const peer = await server.accept();
    assert.equal(await peer.until("\n"), "AUTH wrong\n");
    await peer.write("ERR unauthorized\n");
    peer.close();
    assert.deepEqual(await events.rest(), [{ type: "error", reason: "unauthorized" }]);
    await client.finished;
    assert.equal(client.connected, false);
  });
});

Deno.test("ReconnectingClient does not reconnect after the server's QUIT", async () => {
  await withClient({}, async ({ server, client, events }) => {
    const peer = await server.accept();
    await confirm(peer);
    await events.until("connected");
    await peer.write("QUIT\n");
    assert.deepEqual(await events.next(), { type: "quit" });
    peer.close(); // the server finishes and closes
    assert.deepEqual(await events.rest(), []);
    await client.finished;
  });
});

Deno.test("ReconnectingClient gives up after maxAttempts with the last reason", async () => {
  const server = new Flaky();
  server.stop();
  const client = new ReconnectingClient({ port: server.port, maxAttempts: 3, ...FAST });
  const events = await new Events(client).rest();
  assert.deepEqual(
    events.map((e) => e.type === "retrying" ? `retrying ${e.attempt} of ${e.maxAttempts}` : e),
    [
      "retrying 1 of 3",
      "retrying 2 of 3",
      "retrying 3 of 3",
      { type: "gave-up", attempts: 3, reason: "connection refused" },
    ],
  );
  await client.finished;
});

Deno.test("ReconnectingClient resets its attempts only once the server answered PING", async () => {
  await withClient({ maxAttempts: 2 }, async ({ server, client }) => {
    // Accept every connection and drop it before answering: each one is a failed attempt.
    const dropping = (async () => {
      for (let i = 0; i < 3; i++) (await server.accept()).close();
    })();
    const events = await new Events(client).rest();
    await dropping;
    assert.deepEqual(events.at(-1), {
      type: "gave-up",
      attempts: 2,
      reason: "the server closed the connection",
    });
    assert.equal(events.filter((e) => e.type === "retrying").length, 2);
  });
});

Deno.test("ReconnectingClient counts a connection the server never confirms as a failed attempt", async () => {
  await withClient({ maxAttempts: 1, confirmTimeoutMs: 50 }, async ({ server, client }) => {
    // Accept both attempts and say nothing: neither PING is answered.
    const peers = [await server.accept(), await server.accept()];
    const events = await new Events(client).rest();
    const reason = "the server did not confirm the connection within 50ms";
    assert.deepEqual(events.map((e) => e.type === "retrying" ? e.reason : e), [
      reason,
      { type: "gave-up", attempts: 1, reason },
    ]);
    for (const peer of peers) peer.close();
  });
});

Deno.test("ReconnectingClient.close() between attempts stops at once and keeps the unsent", async () => {
  const server = new Flaky();
  server.stop();
  const client = new ReconnectingClient({
    port: server.port,
    initialDelayMs: 60_000,
    maxDelayMs: 60_000,
    random: () => 0.5,
  });
  const events = new Events(client);
  await events.until("retrying");
  client.send("never");
  const started = performance.now();
  await client.close();
  assert.ok(performance.now() - started < 1_000, "close() does not wait out the backoff");
  assert.equal(client.unsent, 1);
  assert.deepEqual(await events.rest(), []);
});

Deno.test("ReconnectingClient closes at once when its signal aborts", async () => {
  const server = new Flaky();
  const controller = new AbortController();
  const client = new ReconnectingClient({
    port: server.port,
    signal: controller.signal,
    ...FAST,
  });
  try {
    const peer = await server.accept();
    await confirm(peer);
    controller.abort();
    await client.finished;
    assert.equal(await peer.rest(), "", "no QUIT: the socket was closed at once");
  } finally {
    await client.close();
    server.stop();
  }
});

Deno.test("ReconnectingClient rejects a bad name, token or maxUnsent at once", () => {
  assert.throws(() => new ReconnectingClient({ port: 1, name: "a b" }), RangeError);
  assert.throws(() => new ReconnectingClient({ port: 1, token: "a\nb" }), RangeError);
  assert.throws(() => new ReconnectingClient({ port: 1, maxUnsent: -1 }), RangeError);
});

Deno.test("ReconnectingClient.close() gives up a TLS handshake the server never answers", async () => {
  const server = new Flaky();
  const client = new ReconnectingClient({ port: server.port, tls: true, ...FAST });
  try {
    const silent = await server.accept(); // accepts, never says a word
    const started = performance.now();
    await client.close();
    assert.ok(performance.now() - started < 1_000, "close() did not wait for the handshake");
    assert.deepEqual(await new Events(client).rest(), []);
    silent.close();
  } finally {
    server.stop();
  }
});

Deno.test("ReconnectingClient.ping() confirms the current connection, and rejects without one", async () => {
  await withClient({ name: "ann", maxAttempts: 1_000 }, async ({ server, client, events }) => {
    server.stop();
    await events.until("retrying");
    await assert.rejects(client.ping(), /not connected/);

    server.start();
    const peer = await server.accept();
    await confirm(peer);
    await events.until("connected");
    client.send("hi");
    let confirmed = false;
    const ping = client.ping().then(() => confirmed = true);
    assert.equal(await peer.until("PING\n"), "MSG 2\nhi\nPING\n");
    assert.equal(confirmed, false, "confirmed before the PONG");
    await peer.write("PONG\n");
    await ping;
    peer.close();
  });
});

Deno.test("ReconnectingClient keeps a written message until a PONG confirms it, and re-sends it after a loss", async () => {
  await withClient({ maxAttempts: 1_000 }, async ({ server, client, events }) => {
    const first = await server.accept();
    await confirm(first);
    await events.until("connected");
    client.send("one");
    // Written, and a PING asks for its confirmation; no PONG: the connection dies.
    assert.equal(await first.until("PING\n"), "MSG 3\none\nPING\n");
    assert.equal(client.unsent, 1, "written but not confirmed: still kept");
    first.close();
    const second = await server.accept();
    assert.equal(await confirm(second), "MSG 3\none\nPING\n");
    const { resent } = await events.until("reconnected");
    assert.equal(resent, 1);
    assert.equal(client.unsent, 0);

    client.send("two");
    client.send("three");
    assert.equal(await second.until("PING\n"), "MSG 3\ntwo\nMSG 5\nthree\nPING\n");
    await second.write("PONG\n");
    await waitFor(() => client.unsent === 0, "the PONG to confirm both");
    second.close();
  });
});

Deno.test("ReconnectingClient with several servers moves to the next one on a loss, round robin", async () => {
  const servers = [new Flaky(), new Flaky()];
  const client = new ReconnectingClient({
    servers: servers.map(({ port }) => ({ hostname: HOST, port })),
    maxAttempts: 1_000,
    ...FAST,
  });
  const events = new Events(client);
  const [a, b] = servers.map(({ port }) => `${HOST}:${port}`);
  try {
    const first = await servers[0].accept();
    await confirm(first);
    assert.deepEqual(await events.until("connected"), { type: "connected", server: a });
    assert.equal(client.server, a);
    client.send("kept");
    await first.until("PING\n"); // never answered
    first.close();
    assert.equal((await events.until("retrying")).server, b);

    const second = await servers[1].accept();
    assert.equal(await confirm(second), "MSG 4\nkept\nPING\n");
    assert.deepEqual(await events.until("reconnected"), {
      type: "reconnected",
      server: b,
      previousServer: a,
      resent: 1,
      dropped: 0,
    });
    assert.equal(client.server, b);

    // The next loss wraps around to the first server.
    second.close();
    assert.equal((await events.until("retrying")).server, a);
    const third = await servers[0].accept();
    await confirm(third);
    const back = await events.until("reconnected");
    assert.deepEqual([back.server, back.previousServer], [a, b]);
    third.close();
  } finally {
    await client.close();
    for (const server of servers) server.stop();
  }
});

Deno.test("ReconnectingClient with several servers skips one that refuses", async () => {
  const down = new Flaky();
  down.stop();
  const up = new Flaky();
  const client = new ReconnectingClient({
    servers: [{ port: down.port }, { port: up.port }],
    ...FAST,
  });
  const events = new Events(client);
  try {
    const refused = await events.until("retrying");
    assert.equal(refused.reason, "connection refused");
    assert.equal(refused.server, `${HOST}:${up.port}`);
    const peer = await up.accept();
    await confirm(peer);
    assert.equal((await events.until("connected")).server, `${HOST}:${up.port}`);
    peer.close();
  } finally {
    await client.close();
    up.stop();
  }
});

Deno.test("ReconnectingClient rejects no server, or both port and servers", () => {
  assert.throws(() => new ReconnectingClient({}), /give port or servers/);
  assert.throws(() => new ReconnectingClient({ servers: [] }), /empty servers/);
  assert.throws(
    () => new ReconnectingClient({ port: 1, servers: [{ port: 2 }] }),
    /both port and servers/,
  );
});

Deno.test("ReconnectingClient with several servers leaves one that says QUIT: confirms, says QUIT, moves on", async () => {
  const servers = [new Flaky(), new Flaky()];
  const client = new ReconnectingClient({
    servers: servers.map(({ port }) => ({ port })),
    ...FAST,
  });
  const events = new Events(client);
  const [a, b] = servers.map(({ port }) => `${HOST}:${port}`);
  try {
    const first = await servers[0].accept();
    await confirm(first);
    await events.until("connected");
    client.send("one");
    assert.equal(await first.until("PING\n"), "MSG 3\none\nPING\n"); // not answered yet
    await first.write("QUIT\n");
    // The client confirms what it wrote before leaving; what it sends now waits.
    assert.equal(await first.until("PING\n"), "PING\n");
    assert.equal(client.connected, false);
    client.send("two");
    await first.write("PONG\nPONG\n");
    assert.equal(await first.until("QUIT\n"), "QUIT\n");
    first.close();

    const retrying = await events.until("retrying");
    assert.deepEqual([retrying.reason, retrying.server], ["the server is shutting down", b]);
    const second = await servers[1].accept();
    assert.equal(await confirm(second), "MSG 3\ntwo\nPING\n", "only the unconfirmed message");
    const moved = await events.until("reconnected");
    assert.deepEqual([moved.server, moved.previousServer, moved.resent], [b, a, 1]);
    assert.ok(!events.seen.some((event) => event.type === "quit"), "no quit event");
    second.close();
  } finally {
    await client.close();
    for (const server of servers) server.stop();
  }
});
