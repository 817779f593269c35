import assert from "node:assert/strict";
import { DEFAULT_MAX_FRAME_BYTES, MAX_CONTROL_LINE_BYTES } from "../defaults.ts";
import { concatBytes as bytes } from "../testing.ts";
import { type ClientFrame, ProtocolError, REASON, type ServerFrame } from "./frame.ts";
import {
  ClientFrameDecoder,
  type DecodeResult,
  type DecoderOptions,
  parseAuthLine,
  PAYLOAD_RANGE,
  type RangedFrames,
  ServerFrameDecoder,
} from "./frame_decoder.ts";

type Decoder<F> = { push(chunk: Uint8Array): DecodeResult<F> };

/** Copies every payload out, so frames outlive the chunk they came from. */
function detach<F extends object>(frame: F): F {
  return "payload" in frame && frame.payload instanceof Uint8Array
    ? { ...frame, payload: frame.payload.slice() }
    : frame;
}

interface Fed<F> {
  frames: F[];
  errors: ProtocolError[];
}

/**
 * Feeds `input` split at `points` through one reused read buffer, which is
 * scribbled over after each push, as a socket reader that reuses its buffer
 * would. Frames are copied out before the scribbling.
 */
function feed<F extends object>(decoder: Decoder<F>, input: Uint8Array, points: number[]): Fed<F> {
  const scratch = new Uint8Array(input.length + 1);
  const frames: F[] = [];
  const errors: ProtocolError[] = [];
  let previous = 0;
  for (const point of [...points, input.length]) {
    const piece = input.subarray(previous, point);
    previous = point;
    scratch.set(piece);
    const result = decoder.push(scratch.subarray(0, piece.length));
    frames.push(...result.frames.map(detach));
    scratch.fill(0xee);
    if (result.error) {
      errors.push(result.error);
      break;
    }
  }
  return { frames, errors };
}

function everyByte(length: number): number[] {
  return Array.from({ length: Math.max(0, length - 1) }, (_, i) => i + 1);
}

const MIXED_PAYLOAD = bytes("a\nb\rc\0d\r\nMSG 3\nxyz");
const MIXED_STREAM = bytes(
  "HELLO bob\r\n",
  `MSG ${MIXED_PAYLOAD.length}\n`,
  MIXED_PAYLOAD,
  "\n",
  "hello world\r\n",
  "\n",
  "\r\n",
  "PING\n",
  "SUB\r\n",
  "UNSUB\n",
  "ping\n",
  "PONG\n",
  "MSG 0\n\n",
  "MSG 3\r\nabc\r\n",
  "PING x\n",
  "\0\xff\n",
  `MSG ${MIXED_PAYLOAD.length}\n`,
  MIXED_PAYLOAD,
  "\r\n",
  "QUIT\n",
);
const MIXED_FRAMES: ClientFrame[] = [
  { type: "hello", name: "bob" },
  { type: "msg", payload: MIXED_PAYLOAD },
  { type: "text", payload: bytes("hello world") },
  { type: "ping" },
  { type: "sub" },
  { type: "unsub" },
  { type: "text", payload: bytes("ping") },
  { type: "pong" },
  { type: "msg", payload: new Uint8Array(0) },
  { type: "msg", payload: bytes("abc") },
  { type: "text", payload: bytes("PING x") },
  { type: "text", payload: bytes("\0\xff") },
  { type: "msg", payload: MIXED_PAYLOAD },
  { type: "quit" },
];

function decodeClient(input: Uint8Array, points: number[], options?: DecoderOptions) {
  const decoder = new ClientFrameDecoder(options);
  return { decoder, ...feed(decoder, input, points) };
}

Deno.test("ClientFrameDecoder.push() decodes a stream of mixed frames pushed whole", () => {
  const { decoder, frames, errors } = decodeClient(MIXED_STREAM, []);
  assert.deepEqual(errors, []);
  assert.deepEqual(frames, MIXED_FRAMES);
  assert.equal(decoder.pending, false);
  assert.equal(decoder.bufferedBytes, 0);
});

Deno.test("ClientFrameDecoder.push() decodes a stream pushed one byte at a time", () => {
  const { decoder, frames, errors } = decodeClient(MIXED_STREAM, everyByte(MIXED_STREAM.length));
  assert.deepEqual(errors, []);
  assert.deepEqual(frames, MIXED_FRAMES);
  assert.equal(decoder.pending, false);
});

