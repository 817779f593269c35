import assert from "node:assert/strict";
import { FakeConn, hasSettled } from "../testing.ts";
import { Hub, type SlowConsumer } from "./hub.ts";
import { Session } from "./session.ts";
import type { RelayPeers } from "./threads/shard_link.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function session(id: number, name: string, conn = new FakeConn()): [Session, FakeConn] {
  return [new Session(conn, id, name), conn];
}

/** A hub with the sessions ann, bob and cid (ids 1, 2 and 3), added in that order. */
function hubOfThree() {
  const hub = new Hub();
  const [ann, annConn] = session(1, "ann");
  const [bob, bobConn] = session(2, "bob");
  const [cid, cidConn] = session(3, "cid");
  hub.add(ann);
  hub.add(bob);
  hub.add(cid);
  return { hub, ann, bob, cid, annConn, bobConn, cidConn };
}

/** Flushes `s` and checks that nothing was written to `conn`, its connection. */
async function assertGotNothing(s: Session, conn: FakeConn): Promise<void> {
  await s.outbound.flush();
  assert.deepEqual(conn.texts, []);
}

function flushAll(...sessions: Session[]): Promise<void[]> {
  return Promise.all(sessions.map((s) => s.outbound.flush()));
}

Deno.test("Hub.relay() sends to every other subscriber, never the sender, and returns the count", async () => {
  const { hub, ann, bob, cid, annConn, bobConn, cidConn } = hubOfThree();
  assert.equal(hub.size, 3);
  assert.deepEqual([...hub.sessions()], [ann, bob, cid]);

  assert.equal(hub.relay(ann, encoder.encode("hi")), 2);
  await flushAll(ann, bob, cid);
  assert.deepEqual(annConn.texts, []);
  assert.deepEqual(bobConn.texts, ["MSG ann 2\nhi\n"]);
  assert.deepEqual(cidConn.texts, ["MSG ann 2\nhi\n"]);
});

Deno.test("Hub.relay() queues the same encoded bytes for every subscriber", async () => {
  const hub = new Hub();
  const [ann] = session(1, "ann");
  const others = [2, 3, 4].map((id) => session(id, `s${id}`));
  hub.add(ann);
  for (const [s] of others) hub.add(s);
  const payload = encoder.encode("shared");
  assert.equal(hub.relay(ann, payload), 3);
  await flushAll(...others.map(([s]) => s));
  const chunks = others.map(([, conn]) => conn.chunks[0]);
  assert.equal(decoder.decode(chunks[0]), "MSG ann 6\nshared\n");
  for (const chunk of chunks.slice(1)) {
    assert.equal(chunk.buffer, chunks[0].buffer, "encoded once: one buffer for all");
    assert.equal(chunk.byteOffset, chunks[0].byteOffset);
    assert.equal(chunk.length, chunks[0].length);
  }
});

Deno.test("Hub.relay() returns 0 without subscribers, or with the sender as the only one", async () => {
  const hub = new Hub();
  const [ann, annConn] = session(1, "ann");
  assert.equal(hub.relay(ann, encoder.encode("x")), 0);
  hub.add(ann);
  assert.equal(hub.relay(ann, encoder.encode("x")), 0);
  await assertGotNothing(ann, annConn);
});

Deno.test("Hub.subscribe() stops and restarts relaying to a session", async () => {
  const { hub, ann, bob, cid, bobConn, cidConn } = hubOfThree();

  hub.subscribe(cid, false); // UNSUB
  assert.equal(cid.subscribed, false);
  assert.equal(hub.relay(ann, encoder.encode("one")), 1);
  hub.subscribe(cid, true); // SUB
  assert.equal(cid.subscribed, true);
  assert.equal(hub.relay(ann, encoder.encode("two")), 2);
  await flushAll(bob, cid);
  assert.deepEqual(bobConn.texts.join(""), "MSG ann 3\none\nMSG ann 3\ntwo\n");
  assert.deepEqual(cidConn.texts.join(""), "MSG ann 3\ntwo\n");
});

Deno.test("Hub.add() keeps a session that is not subscribed out of the relay", async () => {
  const hub = new Hub();
  const [ann] = session(1, "ann");
  const [bob, bobConn] = session(2, "bob");
  bob.setSubscribed(false);
  hub.add(ann);
  hub.add(bob);
  assert.equal(hub.relay(ann, encoder.encode("x")), 0);
  await assertGotNothing(bob, bobConn);
});

