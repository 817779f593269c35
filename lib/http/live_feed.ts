/**
 * The live feed the web page reads: once a second, one JSON event with the rates, the
 * counters, the connected clients and a sample of the messages, pushed to every page
 * watching as Server-Sent Events.
 *
 * It owns the sampling, because the server may relay tens of thousands of messages a
 * second and a browser tab can show a hundred: {@linkcode LiveFeed.onMessage} is called
 * for every message, on the server's hot path, so it counts, and copies only the few it
 * keeps (evenly spread: every Nth, N from the previous second's rate, and never more
 * than a budget per second). Everything else (decoding the previews, reading the
 * clients and counters, rates, JSON) happens once a second, and only while someone
 * watches.
 *
 * Why Server-Sent Events rather than a WebSocket: the feed goes one way, a browser's
 * `EventSource` reconnects by itself, and it is a plain GET, so it passes through the
 * HTTP side's Host and token checks like the page itself. Memory stays bounded: each
 * watcher's stream queues a few events at most; a watcher that does not read misses the
 * next ones, and after {@linkcode MAX_FEED_MISSED_EVENTS} in a row its stream is closed.
 *
 * With a history (`--history`), a new watcher first gets one `history` event (SSE
 * `event: history`) with the most recent stored messages, so the page is not empty
 * when it opens: `{"messages": [FeedMessage, ...]}`, oldest first.
 *
 * @module
 */

import {
  DEFAULT_FEED_INTERVAL_MS,
  DEFAULT_FEED_MESSAGES_PER_SECOND,
  FEED_HISTORY_MESSAGES,
  FEED_PREVIEW_BYTES,
  FEED_WATCHER_QUEUE_EVENTS,
  MAX_FEED_CLIENTS,
  MAX_FEED_MISSED_EVENTS,
  MAX_FEED_WATCHERS,
} from "../defaults.ts";
import type { ClientInfo, ServerStats } from "../parrot/server.ts";

export type { ClientInfo };

/**
 * The counters the feed reads each second: the server's {@linkcode ServerStats}, the
 * payload bytes relayed if the server counts them (bytes/s out is null otherwise), and in
 * cluster mode the cluster's counters (`clusterPublished`, ...).
 */
export type FeedStats = ServerStats & {
  relayedBytes?: number;
  readonly [cluster: `cluster${string}`]: number | undefined;
};

/** One sampled message, as the page gets it. */
export interface FeedMessage {
  /** The sender's name. */
  from: string;
  /** When the server handled it, in milliseconds since the epoch. */
  time: number;
  /** Payload size in bytes. */
  size: number;
  /** Whether the payload is not valid UTF-8 (then `preview` is hex). */
  binary: boolean;
  /** The start of the payload: its text, or for a binary one its first bytes in hex. */
  preview: string;
  /** Whether `preview` shows only the start of the payload. */
  truncated: boolean;
}

/** Per-second rates, from the counters' change since the last event. */
export interface FeedRates {
  /** Messages received per second (every one, not only the sampled). */
  messagesIn: number;
  /** Payload bytes received per second. */
  bytesIn: number;
  /** Relay deliveries per second (one per subscriber); null without the server's counters. */
  messagesOut: number | null;
  /** Relayed payload bytes per second; null when the server does not count them. */
  bytesOut: number | null;
}

/** One event of the feed: what the page shows, once a second. */
export interface FeedEvent {
  /** Milliseconds since the epoch. */
  time: number;
  rates: FeedRates;
  /** The server's counters (those of `--stats`); null without a source. */
  counters: FeedStats | null;
  /** The clients, at most {@linkcode MAX_FEED_CLIENTS} of them. */
  clients: ClientInfo[];
  /** How many clients are connected (`clients` may list fewer). */
  clientCount: number;
  /** The messages kept since the last event, oldest first. */
  messages: FeedMessage[];
  /** `shown` of the `total` messages since the last event are in `messages`. */
  sampled: { shown: number; total: number };
}

/** Options of {@linkcode LiveFeed}. */
export interface LiveFeedOptions {
  /** The connected clients. Default: none. */
  clients?: () => ClientInfo[];
  /** The server's counters. Default: all zero. */
  stats?: () => FeedStats;
  /** Most messages kept per second. Default {@linkcode DEFAULT_FEED_MESSAGES_PER_SECOND}. */
  messagesPerSecond?: number;
  /** Milliseconds between events. Default {@linkcode DEFAULT_FEED_INTERVAL_MS}. */
  intervalMs?: number;
  /** Most watchers at once. Default {@linkcode MAX_FEED_WATCHERS}. */
  maxWatchers?: number;
  /** Aborting it closes the feed (as {@linkcode LiveFeed.close}). */
  signal?: AbortSignal;
  /** The clock, in milliseconds since the epoch (tests pass their own). Default `Date.now`. */
  now?: () => number;
  /**
   * The last `n` stored messages, oldest first (the server's `--history`), for the
   * `history` event a new watcher gets first. Default: none, and no such event.
   */
  history?: (n: number) => { sender: string; time: number; payload: Uint8Array }[];
}

