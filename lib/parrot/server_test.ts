import assert from "node:assert/strict";
import {
  DEFAULT_AUTH_TIMEOUT_MS,
  DEFAULT_GRACE_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CLIENTS,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_QUEUE_CAPACITY,
  DEFAULT_READ_TIMEOUT_MS,
  DEFAULT_TCP_BACKLOG,
  DEFAULT_WRITE_TIMEOUT_MS,
  MAX_READ_BUFFER_BYTES,
  READ_BUFFER_BUDGET_BYTES,
} from "../defaults.ts";
import { delay } from "../net/delay.ts";
import { concatBytes, nextTurn, RecordingWriter, TextConn, waitFor } from "../testing.ts";
import { type ClientEvent, ParrotClient } from "./client.ts";
import {
  OutputError,
  type ParrotServer,
  type ParrotServerOptions,
  startParrotServer,
} from "./server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HOST = "127.0.0.1";

/** A recording writer whose writes wait until `unblock()`. */
class BlockedOutput extends RecordingWriter {
  #gate = Promise.withResolvers<void>();
  #firstWrite = Promise.withResolvers<void>();

  override async write(p: Uint8Array): Promise<number> {
    const n = await super.write(p);
    this.#firstWrite.resolve();
    await this.#gate.promise;
    return n;
  }

  get firstWrite(): Promise<void> {
    return this.#firstWrite.promise;
  }

  unblock(): void {
    this.#gate.resolve();
  }
}

/** Starts a server with no stdout output unless `output` is given. */
function start(options: ParrotServerOptions = {}) {
  return startParrotServer({ port: 0, output: null, ...options });
}

/** Closes `clients` one after the other, then shuts `server` down. */
async function closeAll(
  server: ParrotServer,
  ...clients: (ParrotClient | TextConn)[]
): Promise<void> {
  for (const client of clients) await client.close();
  await server.shutdown();
}

/** Every event the client got until its connection ended. */
function collect(client: ParrotClient): Promise<ClientEvent[]> {
  return Array.fromAsync(client);
}

Deno.test("startParrotServer() writes `<from>: <payload>` records in order, named by HELLO or ip:port", async () => {
  const output = new RecordingWriter();
  const server = start({ output });
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  const anonymous = await TextConn.connect(server.addr.port);
  try {
    // Relays start with a client's first input: the anonymous client says PING first.
    await anonymous.write("PING\n");
    await anonymous.until("PONG\n");
    ann.send("one");
    ann.send("two");
    ann.send("three");
    await ann.ping();
    await anonymous.write("MSG 1\nx\nplain text line\nPING\n");
    assert.equal(
      await anonymous.until("PONG\n"),
      "MSG ann 3\none\nMSG ann 3\ntwo\nMSG ann 5\nthree\nPONG\n",
      "the anonymous client is subscribed: ann's messages, then its PONG",
    );
    const from = `127.0.0.1:${anonymous.localPort}`;
    assert.equal(
      output.text(),
      `ann: one\nann: two\nann: three\n${from}: x\n${from}: plain text line\n`,
    );
  } finally {
    await closeAll(server, anonymous, ann);
  }
});

Deno.test("startParrotServer() answers PING only after every message sent before it is out", async () => {
  const output = new RecordingWriter();
  const seen: string[] = [];
  const server = start({
    output,
    onMessage: (from, payload) => seen.push(`${from}: ${decoder.decode(payload)}`),
  });
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  try {
    const expected: string[] = [];
    for (let i = 0; i < 500; i++) {
      ann.send(`message ${i}`);
      expected.push(`ann: message ${i}`);
    }
    await ann.ping();
    assert.deepEqual(seen, expected);
    assert.equal(output.text(), expected.map((line) => `${line}\n`).join(""));
  } finally {
    await closeAll(server, ann);
  }
});

