import assert from "node:assert/strict";
import {
  FEED_HISTORY_MESSAGES,
  FEED_PREVIEW_BYTES,
  FEED_WATCHER_QUEUE_EVENTS,
  MAX_FEED_CLIENTS,
  MAX_FEED_MISSED_EVENTS,
} from "../defaults.ts";
import type { ServerStats } from "../parrot/server.ts";
import { type ClientInfo, type FeedEvent, type FeedStats, LiveFeed } from "./live_feed.ts";
import { emptyHistogram } from "../parrot/wait_histogram.ts";

const encoder = new TextEncoder();

/** Reads the Server-Sent Events of a watcher's stream, one `data:` event at a time. */
class EventReader {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next event, or null when the stream ended. */
  async next(): Promise<FeedEvent | null> {
    while (true) {
      const end = this.#buffer.indexOf("\n\n");
      if (end >= 0) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        if (block.startsWith("data: ")) return JSON.parse(block.slice(6));
        continue;
      }
      const { value, done } = await this.#reader.read();
      if (done) return null;
      this.#buffer += value;
    }
  }

  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

/** A clock the test moves. */
function manualClock(start = 1_700_000_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

function zeroStats(): ServerStats {
  return {
    clients: 0,
    connections: 0,
    messages: 0,
    bytes: 0,
    relayed: 0,
    relayedBytes: 0,
    queueDepth: 0,
    rejected: 0,
    slowConsumers: 0,
    slowConsumerDrops: 0,
    authFailures: 0,
    tlsFailures: 0,
    ratePauses: 0,
    readTimeouts: 0,
    idleTimeouts: 0,
    protocolErrors: 0,
    protocolErrorsByReason: {},
    unwrittenMessages: 0,
    written: 0,
    outputBytes: 0,
    outputWait: emptyHistogram(),
  };
}

Deno.test("LiveFeed.tick() sends the messages since the last event with sender, time, size and text", async () => {
  const clock = manualClock();
  using feed = closing(new LiveFeed({ intervalMs: 3_600_000, now: clock.now }));
  const events = new EventReader(feed.watch());
  feed.onMessage("polly", encoder.encode("pieces of eight"));
  clock.advance(5);
  feed.onMessage("ann", encoder.encode("<b>hi</b>\n"));
  feed.tick();
  const event = await events.next();
  assert.ok(event);
  assert.deepEqual(event.messages, [
    {
      from: "polly",
      time: clock.now() - 5,
      size: 15,
      binary: false,
      preview: "pieces of eight",
      truncated: false,
    },
    {
      from: "ann",
      time: clock.now(),
      size: 10,
      binary: false,
      preview: "<b>hi</b>\n",
      truncated: false,
    },
  ]);
  assert.deepEqual(event.sampled, { shown: 2, total: 2 });
});

Deno.test("LiveFeed.onMessage() keeps nothing while no one watches", async () => {
  using feed = closing(new LiveFeed({ intervalMs: 3_600_000 }));
  feed.onMessage("polly", encoder.encode("unseen"));
  const events = new EventReader(feed.watch());
  feed.onMessage("polly", encoder.encode("seen"));
  feed.tick();
  const event = await events.next();
  assert.deepEqual(event?.messages.map((m) => m.preview), ["seen"]);
  assert.deepEqual(event?.sampled, { shown: 1, total: 1 });
});

Deno.test("LiveFeed.tick() shows a binary payload as hex and cuts a long one", async () => {
  using feed = closing(new LiveFeed({ intervalMs: 3_600_000 }));
  const events = new EventReader(feed.watch());
  feed.onMessage("bin", new Uint8Array([0xff, 0x00, 0x0a, 0xc3]));
  feed.onMessage("long", encoder.encode("x".repeat(FEED_PREVIEW_BYTES + 100)));
  // "é" is two bytes: the cut falls inside it; that is still text, not binary.
  feed.onMessage("cut", encoder.encode("a" + "é".repeat(FEED_PREVIEW_BYTES)));
  feed.onMessage("big", new Uint8Array(1000).fill(0xfe));
  feed.tick();
  const [bin, long, cut, big] = (await events.next())!.messages;
  assert.deepEqual(bin, {
    ...bin,
    size: 4,
    binary: true,
    preview: "ff 00 0a c3",
    truncated: false,
  });
  assert.equal(long.binary, false);
  assert.equal(long.preview, "x".repeat(FEED_PREVIEW_BYTES));
  assert.equal(long.truncated, true);
  assert.equal(cut.binary, false);
  assert.equal(cut.preview, "a" + "é".repeat((FEED_PREVIEW_BYTES - 2) / 2));
  assert.equal(big.binary, true);
  assert.equal(big.size, 1000);
  assert.equal(big.preview, Array(32).fill("fe").join(" "));
  assert.equal(big.truncated, true);
});

Deno.test("LiveFeed.onMessage() keeps at most the budget per second, spread over the second", async () => {
  const clock = manualClock();
  using feed = closing(
    new LiveFeed({ intervalMs: 3_600_000, messagesPerSecond: 10, now: clock.now }),
  );
  const events = new EventReader(feed.watch());
  const send = () => {
    for (let i = 0; i < 1000; i++) feed.onMessage("n", encoder.encode(String(i)));
  };
  send();
  clock.advance(1000);
  feed.tick();
  const first = (await events.next())!;
  assert.deepEqual(first.sampled, { shown: 10, total: 1000 });

  // Knowing the rate now (1000/s), it keeps every 100th: from all of the second.
  send();
  clock.advance(1000);
  feed.tick();
  const second = (await events.next())!;
  assert.deepEqual(second.sampled, { shown: 10, total: 1000 });
  assert.deepEqual(
    second.messages.map((m) => Number(m.preview)),
    [99, 199, 299, 399, 499, 599, 699, 799, 899, 999],
  );
});

Deno.test("LiveFeed.tick() computes per-second rates from the counters' change", async () => {
  const clock = manualClock();
  const stats: FeedStats = { ...zeroStats(), relayedBytes: 0 };
  using feed = closing(
    new LiveFeed({ intervalMs: 3_600_000, now: clock.now, stats: () => ({ ...stats }) }),
  );
  const events = new EventReader(feed.watch());
  for (let i = 0; i < 30; i++) feed.onMessage("a", new Uint8Array(100));
  stats.relayed = 60;
  stats.relayedBytes = 6000;
  stats.slowConsumers = 2;
  clock.advance(2000);
  feed.tick();
  const event = (await events.next())!;
  assert.deepEqual(event.rates, { messagesIn: 15, bytesIn: 1500, messagesOut: 30, bytesOut: 3000 });
  assert.equal(event.counters?.slowConsumers, 2);
});

Deno.test("LiveFeed.tick() lists the clients, at most MAX_FEED_CLIENTS of them, and counts all", async () => {
  const clients: ClientInfo[] = Array.from({ length: MAX_FEED_CLIENTS + 5 }, (_, i) => ({
    id: i,
    name: `c${i}`,
    transport: "tcp",
    address: `127.0.0.1:${1000 + i}`,
    messagesIn: i,
    messagesOut: 0,
    connectedAt: 1,
  }));
  using feed = closing(new LiveFeed({ intervalMs: 3_600_000, clients: () => clients }));
  const events = new EventReader(feed.watch());
  feed.tick();
  const event = (await events.next())!;
  assert.equal(event.clients.length, MAX_FEED_CLIENTS);
  assert.equal(event.clientCount, MAX_FEED_CLIENTS + 5);
  assert.deepEqual(event.clients[3], clients[3]);
});

Deno.test("LiveFeed.tick() skips a watcher that does not read, then closes its stream", async () => {
  using feed = closing(new LiveFeed({ intervalMs: 3_600_000 }));
  const stalled = feed.watch();
  const reading = new EventReader(feed.watch());
  for (let i = 0; i < FEED_WATCHER_QUEUE_EVENTS + MAX_FEED_MISSED_EVENTS; i++) {
    feed.tick();
    assert.ok(await reading.next());
  }
  assert.equal(feed.watchers, 1);
  // Its queue holds the stream's start and the first events only: it ends after them.
  const text = await new Response(stalled).text();
  assert.equal(text.split("data: ").length - 1, FEED_WATCHER_QUEUE_EVENTS - 1);
});

Deno.test("LiveFeed.watch() ends when its signal aborts or its reader cancels, and the timer stops with the last", async () => {
  using feed = closing(new LiveFeed({ intervalMs: 3_600_000 }));
  const controller = new AbortController();
  const aborted = new EventReader(feed.watch(controller.signal));
  const cancelled = feed.watch();
  assert.equal(feed.watchers, 2);
  controller.abort();
  assert.equal(await aborted.next(), null);
  assert.equal(feed.watchers, 1);
  await cancelled.cancel();
  // The test's sanitizer fails it if the interval were still running.
  assert.equal(feed.watchers, 0);
});

Deno.test("LiveFeed pushes an event every interval while someone watches", async () => {
  using feed = closing(new LiveFeed({ intervalMs: 10 }));
  const events = new EventReader(feed.watch());
  feed.onMessage("timer", encoder.encode("tick"));
  let event = await events.next();
  while (event && event.messages.length === 0) event = await events.next();
  assert.equal(event?.messages[0].preview, "tick");
  await events.cancel();
});

Deno.test("LiveFeed.watch() refuses a watcher beyond the most, and after close()", async () => {
  const controller = new AbortController();
  const feed = new LiveFeed({ intervalMs: 3_600_000, maxWatchers: 1, signal: controller.signal });
  const only = new EventReader(feed.watch());
  assert.equal(feed.acceptsWatchers, false);
  assert.throws(() => feed.watch(), {
    name: "RangeError",
    message: "too many watchers (1)",
  });
  controller.abort();
  assert.equal(await only.next(), null);
  assert.throws(() => feed.watch(), { name: "RangeError", message: "it is closed" });
});

/** Closes the feed when the test's `using` scope ends. */
function closing(feed: LiveFeed): LiveFeed & Disposable {
  return Object.assign(feed, { [Symbol.dispose]: () => feed.close() });
}

/** The first `event: history` block of a watcher's stream, parsed; null if the stream has another event first. */
async function firstHistoryEvent(stream: ReadableStream<Uint8Array>) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (;;) {
    const blocks = text.split("\n\n");
    for (const block of blocks.slice(0, -1)) {
      if (block.startsWith("retry:")) continue;
      await reader.cancel();
      const match = block.match(/^event: history\ndata: (.*)$/);
      return match ? JSON.parse(match[1]) : null;
    }
    const { value, done } = await reader.read();
    if (done) return null;
    text += value;
  }
}

