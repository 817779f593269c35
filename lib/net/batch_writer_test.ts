import assert from "node:assert/strict";
import { RecordingWriter } from "../testing.ts";
import { BatchWriter } from "./batch_writer.ts";

const encoder = new TextEncoder();

Deno.test("BatchWriter.flush() writes everything appended in one write and empties the batch", async () => {
  const writer = new RecordingWriter();
  const out = new BatchWriter(writer, 4);
  out.append(encoder.encode("ann: "));
  out.append(encoder.encode("a longer payload than the first buffer"));
  out.appendByte(10);
  assert.equal(out.length, 44);
  await out.flush();
  assert.deepEqual(writer.writes, ["ann: a longer payload than the first buffer\n"]);
  assert.equal(out.length, 0);
  await out.flush();
  assert.equal(writer.writes.length, 1, "an empty batch writes nothing");
  out.append(encoder.encode("next\n"));
  await out.flush();
  assert.deepEqual(writer.writes, ["ann: a longer payload than the first buffer\n", "next\n"]);
});

Deno.test("BatchWriter.flush() continues a partial write with the rest", async () => {
  const parts: string[] = [];
  const out = new BatchWriter({
    write: (p) => {
      const n = Math.min(p.length, 3);
      parts.push(new TextDecoder().decode(p.subarray(0, n)));
      return Promise.resolve(n);
    },
  });
  out.append(encoder.encode("abcdefgh"));
  await out.flush();
  assert.deepEqual(parts, ["abc", "def", "gh"]);
});

Deno.test("BatchWriter.flush() throws the write error and drops the batch", async () => {
  const out = new BatchWriter({ write: () => Promise.reject(new Error("disk full")) });
  out.append(encoder.encode("lost"));
  await assert.rejects(out.flush(), /disk full/);
  assert.equal(out.length, 0);
});

Deno.test("BatchWriter.appendRange() copies short and long ranges and grows the buffer", async () => {
  const writer = new RecordingWriter();
  const out = new BatchWriter(writer, 8);
  const source = encoder.encode("0123456789".repeat(20));
  out.appendRange(source, 2, 5);
  out.appendRange(source, 0, 100); // longer than 64 bytes and than the buffer
  out.appendRange(source, 7, 7);
  await out.flush();
  assert.equal(writer.writes.join(""), "234" + "0123456789".repeat(10));
});

Deno.test("BatchWriter.append() copies short arrays byte by byte and long ones whole, up to and past the buffer's end", async () => {
  const writer = new RecordingWriter();
  const out = new BatchWriter(writer, 8);
  const text = (n: number, from: number) =>
    Array.from({ length: n }, (_, i) => String.fromCharCode(97 + (from + i) % 26)).join("");
  const pieces = [text(5, 0), text(3, 5), text(1, 8), text(64, 9), text(65, 3), text(0, 0)];
  // 5 + 3 fill the 8 bytes exactly; the next byte must grow the buffer first.
  for (const piece of pieces) out.append(encoder.encode(piece));
  assert.equal(out.length, 138);
  await out.flush();
  assert.deepEqual(writer.writes, [pieces.join("")]);
});

Deno.test("BatchWriter.release() lets go of an empty batch's buffer, and appends still work", async () => {
  const writer = new RecordingWriter();
  const out = new BatchWriter(writer, 4);
  out.append(encoder.encode("held"));
  assert.equal(out.release(), false, "not while bytes wait");
  await out.flush();
  assert.equal(out.release(), true);
  out.appendByte(0x61);
  out.appendRange(encoder.encode("xbcx"), 1, 3);
  out.append(encoder.encode("d\n"));
  await out.flush();
  assert.deepEqual(writer.writes, ["held", "abcd\n"]);
});
