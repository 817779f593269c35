import assert from "node:assert/strict";
import { nextTurn, tcpPair } from "../testing.ts";
import { delay } from "./delay.ts";
import { type ByteReader, TimedReader } from "./timed_reader.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && error.name === "TimeoutError";
}

/** A source whose reads settle when the test says so. */
class ManualSource implements ByteReader {
  buffers: Uint8Array[] = [];
  #settle: { resolve: (n: number | null) => void; reject: (e: unknown) => void } | undefined;

  read(p: Uint8Array): Promise<number | null> {
    assert.equal(this.#settle, undefined, "only one read at a time");
    this.buffers.push(p);
    const { promise, resolve, reject } = Promise.withResolvers<number | null>();
    this.#settle = { resolve, reject };
    return promise;
  }

  /** Completes the pending read with `text`, written into the buffer it was given. */
  deliver(text: string): void {
    const bytes = encoder.encode(text);
    this.buffers.at(-1)!.set(bytes);
    this.#take().resolve(bytes.length);
  }

  /** Completes the pending read, `reading`, with `text`; returns the text it resolves with. */
  async answer(reading: Promise<Uint8Array | null>, text: string): Promise<string> {
    this.deliver(text);
    return decoder.decode((await reading)!);
  }

  end(): void {
    this.#take().resolve(null);
  }

  fail(error: unknown): void {
    this.#take().reject(error);
  }

  #take() {
    const settle = this.#settle;
    assert.ok(settle, "a read is pending");
    this.#settle = undefined;
    return settle;
  }
}

/** A {@linkcode TimedReader} of a fresh {@linkcode ManualSource}. */
function manualReader(): { source: ManualSource; reader: TimedReader } {
  const source = new ManualSource();
  return { source, reader: new TimedReader(source) };
}

Deno.test("TimedReader.read() times out at the deadline and keeps the read pending for the next call", async () => {
  const { source, reader } = manualReader();
  const original = new Uint8Array(16);
  const started = performance.now();
  await assert.rejects(reader.read(original, Date.now() + 30), isTimeout);
  assert.ok(performance.now() - started >= 25);
  assert.equal(reader.reading, true);
  assert.equal(source.buffers.length, 1);

  const other = new Uint8Array(16);
  const reading = reader.read(other, Date.now() + 10_000);
  source.deliver("late");
  const chunk = await reading;
  assert.ok(chunk);
  assert.equal(decoder.decode(chunk), "late");
  assert.equal(chunk.buffer, original.buffer, "the data is in the buffer of the first call");
  assert.deepEqual(other, new Uint8Array(16), "the second buffer is not used");
  assert.equal(source.buffers.length, 1, "no second read was started");
  assert.equal(reader.reading, false);
});

Deno.test("TimedReader.read() with a deadline already passed times out at once", async () => {
  const { source, reader } = manualReader();
  const buffer = new Uint8Array(8);
  await assert.rejects(reader.read(buffer, Date.now() - 1), isTimeout);
  assert.equal(reader.reading, true, "the read was started and stays pending");
  assert.equal(await source.answer(reader.read(buffer, Infinity), "x"), "x");
});

Deno.test("TimedReader.read() with an Infinity deadline waits as long as it takes", async () => {
  const { source, reader } = manualReader();
  let settled = false;
  const reading = reader.read(new Uint8Array(8), Infinity).finally(() => settled = true);
  await delay(30);
  assert.equal(settled, false);
  source.deliver("data");
  assert.equal(decoder.decode((await reading)!), "data");
});

Deno.test("TimedReader.read() re-arms when the deadline moved later than the timer it armed", async () => {
  const { source, reader } = manualReader();
  const buffer = new Uint8Array(8);
  // The first read arms a timer for 30 ms from now and completes at once.
  assert.equal(await source.answer(reader.read(buffer, Date.now() + 30), "one"), "one");

  // The second read's deadline is later: the old timer fires first and must not end it.
  let settled = false;
  const second = reader.read(buffer, Date.now() + 2_000).finally(() => settled = true);
  await delay(80);
  assert.equal(settled, false, "the read is still waiting after the first timer fired");
  source.deliver("two");
  assert.equal(decoder.decode((await second)!), "two");
});

