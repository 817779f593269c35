import assert from "node:assert/strict";
import { Channel, ChannelClosedError } from "./channel.ts";

/** Lets every pending promise callback run (a macrotask turn). */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Tracks whether a promise has settled, without awaiting it. */
function track<T>(promise: Promise<T>): { settled: boolean; promise: Promise<T> } {
  const state = { settled: false, promise };
  promise.then(() => (state.settled = true), () => (state.settled = true));
  return state;
}

Deno.test("Channel receives values in the order they were sent", async () => {
  const channel = new Channel<number>(100);
  for (let i = 0; i < 100; i++) await channel.send(i);
  assert.equal(channel.size, 100);
  const received: number[] = [];
  for (let i = 0; i < 100; i++) received.push(await channel.receive());
  assert.deepEqual(received, Array.from({ length: 100 }, (_, i) => i));
  assert.equal(channel.size, 0);
});

Deno.test("Channel keeps FIFO order while its ring buffer wraps around", async () => {
  const channel = new Channel<number>(5);
  const received: number[] = [];
  let next = 0;
  for (let i = 0; i < 3; i++) await channel.send(next++);
  for (let round = 0; round < 30; round++) {
    for (let i = 0; i < 2; i++) await channel.send(next++);
    for (let i = 0; i < 2; i++) received.push(await channel.receive());
  }
  while (channel.size > 0) received.push(await channel.receive());
  assert.deepEqual(received, Array.from({ length: next }, (_, i) => i));
});

Deno.test("Channel.send() waits while the channel is full and resumes after a receive", async () => {
  const channel = new Channel<string>(2);
  await channel.send("a");
  await channel.send("b");
  const third = track(channel.send("c"));
  await settle();
  assert.equal(third.settled, false);
  assert.equal(channel.size, 2);

  assert.equal(await channel.receive(), "a");
  await third.promise;
  assert.equal(channel.size, 2);
  assert.equal(await channel.receive(), "b");
  assert.equal(await channel.receive(), "c");
});

Deno.test("Channel.receive() wakes exactly one waiting sender per value taken", async () => {
  const channel = new Channel<number>(1);
  await channel.send(0);
  const first = track(channel.send(1));
  const second = track(channel.send(2));
  await settle();

  assert.equal(await channel.receive(), 0);
  await settle();
  assert.equal(first.settled, true);
  assert.equal(second.settled, false);
  assert.equal(channel.size, 1);

  assert.equal(await channel.receive(), 1);
  await second.promise;
  assert.equal(await channel.receive(), 2);
});

Deno.test("Channel.receive() waits while the channel is empty", async () => {
  const channel = new Channel<number>(4);
  const receiving = track(channel.receive());
  await settle();
  assert.equal(receiving.settled, false);
  await channel.send(42);
  assert.equal(await receiving.promise, 42);
  assert.equal(channel.size, 0);
});

Deno.test("Channel with capacity 0 hands values over only at a rendezvous", async () => {
  const channel = new Channel<string>();
  assert.equal(channel.capacity, 0);
  const sending = track(channel.send("hello"));
  await settle();
  assert.equal(sending.settled, false);
  assert.equal(channel.size, 0);

  assert.equal(await channel.receive(), "hello");
  await sending.promise;

  const receiving = channel.receive();
  await channel.send("world");
  assert.equal(await receiving, "world");
});

Deno.test("Channel.trySend() buffers until full and hands over to a waiting receiver", async () => {
  const buffered = new Channel<number>(2);
  assert.equal(buffered.trySend(1), true);
  assert.equal(buffered.trySend(2), true);
  assert.equal(buffered.trySend(3), false);
  assert.equal(buffered.size, 2);

  const rendezvous = new Channel<number>();
  assert.equal(rendezvous.trySend(1), false);
  const receiving = rendezvous.receive();
  assert.equal(rendezvous.trySend(2), true);
  assert.equal(await receiving, 2);
  assert.equal(rendezvous.size, 0);
});

Deno.test("Channel.trySend() returns false on a closed channel", () => {
  const channel = new Channel<number>(4);
  channel.close();
  assert.equal(channel.trySend(1), false);
  assert.equal(channel.size, 0);
});

