import assert from "node:assert/strict";
import { CLOSE_FLUSH_TIMEOUT_MS } from "../defaults.ts";
import { FakeConn, hasSettled } from "../testing.ts";
import { Session } from "./session.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("Session has an id, a name and the matching prefix; setName() renames it", () => {
  const session = new Session(new FakeConn(), 7, "127.0.0.1:5000");
  assert.equal(session.id, 7);
  assert.equal(session.name, "127.0.0.1:5000");
  assert.equal(decoder.decode(session.prefix), "127.0.0.1:5000: ");
  assert.equal(session.subscribed, true);
  assert.equal(session.closed, false);
  session.setName("bob");
  assert.equal(session.name, "bob");
  assert.deepEqual(session.prefix, encoder.encode("bob: "));
});

Deno.test("Session with an address object is called ip:port until HELLO, and labelled with both after", () => {
  const session = new Session(new FakeConn(), 3, { hostname: "10.0.0.7", port: 41000 });
  assert.equal(session.address, "10.0.0.7:41000");
  assert.equal(session.label, "10.0.0.7:41000");
  assert.equal(decoder.decode(session.relayHeader), "MSG 10.0.0.7:41000 ");
  assert.equal(session.name, "10.0.0.7:41000");
  session.setName("ann");
  assert.equal(session.name, "ann");
  assert.equal(session.label, "ann (10.0.0.7:41000)");
  assert.equal(decoder.decode(session.relayHeader), "MSG ann ");
});

Deno.test("Session.send() queues bytes on the outbound coalescer", async () => {
  const conn = new FakeConn();
  const session = new Session(conn, 1, "a");
  session.send(encoder.encode("PING\n"));
  session.send(encoder.encode("PONG\n"));
  await session.outbound.flush();
  assert.deepEqual(conn.writes, ["PING\nPONG\n"]);
});

Deno.test("Session.close() closes the conn once, settles done and ignores later sends", async () => {
  const conn = new FakeConn();
  const session = new Session(conn, 1, "a");
  assert.equal(await hasSettled(session.done), false);
  session.close();
  session.close();
  assert.equal(session.closed, true);
  assert.equal(conn.closes, 1);
  await session.done;
  session.send(encoder.encode("late\n"));
  assert.equal(session.outbound.buffered, 0);
  await session.outbound.flush();
  assert.deepEqual(conn.writes, []);
});

Deno.test("Session.close() swallows the error of a conn that is already closed", async () => {
  const session = new Session(
    {
      write: (p) => Promise.resolve(p.length),
      close() {
        throw new Deno.errors.BadResource("Bad resource ID");
      },
    },
    1,
    "a",
  );
  session.close();
  await session.done;
  assert.equal(session.closed, true);
});

Deno.test("Session.fail() writes `ERR <reason>` and then closes, once", async () => {
  const conn = new FakeConn();
  const session = new Session(conn, 1, "a");
  const failing = session.fail("malformed frame");
  assert.equal(session.closed, true, "closing starts at once");
  const again = session.fail("read timeout");
  assert.equal(again, failing, "a second fail() is the same closing");
  await failing;
  await session.done;
  assert.deepEqual(conn.log, ['write "ERR malformed frame\\n"', "close"]);
  assert.equal(conn.closes, 1);
  await session.fail("idle timeout");
  session.finish();
  assert.deepEqual(conn.log, ['write "ERR malformed frame\\n"', "close"]);
});

Deno.test("Session.fail() writes the error after the backlog, or in its place once it is discarded", async () => {
  for (const discardBacklog of [false, true]) {
    const conn = new FakeConn({ blocked: true });
    const session = new Session(conn, 1, "a");
    session.send(encoder.encode("first\n"));
    await conn.wrote();
    session.send(encoder.encode("second\n"));
    session.send(encoder.encode("third\n"));
    if (discardBacklog) session.outbound.discardQueued();
    const failing = session.fail("slow consumer");
    conn.release();
    await failing;
    assert.deepEqual(
      conn.writes,
      discardBacklog
        ? ["first\n", "ERR slow consumer\n"]
        : ["first\n", "second\nthird\nERR slow consumer\n"],
      `discardBacklog: ${discardBacklog}`,
    );
    assert.equal(conn.closes, 1);
  }
});