Deno.test("ClientFrameDecoder.push() decodes a frame split at every byte boundary", () => {
  for (let i = 0; i <= MIXED_STREAM.length; i++) {
    const { frames, errors } = decodeClient(MIXED_STREAM, [i]);
    assert.deepEqual(errors, [], `split at ${i}`);
    assert.deepEqual(frames, MIXED_FRAMES, `split at ${i}`);
  }
});

Deno.test("ClientFrameDecoder.push() decodes a stream split into three pushes", () => {
  let cases = 0;
  for (let i = 0; i <= MIXED_STREAM.length; i += 3) {
    for (let j = i; j <= MIXED_STREAM.length; j += 7) {
      const { frames, errors } = decodeClient(MIXED_STREAM, [i, j]);
      assert.deepEqual(errors, [], `split at ${i} and ${j}`);
      assert.deepEqual(frames, MIXED_FRAMES, `split at ${i} and ${j}`);
      cases++;
    }
  }
  assert.ok(cases > 100);
});

Deno.test("ClientFrameDecoder.push() accepts an empty chunk in any state", () => {
  const decoder = new ClientFrameDecoder();
  assert.deepEqual(decoder.push(new Uint8Array(0)), { frames: [] });
  decoder.push(bytes("MSG 2\na"));
  assert.deepEqual(decoder.push(new Uint8Array(0)), { frames: [] });
  assert.deepEqual(decoder.push(bytes("b\n")).frames.map(detach), [
    { type: "msg", payload: bytes("ab") },
  ]);
});

const CLIENT_ERRORS: [string | Uint8Array, string][] = [
  ["HELLO\n", REASON.invalidName],
  ["HELLO \n", REASON.invalidName],
  ["HELLO  bob\n", REASON.invalidName],
  ["HELLO a b\n", REASON.invalidName],
  [`HELLO ${"a".repeat(65)}\n`, REASON.invalidName],
  [`HELLO ${"a".repeat(400)}\n`, REASON.invalidName],
  ["HELLO a\x01b\n", REASON.invalidName],
  ["HELLO a\tb\n", REASON.invalidName],
  ["HELLO a\x7fb\n", REASON.invalidName],
  ["HELLO zoë\n", REASON.invalidName],
  [bytes("HELLO a", new Uint8Array([0xff]), "\n"), REASON.invalidName],
  ["MSG abc\n", REASON.malformedFrame],
  ["MSG -1\n", REASON.malformedFrame],
  ["MSG +1\n", REASON.malformedFrame],
  ["MSG 1.5\n", REASON.malformedFrame],
  ["MSG\n", REASON.malformedFrame],
  ["MSG \n", REASON.malformedFrame],
  ["MSG 1 2\n", REASON.malformedFrame],
  ["MSG 0x10\n", REASON.malformedFrame],
  ["MSG  1\n", REASON.malformedFrame],
  ["MSG 1 \n", REASON.malformedFrame],
  [`MSG ${"9".repeat(400)}x\n`, REASON.malformedFrame],
  [`MSG ${DEFAULT_MAX_FRAME_BYTES + 1}\n`, REASON.frameTooLarge],
  [`MSG ${"9".repeat(400)}\n`, REASON.frameTooLarge],
  ["MSG 3\nabcX", REASON.malformedFrame],
  ["MSG 3\nabc\rX", REASON.malformedFrame],
  ["MSG 3\nabcd\n", REASON.malformedFrame],
  ["MSG 0\nX", REASON.malformedFrame],
  ["MSG 3\nabc\r\r\n", REASON.malformedFrame],
  [`${"a".repeat(MAX_CONTROL_LINE_BYTES + 1)}\n`, REASON.lineTooLong],
];

Deno.test("ClientFrameDecoder.push() reports each protocol error with its reason", () => {
  for (const [input, reason] of CLIENT_ERRORS) {
    const line = bytes(input);
    const label = JSON.stringify(new TextDecoder().decode(line).slice(0, 40));
    for (const points of [[], everyByte(line.length)]) {
      const { frames, errors } = decodeClient(line, points);
      assert.deepEqual(frames, [], label);
      assert.equal(errors.length, 1, label);
      assert.ok(errors[0] instanceof ProtocolError, label);
      assert.equal(errors[0].reason, reason, label);
      assert.match(errors[0].message, /^[A-Z][^\n]*[^.]$/, label);
    }
  }
});