Deno.test("Hub.remove() forgets a session: it gets nothing, and SUB does not bring it back", async () => {
  const { hub, ann, bob, cid, bobConn, cidConn } = hubOfThree();
  hub.remove(bob);
  assert.equal(hub.size, 2);
  assert.deepEqual([...hub.sessions()], [ann, cid]);
  assert.equal(hub.relay(ann, encoder.encode("x")), 1);
  hub.subscribe(bob, true);
  assert.equal(hub.relay(ann, encoder.encode("y")), 1);
  await flushAll(bob, cid);
  assert.deepEqual(bobConn.texts, []);
  assert.equal(cidConn.texts.join(""), "MSG ann 1\nx\nMSG ann 1\ny\n");
});

Deno.test("Hub.relayedBytes counts the frames queued for each subscriber", async () => {
  const { hub, ann, bob, cid, bobConn, cidConn } = hubOfThree();
  assert.equal(hub.relayedBytes, 0);
  hub.relay(ann, encoder.encode("x"));
  hub.relay(bob, encoder.encode("yz"));
  await flushAll(ann, bob, cid);
  const written = [bobConn, cidConn].map((c) => c.texts.join("").length);
  // Nobody gets their own message back: bob and cid got ann's, ann and cid got bob's.
  assert.equal(hub.relayedBytes, written[0] + written[1] + "MSG bob 2\nyz\n".length);
});

Deno.test("Hub.relay() skips a subscriber that is closing", async () => {
  const { hub, ann, bob, cid, bobConn } = hubOfThree();
  bob.close();
  assert.equal(hub.relay(ann, encoder.encode("x")), 1);
  await assertGotNothing(bob, bobConn);
  await cid.outbound.flush();
});

Deno.test("Hub.relay() from a sender no longer in the hub reaches every subscriber, even a lone one", async () => {
  // Frames a client sent before it was removed (protocol error, slow consumer) may
  // still be in the server's channel; they are relayed like any other.
  const { hub, ann, bob, cid, bobConn } = hubOfThree();
  hub.remove(ann);
  assert.equal(hub.relay(ann, encoder.encode("one")), 2);
  hub.remove(cid);
  assert.equal(hub.relay(ann, encoder.encode("two")), 1, "bob is still subscribed");
  await bob.outbound.flush();
  assert.equal(bobConn.texts.join(""), "MSG ann 3\none\nMSG ann 3\ntwo\n");
});

Deno.test("Hub cuts off a slow consumer: ERR in front of its discarded backlog, others still served", async () => {
  const cutOff: SlowConsumer[] = [];
  // Each relayed frame below is "MSG ann 9\n" + 9 bytes + "\n" = 20 bytes.
  const hub = new Hub({ maxOutboundBytes: 70, onSlowConsumer: (s) => cutOff.push(s) });
  const [ann] = session(1, "ann");
  const [slow, slowConn] = session(2, "slow", new FakeConn({ blocked: true }));
  const [bob, bobConn] = session(3, "bob");
  hub.add(ann);
  hub.add(slow);
  hub.add(bob);
  /** Relays message-i from ann and lets bob, who keeps up, take it. */
  const relay = async (i: number): Promise<number> => {
    const delivered = hub.relay(ann, encoder.encode(`message-${i}`));
    await bob.outbound.flush();
    return delivered;
  };

  assert.equal(await relay(0), 2);
  await slowConn.wrote(); // message-0 is in flight and never completes (yet)
  assert.equal(await relay(1), 2); // 40 bytes for slow
  assert.equal(await relay(2), 2); // 60 bytes for slow
  assert.equal(slow.outbound.buffered, 60);
  assert.equal(cutOff.length, 0);

  assert.equal(await relay(3), 1, "60 + 20 > 70: slow is cut off");
  assert.deepEqual(cutOff, [{ session: slow, cause: "max outbound", dropped: 3 }]);
  assert.equal(hub.slowConsumers, 1);
  assert.equal(hub.slowConsumerDrops, 3, "message-1 and -2 were queued, message-3 refused");
  assert.equal(slow.closed, true);
  assert.equal(
    slow.outbound.buffered,
    20 + "ERR slow consumer\n".length,
    "the backlog is discarded, the ERR line is queued behind the write in flight",
  );

  assert.equal(await relay(4), 1, "slow is no longer a subscriber");
  assert.equal(cutOff.length, 1, "onSlowConsumer is called once");
  assert.equal(hub.slowConsumers, 1);

  slowConn.release();
  await slow.done;
  assert.deepEqual(slowConn.texts, ["MSG ann 9\nmessage-0\n", "ERR slow consumer\n"]);
  assert.equal(slowConn.closes, 1);

  await bob.outbound.flush();
  assert.equal(
    bobConn.texts.join(""),
    [0, 1, 2, 3, 4].map((i) => `MSG ann 9\nmessage-${i}\n`).join(""),
  );
});