Deno.test("LiveFeed.watch() with a history sends a new watcher the recent stored messages first", async () => {
  const asked: number[] = [];
  const feed = new LiveFeed({
    intervalMs: 60_000,
    history: (n) => {
      asked.push(n);
      return [
        { sender: "ann", time: 1_000, payload: encoder.encode("hello") },
        { sender: "bob", time: 2_000, payload: Uint8Array.of(0xff, 0x00) },
        { sender: "cy", time: 3_000, payload: new Uint8Array(FEED_PREVIEW_BYTES + 10).fill(0x61) },
      ];
    },
  });
  const event = await firstHistoryEvent(feed.watch());
  assert.deepEqual(asked, [FEED_HISTORY_MESSAGES]);
  assert.deepEqual(event, {
    messages: [
      { from: "ann", time: 1_000, size: 5, binary: false, preview: "hello", truncated: false },
      { from: "bob", time: 2_000, size: 2, binary: true, preview: "ff 00", truncated: false },
      {
        from: "cy",
        time: 3_000,
        size: FEED_PREVIEW_BYTES + 10,
        binary: false,
        preview: "a".repeat(FEED_PREVIEW_BYTES),
        truncated: true,
      },
    ],
  });
  feed.close();
  // Without a history, the first event is the regular one.
  const plain = new LiveFeed({ intervalMs: 60_000 });
  const first = firstHistoryEvent(plain.watch());
  plain.tick();
  assert.equal(await first, null);
  plain.close();
});
