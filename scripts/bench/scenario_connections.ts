/**
 * The connection scenarios: many idle connections held at once (what each costs the
 * server, and how long they take to connect and get their PONG), and connection churn
 * (how many connect/HELLO/PING/PONG/close cycles per second, one at a time).
 *
 * The idle scenario reads the server's RSS from /proc (through the torture harness's
 * probe) just before the connections open and once all of them have their PONG, and
 * again once the server has collected garbage after a second of quiet.
 *
 * @module
 */

import { RawClient } from "../../lib/testing.ts";
import { formatMegabytes, type Sizes, TortureServer } from "../shared/harness.ts";
import { type BenchContext, type BenchOutcome, drive, formatCount } from "./drive.ts";

/** The server collects garbage 0.5-1 s after activity stops (`DEFAULT_QUIET_MS`); this is past that. */
const AFTER_IDLE_GC_MS = 2_500;

/** `connections` idle clients (HELLO, PING/PONG, then silent), held at once. */
export async function runIdleConnections(
  context: BenchContext,
  sizes: Sizes,
): Promise<BenchOutcome> {
  const { connections, concurrency } = sizes;
  await using server = await TortureServer.start(context, "idle", [
    "--max-clients",
    String(connections + 100),
  ]);
  // One client first, so the code paths of a connection are warm in the baseline.
  const warmUp = await RawClient.connect(server.port);
  await warmUp.ping();
  await warmUp.close();
  let before = 0;
  let held = 0;
  let settled = 0;
  const driven = await drive(context, server, [{ kind: "idle", count: connections, concurrency }], {
    timeLimitMs: sizes.timeLimitMs,
    beforeGo: async () => {
      before = (await server.probe()).rssBytes;
    },
    whileHeld: async () => {
      held = (await server.probe()).rssBytes;
      context.progress(`holding ${connections} connections until the server's idle collection`);
      // A point in time by nature: the server collects within 1 s of quiet.
      await new Promise((resolve) => setTimeout(resolve, AFTER_IDLE_GC_MS));
      settled = (await server.probe()).rssBytes;
    },
  });
  const failures = [...driven.failures];
  const code = await server.stop();
  if (code !== 0) failures.push(`the server exited ${code}`);
  const idle = driven.metrics.idle ?? {};
  const perConnection = (held - before) / connections;
  const perConnectionSettled = (settled - before) / connections;
  const seconds = (idle.elapsedMs ?? driven.result.elapsedMs) / 1000;
  return {
    load: `${formatCount(connections)} conns (HELLO, PING), ${concurrency} opening at once`,
    figure: `${(perConnectionSettled / 1024).toFixed(1)} KiB/conn (${
      (perConnection / 1024).toFixed(1)
    } before GC), all PONGed in ${seconds.toFixed(2)}s`,
    cpu: driven.cpu,
    serverPeakRssBytes: driven.peakRssBytes,
    metrics: {
      ...sizes,
      ...idle,
      rssBeforeBytes: before,
      rssHeldBytes: held,
      rssHeldAfterGcBytes: settled,
      bytesPerConnection: Math.round(perConnection),
      bytesPerConnectionAfterGc: Math.round(perConnectionSettled),
      rssHeld: formatMegabytes(held),
    },
    failures,
  };
}

/** Connection churn: `cycles` connect/HELLO/PING/PONG/close, one at a time, within `timeMs`. */
export async function runChurn(context: BenchContext, sizes: Sizes): Promise<BenchOutcome> {
  const { cycles, timeMs } = sizes;
  await using server = await TortureServer.start(context, "churn", []);
  const driven = await drive(context, server, [{ kind: "churn", count: cycles, timeMs }], {
    timeLimitMs: sizes.timeLimitMs,
  });
  const failures = [...driven.failures];
  const code = await server.stop();
  if (code !== 0) failures.push(`the server exited ${code}`);
  const churn = driven.metrics.churn ?? {};
  return {
    load: `${formatCount(cycles)} cycles (connect, HELLO, PING/PONG, close), one at a time`,
    figure: `${
      formatCount(churn.cyclesPerSecond ?? 0)
    } cycles/s, p50 ${churn.p50Ms} ms, p99 ${churn.p99Ms} ms`,
    cpu: driven.cpu,
    serverPeakRssBytes: driven.peakRssBytes,
    metrics: { ...sizes, ...churn },
    failures,
  };
}