Deno.test("Hub.cutOffStalled() cuts off a client whose write has been in flight too long", async () => {
  const cutOff: SlowConsumer[] = [];
  const hub = new Hub({ onSlowConsumer: (s) => cutOff.push(s) });
  const [ann] = session(1, "ann");
  const [stuck, stuckConn] = session(2, "stuck", new FakeConn({ blocked: true }));
  const [bob] = session(3, "bob");
  hub.add(ann);
  hub.add(stuck);
  hub.add(bob);
  hub.relay(ann, encoder.encode("one"));
  await stuckConn.wrote();
  await bob.outbound.flush();
  hub.relay(ann, encoder.encode("two"));
  await bob.outbound.flush();

  const startedAt = stuck.outbound.writeStartedAt;
  assert.ok(startedAt > 0);
  assert.equal(hub.cutOffStalled(startedAt), 0, "not stalled since before its own start");
  assert.equal(hub.cutOffStalled(startedAt + 1), 1);
  assert.deepEqual(cutOff, [{ session: stuck, cause: "write timeout", dropped: 1 }]);
  assert.equal(stuck.closed, true);
  assert.equal(bob.closed, false, "a client with nothing in flight is never stalled");
  assert.equal(hub.cutOffStalled(Date.now() + 1), 0, "a closed client is not cut off twice");
  stuckConn.release();
  await stuck.done;
  assert.deepEqual(stuckConn.texts, ["MSG ann 3\none\n", "ERR slow consumer\n"]);
});

Deno.test("Hub.flushRelays() relays a batch in order: one chunk to a subscriber that sent nothing, the others' runs to a sender", async () => {
  const { hub, ann, bob, cid, annConn, bobConn, cidConn } = hubOfThree();
  hub.queueRelay(ann, encoder.encode("a1"));
  hub.queueRelay(ann, encoder.encode("a2"));
  hub.queueRelay(bob, encoder.encode("b1"));
  ann.setName("anna"); // a rename mid-batch applies to later messages only
  hub.queueRelay(ann, encoder.encode("a3"));
  assert.equal(hub.flushRelays(), 3 + 1 + 4, "cid 4, ann 1 (bob's), bob 3 (ann's)");
  for (const s of [ann, bob, cid]) await s.outbound.flush();
  const a = "MSG ann 2\na1\nMSG ann 2\na2\n";
  const b = "MSG bob 2\nb1\n";
  const a3 = "MSG anna 2\na3\n";
  assert.deepEqual(cidConn.texts, [a + b + a3], "one write of one shared buffer");
  assert.equal(annConn.texts.join(""), b);
  assert.equal(bobConn.texts.join(""), a + a3);
  assert.equal(hub.flushRelays(), 0, "the batch was emptied");
});

Deno.test("Hub.flushRelays() cuts off a subscriber that the whole batch would take over its limit", async () => {
  const cutOff: SlowConsumer[] = [];
  const hub = new Hub({ maxOutboundBytes: 30, onSlowConsumer: (s) => cutOff.push(s) });
  const [ann] = session(1, "ann");
  const [slow, slowConn] = session(2, "slow", new FakeConn({ blocked: true }));
  hub.add(ann);
  hub.add(slow);
  hub.relay(ann, encoder.encode("first")); // 16 bytes in flight
  await slowConn.wrote();
  for (const text of ["m1", "m2"]) hub.queueRelay(ann, encoder.encode(text)); // 26 more
  assert.equal(hub.flushRelays(), 0);
  assert.deepEqual(cutOff.map((c) => [c.session, c.cause, c.dropped]), [[slow, "max outbound", 2]]);
});

