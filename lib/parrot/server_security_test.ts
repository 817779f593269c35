/**
 * Tests of the server's admission and protection rules: the AUTH token, TLS, the rate
 * limit, the write timeout and truncated frames, against a real server on loopback.
 */

import assert from "node:assert/strict";
import { generateTestCert, RecordingWriter, TextConn, waitFor } from "../testing.ts";
import { type ParrotServerOptions, startParrotServer } from "./server.ts";

const TOKEN = "s3cret-token";

function start(options: ParrotServerOptions = {}) {
  return startParrotServer({ port: 0, output: null, ...options });
}

Deno.test("startParrotServer() with a token admits a client whose first line is AUTH <token>", async () => {
  const output = new RecordingWriter();
  const server = start({ token: TOKEN, output });
  const ann = await TextConn.connect(server.addr.port);
  try {
    await ann.write(`AUTH ${TOKEN}\r\nHELLO ann\nMSG 2\nhi\nPING\n`);
    assert.equal(await ann.until("PONG\n"), "PONG\n");
    assert.equal(output.text(), "ann: hi\n");
    assert.equal(server.stats().authFailures, 0);
  } finally {
    ann.close();
    await server.shutdown();
  }
});

Deno.test("startParrotServer() takes an AUTH line that arrives one byte at a time", async () => {
  const output = new RecordingWriter();
  const server = start({ token: TOKEN, output });
  const ann = await TextConn.connect(server.addr.port);
  try {
    for (const byte of `AUTH ${TOKEN}\n`) await ann.write(byte);
    await ann.write("MSG 2\nhi\nPING\n");
    assert.equal(await ann.until("PONG\n"), "PONG\n");
    assert.match(output.text(), /: hi\n$/);
  } finally {
    ann.close();
    await server.shutdown();
  }
});

Deno.test("startParrotServer() refuses a wrong token, a first line other than AUTH and an overlong first line", async () => {
  const output = new RecordingWriter();
  const server = start({ token: TOKEN, output });
  try {
    const attempts = [
      `AUTH ${TOKEN}x\nMSG 2\nhi\n`,
      `AUTH ${TOKEN.slice(0, -1)}\n`,
      `HELLO ann\nAUTH ${TOKEN}\n`,
      "PING\n",
      "MSG 1000000\n",
      "x".repeat(5000),
    ];
    for (const attempt of attempts) {
      const conn = await TextConn.connect(server.addr.port);
      await conn.write(attempt);
      assert.equal(await conn.rest(), "ERR unauthorized\n", JSON.stringify(attempt.slice(0, 30)));
      conn.close();
    }
    assert.equal(server.stats().authFailures, attempts.length);
    assert.equal(server.stats().messages, 0);
    assert.equal(output.text(), "");
  } finally {
    await server.shutdown();
  }
});

Deno.test("startParrotServer() closes a client that sends no AUTH within authTimeoutMs", async () => {
  const server = start({ token: TOKEN, authTimeoutMs: 100 });
  const silent = await TextConn.connect(server.addr.port);
  try {
    const started = performance.now();
    await silent.write("AUTH s3");
    assert.equal(await silent.rest(), "ERR auth timeout\n");
    assert.ok(performance.now() - started >= 90);
    assert.equal(server.stats().authFailures, 1);
  } finally {
    silent.close();
    await server.shutdown();
  }
});

Deno.test("startParrotServer() relays nothing to a connection before it is admitted", async () => {
  const server = start({ token: TOKEN });
  const ann = await TextConn.connect(server.addr.port);
  const later = await TextConn.connect(server.addr.port);
  try {
    await ann.write(`AUTH ${TOKEN}\nHELLO ann\nMSG 5\nearly\nPING\n`);
    await ann.until("PONG\n");
    await later.write(`AUTH ${TOKEN}\nPING\n`);
    assert.equal(await later.until("PONG\n"), "PONG\n", "no MSG from before its AUTH");
    await ann.write("MSG 4\nlate\nPING\n");
    await ann.until("PONG\n");
    await later.write("PING\n");
    assert.equal(await later.until("PONG\n"), "MSG ann 4\nlate\nPONG\n");
  } finally {
    ann.close();
    later.close();
    await server.shutdown();
  }
});