Deno.test("startParrotServer() relays a message to the other clients, not back to the sender", async () => {
  const server = start();
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  const bob = await ParrotClient.connect({ port: server.addr.port, name: "bob" });
  try {
    await bob.ping(); // bob's HELLO is through
    ann.send("hello bob");
    await ann.ping(); // a relay to ann would arrive before this PONG
    await bob.ping(); // the relay to bob arrives before this PONG
    assert.equal(server.stats().relayed, 1);
  } finally {
    await closeAll(server, ann, bob);
  }
  assert.deepEqual(await collect(bob), [
    { type: "message", from: "ann", payload: encoder.encode("hello bob") },
  ]);
  assert.deepEqual(await collect(ann), [], "ann got nothing back");
});

Deno.test("startParrotServer() with broadcast: false relays nothing", async () => {
  const seen: string[] = [];
  const server = start({ broadcast: false, onMessage: (from) => seen.push(from) });
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  const bob = await ParrotClient.connect({ port: server.addr.port, name: "bob" });
  try {
    await bob.ping();
    ann.send("hello?");
    await ann.ping();
    await bob.ping(); // a relay to bob would be queued before this PONG
    assert.deepEqual(seen, ["ann"]);
    assert.equal(server.stats().relayed, 0);
  } finally {
    await ann.close();
    await bob.close();
    assert.deepEqual(await collect(bob), []);
    await server.shutdown();
  }
});

Deno.test("startParrotServer() relays nothing to a client connected with subscribe: false", async () => {
  const server = start();
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  const bob = await ParrotClient.connect({ port: server.addr.port, name: "bob" });
  const cid = await ParrotClient.connect({
    port: server.addr.port,
    name: "cid",
    subscribe: false,
  });
  try {
    await bob.ping();
    await cid.ping(); // UNSUB is through
    ann.send("for subscribers");
    await ann.ping();
    await bob.ping();
    await cid.ping();
    assert.equal(server.stats().relayed, 1);
  } finally {
    await closeAll(server, ann, bob, cid);
  }
  assert.deepEqual((await collect(bob)).map((event) => event.type), ["message"]);
  assert.deepEqual(await collect(cid), []);
});

Deno.test("startParrotServer() closes a client on a protocol error with ERR and keeps serving the others", async () => {
  const seen: string[] = [];
  const server = start({
    onMessage: (from, payload) => seen.push(`${from}: ${decoder.decode(payload)}`),
  });
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  const bad = await TextConn.connect(server.addr.port);
  try {
    await ann.ping();
    await bad.write("MSG abc\n");
    assert.equal(await bad.rest(), "ERR malformed frame\n");
    assert.equal(server.stats().protocolErrors, 1);
    assert.deepEqual(server.stats().protocolErrorsByReason, { "malformed frame": 1 });
    ann.send("still here");
    await ann.ping();
    assert.deepEqual(seen, ["ann: still here"]);
  } finally {
    await closeAll(server, bad, ann);
  }
});

Deno.test("startParrotServer() refuses a client over maxClients with ERR too many clients", async () => {
  const server = start({ maxClients: 1 });
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  const extra = await TextConn.connect(server.addr.port);
  try {
    await ann.ping();
    assert.equal(await extra.rest(), "ERR too many clients\n");
    assert.equal(server.stats().rejected, 1);
    assert.equal(server.stats().clients, 1);
    await ann.ping();
  } finally {
    await closeAll(server, extra, ann);
  }
});

Deno.test("startParrotServer() closes a client stalled in the middle of a frame after readTimeoutMs", async () => {
  const server = start({ readTimeoutMs: 100 });
  const stalled = await TextConn.connect(server.addr.port);
  try {
    const started = performance.now();
    await stalled.write("MSG 5\nhi");
    assert.equal(await stalled.rest(), "ERR read timeout\n");
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 90, `closed after ${elapsed}ms`);
    assert.equal(server.stats().readTimeouts, 1);
    assert.equal(server.stats().messages, 0);
  } finally {
    await closeAll(server, stalled);
  }
});