Deno.test("Session.finish() closes after the queued bytes are written", async () => {
  const conn = new FakeConn({ blocked: true });
  const session = new Session(conn, 1, "a");
  session.send(encoder.encode("QUIT\n"));
  const finishing = session.finish();
  assert.equal(session.finish(), finishing, "idempotent");
  assert.equal(session.closed, true);
  session.send(encoder.encode("ignored while closing\n"));
  await conn.wrote();
  assert.equal(await hasSettled(finishing), false, "waits for the write");
  assert.equal(conn.closes, 0);
  conn.release();
  await finishing;
  await session.done;
  assert.deepEqual(conn.log, ['write "QUIT\\n"', "close"]);
});

Deno.test("Session.finish() closes after CLOSE_FLUSH_TIMEOUT_MS when the writer never finishes", async () => {
  const conn = new FakeConn({ blocked: true }); // never released
  const session = new Session(conn, 1, "a");
  session.send(encoder.encode("stuck\n"));
  const started = performance.now();
  await session.finish();
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= CLOSE_FLUSH_TIMEOUT_MS - 20, `closed after ${elapsed}ms`);
  assert.ok(elapsed < CLOSE_FLUSH_TIMEOUT_MS + 1_000, `closed after ${elapsed}ms`);
  assert.equal(conn.closes, 1);
  await session.done;
  assert.deepEqual(conn.writes, []);
});

Deno.test("Session.heardFrom() ends a hold, clears the PING and notes the unfinished frame", async () => {
  const conn = new FakeConn();
  const session = new Session(conn, 1, "a");
  session.ping(5_000);
  session.hold();
  assert.deepEqual([session.pinged, session.held, session.lastHeardAt], [true, true, 5_000]);
  session.heardFrom(6_000, 5_500);
  assert.deepEqual(
    [session.pinged, session.held, session.lastHeardAt, session.frameStartedAt],
    [false, false, 6_000, 5_500],
  );
  await session.outbound.flush();
  assert.deepEqual(conn.texts, ["PING\n"]);
});

Deno.test("Session.releaseIdleOutbound() lets go of an idle queue, and the next send makes a new one", async () => {
  const conn = new FakeConn();
  const session = new Session(conn, 1, "a");
  assert.equal(session.releaseIdleOutbound(), false, "no queue yet");
  session.send(encoder.encode("PONG\n"));
  assert.equal(session.releaseIdleOutbound(), false, "not while a write is queued");
  assert.equal(session.buffered, 5);
  const first = session.outbound;
  await first.flush();
  assert.equal(session.releaseIdleOutbound(), true);
  assert.equal(session.buffered, 0);
  assert.equal(session.writeStartedAt, 0);
  assert.equal(session.discardQueued(), 0);
  session.send(encoder.encode("PING\n"));
  assert.notEqual(session.outbound, first, "a new queue");
  await session.outbound.flush();
  assert.deepEqual(conn.writes, ["PONG\n", "PING\n"]);
});

Deno.test("Session.releaseIdleOutbound() keeps a queue whose write is in flight or failed", async () => {
  const blocked = new FakeConn({ blocked: true });
  const waiting = new Session(blocked, 1, "a");
  waiting.send(encoder.encode("PONG\n"));
  await blocked.wrote();
  assert.equal(waiting.releaseIdleOutbound(), false);
  assert.ok(waiting.writeStartedAt > 0);

  const failing = {
    write: () => Promise.reject(new Error("Broken pipe")),
    close: () => {},
  };
  const broken = new Session(failing, 2, "b");
  broken.send(encoder.encode("PONG\n"));
  await broken.outbound.flush().catch(() => {});
  assert.equal(
    broken.releaseIdleOutbound(),
    false,
    "the failure is kept: later writes are dropped",
  );
  blocked.release();
});
