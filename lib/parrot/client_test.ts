import assert from "node:assert/strict";
import { settlesWithin } from "../net/delay.ts";
import { nextTurn, TextConn } from "../testing.ts";
import { type ClientEvent, ParrotClient } from "./client.ts";

const encoder = new TextEncoder();
const HOST = "127.0.0.1";

/** A listener on a free port that hands out the server side of each connection. */
function rawServer(): { port: number; accept(): Promise<TextConn>; close(): void } {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  return {
    port: listener.addr.port,
    accept: async () => new TextConn(await listener.accept()),
    close: () => listener.close(),
  };
}

/** Connects a client to a fresh raw server; `done()` closes everything. */
async function pair(
  options: { name?: string; subscribe?: boolean; signal?: AbortSignal } = {},
): Promise<{ client: ParrotClient; peer: TextConn; done(): Promise<void> }> {
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

/** Registers a test of a client connected to a fresh raw server, closing both after `body`. */
function pairTest(
  name: string,
  body: (pair: { client: ParrotClient; peer: TextConn }) => Promise<void>,
  options: { name?: string; subscribe?: boolean } = {},
): void {
  Deno.test(name, async () => {
    const { client, peer, done } = await pair(options);
    try {
      await body({ client, peer });
    } finally {
      await done();
    }
  });
}

Deno.test("ParrotClient.connect() rejects with ConnectionRefused when nobody listens", async () => {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const port = listener.addr.port;
  listener.close();
  await assert.rejects(ParrotClient.connect({ port }), Deno.errors.ConnectionRefused);
});

pairTest("ParrotClient.connect() says HELLO, and UNSUB with subscribe: false", async ({ peer }) => {
  assert.equal(await peer.until("UNSUB\n"), "HELLO ann\nUNSUB\n");
}, { name: "ann", subscribe: false });

pairTest(
  "ParrotClient.send() frames the message and returns the payload size in bytes",
  async ({ client, peer }) => {
    assert.equal(client.send("héllo"), 6);
    assert.equal(client.send(new Uint8Array([0, 10, 13])), 3);
    assert.equal(client.send(""), 0);
    await client.flush();
    assert.equal(client.buffered, 0);
    assert.equal(await peer.until("MSG 0\n\n"), "MSG 6\nhéllo\nMSG 3\n\0\n\r\nMSG 0\n\n");
  },
);

pairTest("ParrotClient.ping() resolves on PONG", async ({ client, peer }) => {
  let ponged = false;
  const ping = client.ping().then(() => ponged = true);
  assert.equal(await peer.until("PING\n"), "PING\n");
  await nextTurn();
  assert.equal(ponged, false, "not before the PONG");
  await peer.write("PONG\n");
  await ping;
});

pairTest(
  "ParrotClient.ping() rejects when the server closes before answering",
  async ({ client, peer }) => {
    const ping = client.ping();
    await peer.until("PING\n");
    peer.close();
    await assert.rejects(ping, Error);
    await client.finished;
  },
);

pairTest(
  "ParrotClient.ping() rejects when the server has already closed the connection",
  async ({ client, peer }) => {
    peer.close();
    await client.finished;
    const ping = client.ping();
    let outcome = "pending";
    ping.then(() => outcome = "resolved", () => outcome = "rejected");
    await settlesWithin(ping, 200);
    assert.equal(outcome, "rejected", "ping() must not wait forever on a dead connection");
  },
);

pairTest("ParrotClient answers the server's PING with PONG by itself", async ({ peer }) => {
  await peer.write("PING\n");
  assert.equal(await peer.until("PONG\n"), "PONG\n");
});

/** The events the client yields after the server wrote `text` and closed the connection. */
async function eventsAfter(
  { client, peer }: { client: ParrotClient; peer: TextConn },
  text: string,
): Promise<ClientEvent[]> {
  await peer.write(text);
  peer.close();
  return await Array.fromAsync(client);
}

pairTest("ParrotClient yields relayed messages and QUIT as events", async (pair) => {
  assert.deepEqual(
    await eventsAfter(pair, "MSG bob 5\nhi\n!!\nQUIT\n"),
    [
      { type: "message", from: "bob", payload: encoder.encode("hi\n!!") },
      { type: "quit" },
    ] satisfies ClientEvent[],
  );
});

pairTest("ParrotClient turns a server ERR into an error event", async (pair) => {
  assert.deepEqual(await eventsAfter(pair, "ERR too many clients\n"), [
    { type: "error", reason: "too many clients" },
  ]);
  await pair.client.finished;
});

pairTest(
  "ParrotClient.close() sends QUIT and resolves only after the server closed",
  async ({ client, peer }) => {
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
  },
);

pairTest(
  "ParrotClient.close() gives up waiting for the server after timeoutMs",
  async ({ client, peer }) => {
    const started = performance.now();
    await client.close(50);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 45, `closed after ${elapsed}ms`);
    assert.equal(await peer.rest(), "QUIT\n", "the client closed its end");
  },
);

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
