/**
 * The cost of watching: the fan-in of `connections` x `messages` x `size`, once without
 * the live page and once with one watcher reading the page's feed (`/live`) all along,
 * each on a fresh server run as the other rows run it (the `server` task's flags): the
 * plain `server.ts 0`, then `server.ts 0 --http 0`, what a user who opens the page runs.
 * The row gives both rates and their ratio.
 *
 * @module
 */

import { httpListeningPort } from "../../lib/testing.ts";
import { TortureServer } from "../shared/harness.ts";
import { type BenchContext, type BenchOutcome, drive, type Driven } from "./drive.ts";
import { checkPrinted, compareFanIn, sendRole, stopServer } from "./scenario_throughput.ts";
import type { Sizes } from "../shared/harness.ts";

/** A watcher of the feed, as a page is: it reads every event and counts them. */
class FeedWatcher {
  events = 0;
  /** Messages the feed saw, summed over the events (every one, sampled or not). */
  seen = 0;
  /** Messages the events carried. */
  shown = 0;
  readonly #controller = new AbortController();
  readonly #reading: Promise<void>;
  #first!: () => void;
  readonly first = new Promise<void>((resolve) => this.#first = resolve);

  constructor(url: string) {
    this.#reading = this.#read(url).catch((error) => {
      if (!this.#controller.signal.aborted) throw error;
    });
  }

  async #read(url: string): Promise<void> {
    const response = await fetch(url, { signal: this.#controller.signal });
    if (!response.ok || !response.body) throw new Error(`GET ${url}: ${response.status}`);
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of response.body) {
      buffer += decoder.decode(chunk, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!block.startsWith("data: ")) continue;
        const event = JSON.parse(block.slice(6));
        this.events++;
        this.seen += event.sampled.total;
        this.shown += event.sampled.shown;
        this.#first();
      }
    }
  }

  async close(): Promise<void> {
    this.#controller.abort();
    await this.#reading;
  }
}

/** One fan-in run on a fresh server, with or without the page open. */
async function fanIn(context: BenchContext, sizes: Sizes, withPage: boolean) {
  const { connections, messages } = sizes;
  await using server = await TortureServer.start(
    context,
    withPage ? "fan-in-page" : "fan-in-no-page",
    withPage ? ["--http", "0"] : [],
  );
  let watcher: FeedWatcher | null = null;
  try {
    const driven: Driven = await drive(context, server, [sendRole("c", sizes)], {
      timeLimitMs: Math.round(sizes.timeLimitMs / 2),
      beforeGo: async () => {
        if (!withPage) return;
        const httpPort = await httpListeningPort(server.process);
        watcher = new FeedWatcher(`http://127.0.0.1:${httpPort}/live`);
        context.progress("waiting for the page's first event");
        await watcher.first; // The page is open and reading.
      },
    });
    const failures = [...driven.failures, ...await stopServer(server)];
    const printed = await checkPrinted(server, "c", connections, messages);
    failures.push(...printed.failures);
    return { driven, failures, printed: printed.printed, watcher: watcher as FeedWatcher | null };
  } finally {
    await (watcher as FeedWatcher | null)?.close();
  }
}

/** Fan-in without, then with, the live page open: both rates and their ratio. */
export async function runFanInWithPage(
  context: BenchContext,
  sizes: Sizes,
): Promise<BenchOutcome> {
  const compared = await compareFanIn(
    sizes,
    { name: "the page", versus: "page open vs not" },
    (withPage) => fanIn(context, sizes, withPage),
  );
  const { outcome, withFeature: withPage, ratePerSecond, ratio } = compared;
  const failures = [...outcome.failures];
  if (withPage.watcher && withPage.watcher.events === 0) failures.push("the page got no event");
  return {
    ...outcome,
    metrics: {
      ...outcome.metrics,
      messagesPerSecondWithPage: ratePerSecond,
      withPageRatio: Math.round(ratio * 1000) / 1000,
      feedEvents: withPage.watcher?.events ?? 0,
      feedSeen: withPage.watcher?.seen ?? 0,
      feedShown: withPage.watcher?.shown ?? 0,
    },
    failures,
  };
}
