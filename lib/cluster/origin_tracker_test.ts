import assert from "node:assert/strict";
import {
  BatchEncoder,
  type ClusterFrame,
  decodeClusterFrame,
  encodeHead,
  encodeReplayEnd,
  type FrameOrigin,
} from "./cluster_frame.ts";
import { OriginTracker, type OriginTrackerOptions } from "./origin_tracker.ts";

const A: FrameOrigin = { name: "a", boot: "00000000000000aa", age: () => 1000 };

/** A frame of `origin` holding messages "m<first>" to "m<last>". */
function messages(first: number, last: number, origin = A): ClusterFrame {
  const batch = new BatchEncoder(origin);
  for (let seq = first; seq <= last; seq++) batch.add("s", new TextEncoder().encode(`m${seq}`));
  return decodeClusterFrame(batch.seal(first));
}

function setup(options: Partial<OriginTrackerOptions> = {}) {
  const delivered: string[] = [];
  const requests: string[] = [];
  const losses: number[] = [];
  const tracker = new OriginTracker(
    { age: () => 0, maxHeldBytes: 1 << 20, maxReplayAttempts: 3, ...options },
    {
      deliver: (origin, _from, payload, viaReplay) =>
        delivered.push(`${origin}:${new TextDecoder().decode(payload)}${viaReplay ? "r" : ""}`),
      requestReplay: (origin, boot, from) => requests.push(`${origin}/${boot}@${from}`),
      lost: (_origin, count) => losses.push(count),
    },
  );
  const feed = (frame: ClusterFrame, viaReplay = false) =>
    tracker.onMessages(frame, 100, viaReplay);
  return { tracker, delivered, requests, losses, feed };
}

Deno.test("OriginTracker.onMessages() delivers in order and drops duplicates and overlaps", () => {
  const { tracker, delivered, requests, feed } = setup();
  feed(messages(1, 2));
  feed(messages(1, 2));
  feed(messages(2, 4));
  assert.deepEqual(delivered, ["a:m1", "a:m2", "a:m3", "a:m4"]);
  assert.deepEqual(tracker.stats, { received: 4, replayed: 0, lost: 0, duplicates: 3 });
  assert.deepEqual(requests, []);
});

Deno.test("OriginTracker.onMessages() holds frames after a gap, asks for it and fills it from a replay", () => {
  const { tracker, delivered, requests, feed } = setup();
  feed(messages(1, 1));
  feed(messages(4, 5));
  feed(messages(6, 6));
  assert.deepEqual(delivered, ["a:m1"]);
  assert.deepEqual(requests, [`a/${A.boot}@2`]);
  assert.ok(tracker.replayPending(A.boot));
  // The replay sends what the ring has from 2 on (overlapping what is held), then its end.
  feed(messages(2, 3), true);
  feed(messages(4, 6), true);
  tracker.onReplayEnd(decodeClusterFrame(encodeReplayEnd(A, 1, 6)));
  assert.deepEqual(delivered, ["a:m1", "a:m2r", "a:m3r", "a:m4", "a:m5", "a:m6"]);
  assert.equal(tracker.stats.replayed, 2);
  assert.equal(tracker.stats.lost, 0);
  assert.equal(tracker.replayPending(A.boot), false);
  assert.deepEqual(requests.length, 1);
});

Deno.test("OriginTracker.onReplayEnd() counts what the ring no longer had as lost, then delivers", () => {
  const { tracker, delivered, losses, feed } = setup();
  feed(messages(1, 1));
  feed(messages(10, 10));
  // The origin's ring starts at 8: 2..7 are gone.
  feed(messages(8, 9), true);
  tracker.onReplayEnd(decodeClusterFrame(encodeReplayEnd(A, 8, 10)));
  assert.deepEqual(delivered, ["a:m1", "a:m8r", "a:m9r", "a:m10"]);
  assert.deepEqual(losses, [6]);
  assert.equal(tracker.stats.lost, 6);
});

Deno.test("OriginTracker.onHead() beyond what was delivered asks for the tail", () => {
  const { tracker, delivered, requests, feed } = setup();
  feed(messages(1, 2));
  tracker.onHead(decodeClusterFrame(encodeHead(A, 2)));
  assert.deepEqual(requests, []);
  tracker.onHead(decodeClusterFrame(encodeHead(A, 4)));
  assert.deepEqual(requests, [`a/${A.boot}@3`]);
  feed(messages(3, 4), true);
  tracker.onReplayEnd(decodeClusterFrame(encodeReplayEnd(A, 1, 4)));
  assert.deepEqual(delivered, ["a:m1", "a:m2", "a:m3r", "a:m4r"]);
});

Deno.test("OriginTracker.replayTimedOut() asks again, then declares the gap lost after the attempts", () => {
  const { tracker, delivered, requests, losses, feed } = setup({ maxReplayAttempts: 3 });
  feed(messages(1, 1));
  feed(messages(5, 5));
  assert.equal(requests.length, 1);
  tracker.replayTimedOut(A.boot, true);
  tracker.replayTimedOut(A.boot, true);
  assert.equal(requests.length, 3);
  assert.deepEqual(delivered, ["a:m1"]);
  tracker.replayTimedOut(A.boot, true);
  assert.deepEqual(losses, [3]);
  assert.deepEqual(delivered, ["a:m1", "a:m5"]);
  assert.equal(tracker.replayPending(A.boot), false);
  assert.equal(requests.length, 3);
});

