import assert from "node:assert/strict";
import { settlesWithin } from "../net/delay.ts";
import { type ClientEvent, ParrotClient } from "./client.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HOST = "127.0.0.1";

/** Lets every pending microtask and the timers due now run. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** The server side of one connection, driven by hand. */
class RawPeer {
  readonly conn: Deno.Conn;
  #received = "";
  #closed = false;

  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /** Reads until `needle` arrived; returns what came up to and including it. */
  async until(needle: string): Promise<string> {
    const buffer = new Uint8Array(1024);
    while (!this.#received.includes(needle)) {
      const n = await this.conn.read(buffer);
      if (n === null) throw new Error(`End of stream before ${JSON.stringify(needle)}`);
      this.#received += decoder.decode(buffer.subarray(0, n));
    }
    const end = this.#received.indexOf(needle) + needle.length;
    const taken = this.#received.slice(0, end);
    this.#received = this.#received.slice(end);
    return taken;
  }

  /** Reads to the end of the stream; returns the rest. */
  async rest(): Promise<string> {
    const buffer = new Uint8Array(1024);
    for (;;) {
      const n = await this.conn.read(buffer);
      if (n === null) break;
      this.#received += decoder.decode(buffer.subarray(0, n));
    }
    const rest = this.#received;
    this.#received = "";
    return rest;
  }

  async write(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    let offset = 0;
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close();
  }
}

/** A listener on a free port that hands out {@linkcode RawPeer}s. */
function rawServer(): { port: number; accept(): Promise<RawPeer>; close(): void } {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  return {
    port: listener.addr.port,
    accept: async () => new RawPeer(await listener.accept()),
    close: () => listener.close(),
  };
}

/** Connects a client to a fresh raw server; `done()` closes everything. */
async function pair(
  options: { name?: string; subscribe?: boolean; signal?: AbortSignal } = {},
): Promise<{ client: ParrotClient; peer: RawPeer; done(): Promise<void> }> {
  const server = rawServer();
  try {
    const [client, peer] = await Promise.all([
      ParrotClient.connect({ port: server.port, ...options }),
      server.accept(),
    ]);
    return {
      client,
      peer,
      async done() {
        peer.close();
        await client.close();
      },
    };
  } finally {
    server.close();
  }
}

Deno.test("ParrotClient.connect() rejects with ConnectionRefused when nobody listens", async () => {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = listener.addr.port;
  listener.close();
  await assert.rejects(ParrotClient.connect({ port }), Deno.errors.ConnectionRefused);
});

Deno.test("ParrotClient.connect() says HELLO, and UNSUB with subscribe: false", async () => {
  const { peer, done } = await pair({ name: "ann", subscribe: false });
  try {
    assert.equal(await peer.until("UNSUB\n"), "HELLO ann\nUNSUB\n");
  } finally {
    await done();
  }
});

Deno.test("ParrotClient.send() frames the message and returns the payload size in bytes", async () => {
  const { client, peer, done } = await pair();
  try {
    assert.equal(client.send("héllo"), 6);
    assert.equal(client.send(new Uint8Array([0, 10, 13])), 3);
    assert.equal(client.send(""), 0);
    await client.flush();
    assert.equal(client.buffered, 0);
    assert.equal(await peer.until("MSG 0\n\n"), "MSG 6\nhéllo\nMSG 3\n\0\n\r\nMSG 0\n\n");
  } finally {
    await done();
  }
});

Deno.test("ParrotClient.ping() resolves on PONG", async () => {
  const { client, peer, done } = await pair();
  try {
    let ponged = false;
    const ping = client.ping().then(() => ponged = true);
    assert.equal(await peer.until("PING\n"), "PING\n");
    await nextTurn();
    assert.equal(ponged, false, "not before the PONG");
    await peer.write("PONG\n");
    await ping;
  } finally {
    await done();
  }
});

Deno.test("ParrotClient.ping() rejects when the server closes before answering", async () => {
  const { client, peer, done } = await pair();
  try {
    const ping = client.ping();
    await peer.until("PING\n");
    peer.close();
    await assert.rejects(ping, Error);
    await client.finished;
  } finally {
    await done();
  }
});

Deno.test("ParrotClient.ping() rejects when the server has already closed the connection", async () => {
  const { client, peer, done } = await pair();
  try {
    peer.close();
    await client.finished;
    const ping = client.ping();
    let outcome = "pending";
    ping.then(() => outcome = "resolved", () => outcome = "rejected");
    await settlesWithin(ping, 200);
    assert.equal(outcome, "rejected", "ping() must not wait forever on a dead connection");
  } finally {
    await done();
  }
});

Deno.test("ParrotClient answers the server's PING with PONG by itself", async () => {
  const { peer, done } = await pair();
  try {
    await peer.write("PING\n");
    assert.equal(await peer.until("PONG\n"), "PONG\n");
  } finally {
    await done();
  }
});

Deno.test("ParrotClient yields relayed messages and QUIT as events", async () => {
  const { client, peer, done } = await pair();
  try {
    await peer.write("MSG bob 5\nhi\n!!\nQUIT\n");
    peer.close();
    const events = await Array.fromAsync(client);
    assert.deepEqual(
      events,
      [
        { type: "message", from: "bob", payload: encoder.encode("hi\n!!") },
        { type: "quit" },
      ] satisfies ClientEvent[],
    );
  } finally {
    await done();
  }
});

Deno.test("ParrotClient turns a server ERR into an error event", async () => {
  const { client, peer, done } = await pair();
  try {
    await peer.write("ERR too many clients\n");
    peer.close();
    const events = await Array.fromAsync(client);
    assert.deepEqual(events, [{ type: "error", reason: "too many clients" }]);
    await client.finished;
  } finally {
    await done();
  }
});

Deno.test("ParrotClient.close() sends QUIT and resolves only after the server closed", async () => {
  const { client, peer, done } = await pair();
  try {
    client.send("last");
    let closed = false;
    const closing = client.close().then(() => closed = true);
    assert.equal(await peer.until("QUIT\n"), "MSG 4\nlast\nQUIT\n");
    await nextTurn();
    assert.equal(closed, false, "close() waits for the server");
    peer.close();
    await closing;
    await client.finished;
    assert.equal(client.close(), client.close(), "idempotent");
  } finally {
    await done();
  }
});

Deno.test("ParrotClient.close() gives up waiting for the server after timeoutMs", async () => {
  const { client, peer, done } = await pair();
  try {
    const started = performance.now();
    await client.close(50);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 45, `closed after ${elapsed}ms`);
    assert.equal(await peer.rest(), "QUIT\n", "the client closed its end");
  } finally {
    await done();
  }
});

Deno.test("ParrotClient closes at once when its signal aborts", async () => {
  const controller = new AbortController();
  const { client, peer, done } = await pair({ signal: controller.signal });
  try {
    controller.abort();
    await client.finished;
    assert.equal(await peer.rest(), "");
  } finally {
    await done();
  }
});
