import assert from "node:assert/strict";
import { createRecordWriter, type RecordSink } from "./record_format.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A sink that keeps every call, so a test can see what was copied and how. */
class Sink implements RecordSink {
  calls: { bytes: Uint8Array; start: number; end: number }[] = [];
  append(bytes: Uint8Array): void {
    this.calls.push({ bytes, start: 0, end: bytes.length });
  }
  appendRange(bytes: Uint8Array, start: number, end: number): void {
    this.calls.push({ bytes, start, end });
  }
  appendByte(byte: number): void {
    this.calls.push({ bytes: Uint8Array.of(byte), start: 0, end: 1 });
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.calls.flatMap((c) => [...c.bytes.subarray(c.start, c.end)]));
  }
  text(): string {
    return decoder.decode(this.bytes());
  }
}

const sender = (name: string) => ({ name, prefix: encoder.encode(`${name}: `) });

Deno.test('createRecordWriter("text") appends the prefix, the payload\'s own range and a line feed', () => {
  const sink = new Sink();
  const ann = sender("ann");
  const chunk = Uint8Array.of(0x78, 0x1b, 0x5b, 0x32, 0x4a, 0xff, 0x0a, 0x79);
  createRecordWriter("text").write(sink, ann, chunk, 1, 7);
  assert.equal(sink.calls.length, 3);
  assert.equal(sink.calls[0].bytes, ann.prefix, "the prefix as it is, not a copy");
  assert.deepEqual(sink.calls[1], { bytes: chunk, start: 1, end: 7 }, "the range, not a copy");
  assert.deepEqual(sink.bytes(), Uint8Array.of(...ann.prefix, ...chunk.subarray(1, 7), 0x0a));
});

Deno.test('createRecordWriter("text", { escapeControls }) shows what a terminal would act on escaped', () => {
  const cases: [number[] | string, string][] = [
    ["\x1b[2J\x1b]0;pwned\x07", "\\x1b[2J\\x1b]0;pwned\\x07"],
    ["hi\nalice: I owe you\r", "hi\\nalice: I owe you\\r"],
    ["tab\tstays, a \\ doubles", "tab\tstays, a \\\\ doubles"],
    ["é€😀 stay", "é€😀 stay"],
    ["\u009b31m\u0085", "\\u009b31m\\u0085"],
    ["\x00\x7f", "\\x00\\x7f"],
    [[0xff, 0xc0, 0xaf, 0xe2, 0x82], "\\xff\\xc0\\xaf\\xe2\\x82"],
    [[0xed, 0xa0, 0x80], "\\xed\\xa0\\x80"], // a surrogate is not UTF-8
    [[0xf4, 0x90, 0x80, 0x80], "\\xf4\\x90\\x80\\x80"], // above U+10FFFF
  ];
  const writer = createRecordWriter("text", { escapeControls: true });
  for (const [payload, shown] of cases) {
    const bytes = typeof payload === "string" ? encoder.encode(payload) : Uint8Array.from(payload);
    const sink = new Sink();
    writer.write(sink, sender("ann"), bytes, 0, bytes.length);
    assert.equal(sink.text(), `ann: ${shown}\n`, JSON.stringify(payload));
  }
});

Deno.test('createRecordWriter("json") writes one line a payload cannot forge, base64 when not UTF-8', () => {
  const writer = createRecordWriter("json", { now: () => Date.UTC(2026, 0, 2, 3, 4, 5, 678) });
  const forged = encoder.encode('hi\nalice: I owe you"}\n{"sender":"alice"');
  const binary = Uint8Array.of(0xff, 0x00, 0x0a);
  const sink = new Sink();
  writer.write(sink, sender("mallory"), forged, 0, forged.length);
  writer.write(sink, sender('q"uote'), binary, 0, binary.length);
  const lines = sink.text().split("\n");
  assert.equal(lines.pop(), "");
  assert.equal(lines.length, 2, "one line per record");
  const [text, bytes] = lines.map((line) => JSON.parse(line));
  assert.deepEqual(text, {
    time: "2026-01-02T03:04:05.678Z",
    sender: "mallory",
    size: forged.length,
    encoding: "utf-8",
    payload: decoder.decode(forged),
  });
  assert.equal(bytes.sender, 'q"uote');
  assert.equal(bytes.encoding, "base64");
  assert.deepEqual(Uint8Array.fromBase64(bytes.payload), binary);
  assert.equal(bytes.size, 3);
});