Deno.test("OriginTracker.replayTimedOut() while disconnected does not count; reconnected() asks again", () => {
  const { tracker, requests, losses, feed } = setup({ maxReplayAttempts: 1 });
  feed(messages(1, 1));
  feed(messages(3, 3));
  tracker.replayTimedOut(A.boot, false);
  assert.deepEqual(losses, []);
  assert.equal(tracker.replayPending(A.boot), false);
  tracker.reconnected();
  assert.deepEqual(requests, [`a/${A.boot}@2`, `a/${A.boot}@2`]);
});

Deno.test("OriginTracker.reconnected() asks every known origin for what follows", () => {
  const { tracker, requests, feed } = setup();
  const B = { name: "b", boot: "00000000000000bb", age: () => 1000 };
  feed(messages(1, 3));
  feed(messages(1, 1, B));
  tracker.reconnected();
  assert.deepEqual(requests, [`a/${A.boot}@4`, `b/${B.boot}@2`]);
});

Deno.test("OriginTracker takes an older stream from the first message seen, a newer one from 1", () => {
  const { delivered, requests, feed } = setup({ age: () => 5000 });
  // Started before we joined (older than us): we take it from where we came in.
  feed(messages(7, 8, { ...A, age: () => 10_000 }));
  assert.deepEqual(delivered, ["a:m7", "a:m8"]);
  assert.deepEqual(requests, []);
  // Started after we joined (younger than us): its first messages are wanted.
  const C = { name: "c", boot: "00000000000000cc", age: () => 1000 };
  feed(messages(3, 3, C));
  assert.deepEqual(requests, [`c/${C.boot}@1`]);
});

Deno.test("OriginTracker: a restarted origin is a new stream; the old one's open gap is lost when unanswered", () => {
  const { tracker, delivered, losses, requests, feed } = setup({ maxReplayAttempts: 2 });
  feed(messages(1, 1));
  feed(messages(3, 3)); // 2 missing: a request is out
  assert.deepEqual(requests, [`a/${A.boot}@2`]);
  const restarted = { ...A, boot: "00000000000000ab", age: () => 10 };
  feed(messages(1, 2, restarted));
  assert.deepEqual(delivered, ["a:m1", "a:m1", "a:m2"]);
  // The old run stays until its gap is settled: nobody answers for it any more.
  tracker.replayTimedOut(A.boot, true);
  assert.deepEqual(losses, []);
  tracker.replayTimedOut(A.boot, true);
  assert.deepEqual(losses, [1]);
  assert.deepEqual(delivered, ["a:m1", "a:m1", "a:m2", "a:m3"]);
  assert.deepEqual(tracker.origins().map((o) => o.boot), [restarted.boot]);
});

Deno.test("OriginTracker forgets a superseded stream with nothing open at once", () => {
  const { tracker, feed } = setup();
  feed(messages(1, 2));
  const restarted = { ...A, boot: "00000000000000ab", age: () => 10 };
  feed(messages(1, 1, restarted));
  assert.deepEqual(tracker.origins().map((o) => o.boot), [restarted.boot]);
});

Deno.test("OriginTracker keeps two live servers that share a name apart by boot id", () => {
  const { tracker, delivered, losses, feed } = setup();
  const twin = { ...A, boot: "00000000000000ff" };
  feed(messages(1, 2));
  feed(messages(1, 1, twin));
  feed(messages(3, 3));
  feed(messages(2, 2, twin));
  assert.deepEqual(delivered, ["a:m1", "a:m2", "a:m1", "a:m3", "a:m2"]);
  assert.equal(tracker.stats.duplicates, 0);
  assert.deepEqual(losses, []);
});

Deno.test("OriginTracker forgets the least recently heard origin past maxOrigins", () => {
  const { tracker, losses, feed } = setup({ maxOrigins: 2 });
  const origin = (n: number) => ({ name: `o${n}`, boot: `000000000000000${n}`, age: () => 1000 });
  feed(messages(1, 1, origin(1)));
  feed(messages(1, 1, origin(2)));
  feed(messages(3, 3, origin(2))); // o2 has a gap
  feed(messages(2, 2, origin(1))); // o1 heard last
  feed(messages(1, 1, origin(3))); // o2 goes, its gap counted
  assert.deepEqual(tracker.origins().map((o) => o.name).sort(), ["o1", "o3"]);
  assert.deepEqual(losses, [2]);
});

Deno.test("OriginTracker declares a gap lost when the held frames pass their byte bound", () => {
  const { delivered, losses, feed } = setup({ maxHeldBytes: 150 });
  feed(messages(1, 1));
  feed(messages(3, 3)); // 100 bytes held
  feed(messages(4, 4)); // 200 > 150: give up on 2
  assert.deepEqual(losses, [1]);
  assert.deepEqual(delivered, ["a:m1", "a:m3", "a:m4"]);
});

Deno.test("OriginTracker ignores replay frames and ends for streams it did not ask about", () => {
  const { tracker, delivered, feed } = setup();
  feed(messages(1, 2), true);
  tracker.onReplayEnd(decodeClusterFrame(encodeReplayEnd(A, 1, 2)));
  assert.deepEqual(delivered, []);
  assert.deepEqual(tracker.origins(), []);
});