Deno.test("ClientFrameDecoder.push() returns the frames before an error and stays failed", () => {
  for (const [input, reason] of CLIENT_ERRORS) {
    const decoder = new ClientFrameDecoder();
    const result = decoder.push(bytes("PING\nHELLO bob\n", input, "PONG\n"));
    assert.deepEqual(result.frames, [{ type: "ping" }, { type: "hello", name: "bob" }]);
    assert.equal(result.error?.reason, reason);
    assert.equal(decoder.pending, false);
    assert.equal(decoder.bufferedBytes, 0);
    const again = decoder.push(bytes("PING\n"));
    assert.deepEqual(again.frames, []);
    assert.equal(again.error, result.error);
  }
});

Deno.test("ClientFrameDecoder.push() explains errors in specific messages", () => {
  const message = (input: string) => new ClientFrameDecoder().push(bytes(input)).error?.message;
  assert.equal(message("MSG abc\n"), 'Cannot parse frame length "abc": not a number');
  assert.equal(message("MSG\n"), "Cannot parse frame length: it is missing");
  assert.equal(
    message("MSG 2000000\n"),
    'Cannot accept frame length "2000000": the limit is 1048576 bytes',
  );
  assert.equal(
    message("HELLO a b\n"),
    'Cannot accept name "a b": a name is 1 to 64 visible ASCII characters without spaces',
  );
  assert.equal(
    message("MSG 1\naX"),
    "Cannot find the line end after a 1-byte payload: got byte 0x58 instead of LF",
  );
  assert.equal(
    message("a".repeat(5000)),
    "Cannot accept a control line longer than 4096 bytes",
  );
  const long = message(`MSG ${"1".repeat(400)}\n`) ?? "";
  assert.ok(long.length < 120, long);
  assert.match(long, /\(400 bytes\): the limit is 1048576 bytes$/);
});

Deno.test("ClientFrameDecoder.push() refuses a control line as soon as it is too long", () => {
  const decoder = new ClientFrameDecoder();
  const piece = bytes("a".repeat(1000));
  for (let i = 0; i < 4; i++) assert.deepEqual(decoder.push(piece), { frames: [] });
  assert.equal(decoder.bufferedBytes, 4000);
  assert.deepEqual(decoder.push(bytes("a".repeat(96))), { frames: [] });
  assert.equal(decoder.bufferedBytes, MAX_CONTROL_LINE_BYTES);
  // Byte 4097, not a LF, is one too many: no need to wait for the line end.
  const result = decoder.push(bytes("a"));
  assert.equal(result.error?.reason, REASON.lineTooLong);
  assert.deepEqual(result.frames, []);
});

Deno.test("ClientFrameDecoder.push() refuses an unended line longer than the limit in one chunk", () => {
  const decoder = new ClientFrameDecoder();
  const result = decoder.push(bytes("PING\n", "a".repeat(MAX_CONTROL_LINE_BYTES + 1)));
  assert.deepEqual(result.frames, [{ type: "ping" }]);
  assert.equal(result.error?.reason, REASON.lineTooLong);
});

Deno.test("ClientFrameDecoder.push() accepts a control line of exactly the limit", () => {
  const line = "a".repeat(MAX_CONTROL_LINE_BYTES);
  for (const end of ["\n", "\r\n"]) {
    const input = bytes(line, end);
    for (
      const points of [[], [MAX_CONTROL_LINE_BYTES], [MAX_CONTROL_LINE_BYTES + 1], [1000, 3000]]
    ) {
      const { frames, errors } = decodeClient(input, points);
      assert.deepEqual(errors, []);
      assert.deepEqual(frames, [{ type: "text", payload: bytes(line) }]);
    }
  }
  // A CR past the limit is fine until the byte after it turns out not to be LF.
  const decoder = new ClientFrameDecoder();
  assert.deepEqual(decoder.push(bytes(line, "\r")), { frames: [] });
  assert.equal(decoder.push(bytes("x")).error?.reason, REASON.lineTooLong);
});

Deno.test("ClientFrameDecoder.push() honours maxLineBytes", () => {
  const decoder = new ClientFrameDecoder({ maxLineBytes: 4 });
  assert.deepEqual(decoder.push(bytes("PING\nab")).frames, [{ type: "ping" }]);
  assert.deepEqual(decoder.push(bytes("cd")), { frames: [] });
  assert.equal(decoder.push(bytes("e")).error?.reason, REASON.lineTooLong);
});

