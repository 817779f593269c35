/**
 * The cost of cluster mode: the fan-out of `connections` publishers to `subscribers`, once on
 * one server alone (as the fanout rows run it), then with the publishers on server A and the
 * subscribers on server B, A and B joined through a real `nats-server` on loopback (each run
 * as the `server` task runs it, with `--cluster`). The row gives both delivery rates and their
 * ratio. The publishers keep the same credit window on the subscribers in both runs, so the
 * NATS run measures the path through NATS, not a queue growing on the way.
 *
 * @module
 */

import { type NatsProcess, startNats } from "../../lib/testing.ts";
import { TortureServer } from "../shared/harness.ts";
import type { Sizes } from "../shared/harness.ts";
import { type BenchContext, type BenchOutcome, drive, type Driven, formatCount } from "./drive.ts";
import type { Role } from "./plan.ts";
import {
  checkPrinted,
  sendRole,
  stopServer,
  throughputFigures,
  WINDOW_BYTES,
} from "./scenario_throughput.ts";

function roles(sizes: Sizes, subscribePort?: number): Role[] {
  const { connections, subscribers, messages } = sizes;
  return [
    sendRole("p", sizes, WINDOW_BYTES),
    {
      kind: "subscribe",
      names: Array.from({ length: subscribers }, (_, i) => `s${i}`),
      expected: connections * messages,
      firstSlot: 1,
      port: subscribePort,
    },
  ];
}

interface Run {
  driven: Driven;
  failures: string[];
  printed: number;
  delivered: number;
}

async function finish(driven: Driven, publishers: TortureServer, sizes: Sizes, others: string[]) {
  const failures = [...driven.failures, ...await stopServer(publishers), ...others];
  const printed = await checkPrinted(publishers, "p", sizes.connections, sizes.messages);
  failures.push(...printed.failures);
  return {
    driven,
    failures,
    printed: printed.printed,
    delivered: driven.metrics.subscribe?.delivered ?? 0,
  };
}

/** The fan-out on one server. */
async function alone(context: BenchContext, sizes: Sizes): Promise<Run> {
  await using server = await TortureServer.start(context, "fan-out-alone", []);
  const driven = await drive(context, server, roles(sizes), {
    timeLimitMs: Math.round(sizes.timeLimitMs / 2),
  });
  return await finish(driven, server, sizes, []);
}

/** The fan-out from server A to server B through NATS. */
async function throughNats(context: BenchContext, sizes: Sizes): Promise<Run & { nats: string }> {
  let nats: NatsProcess | undefined;
  try {
    context.progress("starting nats-server");
    nats = await startNats();
    const flags = (name: string) => ["--cluster", nats!.url, "--server-name", name];
    await using a = await TortureServer.start(context, "fan-out-nats-a", flags("a"));
    await using b = await TortureServer.start(context, "fan-out-nats-b", flags("b"));
    for (const server of [a, b]) {
      await server.process.stderr.waitForText("Connected to NATS at", 15_000);
    }
    const driven = await drive(context, a, roles(sizes, b.port), {
      timeLimitMs: Math.round(sizes.timeLimitMs / 2),
    });
    const run = await finish(driven, a, sizes, await stopServer(b));
    const lost = b.process.stderr.text().match(/Lost \d+ messages|Dropping messages/);
    if (lost) run.failures.push(`server b: ${lost[0]}`);
    return { ...run, nats: nats.url };
  } finally {
    await nats?.stop("SIGTERM");
  }
}

/** Fan-out on one server, then through NATS: both delivery rates and their ratio. */
export async function runFanOutThroughNats(
  context: BenchContext,
  sizes: Sizes,
): Promise<BenchOutcome> {
  const { connections, subscribers, messages, size } = sizes;
  const total = connections * messages;
  const one = await alone(context, sizes);
  const two = await throughNats(context, sizes);
  const plain = throughputFigures(one.driven, one.delivered, size);
  const clustered = throughputFigures(two.driven, two.delivered, size);
  const ratio = clustered.messagesPerSecond / plain.messagesPerSecond;
  return {
    load: `${connections} pub on A x ${formatCount(messages)} msgs x ${size} B -> ${subscribers} ` +
      `sub on B, through NATS vs one server`,
    figure: `${formatCount(clustered.messagesPerSecond)} delivered/s through NATS, ${
      formatCount(plain.messagesPerSecond)
    } on one server (${Math.round(ratio * 100)}%)`,
    cpu: two.driven.cpu,
    serverPeakRssBytes: two.driven.peakRssBytes,
    metrics: {
      ...sizes,
      published: total * 2,
      printed: one.printed + two.printed,
      delivered: one.delivered + two.delivered,
      deliveredPerSecondAlone: plain.messagesPerSecond,
      deliveredPerSecondThroughNats: clustered.messagesPerSecond,
      throughNatsRatio: Math.round(ratio * 1000) / 1000,
    },
    failures: [
      ...one.failures.map((f) => `one server: ${f}`),
      ...two.failures.map((f) => `through NATS: ${f}`),
    ],
  };
}
