import assert from "node:assert/strict";
import { LineParser, LineTooLongError } from "./line_parser.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (lines: Uint8Array[]) => lines.map((line) => decoder.decode(line));

/** Feeds `input` in chunks of `size` bytes; returns every line, as text. */
function parseInChunks(input: Uint8Array, size: number, maxLineBytes = 64): string[] {
  const parser = new LineParser({ maxLineBytes });
  const lines: string[] = [];
  for (let i = 0; i < input.length; i += size) {
    lines.push(...text(parser.push(input.subarray(i, i + size))));
  }
  assert.equal(parser.buffered, 0, "nothing left over");
  return lines;
}

Deno.test("LineParser.push() returns the complete lines of a chunk without their line ends", () => {
  const parser = new LineParser();
  assert.deepEqual(text(parser.push(encoder.encode("one\ntwo\r\n\nthree\n"))), [
    "one",
    "two",
    "",
    "three",
  ]);
  assert.equal(parser.buffered, 0);
});

Deno.test("LineParser.push() holds an unfinished line until its end arrives", () => {
  const parser = new LineParser();
  assert.deepEqual(parser.push(encoder.encode("par")), []);
  assert.equal(parser.buffered, 3);
  assert.deepEqual(parser.push(encoder.encode("tial")), []);
  assert.deepEqual(text(parser.push(encoder.encode(" line\nnext"))), ["partial line"]);
  assert.equal(parser.buffered, 4);
});

Deno.test("LineParser.push() gives the same lines whatever the chunking, one byte at a time included", () => {
  const input = encoder.encode("SET a 1\r\nGET a\n\r\nbinary \x00\xff ok\nlast\r\n");
  const whole = parseInChunks(input, input.length);
  assert.deepEqual(whole, ["SET a 1", "GET a", "", "binary \x00\xff ok", "last"]);
  for (let size = 1; size <= input.length; size++) {
    assert.deepEqual(parseInChunks(input, size), whole, `chunks of ${size} bytes`);
  }
});

Deno.test("LineParser.push() keeps lines binary-safe: bytes out are the bytes in", () => {
  const bytes = new Uint8Array([0, 1, 0xfe, 0xff, 0x0d, 0x41, 0x0a]);
  const parser = new LineParser();
  assert.deepEqual(parser.push(bytes), [new Uint8Array([0, 1, 0xfe, 0xff, 0x0d, 0x41])]);
});

Deno.test("LineParser.push() returns copies: the caller may reuse its chunk", () => {
  const parser = new LineParser();
  const chunk = encoder.encode("abc\nde");
  const [line] = parser.push(chunk);
  chunk.fill(0x7a);
  assert.equal(decoder.decode(line), "abc");
  chunk.set(encoder.encode("f\n"));
  assert.deepEqual(text(parser.push(chunk.subarray(0, 2))), ["def"]);
});

Deno.test("LineParser accepts a line of exactly maxLineBytes, with either line end, at any split", () => {
  const input = encoder.encode("12345678\n12345678\r\n");
  for (let size = 1; size <= input.length; size++) {
    assert.deepEqual(parseInChunks(input, size, 8), ["12345678", "12345678"]);
  }
});

Deno.test("LineParser.push() throws LineTooLongError naming the limit, before the line end arrives", () => {
  const parser = new LineParser({ maxLineBytes: 8 });
  assert.deepEqual(parser.push(encoder.encode("12345678")), []);
  assert.throws(
    () => parser.push(encoder.encode("9")),
    (error) =>
      error instanceof LineTooLongError && error.maxLineBytes === 8 &&
      error.message === "Cannot read a line: it is longer than the limit of 8 bytes",
  );
  assert.equal(parser.buffered, 0, "nothing of it is held");
  assert.throws(() => parser.push(encoder.encode("\n")), LineTooLongError, "it stays failed");
});

Deno.test("LineParser.push() throws LineTooLongError for a long line inside one chunk, at any split", () => {
  const input = encoder.encode("ok\n123456789\nnever\n");
  for (let size = 1; size <= input.length; size++) {
    const parser = new LineParser({ maxLineBytes: 8 });
    const lines: string[] = [];
    assert.throws(() => {
      for (let i = 0; i < input.length; i += size) {
        lines.push(...text(parser.push(input.subarray(i, i + size))));
      }
    }, LineTooLongError);
    assert.ok(!lines.includes("never"), `chunks of ${size} bytes`);
  }
});

Deno.test("LineParser does not take a \\r followed by more bytes as the end of a line at the limit", () => {
  const parser = new LineParser({ maxLineBytes: 4 });
  assert.deepEqual(parser.push(encoder.encode("abcd\r")), []);
  assert.throws(() => parser.push(encoder.encode("e")), LineTooLongError);
});

Deno.test("new LineParser() refuses a limit that is not a whole number of bytes", () => {
  assert.throws(() => new LineParser({ maxLineBytes: -1 }), RangeError);
  assert.throws(() => new LineParser({ maxLineBytes: 1.5 }), RangeError);
});