Deno.test("ClientFrameDecoder.push() reports frame too large when only the header arrived", () => {
  const decoder = new ClientFrameDecoder();
  const result = decoder.push(bytes(`MSG ${DEFAULT_MAX_FRAME_BYTES + 1}\n`));
  assert.equal(result.error?.reason, REASON.frameTooLarge);
  assert.equal(decoder.bufferedBytes, 0);

  const huge = new ClientFrameDecoder().push(bytes(`MSG ${"9".repeat(400)}\n`));
  assert.equal(huge.error?.reason, REASON.frameTooLarge);
});

Deno.test("ClientFrameDecoder.push() honours maxFrameBytes", () => {
  const decoder = new ClientFrameDecoder({ maxFrameBytes: 10 });
  const ok = decoder.push(bytes("MSG 10\n0123456789\nMSG 0010\n0123456789\n"));
  assert.deepEqual(ok.frames.map(detach), [
    { type: "msg", payload: bytes("0123456789") },
    { type: "msg", payload: bytes("0123456789") },
  ]);
  assert.equal(decoder.push(bytes("MSG 11\n")).error?.reason, REASON.frameTooLarge);
  assert.equal(
    new ClientFrameDecoder({ maxFrameBytes: 0 }).push(bytes("MSG 1\n")).error?.reason,
    REASON.frameTooLarge,
  );
});

Deno.test("ClientFrameDecoder.push() accepts a payload of exactly the default limit", () => {
  const payload = new Uint8Array(DEFAULT_MAX_FRAME_BYTES).fill(0x0a);
  const input = bytes(`MSG ${payload.length}\n`, payload, "\n");
  for (const points of [[], [10], [10, 500_000], [input.length - 1]]) {
    const { frames, errors } = decodeClient(input, points);
    assert.deepEqual(errors, []);
    assert.equal(frames.length, 1);
    assert.deepEqual(frames[0], { type: "msg", payload });
  }
});

Deno.test("ClientFrameDecoder constructor rejects invalid limits", () => {
  assert.throws(() => new ClientFrameDecoder({ maxFrameBytes: -1 }), RangeError);
  assert.throws(() => new ClientFrameDecoder({ maxFrameBytes: 1.5 }), RangeError);
  assert.throws(() => new ClientFrameDecoder({ maxFrameBytes: 2 ** 33 }), RangeError);
  assert.throws(() => new ClientFrameDecoder({ maxLineBytes: 0 }), RangeError);
  assert.throws(() => new ServerFrameDecoder({ maxLineBytes: NaN }), RangeError);
});

Deno.test("ClientFrameDecoder.pending and .bufferedBytes follow a frame", () => {
  const decoder = new ClientFrameDecoder();
  assert.equal(decoder.pending, false);
  assert.equal(decoder.bufferedBytes, 0);

  decoder.push(bytes("PI"));
  assert.equal(decoder.pending, true);
  assert.equal(decoder.bufferedBytes, 2);
  decoder.push(bytes("NG\r"));
  assert.equal(decoder.bufferedBytes, 5);
  assert.deepEqual(decoder.push(bytes("\n")).frames, [{ type: "ping" }]);
  assert.equal(decoder.pending, false);
  assert.equal(decoder.bufferedBytes, 0);

  // Header complete, no payload yet: a frame is still expected.
  decoder.push(bytes("MSG 5\n"));
  assert.equal(decoder.pending, true);
  assert.equal(decoder.bufferedBytes, 0);
  decoder.push(bytes("ab"));
  assert.equal(decoder.pending, true);
  assert.equal(decoder.bufferedBytes, 2);
  decoder.push(bytes("cde"));
  assert.equal(decoder.pending, true);
  assert.equal(decoder.bufferedBytes, 5);
  decoder.push(bytes("\r"));
  assert.equal(decoder.pending, true);
  assert.equal(decoder.bufferedBytes, 6);
  assert.deepEqual(decoder.push(bytes("\n")).frames.map(detach), [
    { type: "msg", payload: bytes("abcde") },
  ]);
  assert.equal(decoder.pending, false);
  assert.equal(decoder.bufferedBytes, 0);

  // Empty lines leave nothing pending.
  decoder.push(bytes("\r\n\n"));
  assert.equal(decoder.pending, false);
  decoder.push(bytes("\r"));
  assert.equal(decoder.pending, true);
  assert.equal(decoder.bufferedBytes, 1);
});

