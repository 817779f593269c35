/**
 * The latency scenarios: paced publishing clients at a fixed offered rate to one timing
 * subscriber, with PINGs meanwhile; each reports p50/p99/p99.9 of the time from a
 * publisher's write to the subscriber's read, the pacer's own lateness beside them (how
 * late the generator's thread served its ticks: a starved generator shows there), and
 * PING to PONG.
 *
 * The subscriber is where the row says: a TCP client of the same server (`latency`,
 * `latency-1pub`), a WebSocket client of its `/ws` (`latency-ws`, the server with
 * `--http 0`), or a TCP client of a second server joined to the first through a real
 * `nats-server` (`latency-cluster`). The timing itself is in the generator
 * (scripts/bench/roles_latency.ts). This file owns the servers, the row and the checks:
 * the subscriber must get every message, and the publishers' server must print every one.
 *
 * @module
 */

import { httpListeningPort, type NatsProcess, startNats } from "../../lib/testing.ts";
import { type Sizes, TortureServer } from "../shared/harness.ts";
import { type BenchContext, type BenchOutcome, drive, type Driven, formatCount } from "./drive.ts";
import type { Role } from "./plan.ts";
import { cpuBetween, type CpuSnapshot, cpuSnapshots } from "./probes.ts";
import { countRecords } from "./records.ts";

/** Where the timing subscriber is. */
type Listener = { transport: "tcp" | "ws"; port?: number };

function roles(sizes: Sizes, listener: Listener): Role[] {
  const { publishers, rate, durationMs, warmupMs, size, pingRate } = sizes;
  return [
    { kind: "latency-listen", rate, durationMs, warmupMs, size, ...listener },
    { kind: "latency-publish", publishers, rate, durationMs, warmupMs, size, pingRate },
  ];
}

/** `71 us` below a millisecond, `2.10 ms` above. */
export function formatMicroseconds(us: number | undefined): string {
  if (us === undefined || Number.isNaN(us)) return "-";
  return us < 1000 ? `${Math.round(us)} us` : `${(us / 1000).toFixed(2)} ms`;
}

/** The row's figure: message latency, the pacer's lateness, PING round trips. */
export function latencyFigure(m: Record<string, number>): string {
  const f = formatMicroseconds;
  return `p50 ${f(m.p50Us)} / p99 ${f(m.p99Us)} / p99.9 ${f(m.p999Us)}; ` +
    `pacer late p99 ${f(m.lateP99Us)} / max ${f(m.lateMaxUs)}; ` +
    `PING p50 ${f(m.pingP50Ms * 1000)} / p99 ${f(m.pingP99Ms * 1000)}`;
}

/** The row from one driven run: checks the counts against what `server` printed. */
async function outcome(
  driven: Driven,
  server: TortureServer,
  sizes: Sizes,
  where: string,
  otherFailures: string[],
): Promise<BenchOutcome> {
  const { publishers, rate, durationMs, size } = sizes;
  const failures = [...driven.failures, ...otherFailures];
  const latency = { ...driven.metrics["latency-publish"], ...driven.metrics["latency-listen"] };
  const counts = await countRecords(server.stdoutFile, "p", publishers);
  const printed = counts.perSender.reduce((a, b) => a + b, 0);
  if (latency.sent !== undefined && printed !== latency.sent) {
    failures.push(`the server printed ${printed} of ${latency.sent} messages`);
  }
  return {
    load: `${publishers} pub${publishers === 1 ? "" : "s"} -> 1 sub${where}, ${
      formatCount(rate)
    } msgs/s x ${(durationMs / 1000).toFixed(0)}s, ${size} B`,
    figure: latencyFigure(latency),
    cpu: driven.cpu,
    serverPeakRssBytes: driven.peakRssBytes,
    metrics: { ...sizes, ...latency, printed },
    failures,
  };
}

async function stopped(server: TortureServer, name = "the server"): Promise<string[]> {
  const code = await server.stop();
  return code === 0 ? [] : [`${name} exited ${code}`];
}

/** Paced publishers to one timing subscriber on TCP, all on one server. */
export async function runLatency(context: BenchContext, sizes: Sizes): Promise<BenchOutcome> {
  await using server = await TortureServer.start(context, "latency", []);
  const driven = await drive(context, server, roles(sizes, { transport: "tcp" }), {
    timeLimitMs: sizes.timeLimitMs,
  });
  return await outcome(driven, server, sizes, "", await stopped(server));
}

/** The same, the subscriber a WebSocket client of the server's `/ws` (`--http 0`). */
export async function runLatencyWebSocket(
  context: BenchContext,
  sizes: Sizes,
): Promise<BenchOutcome> {
  const threads = context.serverFlags?.[context.serverFlags.indexOf("--threads") + 1];
  if (context.serverFlags?.includes("--threads") && Number(threads) > 1) {
    // docs/PROTOCOL.md: a server with --threads above 1 answers /ws with 501.
    return {
      load: "-",
      figure: "-",
      cpu: null,
      serverPeakRssBytes: null,
      metrics: {},
      failures: [
        `latency-ws needs one thread: the server answers /ws 501 with --threads ${threads}`,
      ],
    };
  }
  await using server = await TortureServer.start(context, "latency-ws", ["--http", "0"]);
  const httpPort = await httpListeningPort(server.process);
  const driven = await drive(context, server, roles(sizes, { transport: "ws", port: httpPort }), {
    timeLimitMs: sizes.timeLimitMs,
  });
  return await outcome(driven, server, sizes, " on WebSocket", await stopped(server));
}

/** The same, the publishers on server A, the subscriber on B, joined through nats-server. */
export async function runLatencyCluster(
  context: BenchContext,
  sizes: Sizes,
): Promise<BenchOutcome> {
  let nats: NatsProcess | undefined;
  try {
    context.progress("starting nats-server");
    nats = await startNats();
    const flags = (name: string) => ["--cluster", nats!.url, "--server-name", name];
    await using a = await TortureServer.start(context, "latency-cluster-a", flags("a"));
    await using b = await TortureServer.start(context, "latency-cluster-b", flags("b"));
    for (const server of [a, b]) {
      await server.process.stderr.waitForText("Connected to NATS at", 15_000);
    }
    // Server B's CPU over the run too (the row's server CPU is A's).
    let bBefore: CpuSnapshot | null = null;
    const driven = await drive(context, a, roles(sizes, { transport: "tcp", port: b.port }), {
      timeLimitMs: sizes.timeLimitMs,
      beforeGo: async () => {
        [bBefore] = await cpuSnapshots([b.pid]);
      },
    });
    const [bAfter] = await cpuSnapshots([b.pid]);
    const bCpu = bBefore ? cpuBetween(bBefore, bAfter) : null;
    const failures = [...await stopped(a, "server a"), ...await stopped(b, "server b")];
    const lost = b.process.stderr.text().match(/Lost \d+ messages|Dropping messages/);
    if (lost) failures.push(`server b: ${lost[0]}`);
    const row = await outcome(driven, a, sizes, " on server B (via NATS)", failures);
    const percent = (ms: number) => Math.round((ms / driven.wallMs) * 100);
    return {
      ...row,
      figure: `${row.figure}; server B CPU ${bCpu ? `${percent(bCpu.totalMs)}%` : "-"}`,
      metrics: {
        ...row.metrics,
        nats: nats.url,
        serverBPercent: bCpu ? percent(bCpu.totalMs) : NaN,
        serverBThreadPercent: bCpu ? percent(bCpu.busiestThreadMs) : NaN,
      },
    };
  } finally {
    await nats?.stop("SIGTERM");
  }
}
