import assert from "node:assert/strict";
import { ServerFrameDecoder } from "./frame_decoder.ts";
import { encodeReplay, type MessageHistory, type StoredMessage } from "./message_history.ts";
import { startParrotServer } from "./server.ts";
import { waitFor } from "../testing.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

Deno.test("encodeReplay() encodes relay frames the client decodes back, binary-safe", () => {
  const messages: StoredMessage[] = [
    { sender: "ann", payload: Uint8Array.of(0, 10, 0xff) },
    { sender: "127.0.0.1:5000", payload: new Uint8Array(0) },
    { sender: "bob", payload: encoder.encode("MSG x 1\n") },
  ];
  const { bytes, count } = encodeReplay(messages, Infinity);
  assert.equal(count, 3);
  const { frames, error } = new ServerFrameDecoder().push(bytes);
  assert.equal(error, undefined);
  assert.deepEqual(
    frames,
    messages.map((m) => ({ type: "msg", from: m.sender, payload: m.payload })),
  );
});

Deno.test("encodeReplay() keeps the newest messages that fit, and always the newest one", () => {
  const messages = Array.from({ length: 10 }, (_, i) => ({
    sender: "ann",
    payload: encoder.encode(`m${i}`),
  }));
  // Each frame is "MSG ann 2\nmN\n": 13 bytes.
  const { bytes, count } = encodeReplay(messages, 13 * 3 + 12);
  assert.equal(count, 3);
  assert.equal(decoder.decode(bytes), "MSG ann 2\nm7\nMSG ann 2\nm8\nMSG ann 2\nm9\n");
  assert.equal(encodeReplay(messages, 1).count, 1);
  assert.equal(encodeReplay([], 100).count, 0);
});

/** A history that records in memory and is congested until released. */
class HeldHistory implements MessageHistory {
  readonly records: string[] = [];
  /** The messages of each recordRanges() call. */
  readonly runs: number[] = [];
  congested = true;
  waits = 0;
  #release?: () => void;

  get lastId(): number {
    return this.records.length;
  }
  recordRange(from: string, bytes: Uint8Array, start: number, end: number): void {
    this.records.push(`${from}: ${decoder.decode(bytes.subarray(start, end))}`);
  }
  recordRanges(
    from: string,
    bytes: Uint8Array,
    ranges: ArrayLike<number>,
    first: number,
    last: number,
  ): void {
    this.runs.push((last - first) / 2);
    for (let i = first; i < last; i += 2) this.recordRange(from, bytes, ranges[i], ranges[i + 1]);
  }
  last(n: number, upToId = Infinity): StoredMessage[] {
    return this.records.slice(0, Math.min(upToId, this.records.length)).slice(-n).map((r) => {
      const [sender, text] = r.split(": ");
      return { sender, payload: encoder.encode(text) };
    });
  }
  whenRoom(): Promise<void> {
    this.waits++;
    return new Promise((resolve) => this.#release = resolve);
  }
  release(): void {
    this.congested = false;
    this.#release?.();
  }
}

Deno.test("startParrotServer() records every message in its history, and waits while it is congested", async () => {
  const history = new HeldHistory();
  const server = startParrotServer({ port: 0, output: null, history });
  const conn = await Deno.connect({ port: server.addr.port });
  await conn.write(encoder.encode("HELLO ann\nhi\nMSG 3\nyo!\nPING\n"));
  // The drain waits for the history before it answers the PING.
  await waitFor(() => history.waits > 0, "the drain to wait for the history");
  assert.deepEqual(history.records, ["ann: hi", "ann: yo!"]);
  const reply = new Uint8Array(16);
  const read = conn.read(reply);
  let answered = false;
  read.then(() => answered = true);
  await Promise.resolve();
  assert.equal(answered, false, "no PONG while the history is congested");
  history.release();
  const n = await read;
  assert.equal(decoder.decode(reply.subarray(0, n!)), "PONG\n");
  conn.close();
  await server.shutdown();
});

Deno.test("startParrotServer() records a read's messages in order with the frames between them", async () => {
  const history = new HeldHistory();
  history.congested = false;
  const server = startParrotServer({ port: 0, output: null, history });
  const conn = await Deno.connect({ port: server.addr.port });
  // One write: runs of messages, a rename between them, a text line, a PING.
  await conn.write(
    encoder.encode("MSG 2\nm1\nMSG 2\nm2\nHELLO bob\nMSG 2\nm3\nm4\nMSG 2\nm5\nPING\n"),
  );
  const reply = new Uint8Array(16);
  const n = await conn.read(reply);
  assert.equal(decoder.decode(reply.subarray(0, n!)), "PONG\n");
  const [first, ...rest] = history.records;
  assert.match(first, /^127\.0\.0\.1:\d+: m1$/);
  assert.deepEqual(rest.map((r) => r.replace(/^127\.0\.0\.1:\d+/, "(address)")), [
    "(address): m2",
    "bob: m3",
    "bob: m4",
    "bob: m5",
  ]);
  // Runs of ranges at once; the text line (a copy, not a range) alone.
  assert.deepEqual(history.runs, [2, 1, 1]);
  conn.close();
  await server.shutdown();
});