Deno.test("TimedReader.read() arms a new timer when the deadline moved earlier", async () => {
  const { source, reader } = manualReader();
  const buffer = new Uint8Array(8);
  await source.answer(reader.read(buffer, Date.now() + 60_000), "one");

  const started = performance.now();
  await assert.rejects(reader.read(buffer, Date.now() + 30), isTimeout);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 25 && elapsed < 2_000, `timed out after ${elapsed}ms`);
  source.end();
  assert.equal(await reader.read(buffer, Infinity), null);
});

Deno.test("TimedReader.read() resolves with null at the end of the stream", async () => {
  const { source, reader } = manualReader();
  const reading = reader.read(new Uint8Array(8), Date.now() + 10_000);
  source.end();
  assert.equal(await reading, null);
  assert.equal(reader.reading, false);
});

Deno.test("TimedReader.read() rejects with the source's error and then starts a fresh read", async () => {
  const { source, reader } = manualReader();
  const buffer = new Uint8Array(8);
  await assert.rejects(reader.read(buffer, Date.now() + 20), isTimeout);
  const error = new Deno.errors.ConnectionReset("Connection reset by peer");
  const reading = reader.read(buffer, Date.now() + 10_000);
  source.fail(error);
  await assert.rejects(reading, (e) => e === error);
  assert.equal(reader.reading, false);

  assert.equal(await source.answer(reader.read(buffer, Infinity), "again"), "again");
  assert.equal(source.buffers.length, 2);
});

Deno.test("TimedReader.reading tells whether a read is pending", async () => {
  const { source, reader } = manualReader();
  assert.equal(reader.reading, false);
  const reading = reader.read(new Uint8Array(8), Infinity);
  assert.equal(reader.reading, true);
  source.deliver("x");
  await reading;
  assert.equal(reader.reading, false);
});

Deno.test("TimedReader reads a real TCP connection: data, timeout, late data, end and close", async () => {
  const { client, server, close } = await tcpPair();
  try {
    const reader = new TimedReader(client);
    const buffer = new Uint8Array(64);

    await server.write(encoder.encode("hello"));
    assert.equal(decoder.decode((await reader.read(buffer, Date.now() + 5_000))!), "hello");

    const original = new Uint8Array(64);
    await assert.rejects(reader.read(original, Date.now() + 30), isTimeout);
    await server.write(encoder.encode("late"));
    const late = await reader.read(buffer, Infinity);
    assert.equal(decoder.decode(late!), "late");
    assert.equal(late!.buffer, original.buffer);

    await assert.rejects(reader.read(buffer, Date.now() + 20), isTimeout);
    assert.equal(reader.reading, true);
    client.close();
    await assert.rejects(reader.read(buffer, Date.now() + 5_000), (error) => {
      assert.ok(
        error instanceof Deno.errors.Interrupted || error instanceof Deno.errors.BadResource,
        String(error),
      );
      return true;
    });
    assert.equal(reader.reading, false);
  } finally {
    close();
  }
});

Deno.test("TimedReader on a real TCP connection resolves with null when the peer closes", async () => {
  const { client, server, close } = await tcpPair();
  try {
    const reader = new TimedReader(client);
    const reading = reader.read(new Uint8Array(8), Date.now() + 5_000);
    await nextTurn();
    server.close();
    assert.equal(await reading, null);
  } finally {
    close();
  }
});

Deno.test("TimedReader.dispose() clears the deadline timer", async () => {
  const source = { read: () => new Promise<number | null>(() => {}) };
  const reader = new TimedReader(source);
  const reading = reader.read(new Uint8Array(8), Date.now() + 60_000);
  reading.catch(() => {});
  reader.dispose();
  // Deno's test sanitizer fails this test if a timer is still pending at its end.
  assert.equal(
    await Promise.race([reading.then(() => "read"), Promise.resolve("pending")]),
    "pending",
  );
});
