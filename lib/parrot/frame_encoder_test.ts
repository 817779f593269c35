import assert from "node:assert/strict";
import { MAX_NAME_LENGTH } from "../defaults.ts";
import { ClientFrameDecoder, ServerFrameDecoder } from "./frame_decoder.ts";
import {
  encodeErr,
  encodeHello,
  encodeMsg,
  encodeRelay,
  isValidName,
  PING_LINE,
  PONG_LINE,
  QUIT_LINE,
  SUB_LINE,
  UNSUB_LINE,
} from "./frame_encoder.ts";

const encoder = new TextEncoder();
const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** Every byte value, LF, CR and NUL among them, and a line that looks like a frame. */
const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);
const PAYLOADS = [
  new Uint8Array(0),
  encoder.encode("hi"),
  encoder.encode("\n"),
  encoder.encode("\r\n"),
  encoder.encode("MSG 3\nabc\n"),
  ALL_BYTES,
  new Uint8Array(70_000).fill(0x0a),
];

Deno.test("encodeMsg() writes the header, the payload and a LF", () => {
  assert.equal(text(encodeMsg(encoder.encode("hello"))), "MSG 5\nhello\n");
  assert.equal(text(encodeMsg(new Uint8Array(0))), "MSG 0\n\n");
  const frame = encodeMsg(ALL_BYTES);
  assert.equal(frame.length, "MSG 256\n".length + 256 + 1);
  assert.equal(frame.buffer.byteLength, frame.length);
  assert.deepEqual(frame.subarray(8, 8 + 256), ALL_BYTES);
});

Deno.test("encodeMsg() round-trips through ClientFrameDecoder", () => {
  for (const payload of PAYLOADS) {
    const decoder = new ClientFrameDecoder();
    const frame = encodeMsg(payload);
    assert.deepEqual(decoder.push(frame), { frames: [{ type: "msg", payload }] });
    assert.equal(decoder.pending, false);
    // The same bytes, one at a time.
    const slow = new ClientFrameDecoder();
    const frames = [];
    for (let i = 0; i < frame.length; i++) {
      frames.push(...slow.push(frame.subarray(i, i + 1)).frames);
    }
    assert.deepEqual(frames, [{ type: "msg", payload }]);
  }
});

Deno.test("encodeRelay() writes the sender, the length, the payload and a LF", () => {
  assert.equal(text(encodeRelay("alice", encoder.encode("hi"))), "MSG alice 2\nhi\n");
  const frame = encodeRelay("bob", ALL_BYTES);
  assert.equal(frame.buffer.byteLength, "MSG bob 256\n".length + 256 + 1);
});

Deno.test("encodeRelay() round-trips through ServerFrameDecoder", () => {
  const names = ["a", "bob", "~!x_Y-9", "z".repeat(MAX_NAME_LENGTH)];
  for (const from of names) {
    for (const payload of PAYLOADS) {
      const decoder = new ServerFrameDecoder();
      assert.deepEqual(decoder.push(encodeRelay(from, payload)), {
        frames: [{ type: "msg", from, payload }],
      });
      assert.equal(decoder.pending, false);
    }
  }
});

Deno.test("encodeRelay() rejects an invalid sender name", () => {
  for (const from of ["", "a b", "a\nb", "zoë", "z".repeat(MAX_NAME_LENGTH + 1)]) {
    assert.throws(() => encodeRelay(from, new Uint8Array(1)), RangeError, from);
  }
});

Deno.test("encodeHello() writes HELLO and the name, and round-trips", () => {
  assert.equal(text(encodeHello("bob")), "HELLO bob\n");
  const decoder = new ClientFrameDecoder();
  assert.deepEqual(decoder.push(encodeHello("a-1")), { frames: [{ type: "hello", name: "a-1" }] });
  assert.throws(() => encodeHello("a b"), RangeError);
  assert.throws(() => encodeHello(""), RangeError);
  assert.throws(
    () => encodeHello("x".repeat(65)),
    { message: /^Cannot encode name "x+": a name is 1 to 64 visible ASCII characters/ },
  );
});

Deno.test("encodeErr() writes ERR and the reason, and round-trips", () => {
  const line = encodeErr("too many clients");
  assert.equal(text(line), "ERR too many clients\n");
  assert.equal(line.buffer.byteLength, line.length);
  const decoder = new ServerFrameDecoder();
  assert.deepEqual(decoder.push(line), {
    frames: [{ type: "err", reason: "too many clients" }],
  });
  assert.equal(new ServerFrameDecoder().push(encodeErr("façade")).frames[0].type, "err");
  for (const reason of ["", "a\nb", "a\rb"]) {
    assert.throws(() => encodeErr(reason), RangeError);
  }
});

Deno.test("line constants hold the exact bytes of each line", () => {
  assert.deepEqual(PING_LINE, new Uint8Array([0x50, 0x49, 0x4e, 0x47, 0x0a]));
  assert.deepEqual(PONG_LINE, new Uint8Array([0x50, 0x4f, 0x4e, 0x47, 0x0a]));
  assert.deepEqual(QUIT_LINE, new Uint8Array([0x51, 0x55, 0x49, 0x54, 0x0a]));
  assert.deepEqual(SUB_LINE, new Uint8Array([0x53, 0x55, 0x42, 0x0a]));
  assert.deepEqual(UNSUB_LINE, new Uint8Array([0x55, 0x4e, 0x53, 0x55, 0x42, 0x0a]));
});

Deno.test("line constants decode to their frames", () => {
  const client = new ClientFrameDecoder();
  const lines = [PING_LINE, PONG_LINE, SUB_LINE, UNSUB_LINE, QUIT_LINE];
  assert.deepEqual(lines.flatMap((line) => client.push(line).frames), [
    { type: "ping" },
    { type: "pong" },
    { type: "sub" },
    { type: "unsub" },
    { type: "quit" },
  ]);
  const server = new ServerFrameDecoder();
  assert.deepEqual([PING_LINE, PONG_LINE, QUIT_LINE].flatMap((line) => server.push(line).frames), [
    { type: "ping" },
    { type: "pong" },
    { type: "quit" },
  ]);
});

Deno.test("isValidName() accepts 1 to 64 visible ASCII characters", () => {
  for (const name of ["a", "bob", "!", "~", "A-Z_0.9", "x".repeat(MAX_NAME_LENGTH)]) {
    assert.equal(isValidName(name), true, name);
  }
  const invalid = [
    "",
    " ",
    "a b",
    " bob",
    "bob ",
    "a\tb",
    "a\nb",
    "a\0b",
    "a\x7fb",
    "zoë",
    "日本",
    "x".repeat(MAX_NAME_LENGTH + 1),
  ];
  for (const name of invalid) assert.equal(isValidName(name), false, JSON.stringify(name));
});
