import assert from "node:assert/strict";
import fc from "fast-check";
import {
  encodeLengthPrefixed,
  FrameTooLargeError,
  LengthPrefixedParser,
} from "./length_prefixed_parser.ts";

const encoder = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}

/** Feeds `input` in chunks of `size` bytes; returns every frame. */
function parseInChunks(input: Uint8Array, size: number, maxFrameBytes = 1024): Uint8Array[] {
  const parser = new LengthPrefixedParser({ maxFrameBytes });
  const frames: Uint8Array[] = [];
  for (let i = 0; i < input.length; i += size) {
    frames.push(...parser.push(input.subarray(i, i + size)));
  }
  assert.equal(parser.buffered, 0, "nothing left over");
  return frames;
}

Deno.test("encodeLengthPrefixed() puts a 4-byte big-endian length before the payload", () => {
  const payload = new Uint8Array(0x0102_03).fill(9);
  const frame = encodeLengthPrefixed(payload);
  assert.deepEqual(frame.subarray(0, 4), new Uint8Array([0, 1, 2, 3]));
  assert.equal(frame.length, 4 + payload.length);
  assert.deepEqual(encodeLengthPrefixed(new Uint8Array(0)), new Uint8Array(4));
});

Deno.test("LengthPrefixedParser.push() returns every frame of a chunk, empty ones included", () => {
  const payloads = [encoder.encode("one"), new Uint8Array(0), encoder.encode("three")];
  const parser = new LengthPrefixedParser();
  assert.deepEqual(parser.push(concat(...payloads.map(encodeLengthPrefixed))), payloads);
  assert.equal(parser.buffered, 0);
});

Deno.test("LengthPrefixedParser.push() gives the same frames whatever the chunking, one byte at a time included", () => {
  const payloads = [encoder.encode("hello"), new Uint8Array([0, 0xff, 0x0a]), new Uint8Array(0)];
  const input = concat(...payloads.map(encodeLengthPrefixed));
  for (let size = 1; size <= input.length; size++) {
    assert.deepEqual(parseInChunks(input, size), payloads, `chunks of ${size} bytes`);
  }
});

Deno.test("LengthPrefixedParser.push() reassembles any frames split at any points (property)", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 20 }),
      (payloads, cuts) => {
        const input = concat(...payloads.map(encodeLengthPrefixed));
        const parser = new LengthPrefixedParser({ maxFrameBytes: 300 });
        const frames: Uint8Array[] = [];
        for (let at = 0, i = 0; at < input.length; i++) {
          const size = cuts[i % cuts.length];
          frames.push(...parser.push(input.subarray(at, at + size)));
          at += size;
        }
        assert.deepEqual(frames, payloads);
        assert.equal(parser.buffered, 0);
      },
    ),
  );
});

Deno.test("LengthPrefixedParser.push() holds an unfinished frame and counts its bytes", () => {
  const parser = new LengthPrefixedParser();
  const frame = encodeLengthPrefixed(encoder.encode("abcdef"));
  assert.deepEqual(parser.push(frame.subarray(0, 3)), []);
  assert.equal(parser.buffered, 3);
  assert.deepEqual(parser.push(frame.subarray(3, 7)), []);
  assert.equal(parser.buffered, 7);
  assert.deepEqual(parser.push(frame.subarray(7)), [encoder.encode("abcdef")]);
  assert.equal(parser.buffered, 0);
});

Deno.test("LengthPrefixedParser.push() returns copies: the caller may reuse its chunk", () => {
  const parser = new LengthPrefixedParser();
  const chunk = encodeLengthPrefixed(encoder.encode("keep"));
  const [frame] = parser.push(chunk);
  chunk.fill(0);
  assert.deepEqual(frame, encoder.encode("keep"));
});

Deno.test("LengthPrefixedParser accepts a frame of exactly maxFrameBytes", () => {
  const payload = new Uint8Array(16).fill(1);
  assert.deepEqual(parseInChunks(encodeLengthPrefixed(payload), 5, 16), [payload]);
});

Deno.test("LengthPrefixedParser.push() throws FrameTooLargeError naming the size and limit from the header alone", () => {
  const parser = new LengthPrefixedParser({ maxFrameBytes: 16 });
  // A header announcing 4 GiB - 1: refused before anything is allocated for it.
  assert.deepEqual(parser.push(new Uint8Array([0xff, 0xff])), []);
  assert.throws(
    () => parser.push(new Uint8Array([0xff, 0xff])),
    (error) =>
      error instanceof FrameTooLargeError && error.size === 0xffff_ffff &&
      error.maxFrameBytes === 16 &&
      error.message === "Cannot read a frame of 4294967295 bytes: the limit is 16 bytes",
  );
  assert.throws(() => parser.push(new Uint8Array(1)), FrameTooLargeError, "it stays failed");
});

Deno.test("LengthPrefixedParser.push() throws FrameTooLargeError for one byte over the limit", () => {
  const parser = new LengthPrefixedParser({ maxFrameBytes: 16 });
  assert.throws(() => parser.push(encodeLengthPrefixed(new Uint8Array(17))), /of 17 bytes/);
});
