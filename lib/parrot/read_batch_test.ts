import assert from "node:assert/strict";
import { ClientFrameDecoder, PAYLOAD_RANGE } from "./frame_decoder.ts";
import { MAX_SPARE_READ_BATCHES, ReadBatchPool } from "./read_batch.ts";
import { Session } from "./session.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const session = (id: number) =>
  new Session({ write: (p) => Promise.resolve(p.length), close() {} }, id, `c${id}`);

Deno.test("ReadBatchPool.take() gives an empty batch, and the same one again after give()", () => {
  const pool = new ReadBatchPool();
  const ann = session(1);
  const batch = pool.take(ann);
  assert.equal(batch.session, ann);
  assert.equal(batch.frameCount, 0);
  assert.equal(batch.rangeCount, 0);
  new ClientFrameDecoder().pushRanges(bytes("MSG 2\nhi\nPING\n"), batch);
  batch.chunk = bytes("x");
  pool.give(batch);
  const bob = session(2);
  const again = pool.take(bob);
  assert.equal(again, batch);
  assert.equal(again.session, bob);
  assert.equal(again.frameCount, 0);
  assert.equal(again.rangeCount, 0);
  assert.equal(again.chunk, undefined);
});

Deno.test("ReadBatchPool.give() keeps no frame but PAYLOAD_RANGE, so no payload stays alive", () => {
  const pool = new ReadBatchPool();
  const batch = pool.take(session(1));
  const decoder = new ClientFrameDecoder();
  // The payload spans two pushes, so it comes out as a msg frame with its own copy.
  decoder.pushRanges(bytes("HELLO ann\nMSG 5\nab"), batch);
  decoder.pushRanges(bytes("cde\nPING\n"), batch);
  assert.deepEqual(batch.frames.slice(0, batch.frameCount).map((frame) => frame.type), [
    "hello",
    "msg",
    "ping",
  ]);
  pool.give(batch);
  assert.ok(batch.frames.every((frame) => frame === PAYLOAD_RANGE));
});

Deno.test("ReadBatchPool.endOfInput() is one quit, and a decoded batch reused after it shows none of it", () => {
  const pool = new ReadBatchPool();
  const end = pool.endOfInput(session(1));
  assert.deepEqual(end.frames.slice(0, end.frameCount), [{ type: "quit" }]);
  pool.give(end);
  const next = pool.take(session(2));
  assert.equal(next, end);
  new ClientFrameDecoder().pushRanges(bytes("PING\n"), next);
  assert.deepEqual(next.frames.slice(0, next.frameCount), [{ type: "ping" }]);
  // The quit frame of another connection's end is its own, not a shared one changed here.
  const other = pool.endOfInput(session(3));
  assert.deepEqual(other.frames.slice(0, other.frameCount), [{ type: "quit" }]);
});

Deno.test("ReadBatchPool keeps at most MAX_SPARE_READ_BATCHES, and clear() lets go of them", () => {
  const pool = new ReadBatchPool();
  const ann = session(1);
  const batches = Array.from({ length: MAX_SPARE_READ_BATCHES + 10 }, () => pool.take(ann));
  assert.equal(new Set(batches).size, batches.length, "each take() without a spare is a new batch");
  for (const batch of batches) pool.give(batch);
  assert.equal(pool.spare, MAX_SPARE_READ_BATCHES);
  pool.clear();
  assert.equal(pool.spare, 0);
  assert.ok(!batches.includes(pool.take(ann)));
});
