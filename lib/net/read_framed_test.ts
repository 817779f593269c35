import assert from "node:assert/strict";
import { tcpPair } from "../testing.ts";
import { encodeLengthPrefixed, FrameTooLargeError } from "./length_prefixed_parser.ts";
import { LineParser, LineTooLongError } from "./line_parser.ts";
import { readFramed, readLengthPrefixed, readLines } from "./read_framed.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Collects everything a reader yields, as text; rethrows its error with what came before. */
async function collect(lines: AsyncIterable<Uint8Array>): Promise<string[]> {
  const out: string[] = [];
  for await (const line of lines) out.push(decoder.decode(line));
  return out;
}

/** A stream of `bytes`, one byte per chunk, that stays open after them unless `end`. */
function byteAtATime(bytes: Uint8Array, end = true): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at < bytes.length) controller.enqueue(bytes.slice(at, ++at));
      else if (end) controller.close();
    },
  });
}

Deno.test("readLines() yields each line of a stream delivered one byte at a time", async () => {
  const input = encoder.encode("first\r\nsecond\n\nlast\n");
  assert.deepEqual(await collect(readLines(byteAtATime(input))), ["first", "second", "", "last"]);
});

Deno.test("readLines() reads a Deno.Conn and leaves it open", async () => {
  const { client, server, close } = await tcpPair();
  try {
    await client.write(encoder.encode("SET a 1\nGET a\n"));
    const lines: string[] = [];
    for await (const line of readLines(server)) {
      lines.push(decoder.decode(line));
      if (lines.length === 2) break;
    }
    assert.deepEqual(lines, ["SET a 1", "GET a"]);
    await client.write(encoder.encode("still open\n"));
    for await (const line of readLines(server)) {
      assert.equal(decoder.decode(line), "still open");
      break;
    }
  } finally {
    close();
  }
});

Deno.test("readLines() ends at the end of the input, and throws UnexpectedEof inside a line", async () => {
  assert.deepEqual(await collect(readLines(ReadableStream.from([encoder.encode("a\n")]))), ["a"]);
  const heard: string[] = [];
  await assert.rejects(
    async () => {
      for await (const line of readLines(ReadableStream.from([encoder.encode("a\nunfinish")]))) {
        heard.push(decoder.decode(line));
      }
    },
    (error) =>
      error instanceof Deno.errors.UnexpectedEof &&
      error.message === "Cannot read a line: the input ended after 8 bytes of it",
  );
  assert.deepEqual(heard, ["a"]);
});

Deno.test("readLines() throws LineTooLongError for a line over maxLineBytes", async () => {
  const input = byteAtATime(encoder.encode("short\nthis one is too long\n"));
  await assert.rejects(collect(readLines(input, { maxLineBytes: 8 })), LineTooLongError);
});

Deno.test("readLines() throws a TimeoutError when no line begins within idleTimeoutMs", async () => {
  const silent = byteAtATime(encoder.encode("hello\n"), false);
  const heard: string[] = [];
  await assert.rejects(
    async () => {
      for await (const line of readLines(silent, { idleTimeoutMs: 20 })) {
        heard.push(decoder.decode(line));
      }
    },
    (error) =>
      error instanceof DOMException && error.name === "TimeoutError" &&
      error.message === "Cannot read a line: none began within 20ms",
  );
  assert.deepEqual(heard, ["hello"]);
  assert.equal(silent.locked, false, "the stream is released");
});

Deno.test("readLines() throws a TimeoutError when a begun line does not complete within readTimeoutMs", async () => {
  // The idle limit is generous; the read limit applies once "half a" arrived.
  const stalled = byteAtATime(encoder.encode("whole\nhalf a"), false);
  await assert.rejects(
    collect(readLines(stalled, { idleTimeoutMs: 60_000, readTimeoutMs: 20 })),
    (error) =>
      error instanceof DOMException && error.name === "TimeoutError" &&
      error.message === "Cannot read a line: it did not complete within 20ms of its first byte",
  );
});

Deno.test("readLines() throws the signal's reason when it aborts while waiting", async () => {
  const controller = new AbortController();
  const reason = new Error("Shutting down");
  const lines = readLines(byteAtATime(encoder.encode("one\n"), false), {
    signal: controller.signal,
    idleTimeoutMs: 60_000, // its timer is cleared: the test sanitizer would see it
  });
  assert.equal(decoder.decode((await lines.next()).value as Uint8Array), "one");
  const next = lines.next();
  controller.abort(reason);
  await assert.rejects(next, (error) => error === reason);
});

Deno.test("readLines() with an already aborted signal reads nothing", async () => {
  const reason = new Error("Stopped");
  const input = ReadableStream.from([encoder.encode("one\n")]);
  await assert.rejects(
    collect(readLines(input, { signal: AbortSignal.abort(reason) })),
    (error) => error === reason,
  );
});

Deno.test("readLines() releases the stream when the loop breaks", async () => {
  const input = byteAtATime(encoder.encode("one\ntwo\n"), false);
  for await (const _ of readLines(input)) break;
  assert.equal(input.locked, false);
});

Deno.test("readLengthPrefixed() yields each frame of a connection, split at any byte", async () => {
  const payloads = [encoder.encode("alpha"), new Uint8Array(0), new Uint8Array(70_000).fill(7)];
  const bytes = new Uint8Array(payloads.reduce((sum, p) => sum + 4 + p.length, 0));
  let at = 0;
  for (const payload of payloads) {
    bytes.set(encodeLengthPrefixed(payload), at);
    at += 4 + payload.length;
  }
  const frames: Uint8Array[] = [];
  const stream = byteAtATime(bytes.subarray(0, 13)); // the first two frames
  for await (const frame of readLengthPrefixed(stream)) frames.push(frame);
  assert.deepEqual(frames, payloads.slice(0, 2));

  const { client, server, close } = await tcpPair();
  try {
    const writing = client.write(bytes).then(async (n) => {
      for (let done = n; done < bytes.length;) done += await client.write(bytes.subarray(done));
      client.close();
    });
    const received: Uint8Array[] = [];
    for await (const frame of readLengthPrefixed(server, { bufferBytes: 1000 })) {
      received.push(frame);
    }
    await writing;
    assert.deepEqual(received, payloads);
  } finally {
    close();
  }
});

Deno.test("readLengthPrefixed() throws FrameTooLargeError from the header alone", async () => {
  const input = ReadableStream.from([new Uint8Array([0, 0, 1, 0])]); // 256 bytes announced
  await assert.rejects(
    collect(readLengthPrefixed(input, { maxFrameBytes: 255 })),
    (error) => error instanceof FrameTooLargeError && error.size === 256,
  );
});

Deno.test("readFramed() takes any push parser and names its unit in errors", async () => {
  const input = ReadableStream.from([encoder.encode("x\ny")]);
  await assert.rejects(collect(readFramed(input, new LineParser())), /Cannot read a line/);
});