Deno.test("Hub reuses a relay buffer only after every subscriber's queue is done with it", async () => {
  const hub = new Hub();
  const [ann] = session(1, "ann");
  const [bob, bobConn] = session(2, "bob");
  const [slow, slowConn] = session(3, "slow", new FakeConn({ blocked: true }));
  hub.add(ann);
  hub.add(bob);
  hub.add(slow);
  hub.relay(ann, encoder.encode("one"));
  await bob.outbound.flush();
  await slowConn.wrote(); // slow's write of "one" is in flight and stays so
  // bob is done with the first buffer, slow is not: the next batch gets another.
  hub.relay(ann, encoder.encode("two"));
  await bob.outbound.flush();
  const [first, second] = bobConn.chunks;
  assert.notEqual(second.buffer, first.buffer, "still being written to slow");
  slowConn.release();
  await slow.outbound.flush();
  assert.deepEqual(slowConn.writes, ["MSG ann 3\none\n", "MSG ann 3\ntwo\n"]);
  // Both queues are done with both buffers now: the next batch reuses one of them.
  hub.relay(ann, encoder.encode("six"));
  await flushAll(bob, slow);
  const third = bobConn.chunks[2];
  assert.ok(third.buffer === first.buffer || third.buffer === second.buffer, "reused");
  assert.deepEqual(bobConn.texts, ["MSG ann 3\none\n", "MSG ann 3\ntwo\n", "MSG ann 3\nsix\n"]);
  // trim() lets go of the free ones: the next batch gets a new buffer.
  await flushAll(bob, slow);
  hub.trim();
  hub.relay(ann, encoder.encode("ten"));
  await flushAll(bob, slow);
  const fourth = bobConn.chunks[3];
  assert.ok(
    ![first, second, third].some((chunk) => chunk.buffer === fourth.buffer),
    "new after trim",
  );
});

/** The other shards as a hub sees them, recorded. */
class RecordingPeers implements RelayPeers {
  remoteSubscribers = 0;
  local: number[] = [];
  forwarded: { text: string; messages: number }[] = [];
  congested = false;
  setLocalSubscribers(count: number): void {
    this.local.push(count);
  }
  forward(bytes: Uint8Array, messages: number): void {
    this.forwarded.push({ text: decoder.decode(bytes), messages });
  }
  whenClear(): Promise<void> {
    return Promise.resolve();
  }
  onForwarded(): void {}
}

Deno.test("Hub.flushRelays() forwards the encoded batch to peers with subscribers, even with none here", () => {
  const peers = new RecordingPeers();
  const hub = new Hub({ peers });
  const [ann] = session(1, "ann");
  hub.add(ann);
  hub.subscribe(ann, false);
  assert.deepEqual(peers.local, [1, 0], "each change of the subscriber count is published");

  assert.equal(hub.relaysFrom(ann), false);
  hub.queueRelay(ann, encoder.encode("lost"));
  hub.flushRelays();
  assert.deepEqual(peers.forwarded, [], "no subscriber anywhere: nothing encoded");

  peers.remoteSubscribers = 3;
  assert.equal(hub.relaysFrom(ann), true);
  hub.queueRelay(ann, encoder.encode("a"));
  hub.queueRelay(ann, encoder.encode("bc"));
  assert.equal(hub.flushRelays(), 0, "no delivery here");
  assert.deepEqual(peers.forwarded, [{ text: "MSG ann 1\na\nMSG ann 2\nbc\n", messages: 2 }]);
});

Deno.test("Hub.whenCaughtUp() waits until congested peers are clear", async () => {
  const peers = new RecordingPeers();
  const clear = Promise.withResolvers<void>();
  peers.whenClear = () => clear.promise;
  const hub = new Hub({ peers });
  assert.equal(await hasSettled(hub.whenCaughtUp(10)), true, "not congested: at once");
  peers.congested = true;
  const waiting = hub.whenCaughtUp(10);
  assert.equal(await hasSettled(waiting), false, "congested: waits for the link");
  clear.resolve();
  await waiting;
});

Deno.test("Hub.deliverForwarded() queues a batch for every subscriber and calls done once all wrote it", async () => {
  const { hub, bob, cid, bobConn, cidConn } = hubOfThree();
  hub.subscribe(cid, true);
  bobConn.release(); // No effect: not blocked.
  const blocked = new FakeConn({ blocked: true });
  const [dan] = session(4, "dan", blocked);
  hub.add(dan);
  let done = 0;
  const bytes = encoder.encode("MSG eve 2\nhi\n");
  assert.equal(hub.deliverForwarded(bytes, 1, () => done++), 4, "ann, bob, cid and dan");
  await flushAll(bob, cid);
  assert.deepEqual(bobConn.texts, ["MSG eve 2\nhi\n"]);
  assert.deepEqual(cidConn.texts, ["MSG eve 2\nhi\n"]);
  await blocked.wrote();
  assert.equal(done, 0, "dan's write is still in flight");
  blocked.release();
  await dan.outbound.flush();
  assert.equal(done, 1);
});

