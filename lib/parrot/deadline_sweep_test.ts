import assert from "node:assert/strict";
import { FakeConn } from "../testing.ts";
import { sweepDeadlines, sweepInterval } from "./deadline_sweep.ts";
import { Session } from "./session.ts";

const DEADLINES = { readTimeoutMs: 100, idleTimeoutMs: 1_000 };

function setup() {
  const conn = new FakeConn();
  const session = new Session(conn, 1, "ann");
  session.heardFrom(10_000, 0);
  return { conn, session, counters: { readTimeouts: 0, idleTimeouts: 0 } };
}

Deno.test("sweepDeadlines() fails a frame left unfinished for the read timeout", async () => {
  const { conn, session, counters } = setup();
  session.heardFrom(10_000, 10_000);
  sweepDeadlines([session], 10_099, DEADLINES, counters);
  assert.equal(session.closed, false, "not yet");
  sweepDeadlines([session], 10_100, DEADLINES, counters);
  await session.done;
  assert.deepEqual(conn.texts, ["ERR read timeout\n"]);
  assert.deepEqual(counters, { readTimeouts: 1, idleTimeouts: 0 });
});

Deno.test("sweepDeadlines() pings a silent client, then drops it after as long again", async () => {
  const { conn, session, counters } = setup();
  sweepDeadlines([session], 10_999, DEADLINES, counters);
  assert.equal(session.pinged, false);
  sweepDeadlines([session], 11_000, DEADLINES, counters);
  assert.equal(session.pinged, true);
  sweepDeadlines([session], 11_999, DEADLINES, counters);
  assert.equal(session.closed, false, "the second period counts from the PING");
  sweepDeadlines([session], 12_000, DEADLINES, counters);
  await session.done;
  assert.deepEqual(conn.texts.join(""), "PING\nERR idle timeout\n");
  assert.deepEqual(counters, { readTimeouts: 0, idleTimeouts: 1 });
});

Deno.test("sweepDeadlines() leaves a held client alone, and idle checks off with 0", () => {
  const { session, counters } = setup();
  session.heardFrom(10_000, 10_000);
  session.hold();
  sweepDeadlines([session], 99_999, DEADLINES, counters);
  assert.equal(session.closed, false, "waiting on the server is not the client's time");
  session.heardFrom(10_000, 0);
  sweepDeadlines([session], 99_999, { readTimeoutMs: 100, idleTimeoutMs: 0 }, counters);
  assert.equal(session.pinged, false);
  assert.equal(session.closed, false);
});

Deno.test("sweepInterval() is a quarter of the shortest deadline, within 10 ms and 1 s", () => {
  assert.equal(sweepInterval(5_000, 60_000, 10_000), 1_000);
  assert.equal(sweepInterval(400, 0, 10_000), 100);
  assert.equal(sweepInterval(20, 60_000), 10);
});
