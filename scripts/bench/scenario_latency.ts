/**
 * The latency scenario: 100 publishing clients at a fixed offered rate (10,000 msgs/s in
 * all, paced) to one subscriber, with PINGs meanwhile; reports p50/p99/p999 of the time
 * from a publisher's write to the subscriber's read, and of PING to PONG.
 *
 * The timing itself is in the generator (scripts/bench/roles_latency.ts): the
 * publishers in one Worker, the subscriber in another, on one shared clock. This file
 * owns the server, the row and the check: the subscriber must get every message, and
 * the server must print every one.
 *
 * @module
 */

import { type Sizes, TortureServer } from "../shared/harness.ts";
import { type BenchContext, type BenchOutcome, drive, formatCount } from "./drive.ts";
import { countRecords } from "./records.ts";

/** Paced publishers to one timing subscriber. */
export async function runLatency(context: BenchContext, sizes: Sizes): Promise<BenchOutcome> {
  const { publishers, rate, durationMs, warmupMs, size, pingRate } = sizes;
  await using server = await TortureServer.start(context, "latency", []);
  const driven = await drive(context, server, [
    { kind: "latency-listen", rate, durationMs, warmupMs, size },
    { kind: "latency-publish", publishers, rate, durationMs, warmupMs, size, pingRate },
  ], { timeLimitMs: sizes.timeLimitMs });
  const failures = [...driven.failures];
  const code = await server.stop();
  if (code !== 0) failures.push(`the server exited ${code}`);
  const latency = { ...driven.metrics["latency-publish"], ...driven.metrics["latency-listen"] };
  const counts = await countRecords(server.stdoutFile, "p", publishers);
  const printed = counts.perSender.reduce((a, b) => a + b, 0);
  if (latency.sent !== undefined && printed !== latency.sent) {
    failures.push(`the server printed ${printed} of ${latency.sent} messages`);
  }
  return {
    load: `${publishers} pubs -> 1 sub, ${formatCount(rate)} msgs/s x ${
      (durationMs / 1000).toFixed(0)
    }s, ${size} B`,
    figure: `msg p50 ${latency.p50Ms} / p99 ${latency.p99Ms} / p999 ${latency.p999Ms} ms; ` +
      `PING p50 ${latency.pingP50Ms} / p99 ${latency.pingP99Ms} / p999 ${latency.pingP999Ms} ms`,
    cpu: driven.cpu,
    serverPeakRssBytes: driven.peakRssBytes,
    metrics: { ...sizes, ...latency, printed },
    failures,
  };
}