Deno.test("startParrotServer() pings a silent client after idleTimeoutMs, then closes it", async () => {
  const server = start({ idleTimeoutMs: 100 });
  const silent = await TextConn.connect(server.addr.port);
  try {
    const started = performance.now();
    assert.equal(await silent.until("PING\n"), "PING\n");
    const pingedAfter = performance.now() - started;
    assert.ok(pingedAfter >= 90, `PING after ${pingedAfter}ms`);
    assert.equal(await silent.rest(), "ERR idle timeout\n");
    const closedAfter = performance.now() - started;
    assert.ok(closedAfter >= 190, `closed after ${closedAfter}ms`);
    assert.equal(server.stats().idleTimeouts, 1);
  } finally {
    await closeAll(server, silent);
  }
});

Deno.test("startParrotServer() keeps a client that answers PING connected past several idle periods", async () => {
  const seen: string[] = [];
  const server = start({ idleTimeoutMs: 50, onMessage: (from) => seen.push(from) });
  const ann = await TextConn.connect(server.addr.port);
  try {
    await ann.write("HELLO ann\n");
    // Each PING comes after an idle period; silence for two would end the connection.
    for (let pings = 0; pings < 3; pings++) {
      assert.equal(await ann.until("PING\n"), "PING\n");
      await ann.write("PONG\n");
    }
    await ann.write("MSG 10\nstill here\nPING\n");
    assert.doesNotMatch(await ann.until("PONG\n"), /ERR/);
    assert.deepEqual(seen, ["ann"]);
    assert.equal(server.stats().idleTimeouts, 0);
    assert.equal(server.stats().clients, 1);
  } finally {
    await closeAll(server, ann);
  }
});

Deno.test("startParrotServer() shutdown() says QUIT and still takes what clients send before closing", async () => {
  const output = new RecordingWriter();
  const server = start({ output });
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  ann.send("before");
  await ann.ping();

  let finished = false;
  const finishing = server.shutdown().then(() => finished = true);
  const event = await ann[Symbol.asyncIterator]().next();
  assert.deepEqual(event.value, { type: "quit" });
  ann.send("after quit 1");
  ann.send("after quit 2");
  await nextTurn();
  assert.equal(finished, false, "the server waits for its client");
  await ann.close();
  await finishing;
  await server.finished;
  assert.equal(output.text(), "ann: before\nann: after quit 1\nann: after quit 2\n");
  await assert.rejects(
    Deno.connect({ hostname: HOST, port: server.addr.port }),
    Deno.errors.ConnectionRefused,
  );
});

Deno.test("startParrotServer() trimMemory() lets go of its buffers and serves on", async () => {
  const output = new RecordingWriter();
  const server = start({ output, broadcast: false });
  const ann = await TextConn.connect(server.addr.port);
  const big = "x".repeat(70_000); // fills a read buffer: a pooled one comes next
  try {
    await ann.write(`HELLO ann\nMSG ${big.length}\n${big}\nMSG 5\nfirst\nPING\n`);
    await ann.until("PONG\n");
    server.trimMemory();
    await ann.write(`MSG 6\nsecond\nMSG ${big.length}\n${big}\nPING\n`);
    await ann.until("PONG\n");
    assert.deepEqual(output.text().split("\n"), [
      `ann: ${big}`,
      "ann: first",
      "ann: second",
      `ann: ${big}`,
      "",
    ]);
  } finally {
    ann.close();
    await server.shutdown();
  }
});

Deno.test("startParrotServer() stats() counts clients, messages, bytes and rejections", async () => {
  const server = start({ maxClients: 2 });
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  const bob = await ParrotClient.connect({ port: server.addr.port, name: "bob", subscribe: false });
  const extra = await TextConn.connect(server.addr.port);
  try {
    await ann.ping();
    await bob.ping();
    assert.equal(await extra.rest(), "ERR too many clients\n");
    ann.send("abc");
    ann.send("");
    bob.send("héllo");
    await ann.ping();
    await bob.ping();
    const stats = server.stats();
    assert.equal(stats.clients, 2);
    assert.equal(stats.messages, 3);
    assert.equal(stats.bytes, 3 + 0 + 6);
    assert.equal(stats.relayed, 1, "only bob's message reaches a subscriber (ann)");
    assert.equal(stats.rejected, 1);
    assert.equal(stats.queueDepth, 0);
    assert.equal(stats.slowConsumers, 0);
  } finally {
    await closeAll(server, extra, ann, bob);
  }
  assert.equal(server.stats().clients, 0);
});

