import assert from "node:assert/strict";
import { settlesWithin } from "../net/delay.ts";
import { countingController, generateTestCert, nextTurn, TextConn } from "../testing.ts";
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
  options: { name?: string; subscribe?: boolean; token?: string; signal?: AbortSignal } = {},
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
  options: { name?: string; subscribe?: boolean; token?: string } = {},
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

pairTest(
  "ParrotClient.connect() says AUTH before HELLO and UNSUB when given a token",
  async ({ peer }) => {
    assert.equal(await peer.until("UNSUB\n"), "AUTH s3cret\nHELLO ann\nUNSUB\n");
  },
  { name: "ann", subscribe: false, token: "s3cret" },
);

Deno.test("ParrotClient.connect() refuses a token it cannot send, before connecting", async () => {
  await assert.rejects(ParrotClient.connect({ port: 1, token: "two\nlines" }), RangeError);
  await assert.rejects(ParrotClient.connect({ port: 1, token: "" }), RangeError);
});

/** A TLS listener with a throw-away certificate; `close()` removes everything. */
async function tlsServer(): Promise<
  { port: number; certPem: string; accept(): Promise<TextConn>; close(): Promise<void> }
> {
  const cert = await generateTestCert();
  const certPem = await Deno.readTextFile(cert.certFile);
  const listener = Deno.listenTls({
    hostname: HOST,
    port: 0,
    cert: certPem,
    key: await Deno.readTextFile(cert.keyFile),
  });
  return {
    port: listener.addr.port,
    certPem,
    accept: async () => new TextConn(await listener.accept()),
    async close() {
      listener.close();
      await Deno.remove(cert.dir, { recursive: true });
    },
  };
}

Deno.test("ParrotClient.connect() with caCerts speaks TLS to a server with that certificate", async () => {
  const server = await tlsServer();
  try {
    const [client, peer] = await Promise.all([
      ParrotClient.connect({ port: server.port, name: "ann", caCerts: [server.certPem] }),
      server.accept(),
    ]);
    client.send("over tls");
    assert.equal(await peer.until("over tls\n"), "HELLO ann\nMSG 8\nover tls\n");
    await peer.write("MSG bob 2\nhi\n");
    const first = await client[Symbol.asyncIterator]().next();
    assert.equal(first.value?.type, "message");
    peer.close();
    await client.close();
  } finally {
    await server.close();
  }
});

Deno.test("ParrotClient.connect() with tls rejects a certificate it does not trust", async () => {
  const server = await tlsServer();
  try {
    const accepting = server.accept().then((peer) => peer.close(), () => {});
    await assert.rejects(
      ParrotClient.connect({ port: server.port, tls: true }),
      /certificate/i,
    );
    await accepting;
  } finally {
    await server.close();
  }
});

Deno.test("ParrotClient.readError tells a clean close from a failed read", async () => {
  const clean = await pair();
  const broken = await pair();
  try {
    clean.peer.close();
    await clean.client.finished;
    assert.equal(clean.client.readError, undefined);
    await broken.peer.write("MSG bob 99999999999\n");
    await broken.client.finished;
    assert.equal((broken.client.readError as { reason?: string }).reason, "frame too large");
  } finally {
    await clean.done();
    await broken.done();
  }
});

Deno.test("ParrotClient removes its abort listener once the connection has ended", async () => {
  const { controller, listeners } = countingController();
  const { client, peer, done } = await pair({ signal: controller.signal });
  try {
    assert.equal(listeners(), 1);
    peer.close();
    await client.finished;
    await nextTurn();
    assert.equal(listeners(), 0);
  } finally {
    await done();
  }
});

pairTest(
  "ParrotClient.ping() rejects with the signal's reason when aborted, and the late PONG answers no later ping",
  async ({ client, peer }) => {
    const controller = new AbortController();
    const first = client.ping({ signal: controller.signal });
    await peer.until("PING\n");
    const reason = new Error("gave up waiting");
    controller.abort(reason);
    await assert.rejects(first, (error) => error === reason);

    let secondAnswered = false;
    const second = client.ping().then(() => secondAnswered = true);
    await peer.until("PING\n");
    // The first PING's PONG, then a PING: once its PONG is back, the client has read both.
    await peer.write("PONG\nPING\n");
    await peer.until("PONG\n");
    await nextTurn();
    assert.equal(secondAnswered, false, "the first PING's PONG answered the second");
    await peer.write("PONG\n");
    await second;
  },
);

/** A port nobody listens on. */
function freePort(): number {
  const probe = Deno.listen({ hostname: HOST, port: 0 });
  const port = probe.addr.port;
  probe.close();
  return port;
}

Deno.test("ParrotClient.connect() with servers uses the first that accepts, in order", async () => {
  const first = rawServer();
  const second = rawServer();
  const gone = freePort();
  try {
    const client = await ParrotClient.connect({
      servers: [{ port: gone }, { hostname: HOST, port: second.port }, { port: first.port }],
      name: "ann",
    });
    assert.deepEqual(client.server, { hostname: HOST, port: second.port });
    const peer = await second.accept();
    assert.equal(await peer.until("HELLO ann\n"), "HELLO ann\n");
    peer.close();
    await client.finished;
  } finally {
    first.close();
    second.close();
  }
});

Deno.test("ParrotClient.connect() with servers rejects with every server's error when none accepts", async () => {
  const ports = [freePort(), freePort()];
  const error = await ParrotClient.connect({ servers: ports.map((port) => ({ port })) }).then(
    () => undefined,
    (error) => error,
  );
  assert.ok(error instanceof AggregateError, String(error));
  assert.equal(
    error.message,
    `Cannot connect to any of ${HOST}:${ports[0]}, ${HOST}:${ports[1]}`,
  );
  assert.equal(error.errors.length, 2);
  for (const each of error.errors) assert.ok(each instanceof Deno.errors.ConnectionRefused);
});

Deno.test("ParrotClient.connect() refuses no server, or both port and servers, before connecting", async () => {
  await assert.rejects(ParrotClient.connect({}), RangeError);
  await assert.rejects(ParrotClient.connect({ servers: [] }), RangeError);
  await assert.rejects(ParrotClient.connect({ port: 1, servers: [{ port: 2 }] }), RangeError);
});