Deno.test("ClientFrameDecoder.push() returns a payload inside the chunk without copying it", () => {
  const chunk = bytes("MSG 3\nabc\nhello\r\nMSG 2\r\nxy\r\n");
  const frames = new ClientFrameDecoder().push(chunk).frames;
  assert.equal(frames.length, 3);
  const offsets = [6, 10, 24];
  frames.forEach((frame, i) => {
    assert.ok(frame.type === "msg" || frame.type === "text");
    assert.equal(frame.payload.buffer, chunk.buffer);
    assert.equal(frame.payload.byteOffset, offsets[i]);
  });
});

Deno.test("ClientFrameDecoder.push() copies a payload that spans chunks into an exact buffer", () => {
  const decoder = new ClientFrameDecoder();
  const first = bytes("MSG 6\nabc");
  const second = bytes("def\n");
  decoder.push(first);
  const [frame] = decoder.push(second).frames;
  assert.ok(frame.type === "msg");
  assert.notEqual(frame.payload.buffer, first.buffer);
  assert.notEqual(frame.payload.buffer, second.buffer);
  assert.equal(frame.payload.buffer.byteLength, 6);
  assert.deepEqual(frame.payload, bytes("abcdef"));
});

Deno.test("ClientFrameDecoder.push() does not keep a text line of an earlier chunk", () => {
  const decoder = new ClientFrameDecoder();
  const first = bytes("hel");
  decoder.push(first);
  first.fill(0);
  const [frame] = decoder.push(bytes("lo\nab")).frames;
  assert.deepEqual(frame, { type: "text", payload: bytes("hello") });
  const [next] = decoder.push(bytes("c\n")).frames;
  assert.deepEqual(next, { type: "text", payload: bytes("abc") });
  // The first text line was not overwritten by the second.
  assert.deepEqual(frame, { type: "text", payload: bytes("hello") });
});

Deno.test("ClientFrameDecoder.push() decodes many frames in one chunk", () => {
  const input = bytes("MSG 1\nx\n".repeat(10_000));
  const { frames } = new ClientFrameDecoder().push(input);
  assert.equal(frames.length, 10_000);
  assert.ok(frames.every((frame) => frame.type === "msg" && frame.payload[0] === 0x78));
});

const RELAY_PAYLOAD = bytes("line 1\nMSG bob 3\r\n\0");
const SERVER_STREAM = bytes(
  `MSG alice ${RELAY_PAYLOAD.length}\n`,
  RELAY_PAYLOAD,
  "\n",
  "PING\r\n",
  "\n",
  "MSG b 0\r\n\r\n",
  "PONG\n",
  `MSG ${"z".repeat(64)} 3\nabc\n`,
  "ERR too many clients\r\n",
  "QUIT\n",
);
const SERVER_FRAMES: ServerFrame[] = [
  { type: "msg", from: "alice", payload: RELAY_PAYLOAD },
  { type: "ping" },
  { type: "msg", from: "b", payload: new Uint8Array(0) },
  { type: "pong" },
  { type: "msg", from: "z".repeat(64), payload: bytes("abc") },
  { type: "err", reason: "too many clients" },
  { type: "quit" },
];

function decodeServer(input: Uint8Array, points: number[]) {
  const decoder = new ServerFrameDecoder();
  return { decoder, ...feed(decoder, input, points) };
}

Deno.test("ServerFrameDecoder.push() decodes a relayed message split at every byte boundary", () => {
  for (const points of [[], everyByte(SERVER_STREAM.length)]) {
    const { decoder, frames, errors } = decodeServer(SERVER_STREAM, points);
    assert.deepEqual(errors, []);
    assert.deepEqual(frames, SERVER_FRAMES);
    assert.equal(decoder.pending, false);
  }
  for (let i = 0; i <= SERVER_STREAM.length; i++) {
    const { frames, errors } = decodeServer(SERVER_STREAM, [i]);
    assert.deepEqual(errors, [], `split at ${i}`);
    assert.deepEqual(frames, SERVER_FRAMES, `split at ${i}`);
  }
});

Deno.test("ServerFrameDecoder.push() decodes ERR with spaces and QUIT", () => {
  const { frames } = new ServerFrameDecoder().push(bytes("ERR  slow  consumer \nQUIT\n"));
  assert.deepEqual(frames, [{ type: "err", reason: " slow  consumer " }, { type: "quit" }]);
});