/** The event a new watcher gets first when the feed has a history. */
export interface FeedHistoryEvent {
  /** The most recent stored messages, at most {@linkcode FEED_HISTORY_MESSAGES}, oldest first. */
  messages: FeedMessage[];
}

/** A message kept by `onMessage`, not yet decoded. */
interface Kept {
  from: string;
  time: number;
  size: number;
  head: Uint8Array;
}

/** One page watching: its stream's controller and how many events it missed in a row. */
interface Watcher {
  controller: ReadableStreamDefaultController<Uint8Array>;
  missed: number;
}

const encoder = new TextEncoder();
/** Bytes of a binary payload shown in hex. */
const HEX_PREVIEW_BYTES = 32;
/** The first bytes of every stream: how long the browser waits before it reconnects. */
const STREAM_START = encoder.encode("retry: 2000\n\n");

/**
 * The sampled live view of a server, for the web page. Pass
 * {@linkcode LiveFeed.onMessage} as the server's `onMessage`; serve
 * {@linkcode LiveFeed.watch} as a `text/event-stream` response.
 *
 * @example Watch one event
 * ```ts
 * import assert from "node:assert/strict";
 * import { LiveFeed } from "./live_feed.ts";
 *
 * const feed = new LiveFeed({ intervalMs: 60_000 });
 * const events = feed.watch().pipeThrough(new TextDecoderStream()).getReader();
 * feed.onMessage("polly", new TextEncoder().encode("pieces of eight"));
 * feed.tick(); // The timer does it every interval.
 * let text = "";
 * while (!text.includes("data: ")) text += (await events.read()).value;
 * const event = JSON.parse(text.slice(text.indexOf("data: ") + 6));
 * assert.equal(event.messages[0].preview, "pieces of eight");
 * feed.close();
 * ```
 */
export class LiveFeed {
  readonly #clients: () => ClientInfo[];
  readonly #stats: () => FeedStats | null;
  readonly #budget: number;
  readonly #intervalMs: number;
  readonly #maxWatchers: number;
  readonly #now: () => number;
  readonly #history?: LiveFeedOptions["history"];
  readonly #watchers = new Set<Watcher>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  // The hot path's state: messages seen, and the sampling stride.
  #seen = 0;
  #seenBytes = 0;
  #countdown = 0;
  #stride = 1;
  #kept: Kept[] = [];

  // Where the last event left off, for the rates.
  #lastTime = 0;
  #lastSeen = 0;
  #lastSeenBytes = 0;
  #last: FeedStats | null = null;