Deno.test("startParrotServer() writes binary payloads with NUL, CR and LF byte for byte", async () => {
  const output = new RecordingWriter();
  const payloads: Uint8Array[] = [];
  const server = start({ output, onMessage: (_from, payload) => payloads.push(payload.slice()) });
  const client = await ParrotClient.connect({ port: server.addr.port, name: "bin" });
  try {
    const payload = Uint8Array.from([0, 13, 10, 77, 83, 71, 32, 49, 10, 255, 13, 0, 10]);
    const second = Uint8Array.from([10]);
    client.send(payload);
    client.send(second);
    await client.ping();
    assert.deepEqual(output.bytes(), concatBytes("bin: ", payload, [10], "bin: ", second, [10]));
    assert.deepEqual(payloads, [payload, second]);
  } finally {
    await closeAll(server, client);
  }
});

Deno.test("startParrotServer() keeps the unfinished frames of interleaved connections apart", async () => {
  // Connections share one decoder until a read leaves a frame of theirs unfinished: here
  // two leave theirs unfinished over and over, byte by byte, while a third sends whole frames.
  const output = new RecordingWriter();
  const server = start({ output });
  const [ann, bob, cy] = await Promise.all(
    [0, 1, 2].map(() => TextConn.connect(server.addr.port)),
  );
  try {
    await cy.write("HELLO cy\n");
    const annBytes = encoder.encode("HELLO ann\nMSG 11\nhello there\nPING\n");
    const bobBytes = encoder.encode("HELLO bob\nMSG 9\nMSG 2 xy!\nPING\n");
    const whole: string[] = [];
    for (let i = 0; i < Math.max(annBytes.length, bobBytes.length); i++) {
      if (i < annBytes.length) await ann.write(annBytes.subarray(i, i + 1));
      if (i < bobBytes.length) await bob.write(bobBytes.subarray(i, i + 1));
      if (i % 8 === 0) {
        whole.push(`cy: ${i}`);
        await cy.write(`MSG ${String(i).length}\n${i}\n`);
      }
    }
    await cy.write("PING\n");
    await Promise.all([ann.until("PONG\n"), bob.until("PONG\n"), cy.until("PONG\n")]);
    const lines = output.text().split("\n").filter((line) => line !== "");
    assert.deepEqual(lines.filter((line) => !line.startsWith("cy: ")).sort(), [
      "ann: hello there",
      "bob: MSG 2 xy!",
    ]);
    assert.deepEqual(lines.filter((line) => line.startsWith("cy: ")), whole);
  } finally {
    await closeAll(server, ann, bob, cy);
  }
});

Deno.test("startParrotServer() prints every connection's messages in order when their reads split anywhere", async () => {
  // Ten connections send messages of 0 to 600 bytes (so some fit the idle buffer and some
  // outgrow it) in chunks cut at random, interleaved at random: each read may end inside
  // a frame, the shared decoder passes from connection to connection, buffers grow and
  // shrink. Seeded, so a failure can be replayed.
  let seed = 20261126;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const output = new RecordingWriter();
  const server = start({ output });
  const conns = await Promise.all(
    Array.from({ length: 10 }, () => TextConn.connect(server.addr.port)),
  );
  try {
    const expected: string[][] = [];
    const pending = conns.map((_, i) => {
      const lines: string[] = [];
      let text = `HELLO c${i}\n`;
      for (let m = 0; m < 30; m++) {
        const size = random(4) === 0 ? random(600) : random(90);
        const payload = Array.from({ length: size }, (_, k) => "abcdefghij"[(k + m + i) % 10])
          .join("");
        lines.push(`c${i}: ${payload}`);
        text += `MSG ${size}\n${payload}\n`;
      }
      expected.push(lines);
      return encoder.encode(text + "PING\n");
    });
    const sent = conns.map(() => 0);
    while (sent.some((at, i) => at < pending[i].length)) {
      const i = random(conns.length);
      if (sent[i] >= pending[i].length) continue;
      const end = Math.min(pending[i].length, sent[i] + 1 + random(300));
      await conns[i].write(pending[i].subarray(sent[i], end));
      sent[i] = end;
    }
    await Promise.all(conns.map((conn) => conn.until("PONG\n")));
    const printed = output.text().split("\n").filter((line) => line !== "");
    for (const [i, lines] of expected.entries()) {
      assert.deepEqual(printed.filter((line) => line.startsWith(`c${i}: `)), lines, `c${i}`);
    }
    assert.equal(printed.length, 10 * 30);
  } finally {
    await closeAll(server, ...conns);
  }
});

