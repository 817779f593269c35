import assert from "node:assert/strict";
import { ExclusiveWriter } from "./exclusive_writer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A writer that takes a random 1 to 7 bytes per call, after a turn of the event loop. */
function choppyWriter(seed: number) {
  let state = seed;
  const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const out: string[] = [];
  return {
    out,
    write: async (p: Uint8Array) => {
      await new Promise((resolve) => setTimeout(resolve, 0));
      const n = Math.min(p.length, 1 + Math.floor(random() * 7));
      out.push(decoder.decode(p.subarray(0, n)));
      return n;
    },
  };
}

Deno.test("ExclusiveWriter writes every chunk whole while other writers of the lock wait", async () => {
  const target = choppyWriter(7);
  const lock = new SharedArrayBuffer(4);
  const writers = ["a", "b", "c"].map((tag) => ({
    tag,
    writer: new ExclusiveWriter(target, lock),
  }));
  const chunks = writers.flatMap(({ tag, writer }) =>
    Array.from({ length: 10 }, (_, i) => ({ writer, text: `${tag}${i}:${tag.repeat(i)}\n` }))
  );
  const results = await Promise.all(
    chunks.map(({ writer, text }) => writer.write(encoder.encode(text))),
  );
  assert.deepEqual(
    results,
    chunks.map(({ text }) => text.length),
    "each write reports its whole chunk",
  );
  const lines = target.out.join("").split("\n").slice(0, -1);
  assert.equal(lines.length, chunks.length);
  for (const line of lines) assert.match(line, /^([abc])(\d):\1*$/, "never two chunks in one line");
  assert.deepEqual(lines.toSorted(), chunks.map(({ text }) => text.slice(0, -1)).toSorted());
  assert.equal(new Int32Array(lock)[0], 0, "unlocked at the end");
});

Deno.test("ExclusiveWriter releases the lock when a write fails", async () => {
  const lock = new SharedArrayBuffer(4);
  const failing = new ExclusiveWriter(
    { write: () => Promise.reject(new Error("disk full")) },
    lock,
  );
  await assert.rejects(failing.write(encoder.encode("x")), /disk full/);
  const written: string[] = [];
  const working = new ExclusiveWriter({
    write: (p) => (written.push(decoder.decode(p)), Promise.resolve(p.length)),
  }, lock);
  assert.equal(await working.write(encoder.encode("next\n")), 5);
  assert.deepEqual(written, ["next\n"]);
});