  /** A feed; nothing runs until someone watches. */
  constructor(options: LiveFeedOptions = {}) {
    this.#clients = options.clients ?? (() => []);
    this.#stats = options.stats ?? (() => null);
    this.#budget = Math.max(1, options.messagesPerSecond ?? DEFAULT_FEED_MESSAGES_PER_SECOND);
    this.#intervalMs = options.intervalMs ?? DEFAULT_FEED_INTERVAL_MS;
    this.#maxWatchers = options.maxWatchers ?? MAX_FEED_WATCHERS;
    this.#now = options.now ?? Date.now;
    this.#history = options.history;
    const signal = options.signal;
    if (signal?.aborted) this.close();
    else signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  /**
   * Takes note of one message (the server calls it for every one; `payload` is valid
   * during the call only). Counts it, and copies the first bytes of the few it keeps.
   */
  onMessage(from: string, payload: Uint8Array): void {
    this.#seen++;
    this.#seenBytes += payload.length;
    if (++this.#countdown < this.#stride || this.#watchers.size === 0) return;
    if (this.#kept.length >= this.#budget) return;
    this.#countdown = 0;
    this.#kept.push({
      from,
      time: this.#now(),
      size: payload.length,
      head: payload.slice(0, FEED_PREVIEW_BYTES),
    });
  }

  /** Pages watching now. */
  get watchers(): number {
    return this.#watchers.size;
  }

  /** Whether another watcher is accepted now (not closed, fewer than the most). */
  get acceptsWatchers(): boolean {
    return !this.#closed && this.#watchers.size < this.#maxWatchers;
  }

  /**
   * A new watcher: a stream of Server-Sent Events (`data: <FeedEvent JSON>`), one per
   * interval. Ends when `signal` aborts, when the reader cancels, when the watcher falls
   * behind for too long, or when the feed closes. Throws a `RangeError` when it
   * does not {@linkcode LiveFeed.acceptsWatchers}.
   */
  watch(signal?: AbortSignal): ReadableStream<Uint8Array> {
    if (!this.acceptsWatchers) {
      throw new RangeError(
        this.#closed ? "it is closed" : `too many watchers (${this.#maxWatchers})`,
      );
    }
    let watcher: Watcher;
    const remove = () => {
      if (!this.#watchers.delete(watcher)) return;
      signal?.removeEventListener("abort", end);
      if (this.#watchers.size === 0) this.#stop();
    };
    const end = () => {
      remove();
      try {
        watcher.controller.close();
      } catch { /* Already closed or cancelled. */ }
    };
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        watcher = { controller, missed: 0 };
        controller.enqueue(STREAM_START);
        if (this.#history) controller.enqueue(this.#historyEvent(this.#history));
        if (signal?.aborted) return controller.close();
        this.#watchers.add(watcher);
        signal?.addEventListener("abort", end, { once: true });
        this.#start();
      },
      cancel: remove,
    }, { highWaterMark: FEED_WATCHER_QUEUE_EVENTS });
  }

  /**
   * Computes one event and pushes it to every watcher. The timer calls it every
   * interval while someone watches; call it yourself to push one now.
   */
  tick(): FeedEvent {
    const event = this.#event();
    const bytes = encoder.encode(`data: ${JSON.stringify(event)}\n\n`);
    for (const watcher of [...this.#watchers]) {
      const { controller } = watcher;
      if ((controller.desiredSize ?? 0) > 0) {
        watcher.missed = 0;
        controller.enqueue(bytes);
      } else if (++watcher.missed >= MAX_FEED_MISSED_EVENTS) {
        this.#watchers.delete(watcher);
        try {
          controller.close();
        } catch { /* Already closed. */ }
      }
    }
    if (this.#watchers.size === 0) this.#stop();
    return event;
  }

  /** Ends every watcher's stream and stops the timer; later `watch` calls throw. */
  close(): void {
    this.#closed = true;
    for (const watcher of this.#watchers) {
      try {
        watcher.controller.close();
      } catch { /* Already closed. */ }
    }
    this.#watchers.clear();
    this.#stop();
  }

  #start(): void {
    if (this.#timer !== undefined) return;
    // Rates start from now, not from the last time someone watched.
    this.#lastTime = this.#now();
    this.#lastSeen = this.#seen;
    this.#lastSeenBytes = this.#seenBytes;
    this.#last = this.#stats();
    this.#kept = [];
    this.#countdown = 0;
    this.#stride = 1;
    this.#timer = setInterval(() => this.tick(), this.#intervalMs);
  }

  #stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The `history` event: the most recent stored messages, as the page shows messages. */
  #historyEvent(history: NonNullable<LiveFeedOptions["history"]>): Uint8Array {
    const event: FeedHistoryEvent = {
      messages: history(FEED_HISTORY_MESSAGES).map(({ sender, time, payload }) =>
        toFeedMessage({
          from: sender,
          time,
          size: payload.length,
          head: payload.subarray(0, FEED_PREVIEW_BYTES),
        })
      ),
    };
    return encoder.encode(`event: history\ndata: ${JSON.stringify(event)}\n\n`);
  }

  #event(): FeedEvent {
    const now = this.#now();
    const seconds = Math.max(now - this.#lastTime, 1) / 1000;
    const total = this.#seen - this.#lastSeen;
    const kept = this.#kept;
    this.#kept = [];
    // Next interval, keep every Nth so the budget spreads over the whole second.
    const perSecond = total / seconds;
    this.#stride = Math.max(1, Math.ceil(perSecond / this.#budget));
    this.#countdown = 0;
    const stats = this.#stats();
    const last = this.#last;
    const rate = (now: number | undefined, then: number | undefined) =>
      now === undefined || then === undefined ? null : Math.max(0, now - then) / seconds;
    const rates: FeedRates = {
      messagesIn: total / seconds,
      bytesIn: (this.#seenBytes - this.#lastSeenBytes) / seconds,
      messagesOut: rate(stats?.relayed, last?.relayed),
      bytesOut: rate(stats?.relayedBytes, last?.relayedBytes),
    };
    this.#lastTime = now;
    this.#lastSeen = this.#seen;
    this.#lastSeenBytes = this.#seenBytes;
    this.#last = stats;
    const all = this.#clients();
    return {
      time: now,
      rates,
      counters: stats,
      clients: all.length > MAX_FEED_CLIENTS ? all.slice(0, MAX_FEED_CLIENTS) : all,
      clientCount: all.length,
      messages: kept.map(toFeedMessage),
      sampled: { shown: kept.length, total },
    };
  }
}

/** Decodes a kept message's preview: its text if it is UTF-8, else hex. */
function toFeedMessage({ from, time, size, head }: Kept): FeedMessage {
  const truncated = size > head.length;
  try {
    // Streaming, a sequence cut at the end of a truncated head is held back, not an error.
    const text = new TextDecoder("utf-8", { fatal: true }).decode(head, { stream: truncated });
    return { from, time, size, binary: false, preview: text, truncated };
  } catch {
    const shown = head.subarray(0, HEX_PREVIEW_BYTES);
    const hex = Array.from(shown, (b) => b.toString(16).padStart(2, "0")).join(" ");
    return { from, time, size, binary: true, preview: hex, truncated: size > shown.length };
  }
}