Deno.test("Hub.whenCaughtUp() waits for a subscriber over half its limit, at most maxMs", async () => {
  const hub = new Hub({ maxOutboundBytes: 60 });
  const [ann] = session(1, "ann");
  const blocked = new FakeConn({ blocked: true });
  const [bob, bobConn] = session(2, "bob", blocked);
  hub.add(ann);
  hub.add(bob);
  await hub.whenCaughtUp(60_000); // Nobody behind: at once.
  hub.relay(ann, encoder.encode("first")); // 16 bytes, in flight.
  await bobConn.wrote();
  hub.relay(ann, encoder.encode("second")); // 17 more: 33 in all, over half of 60.
  assert.equal(bob.outbound.buffered, 33);
  await hub.whenCaughtUp(10); // Its write is stuck: gives up after 10 ms.
  assert.equal(bob.outbound.buffered, 33);
  assert.equal(bob.closed, false, "under the limit: behind, not cut off");
  await hub.whenCaughtUp(60_000); // Bob was forgotten with the last wait: at once.
  hub.relay(ann, encoder.encode("third")); // Behind again.
  const waiting = hub.whenCaughtUp(60_000);
  bobConn.release();
  await waiting;
  assert.equal(bob.outbound.buffered, 0, "resolved once its queue was written");
  assert.deepEqual(bobConn.texts, ["MSG ann 5\nfirst\n", "MSG ann 6\nsecond\nMSG ann 5\nthird\n"]);
});

Deno.test("Hub.flushRelays() sends a short batch after a long one without the long one's leftovers", async () => {
  const { hub, ann, bob, cid, bobConn, cidConn } = hubOfThree();
  // The batch arrays keep their length from batch to batch: only the count says what
  // is in the current one.
  const long = encoder.encode("abcdef");
  for (let i = 0; i < 6; i++) hub.queueRelay(i % 2 === 0 ? ann : cid, long, i, i + 1);
  assert.equal(hub.flushRelays(), 12); // bob gets all 6, cid the 3 of ann, ann the 3 of cid
  await flushAll(bob, cid);
  bobConn.texts.length = 0;
  cidConn.texts.length = 0;
  hub.queueRelay(ann, encoder.encode("z"));
  assert.equal(hub.flushRelays(), 2);
  await flushAll(bob, cid);
  assert.deepEqual(bobConn.texts, ["MSG ann 1\nz\n"]);
  assert.deepEqual(cidConn.texts, ["MSG ann 1\nz\n"]);
  assert.equal(hub.flushRelays(), 0, "nothing queued: nothing sent again");
});

Deno.test("Hub tells onSubscribe when a session joins the subscribers, once", () => {
  const joined: string[] = [];
  const conn = { write: (p: Uint8Array) => Promise.resolve(p.length), close: () => {} };
  const hub = new Hub({ onSubscribe: (session) => joined.push(session.name) });
  const ann = new Session(conn, 1, "ann");
  hub.add(ann);
  hub.subscribe(ann, true); // Already subscribed: not again.
  hub.subscribe(ann, false);
  hub.subscribe(ann, true);
  assert.deepEqual(joined, ["ann", "ann"]);
});

Deno.test("Hub.trim() lets go of the outbound queue of every client with nothing queued, not of a busy one", async () => {
  const hub = new Hub();
  const [ann] = session(1, "ann");
  const busyConn = new FakeConn({ blocked: true });
  const [bob] = session(2, "bob", busyConn);
  const [cid, cidConn] = session(3, "cid");
  for (const client of [ann, bob, cid]) hub.add(client);
  hub.relay(ann, encoder.encode("hi"));
  await cid.outbound.flush();
  await busyConn.wrote();
  const bobQueue = bob.outbound;
  const cidQueue = cid.outbound;
  hub.trim();
  assert.equal(bob.outbound, bobQueue, "bob's write is still in flight");
  assert.notEqual(cid.outbound, cidQueue, "cid's idle queue was let go (a new one is made)");
  hub.relay(ann, encoder.encode("yo"));
  await cid.outbound.flush();
  assert.deepEqual(cidConn.writes, ["MSG ann 2\nhi\n", "MSG ann 2\nyo\n"]);
  busyConn.release();
  await bob.outbound.flush();
  assert.deepEqual(busyConn.writes, ["MSG ann 2\nhi\n", "MSG ann 2\nyo\n"]);
});