Deno.test("Channel.tryReceive() takes buffered values, then from waiting senders", async () => {
  const channel = new Channel<number>(1);
  assert.deepEqual(channel.tryReceive(), { ok: false });
  channel.trySend(1);
  const sending = channel.send(2);
  assert.deepEqual(channel.tryReceive(), { ok: true, value: 1 });
  await sending;
  assert.deepEqual(channel.tryReceive(), { ok: true, value: 2 });
  assert.deepEqual(channel.tryReceive(), { ok: false });

  const rendezvous = new Channel<string>();
  const offered = rendezvous.send("x");
  assert.deepEqual(rendezvous.tryReceive(), { ok: true, value: "x" });
  await offered;
});

Deno.test("Channel delivers undefined as a value", async () => {
  const channel = new Channel<undefined>(1);
  await channel.send(undefined);
  assert.deepEqual(channel.tryReceive(), { ok: true, value: undefined });
});

Deno.test("Channel.close() lets receivers drain the buffer, then rejects them", async () => {
  const channel = new Channel<number>(3);
  await channel.send(1);
  await channel.send(2);
  channel.close();
  assert.equal(channel.closed, true);
  assert.equal(await channel.receive(), 1);
  assert.deepEqual(channel.tryReceive(), { ok: true, value: 2 });
  await assert.rejects(channel.receive(), ChannelClosedError);
  assert.deepEqual(channel.tryReceive(), { ok: false });
});

Deno.test("Channel.close() rejects waiting receivers", async () => {
  const channel = new Channel<number>(1);
  const first = channel.receive();
  const second = channel.receive();
  channel.close();
  await assert.rejects(first, ChannelClosedError);
  await assert.rejects(second, ChannelClosedError);
});

Deno.test("Channel.close() with a reason rejects drained receivers with that reason", async () => {
  const channel = new Channel<number>(1);
  const waiting = channel.receive();
  const reason = new Error("Producer failed");
  channel.close(reason);
  await assert.rejects(waiting, (error) => error === reason);
  await assert.rejects(channel.receive(), (error) => error === reason);
});

Deno.test("Channel.close() rejects waiting senders without delivering their values", async () => {
  const channel = new Channel<number>(1);
  await channel.send(1);
  const first = channel.send(2);
  const second = channel.send(3);
  channel.close(new Error("Shutting down"));
  await assert.rejects(first, ChannelClosedError);
  await assert.rejects(second, ChannelClosedError);
  await assert.rejects(channel.send(4), ChannelClosedError);
  assert.equal(await channel.receive(), 1);
  await assert.rejects(channel.receive(), { message: "Shutting down" });
});

Deno.test("Channel.close() is idempotent and keeps the first reason", async () => {
  const channel = new Channel<number>();
  channel.close(new Error("First"));
  channel.close(new Error("Second"));
  channel.close();
  assert.equal(channel.closed, true);
  await assert.rejects(channel.receive(), { message: "First" });
});

Deno.test("Channel.send() rejects with the abort reason and does not deliver the value", async () => {
  const channel = new Channel<number>(1);
  await channel.send(1);
  const controller = new AbortController();
  const aborted = channel.send(2, { signal: controller.signal });
  const later = channel.send(3);
  controller.abort(new Error("Send cancelled"));
  await assert.rejects(aborted, { message: "Send cancelled" });

  assert.equal(await channel.receive(), 1);
  await later;
  assert.equal(await channel.receive(), 3);
  assert.deepEqual(channel.tryReceive(), { ok: false });
});

Deno.test("Channel.send() rejects at once with an already aborted signal when it would wait", async () => {
  const channel = new Channel<number>();
  const signal = AbortSignal.abort(new Error("Too late"));
  await assert.rejects(channel.send(1, { signal }), { message: "Too late" });
  assert.deepEqual(channel.tryReceive(), { ok: false });

  const buffered = new Channel<number>(1);
  await buffered.send(1, { signal });
  assert.equal(buffered.size, 1);
});

Deno.test("Channel.receive() rejects with the abort reason and leaves the value to the next receiver", async () => {
  const channel = new Channel<number>(1);
  const controller = new AbortController();
  const aborted = channel.receive({ signal: controller.signal });
  const later = channel.receive();
  controller.abort(new Error("Receive cancelled"));
  await assert.rejects(aborted, { message: "Receive cancelled" });
  await channel.send(9);
  assert.equal(await later, 9);
  await assert.rejects(channel.receive({ signal: controller.signal }), {
    message: "Receive cancelled",
  });
});

