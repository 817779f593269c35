import assert from "node:assert/strict";
import { BufferPool } from "./buffer_pool.ts";

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
