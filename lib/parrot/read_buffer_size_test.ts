import assert from "node:assert/strict";
import {
  MAX_READ_BUFFER_BYTES,
  MIN_BUSY_READ_BUFFER_BYTES,
  MIN_READ_BUFFER_BYTES,
  READ_BUFFER_BUDGET_BYTES,
} from "../defaults.ts";
import { nextReadBufferSize, readBufferPool } from "./read_buffer_size.ts";

/** The size a connection's buffer settles at when every read fills it. */
function grownSize(clients: number): number {
  let size = MIN_READ_BUFFER_BYTES;
  for (let reads = 0; reads < 100; reads++) size = nextReadBufferSize(size, size, clients);
  return size;
}

Deno.test("nextReadBufferSize() grows a busy connection's buffer to the largest size", () => {
  assert.equal(grownSize(1), MAX_READ_BUFFER_BYTES);
  assert.equal(grownSize(3), MAX_READ_BUFFER_BYTES);
});

Deno.test("nextReadBufferSize() keeps many busy connections within the shared budget", () => {
  const fullSized = READ_BUFFER_BUDGET_BYTES / MAX_READ_BUFFER_BYTES;
  assert.equal(grownSize(fullSized), MAX_READ_BUFFER_BYTES, "as many as fit at 64 KiB");
  for (const clients of [fullSized + 1, 1_000, 1_500]) {
    const size = grownSize(clients);
    assert.ok(size * clients <= READ_BUFFER_BUDGET_BYTES, `${clients} clients x ${size} bytes`);
    assert.ok(size * 2 * clients > READ_BUFFER_BUDGET_BYTES, `${clients} clients could have more`);
  }
  assert.equal(grownSize(10_000), MIN_BUSY_READ_BUFFER_BYTES, "never under the busy floor");
});

Deno.test("nextReadBufferSize() shrinks a big buffer when clients arrive", () => {
  const busy = grownSize(1);
  const shared = nextReadBufferSize(busy, 100, 2_000);
  assert.ok(shared < busy);
  assert.ok(shared * 2_000 <= READ_BUFFER_BUDGET_BYTES);
});

Deno.test("nextReadBufferSize() shrinks an idle connection's buffer back to the smallest", () => {
  let size = MAX_READ_BUFFER_BYTES;
  for (let reads = 0; reads < 100; reads++) size = nextReadBufferSize(size, 10, 3);
  assert.equal(size, MIN_READ_BUFFER_BYTES);
  assert.equal(nextReadBufferSize(8192, 4096, 3), 8192, "half used: stays");
});

Deno.test("nextReadBufferSize() settles at a size that holds a frame a little over the smallest buffer", () => {
  // A frame 8 bytes over the smallest buffer now and then: the first read fills the
  // buffer, the second gets the rest. It must then stay big enough for the next one.
  const frame = MIN_READ_BUFFER_BYTES + 8;
  let size = MIN_READ_BUFFER_BYTES;
  let afterFullRead = false;
  let reads = 0;
  for (let frames = 0; frames < 10; frames++) {
    let left = frame;
    while (left > 0) {
      const used = Math.min(left, size);
      left -= used;
      reads++;
      const full = used === size;
      size = nextReadBufferSize(size, used, 3, afterFullRead);
      afterFullRead = full;
    }
  }
  assert.equal(reads, 11, "two reads for the first frame, one for each after it");
});

Deno.test("readBufferPool() reuses every size nextReadBufferSize() picks", () => {
  const pool = readBufferPool(1 << 20);
  const sizes = new Set<number>();
  // Every size on the way up, and on the way down from each of them.
  for (let size = MIN_READ_BUFFER_BYTES; size <= MAX_READ_BUFFER_BYTES; size *= 2) {
    sizes.add(nextReadBufferSize(size, size, 3));
    sizes.add(nextReadBufferSize(size, 1, 3));
    sizes.add(nextReadBufferSize(size, size / 2, 3));
  }
  assert.ok(sizes.has(256) && sizes.has(2048), [...sizes].join(" "));
  for (const size of sizes) {
    const buffer = pool.take(size);
    assert.equal(buffer.length, size);
    pool.give(buffer);
    assert.equal(pool.take(size), buffer, `a ${size}-byte buffer is reused`);
  }
});
