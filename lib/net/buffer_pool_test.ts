import assert from "node:assert/strict";
import { BufferPool, SLAB_BYTES } from "./buffer_pool.ts";

Deno.test("BufferPool.take() reuses a returned buffer of the same pooled size", () => {
  const pool = new BufferPool({ minBytes: 64, maxBytes: 256, maxFreeBytes: 1024 });
  const first = pool.take(64);
  assert.notEqual(pool.take(64), first, "nothing returned yet: a new buffer");
  pool.give(first);
  assert.equal(pool.size, 1);
  assert.notEqual(pool.take(128), first, "another size: a new buffer");
  assert.equal(pool.take(64), first);
  assert.equal(pool.size, 0);
  assert.equal(pool.freeBytes, 0);
});

Deno.test("BufferPool.give() keeps only whole buffers of the pooled sizes, up to its byte bound", () => {
  const pool = new BufferPool({ minBytes: 64, maxBytes: 256, maxFreeBytes: 384 });
  pool.give(new Uint8Array(32));
  pool.give(new Uint8Array(96));
  pool.give(new Uint8Array(512));
  pool.give(new Uint8Array(128).subarray(0, 64));
  assert.equal(pool.size, 0, "other sizes and views are not kept");
  pool.give(new Uint8Array(256));
  pool.give(new Uint8Array(64));
  pool.give(new Uint8Array(64));
  assert.equal(pool.freeBytes, 384);
  pool.give(new Uint8Array(64));
  assert.equal(pool.size, 3, "bounded by bytes");
  assert.equal(pool.freeBytes, 384);
});

Deno.test("BufferPool.clear() lets go of every free buffer", () => {
  const pool = new BufferPool({ minBytes: 64, maxBytes: 256, maxFreeBytes: 1024 });
  const kept = new Uint8Array(128);
  pool.give(kept);
  pool.give(new Uint8Array(64));
  pool.clear();
  assert.equal(pool.size, 0);
  assert.equal(pool.freeBytes, 0);
  assert.notEqual(pool.take(128), kept);
});

/** A pool whose 64-byte buffers are slots of shared slabs. */
function slotPool(): BufferPool {
  return new BufferPool({ minBytes: 4096, maxBytes: 8192, maxFreeBytes: 16384, slotBytes: 64 });
}

Deno.test("BufferPool.take() carves slotBytes buffers from one shared slab and reuses given slots", () => {
  const pool = slotPool();
  const a = pool.take(64);
  const b = pool.take(64);
  assert.equal(a.length, 64);
  assert.equal(a.buffer, b.buffer, "one slab");
  assert.equal(a.buffer.byteLength, SLAB_BYTES);
  a.fill(1);
  assert.ok(b.every((byte) => byte === 0), "slots do not overlap");
  pool.give(a);
  assert.equal(pool.take(64), a, "a given slot is taken again");
  // A full slab makes way for a new one.
  const more = Array.from({ length: SLAB_BYTES / 64 }, () => pool.take(64));
  assert.notEqual(more.at(-1)!.buffer, a.buffer);
});

Deno.test("BufferPool.give() takes back only its own slots as slots, and clear() forgets them", () => {
  const pool = slotPool();
  const slot = pool.take(64);
  // A slot-sized view of some other 4 KiB buffer is not a slot: reusing it would share memory.
  const stranger = new Uint8Array(SLAB_BYTES).subarray(0, 64);
  pool.give(stranger);
  assert.notEqual(pool.take(64), stranger);
  pool.give(slot);
  pool.clear();
  assert.notEqual(pool.take(64), slot);
});