Deno.test("startParrotServer() puts together a frame that arrives one byte at a time", async () => {
  const output = new RecordingWriter();
  const server = start({ output });
  const raw = await TextConn.connect(server.addr.port);
  try {
    const bytes = encoder.encode("HELLO drip\nMSG 12\nhello\r\nworld\nPING\n");
    for (let i = 0; i < bytes.length; i++) await raw.write(bytes.subarray(i, i + 1));
    assert.equal(await raw.until("PONG\n"), "PONG\n");
    assert.equal(output.text(), "drip: hello\r\nworld\n");
  } finally {
    await closeAll(server, raw);
  }
});

Deno.test("startParrotServer() holds further messages while the output is blocked and loses none", async () => {
  const output = new BlockedOutput();
  // Behind the write in flight, the drain takes one more batch of at most 4 payload
  // bytes (half of maxOutboundBytes), here m2 and perhaps m3, and then waits too.
  const server = start({ output, queueCapacity: 1, broadcast: false, maxOutboundBytes: 8 });
  const port = server.addr.port;
  const clients = await Promise.all(
    ["c1", "c2", "c3", "c4"].map((name) => ParrotClient.connect({ port, name })),
  );
  try {
    await Promise.all(clients.map((client) => client.ping())); // every HELLO is through
    clients[0].send("m1");
    await output.firstWrite; // the main task now waits for the output
    for (const [i, client] of clients.slice(1).entries()) {
      client.send(`m${i + 2}`);
      await client.flush();
    }
    let ponged = false;
    const ping = clients[1].ping().then(() => ponged = true);

    let maxDepth = 0;
    const sample = () => (maxDepth = Math.max(maxDepth, server.stats().queueDepth));
    await waitFor(
      () => (sample(), server.stats().queueDepth === 1),
      "a read batch to wait",
      5_000,
      5,
    );
    const until = Date.now() + 50;
    await waitFor(() => (sample(), Date.now() >= until), "50 ms of sampling", 5_000, 5);
    assert.ok(maxDepth <= 1, `queue depth ${maxDepth} above the capacity`);
    assert.ok(server.stats().messages <= 3, "one message written, one batch behind it");
    assert.equal(output.writes.length, 1);
    assert.equal(ponged, false, "the PING waits behind the messages");

    output.unblock();
    await ping;
    await Promise.all(clients.map((client) => client.ping()));
    assert.equal(server.stats().messages, 4);
    const lines = output.text().split("\n").filter((line) => line !== "").sort();
    assert.deepEqual(lines, ["c1: m1", "c2: m2", "c3: m3", "c4: m4"]);
  } finally {
    output.unblock();
    await Promise.all(clients.map((client) => client.close()));
    await server.shutdown();
  }
});

Deno.test("startParrotServer() delivers ERR too many clients to a client that already sent data", async () => {
  const server = start({ maxClients: 1 });
  const first = await TextConn.connect(server.addr.port);
  try {
    await first.write("PING\n");
    await first.until("PONG\n");
    const extra = await TextConn.connect(server.addr.port);
    await extra.write("hello, I am already talking\n".repeat(100));
    // The refusal happens while our bytes sit unread on its side.
    await waitFor(() => server.stats().rejected === 1, "the refusal");
    assert.equal(await extra.rest(), "ERR too many clients\n");
    extra.close();
  } finally {
    first.close();
    await server.shutdown();
  }
});