const SERVER_ERRORS: [string, string][] = [
  ["HELLO bob\n", REASON.unknownFrame],
  ["ping\n", REASON.unknownFrame],
  ["SUB\n", REASON.unknownFrame],
  ["PING x\n", REASON.unknownFrame],
  ["MSGX\n", REASON.unknownFrame],
  ["ERRX\n", REASON.unknownFrame],
  ["ERR\n", REASON.malformedFrame],
  ["ERR \n", REASON.malformedFrame],
  ["MSG\n", REASON.malformedFrame],
  ["MSG \n", REASON.malformedFrame],
  ["MSG 3\nabc\n", REASON.malformedFrame],
  ["MSG bob\n", REASON.malformedFrame],
  ["MSG bob \n", REASON.malformedFrame],
  ["MSG bob x\n", REASON.malformedFrame],
  ["MSG bob -1\n", REASON.malformedFrame],
  ["MSG bob 1 2\n", REASON.malformedFrame],
  ["MSG  5\n", REASON.malformedFrame],
  ["MSG zoë 5\n", REASON.malformedFrame],
  ["MSG a\tb 5\n", REASON.malformedFrame],
  [`MSG ${"a".repeat(65)} 5\n`, REASON.malformedFrame],
  [`MSG ${"a".repeat(400)}\n`, REASON.malformedFrame],
  [`MSG bob ${DEFAULT_MAX_FRAME_BYTES + 1}\n`, REASON.frameTooLarge],
  [`MSG bob ${"9".repeat(400)}\n`, REASON.frameTooLarge],
  ["MSG bob 3\nabcX", REASON.malformedFrame],
  ["a".repeat(MAX_CONTROL_LINE_BYTES + 1), REASON.lineTooLong],
];

Deno.test("ServerFrameDecoder.push() reports each protocol error with its reason", () => {
  for (const [input, reason] of SERVER_ERRORS) {
    const line = bytes(input);
    for (const points of [[], everyByte(line.length)]) {
      const decoder = new ServerFrameDecoder();
      const { frames, errors } = feed(decoder, bytes("PING\n", line), points.map((p) => p + 5));
      assert.deepEqual(frames, [{ type: "ping" }], input);
      assert.equal(errors.length, 1, input);
      assert.equal(errors[0].reason, reason, input);
      assert.match(errors[0].message, /^[A-Z][^\n]*[^.]$/, input);
      assert.equal(decoder.push(bytes("PING\n")).error, errors[0]);
    }
  }
});

Deno.test("ServerFrameDecoder.push() returns a relayed payload without copying it", () => {
  const chunk = bytes("MSG bob 2\nhi\n");
  const [frame] = new ServerFrameDecoder().push(chunk).frames;
  assert.ok(frame.type === "msg");
  assert.equal(frame.from, "bob");
  assert.equal(frame.payload.buffer, chunk.buffer);
});

Deno.test("ServerFrameDecoder.push() never throws on arbitrary bytes", () => {
  let seed = 42;
  const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
  const alphabet = bytes("MSG ERR PING\r\n0123456789ab\0\xff");
  for (let round = 0; round < 500; round++) {
    const input = Uint8Array.from(
      { length: Math.floor(random() * 64) },
      () => alphabet[Math.floor(random() * alphabet.length)],
    );
    const points = everyByte(input.length).filter(() => random() < 0.3);
    feed(new ServerFrameDecoder(), input, points);
    feed(new ClientFrameDecoder(), input, points);
  }
});

Deno.test("ClientFrameDecoder.push() decodes AUTH with its token as bytes", () => {
  const decoder = new ClientFrameDecoder();
  const { frames, error } = decoder.push(new TextEncoder().encode("AUTH s3 cr\r\nAUTH\nAUTHx\n"));
  assert.equal(error, undefined);
  assert.equal(frames.length, 3);
  assert.equal(frames[0].type, "auth");
  assert.equal(frames[0].type === "auth" && new TextDecoder().decode(frames[0].token), "s3 cr");
  assert.equal(frames[1].type === "auth" && frames[1].token.length, 0);
  assert.equal(frames[2].type, "text");
});

