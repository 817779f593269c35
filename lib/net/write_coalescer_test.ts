import assert from "node:assert/strict";
import { hasSettled, nextTurn, RecordingWriter } from "../testing.ts";
import { type ByteWriter, WriteCoalescer } from "./write_coalescer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function text(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** One call of {@linkcode ManualWriter.write}, settled by the test. */
interface WriteCall {
  /** The exact object the coalescer passed. */
  chunk: Uint8Array;
  /** A copy of its bytes at the time of the call. */
  copy: Uint8Array;
  resolve(n: number): void;
  reject(error: unknown): void;
}

/** A writer whose writes settle only when the test says so; records concurrency. */
class ManualWriter implements ByteWriter {
  calls: WriteCall[] = [];
  active = 0;
  maxActive = 0;
  #waiters: ((call: WriteCall) => void)[] = [];

  write(chunk: Uint8Array): Promise<number> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    const { promise, resolve, reject } = Promise.withResolvers<number>();
    const call: WriteCall = {
      chunk,
      copy: chunk.slice(),
      resolve: (n) => {
        this.active--;
        resolve(n);
      },
      reject: (error) => {
        this.active--;
        reject(error);
      },
    };
    this.calls.push(call);
    this.#waiters.shift()?.(call);
    return promise;
  }

  /** Resolves with the call number `index` (0-based) once it has been made. */
  call(index: number): Promise<WriteCall> {
    if (index < this.calls.length) return Promise.resolve(this.calls[index]);
    assert.equal(index, this.calls.length + this.#waiters.length, "wait for calls in order");
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

/** A coalescer on a fresh {@linkcode ManualWriter}, with `text` written to it. */
function startWriting(text: string): { writer: ManualWriter; out: WriteCoalescer } {
  const writer = new ManualWriter();
  const out = new WriteCoalescer(writer);
  out.write(encoder.encode(text));
  return { writer, out };
}

/** {@linkcode startWriting}, once the first write to the writer has started. */
async function writing(
  text: string,
): Promise<{ writer: ManualWriter; out: WriteCoalescer; first: WriteCall }> {
  const { writer, out } = startWriting(text);
  return { writer, out, first: await writer.call(0) };
}

Deno.test("WriteCoalescer.write() coalesces writes made in one turn into one write", async () => {
  const writer = new RecordingWriter();
  const out = new WriteCoalescer(writer);
  out.write(encoder.encode("a"));
  out.write(encoder.encode("bc"));
  out.write(encoder.encode("def"));
  assert.equal(writer.writes.length, 0, "the write starts on a later microtask");
  await out.flush();
  assert.deepEqual(writer.writes, ["abcdef"]);
});

Deno.test("WriteCoalescer.write() ignores empty chunks", async () => {
  const writer = new RecordingWriter();
  const out = new WriteCoalescer(writer);
  out.write(new Uint8Array(0));
  assert.equal(out.buffered, 0);
  await out.flush();
  await nextTurn();
  assert.deepEqual(writer.writes, []);
});

Deno.test("WriteCoalescer keeps one write in flight and batches what queued meanwhile", async () => {
  const { writer, out, first } = await writing("a");
  assert.equal(text(first.copy), "a");

  out.write(encoder.encode("b"));
  out.write(encoder.encode("c"));
  await nextTurn();
  assert.equal(writer.calls.length, 1, "no second write while the first is in flight");

  first.resolve(1);
  const second = await writer.call(1);
  assert.equal(text(second.copy), "bc");
  out.write(encoder.encode("d"));
  await nextTurn();
  assert.equal(writer.calls.length, 2);
  second.resolve(2);
  const third = await writer.call(2);
  assert.equal(text(third.copy), "d");
  third.resolve(1);
  await out.flush();
  assert.equal(writer.maxActive, 1);
  assert.equal(writer.active, 0);
});

Deno.test("WriteCoalescer continues a partial write with the rest of the batch", async () => {
  const writer = new ManualWriter();
  const out = new WriteCoalescer(writer);
  out.write(encoder.encode("abc"));
  out.write(encoder.encode("def"));
  const flushed = out.flush();

  const first = await writer.call(0);
  assert.equal(text(first.copy), "abcdef");
  first.resolve(2);
  const second = await writer.call(1);
  assert.equal(text(second.copy), "cdef");
  assert.equal(await hasSettled(flushed), false, "flush waits for the rest of the batch");
  second.resolve(3);
  const third = await writer.call(2);
  assert.equal(text(third.copy), "f");
  third.resolve(1);
  await flushed;
  assert.equal(out.buffered, 0);
  assert.equal(writer.calls.length, 3);
  assert.equal(writer.maxActive, 1);
});

Deno.test("WriteCoalescer.buffered counts queued and in-flight bytes until written", async () => {
  const writer = new ManualWriter();
  const out = new WriteCoalescer(writer);
  assert.equal(out.buffered, 0);
  out.write(new Uint8Array(3));
  out.write(new Uint8Array(4));
  assert.equal(out.buffered, 7);

  const first = await writer.call(0);
  assert.equal(first.chunk.length, 7);
  assert.equal(out.buffered, 7, "bytes in flight still count");
  out.write(new Uint8Array(2));
  assert.equal(out.buffered, 9);

  first.resolve(7);
  const second = await writer.call(1);
  assert.equal(out.buffered, 2);
  second.resolve(2);
  await out.flush();
  assert.equal(out.buffered, 0);
});

Deno.test("WriteCoalescer.flush() resolves at once when nothing is queued", async () => {
  const writer = new ManualWriter();
  const out = new WriteCoalescer(writer);
  assert.equal(await hasSettled(out.flush()), true);
  assert.equal(writer.calls.length, 0);
});

Deno.test("WriteCoalescer.flush() resolves only after the bytes queued before it are written", async () => {
  const { writer, out } = startWriting("one");
  const firstFlush = out.flush();
  const first = await writer.call(0);
  out.write(encoder.encode("two"));
  const secondFlush = out.flush();
  assert.equal(await hasSettled(firstFlush), false);

  first.resolve(3);
  await firstFlush;
  const second = await writer.call(1);
  assert.equal(await hasSettled(secondFlush), false, "the later flush waits for its own bytes");
  second.resolve(3);
  await secondFlush;
  assert.equal(await hasSettled(out.flush()), true, "nothing is queued any more");
});

/** Writes `chunks` through a coalescer with a `maxBatchBytes` of 4 and flushes. */
async function writeInBatchesOf4(chunks: Uint8Array[]): Promise<RecordingWriter> {
  const writer = new RecordingWriter();
  const out = new WriteCoalescer(writer, { maxBatchBytes: 4 });
  for (const chunk of chunks) out.write(chunk);
  await out.flush();
  return writer;
}

for (
  const [name, parts, expected] of [
    ["WriteCoalescer splits batches at maxBatchBytes", ["ab", "cd", "ef", "g"], ["abcd", "efg"]],
    [
      "WriteCoalescer batches chunks that add up to exactly maxBatchBytes together",
      ["a", "bc", "d", "e"],
      ["abcd", "e"],
    ],
  ] as const
) {
  Deno.test(name, async () => {
    const writer = await writeInBatchesOf4(parts.map((part) => encoder.encode(part)));
    assert.deepEqual(writer.writes, expected);
  });
}

Deno.test("WriteCoalescer writes a chunk larger than maxBatchBytes on its own", async () => {
  const big = encoder.encode("bcdefg");
  const writer = await writeInBatchesOf4([encoder.encode("a"), big, encoder.encode("h")]);
  assert.deepEqual(writer.writes, ["a", "bcdefg", "h"]);
  assert.equal(writer.chunks[1].buffer, big.buffer, "a lone chunk is passed as is, not copied");
  assert.equal(writer.chunks[1].byteOffset, big.byteOffset);
});

Deno.test("WriteCoalescer rejects pending flushes on a write error and drops later writes", async () => {
  const { writer, out } = startWriting("a");
  const flushed = out.flush();
  const first = await writer.call(0);
  out.write(encoder.encode("queued behind"));
  assert.equal(out.failed, false);

  const error = new Deno.errors.BrokenPipe("Broken pipe");
  first.reject(error);
  await assert.rejects(flushed, (e) => e === error);
  assert.equal(out.failed, true);
  assert.equal(out.buffered, 0);

  out.write(encoder.encode("dropped"));
  assert.equal(out.buffered, 0);
  await assert.rejects(out.flush(), (e) => e === error);
  await nextTurn();
  assert.equal(writer.calls.length, 1, "nothing is written after the error");
});

Deno.test("WriteCoalescer fails on a writer that throws synchronously", async () => {
  const error = new Deno.errors.BadResource("Bad resource ID");
  const out = new WriteCoalescer({
    write(): Promise<number> {
      throw error;
    },
  });
  out.write(encoder.encode("x"));
  await assert.rejects(out.flush(), (e) => e === error);
  assert.equal(out.failed, true);
});

Deno.test("WriteCoalescer.discardQueued() drops queued chunks and lets the in-flight write finish", async () => {
  const { writer, out, first } = await writing("in flight");
  out.write(encoder.encode("b"));
  out.write(encoder.encode("c"));
  out.write(encoder.encode("d"));

  assert.equal(out.discardQueued(), 3);
  assert.equal(out.buffered, "in flight".length);
  const flushed = out.flush();
  assert.equal(await hasSettled(flushed), false, "the in-flight write is not confirmed yet");

  out.write(encoder.encode("after"));
  first.resolve("in flight".length);
  const second = await writer.call(1);
  assert.equal(text(second.copy), "after");
  second.resolve(5);
  await flushed;
  await out.flush();
  assert.deepEqual(writer.calls.map((call) => text(call.copy)), ["in flight", "after"]);
  assert.equal(out.buffered, 0);
  assert.equal(out.failed, false);
});

Deno.test("WriteCoalescer.flush() made before discardQueued() does not wait for chunks queued after it", async () => {
  const { writer, out, first } = await writing("in flight");
  out.write(encoder.encode("bcd"));
  const flushed = out.flush(); // everything queued so far: "in flight" and "bcd"
  assert.equal(out.discardQueued(), 1); // "bcd" will never be written
  out.write(encoder.encode("after")); // queued after the flush
  first.resolve("in flight".length);
  const second = await writer.call(1);
  try {
    assert.equal(
      await hasSettled(flushed),
      true,
      "flush() must resolve once the bytes left from before it are written",
    );
  } finally {
    second.resolve(5);
    await flushed;
  }
});

Deno.test("WriteCoalescer.discardQueued() before the first write writes nothing", async () => {
  const writer = new ManualWriter();
  const out = new WriteCoalescer(writer);
  out.write(encoder.encode("x"));
  out.write(encoder.encode("y"));
  assert.equal(out.discardQueued(), 2);
  assert.equal(out.buffered, 0);
  assert.equal(await hasSettled(out.flush()), true);
  assert.equal(writer.calls.length, 0);
  assert.equal(out.discardQueued(), 0);
});

Deno.test("WriteCoalescer never modifies a chunk shared by several coalescers", async () => {
  const shared = encoder.encode("shared");
  const original = shared.slice();
  const writers = [new RecordingWriter(), new RecordingWriter()];
  const outs = writers.map((writer) => new WriteCoalescer(writer, { maxBatchBytes: 10 }));
  for (const [i, out] of outs.entries()) {
    out.write(encoder.encode(`${i}:`));
    out.write(shared);
    out.write(encoder.encode("tail-that-is-long"));
    out.write(encoder.encode("zz"));
  }
  await Promise.all(outs.map((out) => out.flush()));
  assert.deepEqual(shared, original);
  assert.deepEqual(writers[0].writes, ["0:shared", "tail-that-is-long", "zz"]);
  assert.deepEqual(writers[1].writes, ["1:shared", "tail-that-is-long", "zz"]);
});

Deno.test("WriteCoalescer.writeStartedAt tells when the write in flight started", async () => {
  const writer = new ManualWriter();
  const out = new WriteCoalescer(writer);
  assert.equal(out.writeStartedAt, 0, "no write yet");
  const before = Date.now();
  out.write(encoder.encode("abc"));
  const first = await writer.call(0);
  assert.ok(out.writeStartedAt >= before && out.writeStartedAt <= Date.now());
  first.resolve(3);
  await out.flush();
  assert.equal(out.writeStartedAt, 0, "nothing in flight after the flush");
});

Deno.test("WriteCoalescer.write() calls done once a lone chunk's write has completed", async () => {
  const { writer, out, first } = await writing("first");
  const done: string[] = [];
  const big = encoder.encode("x".repeat(300 * 1024)); // over maxBatchBytes: written as it is
  out.write(big, () => done.push("big"));
  first.resolve(5);
  const second = await writer.call(1);
  assert.equal(second.chunk.buffer, big.buffer);
  second.resolve(1000); // a partial write: the rest is still needed
  const third = await writer.call(2);
  assert.deepEqual(done, []);
  third.resolve(big.length - 1000);
  await out.flush();
  assert.deepEqual(done, ["big"]);
});

Deno.test("WriteCoalescer.write() calls done as soon as chunks are copied into a joined batch", async () => {
  const { writer, out, first } = await writing("first");
  const done: string[] = [];
  out.write(encoder.encode("a"), () => done.push("a"));
  out.write(encoder.encode("b"), () => done.push("b"));
  first.resolve(5);
  const joined = await writer.call(1);
  assert.equal(text(joined.chunk), "ab");
  assert.deepEqual(done, ["a", "b"], "copied before the write: no longer needed");
  joined.resolve(2);
  await out.flush();
  assert.deepEqual(done, ["a", "b"], "once each");
});

Deno.test("WriteCoalescer.write() calls done for chunks dropped by discardQueued() or a failure", async () => {
  const { writer, out, first } = await writing("first");
  const done: string[] = [];
  out.write(encoder.encode("dropped"), () => done.push("dropped"));
  assert.equal(out.discardQueued(), 1);
  assert.deepEqual(done, ["dropped"]);
  const big = encoder.encode("y".repeat(300 * 1024));
  out.write(big, () => done.push("in flight"));
  out.write(encoder.encode("queued"), () => done.push("queued"));
  first.resolve(5);
  const second = await writer.call(1);
  const flushed = out.flush();
  second.reject(new Error("connection reset"));
  await assert.rejects(flushed, /connection reset/);
  assert.deepEqual(done.sort(), ["dropped", "in flight", "queued"]);
  out.write(encoder.encode("after"), () => done.push("after"));
  out.write(new Uint8Array(0), () => done.push("empty"));
  assert.deepEqual(done.slice(3), ["after", "empty"], "not queued: done at once");
});
