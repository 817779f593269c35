/**
 * The throughput scenarios: fan-in (many senders, stdout to a file), fan-out
 * (publishers to subscribers) and memory under load (fan-in with RSS watched during and
 * after it).
 *
 * Each starts a fresh server as a user would (scripts/shared/harness.ts's
 * {@linkcode TortureServer}: `deno run` with the server task's permissions and V8 flags,
 * stdout to a file), drives it with the generator, and checks that every message
 * arrived: fan-in counts every connection's records on the server's stdout; fan-out has
 * every subscriber count every relayed message (and the stdout has every one too).
 *
 * @module
 */

import {
  formatMegabytes,
  type ProcessProbe,
  type Sizes,
  TortureServer,
} from "../shared/harness.ts";
import { type BenchContext, type BenchOutcome, drive, type Driven, formatCount } from "./drive.ts";
import type { SendRole } from "./plan.ts";
import { RssSampler } from "./probes.ts";
import { countRecords } from "./records.ts";

/** Bytes of one write of pipelined frames. */
export const BATCH_BYTES = 128 * 1024;
/** Relayed bytes the publishers may be ahead of the slowest subscriber: half of the
 * server's default --max-outbound, so a subscriber that reads is never a slow consumer. */
export const WINDOW_BYTES = 4 * 1024 * 1024;

function names(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}

export function sendRole(prefix: string, sizes: Sizes, windowBytes = 0): SendRole {
  return {
    kind: "send",
    names: names(prefix, sizes.connections),
    messages: sizes.messages,
    size: sizes.size,
    batchBytes: BATCH_BYTES,
    windowBytes,
  };
}

/** Checks that the server printed `messages` records of each sender `<prefix><n>`. */
export async function checkPrinted(
  server: TortureServer,
  prefix: string,
  senders: number,
  messages: number,
): Promise<{ printed: number; failures: string[] }> {
  const counts = await countRecords(server.stdoutFile, prefix, senders);
  const printed = counts.perSender.reduce((a, b) => a + b, 0);
  const wrong = counts.perSender
    .map((count, i) => ({ count, i }))
    .filter(({ count }) => count !== messages);
  const failures = wrong.length === 0 ? [] : [
    `${wrong.length} of ${senders} connections lost messages on stdout (` +
    wrong.slice(0, 3).map(({ count, i }) => `${prefix}${i}: ${count} of ${messages}`).join(", ") +
    ")",
  ];
  if (counts.other > 0) failures.push(`${counts.other} stdout lines from no sender`);
  return { printed, failures };
}

/** Stops the server and checks it exited 0. */
export async function stopServer(server: TortureServer): Promise<string[]> {
  const code = await server.stop();
  return code === 0 ? [] : [`the server exited ${code}`];
}

export function throughputFigures(driven: Driven, messages: number, size: number) {
  const seconds = driven.result.elapsedMs / 1000;
  return {
    elapsedMs: Math.round(driven.result.elapsedMs),
    messagesPerSecond: Math.round(messages / seconds),
    megabytesPerSecond: Math.round((messages * size) / seconds / 1e5) / 10,
  };
}

/** One fan-in run of a with-and-without comparison ({@linkcode compareFanIn}). */
export interface ComparedRun {
  /** What the generator measured. */
  driven: Driven;
  /** What went wrong in the run. */
  failures: string[];
  /** Records found on the server's stdout. */
  printed: number;
}

/** What {@linkcode compareFanIn} labels the feature with. */
export interface ComparedFeature {
  /** As it follows "with" and "without" in the figure and failures ("--history", "the page"). */
  name: string;
  /** The end of the row's load ("--history vs not", "page open vs not"). */
  versus: string;
}

/**
 * Fan-in without, then with, a feature, each on a fresh server (`run(false)`, then
 * `run(true)`): the run with the feature, its rate and that rate's ratio to the rate
 * without, and the row with both rates. The caller adds its own metrics and checks to `outcome`.
 */
export async function compareFanIn<R extends ComparedRun>(
  sizes: Sizes,
  feature: ComparedFeature,
  run: (withFeature: boolean) => Promise<R>,
): Promise<{ withFeature: R; ratePerSecond: number; ratio: number; outcome: BenchOutcome }> {
  const { connections, messages, size } = sizes;
  const total = connections * messages;
  const without = await run(false);
  const withFeature = await run(true);
  const plain = throughputFigures(without.driven, total, size);
  const featured = throughputFigures(withFeature.driven, total, size);
  const ratio = featured.messagesPerSecond / plain.messagesPerSecond;
  const outcome: BenchOutcome = {
    load: `${formatCount(connections)} conns x ${formatCount(messages)} msgs x ${size} B, ` +
      feature.versus,
    figure: `${formatCount(featured.messagesPerSecond)} msgs/s with ${feature.name}, ${
      formatCount(plain.messagesPerSecond)
    } without (${Math.round(ratio * 100)}%)`,
    cpu: withFeature.driven.cpu,
    serverPeakRssBytes: withFeature.driven.peakRssBytes,
    metrics: {
      ...sizes,
      sent: total * 2,
      printed: without.printed + withFeature.printed,
      messagesPerSecondWithout: plain.messagesPerSecond,
    },
    failures: [
      ...without.failures.map((f) => `without ${feature.name}: ${f}`),
      ...withFeature.failures.map((f) => `with ${feature.name}: ${f}`),
    ],
  };
  return { withFeature, ratePerSecond: featured.messagesPerSecond, ratio, outcome };
}

