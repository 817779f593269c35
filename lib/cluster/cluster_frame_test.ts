import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BatchEncoder,
  ClusterFrameError,
  decodeClusterFrame,
  encodeHead,
  encodeReplayEnd,
  encodeReplayRequest,
  FrameKind,
  lastSeq,
  randomBootId,
} from "./cluster_frame.ts";

const origin = { name: "127.0.0.1:4000", boot: "0123456789abcdef", age: () => 123_456.5 };
const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("BatchEncoder.seal() gives a frame that decodes to the same messages, binary-safe", () => {
  const batch = new BatchEncoder(origin);
  const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
  batch.add("alice", bytes("hello"));
  batch.add("bob", binary);
  batch.add("alice", new Uint8Array(0));
  batch.add("émile", bytes("\r\nMSG 3\r\n"));
  assert.equal(batch.count, 4);
  const frame = decodeClusterFrame(batch.seal(41));
  assert.equal(frame.kind, FrameKind.Messages);
  assert.equal(frame.name, origin.name);
  assert.equal(frame.boot, origin.boot);
  assert.equal(frame.age, 123_456.5);
  assert.equal(frame.seq, 41);
  assert.equal(lastSeq(frame), 44);
  assert.deepEqual(frame.names, ["alice", "bob", "alice", "émile"]);
  assert.deepEqual(frame.payloads.map((p) => Array.from(p)), [
    Array.from(bytes("hello")),
    Array.from(binary),
    [],
    Array.from(bytes("\r\nMSG 3\r\n")),
  ]);
  // The encoder starts a fresh batch after seal().
  assert.equal(batch.count, 0);
  batch.add("carol", bytes("x"));
  assert.deepEqual(decodeClusterFrame(batch.seal(45)).names, ["carol"]);
});

Deno.test("BatchEncoder.add() grows its buffer for a large payload", () => {
  const batch = new BatchEncoder(origin);
  const large = new Uint8Array(100_000).fill(7);
  batch.add("a", large);
  batch.add("b", bytes("after"));
  const frame = decodeClusterFrame(batch.seal(1));
  assert.equal(frame.payloads[0].length, large.length);
  assert.ok(frame.payloads[0].every((b) => b === 7));
  assert.equal(new TextDecoder().decode(frame.payloads[1]), "after");
});

Deno.test("encodeHead(), encodeReplayRequest() and encodeReplayEnd() round-trip", () => {
  const head = decodeClusterFrame(encodeHead(origin, 2 ** 40 + 5));
  assert.equal(head.kind, FrameKind.Head);
  assert.equal(head.seq, 2 ** 40 + 5);
  const request = decodeClusterFrame(encodeReplayRequest(origin, "fedcba9876543210", 12));
  assert.equal(request.kind, FrameKind.ReplayRequest);
  assert.equal(request.target, "fedcba9876543210");
  assert.equal(request.seq, 12);
  const end = decodeClusterFrame(encodeReplayEnd(origin, 3, 99));
  assert.equal(end.kind, FrameKind.ReplayEnd);
  assert.equal(end.seq, 3);
  assert.equal(end.head, 99);
});

Deno.test("decodeClusterFrame() refuses a payload over the limit before reading it", () => {
  const batch = new BatchEncoder(origin);
  batch.add("a", new Uint8Array(11));
  const frame = batch.seal(1);
  assert.throws(
    () => decodeClusterFrame(frame, { maxPayloadBytes: 10 }),
    (e) => e instanceof ClusterFrameError && /11 bytes is over the 10 limit/.test(e.message),
  );
  assert.equal(decodeClusterFrame(frame, { maxPayloadBytes: 11 }).payloads[0].length, 11);
});

Deno.test("decodeClusterFrame() refuses a frame cut at any byte and one with bytes past its end", () => {
  const batch = new BatchEncoder(origin);
  batch.add("alice", bytes("hello"));
  batch.add("bob", bytes("world"));
  const frame = batch.seal(1);
  for (let cut = 0; cut < frame.length; cut++) {
    assert.throws(
      () => decodeClusterFrame(frame.subarray(0, cut)),
      ClusterFrameError,
      `cut ${cut}`,
    );
  }
  const longer = new Uint8Array(frame.length + 1);
  longer.set(frame);
  assert.throws(() => decodeClusterFrame(longer), /past its end/);
});

Deno.test("decodeClusterFrame() refuses bad magic, version, kind, names and a huge count", () => {
  const good = encodeHead(origin, 1);
  const patched = (at: number, value: number) => {
    const copy = good.slice();
    copy[at] = value;
    return copy;
  };
  assert.throws(() => decodeClusterFrame(patched(0, 0x51)), /magic/);
  assert.throws(() => decodeClusterFrame(patched(2, 9)), /version 9/);
  assert.throws(() => decodeClusterFrame(patched(3, 0)), /kind 0/);
  assert.throws(() => decodeClusterFrame(patched(3, 5)), /kind 5/);
  assert.throws(() => decodeClusterFrame(patched(28, 0)), /origin name is empty/);
  const badUtf8 = good.slice();
  badUtf8[29] = 0xff;
  assert.throws(() => decodeClusterFrame(badUtf8), /not valid UTF-8/);
  const batch = new BatchEncoder(origin);
  batch.add("a", bytes("b"));
  const frame = batch.seal(1);
  const countAt = 29 + new TextEncoder().encode(origin.name).length;
  new DataView(frame.buffer).setUint32(countAt, 0xffff_ffff);
  assert.throws(() => decodeClusterFrame(frame), /too short for 4294967295 messages/);
  new DataView(frame.buffer).setUint32(countAt, 0);
  assert.throws(() => decodeClusterFrame(frame.subarray(0, countAt + 4)), /holds no message/);
});

Deno.test("decodeClusterFrame() throws only ClusterFrameError on random bytes and mutated frames", () => {
  const batch = new BatchEncoder(origin);
  batch.add("alice", bytes("hello"));
  batch.add("bob", bytes("binary \0 payload"));
  const valid = batch.seal(7);
  const check = (input: Uint8Array) => {
    try {
      const frame = decodeClusterFrame(input);
      // Whatever decodes is self-consistent.
      assert.equal(frame.names.length, frame.payloads.length);
    } catch (error) {
      if (!(error instanceof ClusterFrameError)) throw error;
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), check), { numRuns: 2000 });
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      (edits) => {
        const copy = valid.slice();
        for (const [at, value] of edits) copy[at] = value;
        check(copy);
      },
    ),
    { numRuns: 2000 },
  );
});

Deno.test("randomBootId() draws 16 hex digits, different each time", () => {
  const a = randomBootId();
  assert.match(a, /^[0-9a-f]{16}$/);
  assert.notEqual(a, randomBootId());
});

Deno.test("BatchEncoder.recordBytes() is what add() grows the frame by; bad names throw", () => {
  const batch = new BatchEncoder(origin);
  const before = batch.byteLength;
  assert.equal(before, batch.emptyByteLength);
  const expected = batch.recordBytes("émile", 10);
  batch.add("émile", new Uint8Array(10));
  assert.equal(batch.byteLength - before, expected);
  assert.throws(() => batch.recordBytes("", 1), RangeError);
  assert.throws(() => batch.recordBytes("x".repeat(256), 1), RangeError);
});
