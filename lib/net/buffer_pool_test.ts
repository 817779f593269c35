import assert from "node:assert/strict";
import { BufferPool } from "./buffer_pool.ts";

Deno.test("BufferPool.take() reuses a returned buffer of the pooled size", () => {
  const pool = new BufferPool(64, 2);
  const first = pool.take(64);
  assert.notEqual(pool.take(64), first, "nothing returned yet: a new buffer");
  pool.give(first);
  assert.equal(pool.size, 1);
  assert.equal(pool.take(64), first);
  assert.equal(pool.size, 0);
});

Deno.test("BufferPool.give() keeps only whole buffers of the pooled size, up to its bound", () => {
  const pool = new BufferPool(64, 2);
  pool.give(new Uint8Array(32));
  pool.give(new Uint8Array(128).subarray(0, 64));
  assert.equal(pool.size, 0, "other sizes and views are not kept");
  pool.give(new Uint8Array(64));
  pool.give(new Uint8Array(64));
  pool.give(new Uint8Array(64));
  assert.equal(pool.size, 2, "bounded");
});
