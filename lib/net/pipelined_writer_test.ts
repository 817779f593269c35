import assert from "node:assert/strict";
import { PipelinedWriter } from "./pipelined_writer.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A writer whose writes each wait for `release()`; records what was written. */
class GatedWriter {
  writes: string[] = [];
  inFlight = 0;
  maxInFlight = 0;
  #gates: (() => void)[] = [];
  failWith: Error | null = null;

  async write(p: Uint8Array): Promise<number> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const text = decoder.decode(p); // copied now: the buffer is reused after the write
    await new Promise<void>((resolve) => this.#gates.push(resolve));
    this.inFlight--;
    if (this.failWith) throw this.failWith;
    this.writes.push(text);
    return p.length;
  }

  get waiting(): number {
    return this.#gates.length;
  }

  release(): void {
    this.#gates.shift()?.();
  }
}

async function until(condition: () => boolean): Promise<void> {
  for (let turns = 0; !condition(); turns++) {
    if (turns > 1_000) throw new Error("Condition never held");
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

Deno.test("PipelinedWriter fills the next batch while one write is in flight", async () => {
  const writer = new GatedWriter();
  const out = new PipelinedWriter(writer, { initialBytes: 16 });
  out.append(encoder.encode("one\n"));
  out.commit();
  await until(() => writer.waiting === 1);
  out.append(encoder.encode("two\n"));
  out.commit();
  out.appendRange(encoder.encode("xthree\nx"), 1, 7);
  out.appendByte(0x0a);
  out.commit();
  assert.equal(out.length, "two\nthree\n\n".length, "held while the first write runs");
  writer.release();
  await until(() => writer.waiting === 1);
  writer.release();
  await out.idle();
  assert.deepEqual(writer.writes, ["one\n", "two\nthree\n\n"]);
  assert.equal(writer.maxInFlight, 1);
});

Deno.test("PipelinedWriter.afterWritten() runs once the bytes before it are out, in order", async () => {
  const writer = new GatedWriter();
  const out = new PipelinedWriter(writer);
  const done: string[] = [];
  out.afterWritten(() => done.push("nothing before"));
  assert.deepEqual(done, ["nothing before"], "nothing to wait for: at once");
  out.append(encoder.encode("a\n"));
  out.afterWritten(() => done.push("after a"));
  out.commit();
  await until(() => writer.waiting === 1);
  out.afterWritten(() => done.push("after a, while it is written"));
  out.append(encoder.encode("b\n"));
  out.afterWritten(() => done.push("after b"));
  out.commit();
  assert.deepEqual(done, ["nothing before"]);
  writer.release();
  await until(() => writer.waiting === 1);
  assert.deepEqual(done, ["nothing before", "after a"]);
  writer.release();
  await out.idle();
  assert.deepEqual(done, ["nothing before", "after a", "after a, while it is written", "after b"]);
});

Deno.test("PipelinedWriter.room() waits while the producer is a batch ahead", async () => {
  const writer = new GatedWriter();
  const out = new PipelinedWriter(writer);
  out.append(encoder.encode("first\n"));
  out.commit();
  out.append(encoder.encode("0123456789\n"));
  let roomy = false;
  const room = out.room(8).then(() => roomy = true);
  await until(() => writer.waiting === 1);
  assert.equal(roomy, false, "11 bytes waiting over a bound of 8, a write in flight");
  writer.release();
  await room;
  assert.equal(roomy, true);
  writer.release();
  await out.idle();
  await out.room(8); // nothing in flight: never waits
  assert.deepEqual(writer.writes, ["first\n", "0123456789\n"]);
});

Deno.test("PipelinedWriter reports a failed write once, then drops bytes and still runs actions, told so", async () => {
  const writer = new GatedWriter();
  const errors: unknown[] = [];
  const out = new PipelinedWriter(writer, { onError: (error) => errors.push(error) });
  const done: string[] = [];
  out.append(encoder.encode("kept\n"));
  out.afterWritten((written) => done.push(`zero ${written}`));
  out.commit();
  await until(() => writer.waiting === 1);
  writer.release();
  await out.idle();
  writer.failWith = new Error("disk full");
  out.append(encoder.encode("lost\n"));
  out.afterWritten((written) => done.push(`one ${written}`));
  out.commit();
  await until(() => writer.waiting === 1);
  writer.release();
  await out.idle();
  out.append(encoder.encode("dropped\n"));
  out.afterWritten((written) => done.push(`two ${written}`));
  await out.idle();
  out.afterWritten((written) => done.push(`three ${written}`)); // nothing pending: at once
  assert.equal(errors.length, 1);
  assert.equal(out.broken, true);
  assert.equal(writer.waiting, 0, "no write after the failure");
  assert.deepEqual(writer.writes, ["kept\n"]);
  assert.deepEqual(done, ["zero true", "one false", "two false", "three false"]);
});

Deno.test("PipelinedWriter.release() lets go of its buffers only when nothing is pending", async () => {
  const writer = new GatedWriter();
  const out = new PipelinedWriter(writer, { initialBytes: 4 });
  out.append(encoder.encode("one\n"));
  assert.equal(out.release(), false, "bytes wait");
  out.commit();
  await until(() => writer.waiting === 1);
  assert.equal(out.release(), false, "a write is in flight");
  writer.release();
  await out.idle();
  assert.equal(out.release(), true);
  out.append(encoder.encode("two\n"));
  const written = out.idle();
  await until(() => writer.waiting === 1);
  writer.release();
  await written;
  assert.deepEqual(writer.writes, ["one\n", "two\n"]);
});