Deno.test("parseAuthLine() reads the token within [start, end) as a view, and only of AUTH", () => {
  const line = bytes("xxAUTH tok en\r\n");
  const token = parseAuthLine(line, 2, line.length - 2);
  assert.equal(new TextDecoder().decode(token), "tok en");
  assert.equal(token?.buffer, line.buffer, "a view, not a copy");
  assert.equal(parseAuthLine(line, 2, 6)?.length, 0, "AUTH alone: an empty token");
  for (const other of ["AUTHX s", "AUT", "auth s", " AUTH s", ""]) {
    const text = bytes(other);
    assert.equal(parseAuthLine(text, 0, text.length), undefined, other);
  }
});

Deno.test("ClientFrameDecoder.push() refuses a name that starts with a UTF-8 BOM", () => {
  const { frames, error } = new ClientFrameDecoder().push(
    bytes("HELLO ", [0xef, 0xbb, 0xbf], "b\n"),
  );
  assert.deepEqual(frames, []);
  assert.equal(error?.reason, REASON.invalidName);
});

Deno.test("ServerFrameDecoder.push() keeps a BOM at the start of an ERR reason", () => {
  const { frames } = new ServerFrameDecoder().push(bytes("ERR ", [0xef, 0xbb, 0xbf], "x\n"));
  assert.deepEqual(frames, [{ type: "err", reason: "\uFEFFx" }]);
});

/** Frames and the error that pushRanges() gives for `parts`, ranges made into msg frames. */
function decodeRanged(
  decoder: ClientFrameDecoder,
  parts: Uint8Array[],
  into: RangedFrames = { frames: [], frameCount: 0, ranges: [], rangeCount: 0 },
) {
  const frames: ClientFrame[] = [];
  let error: ProtocolError | undefined;
  for (const part of parts) {
    into.frameCount = 0;
    into.rangeCount = 0;
    error = decoder.pushRanges(part, into) ?? error;
    let r = 0;
    for (let i = 0; i < into.frameCount; i++) {
      const frame = into.frames[i];
      if (frame.type === "range") {
        frames.push({ type: "msg", payload: part.slice(into.ranges[r], into.ranges[r + 1]) });
        r += 2;
      } else {
        frames.push(structuredClone(frame));
      }
    }
    assert.equal(r, into.rangeCount, "one range per PAYLOAD_RANGE");
  }
  return { frames, reason: error?.reason, message: error?.message };
}

function decodePlain(decoder: ClientFrameDecoder, parts: Uint8Array[]) {
  const frames: ClientFrame[] = [];
  let error: ProtocolError | undefined;
  for (const part of parts) {
    const result = decoder.push(part);
    frames.push(...structuredClone(result.frames));
    error = result.error ?? error;
  }
  return { frames, reason: error?.reason, message: error?.message };
}

Deno.test("ClientFrameDecoder.pushRanges() gives the frames of push(), a payload in the chunk as a range", () => {
  const stream = bytes(
    "HELLO ann\nMSG 3\nabc\nPING\nMSG 0\n\ntext line\nMSG 5\r\nx\ny\nz\r\n",
    "MSG 2\n",
    [0, 10],
    "\nQUIT\n",
  );
  // One set of arrays for every push, as the server reuses them: what an earlier,
  // longer push left beyond the counts must not show.
  const into: RangedFrames = { frames: [], frameCount: 0, ranges: [], rangeCount: 0 };
  for (let cut = 0; cut <= stream.length; cut++) {
    const parts = [stream.slice(0, cut), stream.slice(cut)];
    const wanted = decodePlain(new ClientFrameDecoder(), parts.map((part) => part.slice()));
    assert.deepEqual(decodeRanged(new ClientFrameDecoder(), parts, into), wanted, `cut at ${cut}`);
    assert.equal(wanted.frames.length, 8, "every frame of the stream, wherever it was cut");
  }
});

Deno.test("ClientFrameDecoder.pushRanges() appends after the counts and keeps the frames before an error", () => {
  const into: RangedFrames = { frames: [], frameCount: 0, ranges: [], rangeCount: 0 };
  const decoder = new ClientFrameDecoder();
  assert.equal(decoder.pushRanges(bytes("MSG 1\na\n"), into), undefined);
  const error = decoder.pushRanges(bytes("PING\nMSG 2\nbc\nMSG x\nPING\n"), into);
  assert.equal(error?.reason, REASON.malformedFrame);
  assert.deepEqual(into.frames.slice(0, into.frameCount), [
    PAYLOAD_RANGE,
    { type: "ping" },
    PAYLOAD_RANGE,
  ]);
  assert.deepEqual(into.ranges.slice(0, into.rangeCount), [6, 7, 11, 13]);
  // Failed: later pushes add nothing and give the same error.
  assert.equal(decoder.pushRanges(bytes("PING\n"), into), error);
  assert.equal(into.frameCount, 3);
});