Deno.test("startParrotServer() reuses a read buffer only after its messages are written out", async () => {
  // Many full 64 KiB reads from two clients, through an output that takes its time:
  // a pooled buffer given back too early would show as corrupted messages.
  class SlowOutput extends RecordingWriter {
    override async write(p: Uint8Array): Promise<number> {
      const n = await super.write(p);
      await delay(1);
      return n;
    }
  }
  const output = new SlowOutput();
  const server = start({ output, broadcast: false });
  const payload = (name: string, i: number) => `${name}-${i}-`.padEnd(1000, name[0]);
  const send = async (name: string) => {
    const conn = await TextConn.connect(server.addr.port);
    let batch = `HELLO ${name}\n`;
    for (let i = 0; i < 2000; i++) {
      batch += `MSG 1000\n${payload(name, i)}\n`;
      if (batch.length > 200_000) {
        await conn.write(batch);
        batch = "";
      }
    }
    await conn.write(`${batch}PING\n`);
    await conn.until("PONG\n");
    conn.close();
  };
  try {
    await Promise.all([send("ann"), send("bob")]);
    const lines = output.text().split("\n").filter((line) => line !== "");
    assert.equal(lines.length, 4000);
    for (const name of ["ann", "bob"]) {
      const mine = lines.filter((line) => line.startsWith(`${name}: `));
      assert.deepEqual(
        mine,
        Array.from({ length: 2000 }, (_, i) => `${name}: ${payload(name, i)}`),
      );
    }
  } finally {
    await server.shutdown();
  }
});

Deno.test("startParrotServer() keeps messages whole while new clients shrink the read buffers", async () => {
  // A busy client's buffer grows to 64 KiB; then enough clients arrive that the
  // shared read budget gives each less, and its next buffers are smaller mid-stream.
  const output = new RecordingWriter();
  const server = start({ output, broadcast: false });
  const crowd = READ_BUFFER_BUDGET_BYTES / MAX_READ_BUFFER_BYTES + 10;
  const payload = (i: number) => `ann-${i}-`.padEnd(700, "a");
  const frames = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, k) => `MSG 700\n${payload(from + k)}\n`).join("");
  const ann = await TextConn.connect(server.addr.port);
  const others: TextConn[] = [];
  try {
    await ann.write(`HELLO ann\n${frames(0, 1000)}PING\n`);
    await ann.until("PONG\n");
    for (let i = 0; i < crowd; i++) {
      const other = await TextConn.connect(server.addr.port);
      others.push(other);
      await other.write(`HELLO other-${i}\n`);
    }
    await waitFor(() => server.stats().clients === crowd + 1, "the crowd to be clients");
    await ann.write(`${frames(1000, 2000)}PING\n`);
    await ann.until("PONG\n");
    const lines = output.text().split("\n").filter((line) => line.startsWith("ann: "));
    assert.deepEqual(lines, Array.from({ length: 2000 }, (_, i) => `ann: ${payload(i)}`));
  } finally {
    ann.close();
    for (const other of others) other.close();
    await server.shutdown();
  }
});

Deno.test("startParrotServer() relays to a client that has said nothing yet", async () => {
  const server = start();
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  const listener = await TextConn.connect(server.addr.port);
  try {
    await waitFor(() => server.stats().clients === 2, "the listener admitted");
    ann.send("hi");
    await ann.ping(); // the relay is queued for every subscriber before this PONG
    await listener.write("PING\n");
    assert.equal(await listener.until("PONG\n"), "MSG ann 2\nhi\nPONG\n");
  } finally {
    await closeAll(server, ann, listener);
  }
});

Deno.test("startParrotServer() relays nothing to a client once its UNSUB is read", async () => {
  const server = start();
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  try {
    const quiet = await TextConn.connect(server.addr.port);
    await quiet.write("UNSUB\nPING\n");
    await quiet.until("PONG\n");
    for (let i = 0; i < 100; i++) ann.send(`flood-${i}`);
    await ann.ping();
    await quiet.write("PING\n");
    assert.equal(await quiet.until("PONG\n"), "PONG\n");
    quiet.close();
  } finally {
    await closeAll(server, ann);
  }
});