/** Fan-in: `connections` unsubscribed senders, each `messages` frames of `size` bytes. */
export async function runFanIn(context: BenchContext, sizes: Sizes): Promise<BenchOutcome> {
  const { connections, messages, size } = sizes;
  await using server = await TortureServer.start(context, "fan-in", []);
  const driven = await drive(context, server, [sendRole("c", sizes)], {
    timeLimitMs: sizes.timeLimitMs,
  });
  const failures = [...driven.failures, ...await stopServer(server)];
  const printed = await checkPrinted(server, "c", connections, messages);
  failures.push(...printed.failures);
  const total = connections * messages;
  const figures = throughputFigures(driven, total, size);
  return {
    load: `${formatCount(connections)} conns x ${formatCount(messages)} msgs x ${size} B`,
    figure: `${formatCount(figures.messagesPerSecond)} msgs/s, ${figures.megabytesPerSecond} MB/s`,
    cpu: driven.cpu,
    serverPeakRssBytes: driven.peakRssBytes,
    metrics: { ...sizes, ...figures, sent: total, printed: printed.printed },
    failures,
  };
}

/** Fan-out: `connections` publishers, `subscribers` subscribers that count every message. */
export async function runFanOut(context: BenchContext, sizes: Sizes): Promise<BenchOutcome> {
  const { connections, subscribers, messages } = sizes;
  await using server = await TortureServer.start(context, "fan-out", []);
  const total = connections * messages;
  const driven = await drive(context, server, [
    sendRole("p", sizes, WINDOW_BYTES),
    { kind: "subscribe", names: names("s", subscribers), expected: total, firstSlot: 1 },
  ], { timeLimitMs: sizes.timeLimitMs });
  const failures = [...driven.failures, ...await stopServer(server)];
  const printed = await checkPrinted(server, "p", connections, messages);
  failures.push(...printed.failures);
  return fanOutOutcome(driven, sizes, "", { printed: printed.printed }, failures);
}

/**
 * A fan-out's row: delivered and published rates, from any server (`server`, e.g.
 * ", nats-server", names it after the load), with `extra` in the metrics.
 */
export function fanOutOutcome(
  driven: Driven,
  sizes: Sizes,
  server: string,
  extra: Record<string, unknown>,
  failures: string[],
): BenchOutcome {
  const { connections, subscribers, messages, size } = sizes;
  const total = connections * messages;
  const delivered = driven.metrics.subscribe?.delivered ?? 0;
  const figures = throughputFigures(driven, delivered, size);
  return {
    load: `${connections} pub x ${formatCount(messages)} msgs x ${size} B -> ${subscribers} sub` +
      server,
    figure: `${formatCount(figures.messagesPerSecond)} delivered/s, ${
      formatCount(total / (driven.result.elapsedMs / 1000))
    } published/s`,
    cpu: driven.cpu,
    serverPeakRssBytes: driven.peakRssBytes,
    metrics: {
      ...sizes,
      ...figures,
      deliveredPerSecond: figures.messagesPerSecond,
      published: total,
      delivered,
      windowWaits: driven.metrics.send?.windowWaits ?? 0,
      ...extra,
    },
    failures,
  };
}

/**
 * Memory under load: the fan-in of `connections` x `messages` x `size` with RSS sampled
 * every 50 ms, then RSS at +3 s (after the server's collection at 1 s of quiet) and at
 * +10 s (after V8 returns its pooled pages, about 8 s later).
 */
export async function runMemoryUnderLoad(
  context: BenchContext,
  sizes: Sizes,
): Promise<BenchOutcome> {
  const { connections, messages, size } = sizes;
  await using server = await TortureServer.start(context, "memory", []);
  const sampler = new RssSampler(server.pid, 50);
  try {
    let idle = { rssBytes: 0, anonymousBytes: 0 };
    const driven = await drive(context, server, [sendRole("c", sizes)], {
      timeLimitMs: sizes.timeLimitMs,
      sampler,
      beforeGo: async () => {
        idle = await server.probe();
      },
    });
    const doneAt = Date.now();
    const after: ProcessProbe[] = [];
    for (const seconds of [3, 10]) {
      context.progress(`waiting for RSS at +${seconds}s`);
      // A point in time by nature: the server's idle collection and V8's page release.
      await new Promise((resolve) => setTimeout(resolve, doneAt + seconds * 1000 - Date.now()));
      after.push(await server.probe());
    }
    const failures = [...driven.failures, ...await stopServer(server)];
    const printed = await checkPrinted(server, "c", connections, messages);
    failures.push(...printed.failures);
    const peak = driven.peakRssBytes;
    return {
      load: `fan-in ${connections} x ${formatCount(messages)} x ${size} B, RSS every 50 ms`,
      // The anonymous part is what the server allocated; the rest is deno's code, paged
      // in the first time the load runs it (docs/LIMITS.md, "Connection churn").
      figure: `peak ${formatMegabytes(peak)}, +3s ${formatMegabytes(after[0].rssBytes)}, +10s ${
        formatMegabytes(after[1].rssBytes)
      } (idle ${formatMegabytes(idle.rssBytes)}); allocated: idle ${
        formatMegabytes(idle.anonymousBytes)
      }, +10s ${formatMegabytes(after[1].anonymousBytes)}`,
      cpu: driven.cpu,
      serverPeakRssBytes: peak,
      metrics: {
        ...sizes,
        ...throughputFigures(driven, connections * messages, size),
        idleRssBytes: idle.rssBytes,
        idleAnonymousBytes: idle.anonymousBytes,
        peakRssBytes: peak,
        rssAfter3sBytes: after[0].rssBytes,
        rssAfter10sBytes: after[1].rssBytes,
        anonymousAfter10sBytes: after[1].anonymousBytes,
        peakRssWholeRunBytes: Math.max(peak, sampler.peakBytes),
        rssSamples: sampler.samples,
        printed: printed.printed,
      },
      failures,
    };
  } finally {
    await sampler.stop();
  }
}