Deno.test("ClientFrameDecoder.pushRanges() decodes like push() at the edges of its MSG fast path", () => {
  const inputs: [string, DecoderOptions?][] = [
    ["MSG 3\nabc\nMSG 0\n\nMSG 003\nxyz\n"], // leading zeros
    ["MSG 3\r\nabc\r\nMSG 3\nabc\r\n"], // CR LF after the line or the payload
    ["MSG 3\nabcX\n"], // no line end after the payload
    ["MSG 3a\nabc\n"], // not a number
    ["MSG \nabc\n"], // no length
    ["MSG \n\n"], // no length, and a line end where a payload could be
    ["MSG3\nabc\n"], // no space: a text line, then another
    ["MSGX 3\n"], // a text line
    ["MSG 1234567890\n"], // ten digits: over the limit, by the general path
    ["MSG 0000000003\nabc\n"], // ten digits, a small value: the general path takes it
    ["MSG 5\nabcde\n", { maxFrameBytes: 4 }], // over the limit
    ["MSG 4\nabcd\n", { maxFrameBytes: 4 }], // at the limit
    ["MSG 3\nabc\nPING\n", { maxLineBytes: 5 }], // lines short enough, fast path off
    ["MSG 10\n0123456789\n", { maxLineBytes: 5 }], // a line too long
    ["PING\nMSG 2\nhi\nHELLO ann\nMSG 1\n\n\nQUIT\n"], // a payload that is a line end
  ];
  for (const [text, options] of inputs) {
    const stream = bytes(text);
    const label = `${JSON.stringify(text)} ${JSON.stringify(options ?? {})}`;
    const whole = decodePlain(new ClientFrameDecoder(options), [stream]);
    assert.deepEqual(decodeRanged(new ClientFrameDecoder(options), [stream]), whole, label);
    for (let cut = 1; cut < stream.length; cut++) {
      const parts = [stream.slice(0, cut), stream.slice(cut)];
      assert.deepEqual(
        decodeRanged(new ClientFrameDecoder(options), parts),
        decodePlain(new ClientFrameDecoder(options), parts.map((p) => p.slice())),
        `${label} cut at ${cut}`,
      );
    }
    const oneByOne = Array.from(stream, (byte) => Uint8Array.of(byte));
    assert.deepEqual(
      decodeRanged(new ClientFrameDecoder(options), oneByOne),
      whole,
      `${label} a byte at a time`,
    );
  }
});

Deno.test("ClientFrameDecoder.push() decodes HISTORY <n>, pushed whole or a byte at a time", () => {
  const input = bytes("HISTORY 10\r\nHISTORY 007\nHISTORY 99999999999999999999\nHISTORYX\n");
  const expected: ClientFrame[] = [
    { type: "history", count: 10 },
    { type: "history", count: 7 },
    // Capped, not overflowed.
    { type: "history", count: 2 ** 31 - 1 },
    // Not the verb: a text message, as before.
    { type: "text", payload: bytes("HISTORYX") },
  ];
  for (const points of [[], everyByte(input.length)]) {
    const { frames, errors } = decodeClient(input, points);
    assert.deepEqual(errors, []);
    assert.deepEqual(frames, expected);
  }
});

Deno.test("ClientFrameDecoder.push() refuses HISTORY without a decimal count", () => {
  const cases: [string, string][] = [
    ["HISTORY\n", "Cannot parse HISTORY count: it is missing"],
    ["HISTORY \n", "Cannot parse HISTORY count: it is missing"],
    ["HISTORY ten\n", 'Cannot parse HISTORY count "ten": not a number'],
    ["HISTORY -1\n", 'Cannot parse HISTORY count "-1": not a number'],
    ["HISTORY 1 2\n", 'Cannot parse HISTORY count "1 2": not a number'],
  ];
  for (const [line, message] of cases) {
    const input = bytes(line);
    for (const points of [[], everyByte(input.length)]) {
      const { frames, errors } = decodeClient(input, points);
      assert.deepEqual(frames, [], line);
      assert.equal(errors.length, 1, line);
      assert.equal(errors[0].reason, REASON.malformedFrame);
      assert.equal(errors[0].message, message);
    }
  }
});
