import assert from "node:assert/strict";
import { TextConn } from "../../testing.ts";
import { type ParrotServer, startParrotServerWith } from "../server.ts";
import { type ForwardedDelivery, ShardLink, shardPorts } from "./shard_link.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** `count` links in one thread, a MessageChannel between each pair, as the Workers get them. */
function links(count: number, options: { maxForwardBytes?: number; maxStallMs?: number } = {}) {
  const subscriberCounts = new SharedArrayBuffer(count * 4);
  const ports = shardPorts(count);
  return ports.map((mine, index) =>
    new ShardLink({ index, subscriberCounts, ports: mine, ...options })
  );
}

/** Records what a link delivers; `done` is called at once unless `hold` is set. */
function recorder(link: ShardLink, hold = false) {
  const texts: string[] = [];
  const dones: (() => void)[] = [];
  let arrived = Promise.withResolvers<void>();
  const deliver: ForwardedDelivery = (bytes, _messages, done) => {
    texts.push(decoder.decode(bytes));
    if (hold) dones.push(done);
    else done();
    arrived.resolve();
    arrived = Promise.withResolvers();
  };
  link.onForwarded(deliver);
  return {
    texts,
    dones,
    /** Resolves at the next delivery. */
    next: () => arrived.promise,
  };
}

function closeAll(all: ShardLink[]): void {
  for (const link of all) link.close();
}

Deno.test("ShardLink.forward() posts only to the shards that have subscribers, in order", async () => {
  const all = links(3);
  const [a, b, c] = all;
  const atB = recorder(b);
  const atC = recorder(c);
  try {
    assert.equal(a.remoteSubscribers, 0);
    c.setLocalSubscribers(2);
    assert.equal(a.remoteSubscribers, 2);
    assert.equal(b.remoteSubscribers, 2);
    assert.equal(c.remoteSubscribers, 0, "its own do not count");

    const delivery = atC.next();
    a.forward(encoder.encode("MSG ann 1\nx\n"), 1);
    await delivery;
    b.setLocalSubscribers(1);
    const both = [atB.next(), atC.next()];
    a.forward(encoder.encode("MSG ann 1\ny\n"), 1);
    await Promise.all(both);
    // Posts from a to b arrive in order: had x gone to b, b would have got it first.
    assert.deepEqual(atB.texts, ["MSG ann 1\ny\n"]);
    assert.deepEqual(atC.texts, ["MSG ann 1\nx\n", "MSG ann 1\ny\n"]);
  } finally {
    closeAll(all);
  }
});

Deno.test("ShardLink is congested past maxForwardBytes until the peer has written the batches", async () => {
  const all = links(2, { maxForwardBytes: 10 });
  const [a, b] = all;
  const atB = recorder(b, true);
  try {
    b.setLocalSubscribers(1);
    const delivery = atB.next();
    a.forward(encoder.encode("MSG ann 5\nhello\n"), 1);
    assert.equal(a.congested, true, "16 bytes not acknowledged");
    let cleared = false;
    const clear = a.whenClear().then(() => cleared = true);
    await delivery;
    assert.equal(cleared, false, "delivered is not written");
    atB.dones[0]();
    await clear;
    assert.equal(a.congested, false);
  } finally {
    closeAll(all);
  }
});

Deno.test("ShardLink.whenClear() gives up after maxStallMs, and a peer without subscribers is not waited for", async () => {
  const all = links(2, { maxForwardBytes: 10, maxStallMs: 20 });
  const [a, b] = all;
  recorder(b, true); // Never writes: never acknowledges.
  try {
    b.setLocalSubscribers(1);
    a.forward(encoder.encode("MSG ann 5\nhello\n"), 1);
    await a.whenClear();
    assert.equal(a.congested, true, "resolved by the stall limit, not by an acknowledgement");
    b.setLocalSubscribers(0);
    assert.equal(a.congested, false, "its subscribers are gone: nothing to wait for");
    await a.whenClear();
  } finally {
    closeAll(all);
  }
});

/** Two parrot servers on their own ports, linked as two shards of one. */
function twoShards(): ParrotServer[] {
  return links(2).map((peers) => startParrotServerWith({ port: 0, output: null }, { peers }));
}

Deno.test("startParrotServerWith() with peers relays to the other shard's subscribers in each sender's order", async () => {
  const [first, second] = twoShards();
  const ann = await TextConn.connect(first.addr.port);
  const bob = await TextConn.connect(second.addr.port);
  try {
    await bob.write("HELLO bob\nPING\n"); // Subscribed with its first input.
    await bob.until("PONG\n");
    const sent = Array.from({ length: 200 }, (_, i) => `m${i}`);
    await ann.write("HELLO ann\nUNSUB\n" + sent.map((m) => `MSG ${m.length}\n${m}\n`).join(""));
    await ann.write("PING\n");
    await ann.until("PONG\n");
    const last = sent.at(-1)!;
    const received = await bob.until(`MSG ann ${last.length}\n${last}\n`);
    assert.equal(received, sent.map((m) => `MSG ann ${m.length}\n${m}\n`).join(""));
    assert.equal(second.stats().relayed, sent.length, "counted where delivered");
    assert.equal(first.stats().relayed, 0);
    assert.equal(first.stats().messages, sent.length);
  } finally {
    ann.close();
    bob.close();
    await Promise.all([first.shutdown(), second.shutdown()]);
  }
});

Deno.test("startParrotServerWith() with peers cuts off a stuck subscriber on the other shard; the sender goes on", async () => {
  const shards = links(2, { maxStallMs: 20 });
  const first = startParrotServerWith({ port: 0, output: null }, { peers: shards[0] });
  const second = startParrotServerWith({ port: 0, output: null, maxOutboundBytes: 64 * 1024 }, {
    peers: shards[1],
  });
  const ann = await TextConn.connect(first.addr.port);
  const stuck = await TextConn.connect(second.addr.port);
  try {
    await stuck.write("HELLO stuck\nPING\n");
    await stuck.until("PONG\n");
    // Never read again: its socket buffers fill, then its queue on the second shard.
    const payload = "x".repeat(1000);
    const batch = `MSG ${payload.length}\n${payload}\n`.repeat(100);
    for (let i = 0; i < 100; i++) await ann.write(batch);
    await ann.write("PING\n");
    await ann.until("PONG\n");
    assert.equal(first.stats().messages, 10_000, "the sender was not held back for good");
    assert.equal(second.stats().slowConsumers, 1);
    assert.match(await stuck.rest(), /ERR slow consumer\n$/);
  } finally {
    ann.close();
    stuck.close();
    await Promise.all([first.shutdown(), second.shutdown()]);
  }
});