Deno.test("startParrotServer() ignores AUTH when it needs no token and never prints the token", async () => {
  const output = new RecordingWriter();
  const server = start({ output });
  const ann = await TextConn.connect(server.addr.port);
  try {
    await ann.write("AUTH whatever\nHELLO ann\nMSG 2\nhi\nAUTH again\nPING\n");
    await ann.until("PONG\n");
    assert.equal(output.text(), "ann: hi\n");
  } finally {
    ann.close();
    await server.shutdown();
  }
});

Deno.test("startParrotServer() closes an unadmitted connection at once on shutdown", async () => {
  const server = start({ token: TOKEN, authTimeoutMs: 60_000, graceMs: 60_000 });
  const waiting = await TextConn.connect(server.addr.port);
  try {
    await waiting.write("AUTH");
    const started = performance.now();
    await server.shutdown();
    assert.equal(await waiting.rest(), "", "no QUIT: it never was a client");
    assert.ok(performance.now() - started < 30_000, "did not wait for the auth timeout");
  } finally {
    waiting.close();
  }
});

Deno.test("startParrotServer() answers ERR truncated frame to a client that ends its input mid-frame", async () => {
  const output = new RecordingWriter();
  const server = start({ output });
  const ann = await TextConn.connect(server.addr.port);
  try {
    await ann.write("HELLO ann\nMSG 1\na\nMSG 5\nhi");
    await ann.conn.closeWrite();
    assert.equal(await ann.rest(), "ERR truncated frame\n");
    assert.equal(server.stats().protocolErrors, 1);
    await server.shutdown();
    assert.equal(output.text(), "ann: a\n", "what came before the truncated frame is kept");
  } finally {
    ann.close();
    await server.shutdown();
  }
});

Deno.test("startParrotServer() with tls serves TLS clients and closes plain-TCP and silent ones", async () => {
  const cert = await generateTestCert();
  const output = new RecordingWriter();
  const server = start({
    output,
    authTimeoutMs: 200,
    tls: { cert: Deno.readTextFileSync(cert.certFile), key: Deno.readTextFileSync(cert.keyFile) },
  });
  const caCerts = [Deno.readTextFileSync(cert.certFile)];
  const connectTls = async () =>
    new TextConn(await Deno.connectTls({ hostname: "127.0.0.1", port: server.addr.port, caCerts }));
  const ann = await connectTls();
  const bob = await connectTls();
  try {
    await bob.write("HELLO bob\nPING\n");
    await bob.until("PONG\n");
    await ann.write("HELLO ann\nMSG 5\nhello\nPING\n");
    await ann.until("PONG\n");
    assert.equal(output.text(), "ann: hello\n");
    await bob.write("PING\n");
    assert.equal(await bob.until("PONG\n"), "MSG ann 5\nhello\nPONG\n", "relayed over TLS");

    const plain = await TextConn.connect(server.addr.port);
    await plain.write("HELLO mallory\nMSG 2\nhi\n");
    assert.doesNotMatch(await plain.rest(), /PONG|MSG/);
    plain.close();
    // A silent connection is given up after the handshake deadline. (Deno keeps the
    // socket itself open until the peer sends or leaves: see docs/LIMITS.md.)
    const silent = await TextConn.connect(server.addr.port);
    await waitFor(() => server.stats().tlsFailures === 2, "the handshake deadline");
    assert.equal(server.stats().clients, 2, "only the two TLS clients count");
    silent.close();

    await ann.write("MSG 5\nstill\nPING\n");
    assert.equal(await ann.until("PONG\n"), "PONG\n", "TLS clients unharmed");
  } finally {
    ann.close();
    bob.close();
    await server.shutdown();
    await Deno.remove(cert.dir, { recursive: true });
  }
});