Deno.test("Channel waiters remove their abort listener once settled", async () => {
  const controller = new AbortController();
  let listeners = 0;
  const signal = controller.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (...args: Parameters<typeof add>) => {
    listeners++;
    add(...args);
  };
  signal.removeEventListener = (...args: Parameters<typeof remove>) => {
    listeners--;
    remove(...args);
  };

  const channel = new Channel<number>();
  const receiving = channel.receive({ signal });
  assert.equal(listeners, 1);
  await channel.send(1);
  assert.equal(await receiving, 1);
  assert.equal(listeners, 0);

  const sending = channel.send(2, { signal });
  assert.equal(listeners, 1);
  assert.equal(await channel.receive(), 2);
  await sending;
  assert.equal(listeners, 0);

  const closing = channel.send(3, { signal });
  channel.close();
  await assert.rejects(closing, ChannelClosedError);
  assert.equal(listeners, 0);
});

Deno.test("Channel async iteration yields until the channel is closed and drained", async () => {
  const channel = new Channel<number>(2);
  const producer = (async () => {
    for (let i = 0; i < 10; i++) await channel.send(i);
    channel.close();
  })();
  const received: number[] = [];
  for await (const value of channel) received.push(value);
  await producer;
  assert.deepEqual(received, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

Deno.test("Channel async iteration throws the close reason", async () => {
  const channel = new Channel<number>(2);
  await channel.send(1);
  channel.close(new Error("Upstream failed"));
  const received: number[] = [];
  await assert.rejects(async () => {
    for await (const value of channel) received.push(value);
  }, { message: "Upstream failed" });
  assert.deepEqual(received, [1]);
});

Deno.test("Channel preserves each sender's order among many concurrent senders", async () => {
  const channel = new Channel<[number, number]>(4);
  const senders = 20;
  const perSender = 50;
  const sending = Array.from({ length: senders }, async (_, id) => {
    for (let i = 0; i < perSender; i++) await channel.send([id, i]);
  });
  const done = Promise.all(sending).then(() => channel.close());

  const next = new Array<number>(senders).fill(0);
  let count = 0;
  for await (const [id, i] of channel) {
    assert.equal(i, next[id], `sender ${id} out of order`);
    next[id]++;
    count++;
  }
  await done;
  assert.equal(count, senders * perSender);
  assert.deepEqual(next, new Array<number>(senders).fill(perSender));
});

Deno.test("Channel serves waiting senders in arrival order", async () => {
  const channel = new Channel<string>();
  const sends = ["a", "b", "c", "d"].map((value) => channel.send(value));
  const received = [];
  for (let i = 0; i < 4; i++) received.push(await channel.receive());
  await Promise.all(sends);
  assert.deepEqual(received, ["a", "b", "c", "d"]);
});

Deno.test("Channel.send() aborted between other waiting senders keeps their order", async () => {
  const channel = new Channel<string>();
  const controller = new AbortController();
  const first = channel.send("a");
  const middle = channel.send("b", { signal: controller.signal });
  const last = channel.send("c");
  controller.abort(new Error("Middle cancelled"));
  await assert.rejects(middle, { message: "Middle cancelled" });
  assert.equal(await channel.receive(), "a");
  assert.equal(await channel.receive(), "c");
  await Promise.all([first, last]);
  assert.deepEqual(channel.tryReceive(), { ok: false });
});

Deno.test("Channel serves waiting receivers in arrival order", async () => {
  const channel = new Channel<number>(4);
  const receives = [channel.receive(), channel.receive(), channel.receive()];
  await channel.send(1);
  await channel.send(2);
  await channel.send(3);
  assert.deepEqual(await Promise.all(receives), [1, 2, 3]);
});

Deno.test("Channel constructor rejects a negative or non-integer capacity", () => {
  for (const capacity of [-1, 1.5, NaN, Infinity]) {
    assert.throws(() => new Channel<number>(capacity), {
      name: "RangeError",
      message: `Cannot create a channel with capacity ${capacity}: expected a non-negative integer`,
    });
  }
  assert.equal(new Channel<number>().capacity, 0);
  assert.equal(new Channel<number>(1024).capacity, 1024);
});

Deno.test("Channel[Symbol.dispose]() and [Symbol.asyncDispose]() close it", async () => {
  const channel = new Channel<number>(1);
  channel[Symbol.dispose]();
  assert.equal(channel.closed, true);

  const other = new Channel<number>(1);
  const waiting = other.receive();
  await other[Symbol.asyncDispose]();
  assert.equal(other.closed, true);
  await assert.rejects(waiting, ChannelClosedError);
});