Deno.test("ParrotServerOptions documents the defaults startParrotServer() uses", async () => {
  const source = await Deno.readTextFile(new URL("./server.ts", import.meta.url));
  const documented = (field: string) => {
    const match = source.match(new RegExp(`Default (\\d+)\\. \\*/\\n  ${field}\\?:`));
    assert.ok(match, `no "Default <n>." in the doc of ${field}`);
    return Number(match[1]);
  };
  const defaults: Record<string, number> = {
    maxClients: DEFAULT_MAX_CLIENTS,
    backlog: DEFAULT_TCP_BACKLOG,
    readTimeoutMs: DEFAULT_READ_TIMEOUT_MS,
    idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
    graceMs: DEFAULT_GRACE_MS,
    maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
    queueCapacity: DEFAULT_QUEUE_CAPACITY,
    writeTimeoutMs: DEFAULT_WRITE_TIMEOUT_MS,
    authTimeoutMs: DEFAULT_AUTH_TIMEOUT_MS,
  };
  for (const [field, value] of Object.entries(defaults)) {
    assert.equal(documented(field), value, field);
  }
});

Deno.test("startParrotServer() whose output fails sends ERR output failed, no PONG, and finished rejects", async () => {
  let writes = 0;
  const output = {
    write: (p: Uint8Array) =>
      ++writes === 1 ? Promise.resolve(p.length) : Promise.reject(new Error("Broken pipe")),
  };
  const server = startParrotServer({ port: 0, output });
  const ann = await TextConn.connect(server.addr.port);
  await ann.write("HELLO ann\nMSG 5\nfirst\nPING\n");
  assert.equal(await ann.until("PONG\n"), "PONG\n");
  await ann.write("MSG 6\nsecond\nPING\n");
  assert.equal(await ann.rest(), "ERR output failed\n");
  ann.close();
  await assert.rejects(server.finished, (error: Error) => {
    assert.ok(error instanceof OutputError);
    assert.equal(error.unwritten, 1);
    assert.equal(error.received, 2);
    assert.match(error.message, /^Cannot write the messages to stdout \(Broken pipe\): 1 of 2/);
    return true;
  });
  assert.equal(server.stats().unwrittenMessages, 1);
});

Deno.test("startParrotServer() writes JSON records, or text with controls escaped, when asked", async () => {
  for (
    const [options, expected] of [
      [
        { records: "json" },
        /^\{"time":"[^"]+","sender":"ann","size":4,"encoding":"utf-8","payload":"a\\nb\\u001b"\}\n$/,
      ],
      [{ escapeControls: true }, /^ann: a\\nb\\x1b\n$/],
    ] as const
  ) {
    const output = new RecordingWriter();
    const server = start({ ...options, output });
    const ann = await TextConn.connect(server.addr.port);
    await ann.write("HELLO ann\nMSG 4\na\nb\x1b\nPING\n");
    await ann.until("PONG\n");
    await closeAll(server, ann);
    assert.match(output.text(), expected);
  }
});

Deno.test("startParrotServer() counts the messages and bytes written to stdout, and their waits", async () => {
  const output = new RecordingWriter();
  const server = start({ output });
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  try {
    for (let i = 0; i < 25; i++) ann.send(`m${i}`);
    await ann.ping(); // PONG: stdout has them, and the histogram with them
    const stats = server.stats();
    assert.equal(stats.written, 25);
    assert.equal(stats.outputBytes, output.bytes().length, "every byte written to stdout");
    const wait = stats.outputWait;
    assert.equal(wait.count, 25);
    assert.equal(wait.cumulative.at(-1)! <= wait.count, true);
    assert.ok(wait.sum > 0, "a wait is never exactly zero");
    assert.ok(wait.sum / wait.count < 10, "seconds, not milliseconds");
  } finally {
    await closeAll(server, ann);
  }
});

Deno.test("startParrotServer() without output counts the wait until the messages are taken", async () => {
  const server = start();
  const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
  try {
    ann.send("one");
    ann.send("two");
    await ann.ping();
    assert.equal(server.stats().outputWait.count, 2);
  } finally {
    await closeAll(server, ann);
  }
});