Deno.test("startParrotServer() with a rate limit slows a fast sender and keeps answering others", async () => {
  const server = start({ rateLimit: { ratePerSecond: 50, burst: 5 } });
  const fast = await TextConn.connect(server.addr.port);
  const other = await TextConn.connect(server.addr.port);
  try {
    await other.write("HELLO other\nUNSUB\nPING\n");
    await other.until("PONG\n");
    await fast.write("HELLO fast\nUNSUB\n");
    // One message per round trip: after the free burst of 5, each read waits 20 ms
    // for its token before the next read, so 30 round trips take at least 25 x 20 ms.
    const started = performance.now();
    let sent = 0;
    const sending = (async () => {
      for (; sent < 30; sent++) {
        await fast.write("MSG 2\nhi\nPING\n");
        await fast.until("PONG\n");
      }
    })();
    await waitFor(() => sent >= 10, "10 round trips");
    await other.write("PING\n");
    await other.until("PONG\n");
    assert.ok(sent < 30, "the other client was answered while the fast one was held back");
    await sending;
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 400, `30 messages over a burst of 5 at 50/s took ${elapsed}ms`);
    assert.equal(server.stats().messages, 30, "slowed, never dropped or disconnected");
    assert.ok(server.stats().ratePauses >= 20);
  } finally {
    fast.close();
    other.close();
    await server.shutdown();
  }
});

Deno.test("startParrotServer() cuts off a subscriber whose writes stall past writeTimeoutMs", async () => {
  const server = start({ writeTimeoutMs: 200, maxOutboundBytes: 1024 ** 3 });
  const stuck = await TextConn.connect(server.addr.port);
  const publisher = await TextConn.connect(server.addr.port);
  try {
    await stuck.write("HELLO stuck\nPING\n");
    await stuck.until("PONG\n");
    await publisher.write("HELLO pub\nUNSUB\n");
    // 20 MB is more than the socket buffers of both ends take: a write to stuck stalls.
    const payload = "x".repeat(256 * 1024);
    for (let i = 0; i < 80 && server.stats().slowConsumers === 0; i++) {
      await publisher.write(`MSG ${payload.length}\n${payload}\nPING\n`);
      await publisher.until("PONG\n");
    }
    await waitFor(() => server.stats().slowConsumers === 1, "the write timeout to cut stuck off");
    assert.match(await stuck.rest(), /ERR slow consumer\n$/);
    assert.equal(server.stats().clients, 1, "the publisher is still connected");
  } finally {
    stuck.close();
    publisher.close();
    await server.shutdown();
  }
});

Deno.test("clients() lists a TLS client with transport tls and its counters", async () => {
  const cert = await generateTestCert();
  const server = start({
    tls: { cert: Deno.readTextFileSync(cert.certFile), key: Deno.readTextFileSync(cert.keyFile) },
  });
  const caCerts = [Deno.readTextFileSync(cert.certFile)];
  const ann = new TextConn(
    await Deno.connectTls({ hostname: "127.0.0.1", port: server.addr.port, caCerts }),
  );
  try {
    const before = Date.now();
    await ann.write("HELLO ann\nMSG 2\nhi\nPING\n");
    await ann.until("PONG\n");
    const [info] = server.clients();
    assert.equal(info.name, "ann");
    assert.equal(info.transport, "tls");
    assert.equal(info.messagesIn, 1);
    assert.equal(info.messagesOut, 0);
    assert.match(info.address, /^127\.0\.0\.1:\d+$/);
    assert.ok(info.connectedAt <= before);
  } finally {
    ann.close();
    await server.shutdown();
    await Deno.remove(cert.dir, { recursive: true });
  }
});
