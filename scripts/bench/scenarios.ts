/**
 * The list of bench scenarios with their full and quick sizes, and the runner of one.
 *
 * Owned here so that the CLI (scripts/bench.ts) and the tests (tests/bench_test.ts) run
 * the same scenarios: the CLI with the full or quick sizes, the tests with the quick ones
 * or smaller. The runner bounds each scenario in time, turns a thrown error into a
 * failed row, and kills any server a failed scenario left behind.
 *
 * @module
 */

import { runIsolated, type Sizes } from "../shared/harness.ts";
import type { BenchContext, BenchOutcome } from "./drive.ts";
import type { BenchResult } from "./report.ts";
import { runChurn, runIdleConnections } from "./scenario_connections.ts";
import { runLatency, runLatencyCluster, runLatencyWebSocket } from "./scenario_latency.ts";
import { runFanInWithHistory } from "./scenario_history.ts";
import { runFanInWithPage } from "./scenario_page.ts";
import { runFanOutThroughNats } from "./scenario_cluster.ts";
import { runFanOutNats } from "./scenario_nats.ts";
import { runFanIn, runFanOut, runMemoryUnderLoad } from "./scenario_throughput.ts";

/** One scenario: its name (for `--only`), its sizes and time bound, and how to run it. */
export interface BenchScenario {
  /** `<group>-<variant>`; `--only <group>` selects every scenario of the group. */
  name: string;
  full: Sizes;
  quick: Sizes;
  /** Longest a run may take, full and quick. */
  timeLimitMs: { full: number; quick: number };
  run(context: BenchContext, sizes: Sizes): Promise<BenchOutcome>;
}

const LATENCY = { publishers: 100, rate: 10_000, size: 64, pingRate: 100 };
const LATENCY_1PUB = { publishers: 1, rate: 1_000, size: 64, pingRate: 100 };

/** Every scenario, in the order of the table. */
export const SCENARIOS: readonly BenchScenario[] = [
  {
    name: "fanin-405",
    full: { connections: 3, messages: 600_000, size: 405 },
    quick: { connections: 3, messages: 60_000, size: 405 },
    timeLimitMs: { full: 120_000, quick: 30_000 },
    run: runFanIn,
  },
  {
    name: "fanin-64x64",
    full: { connections: 64, messages: 100_000, size: 64 },
    quick: { connections: 64, messages: 5_000, size: 64 },
    timeLimitMs: { full: 120_000, quick: 30_000 },
    run: runFanIn,
  },
  {
    name: "fanin-1000x64",
    full: { connections: 1000, messages: 3_000, size: 64 },
    quick: { connections: 1000, messages: 100, size: 64 },
    timeLimitMs: { full: 120_000, quick: 30_000 },
    run: runFanIn,
  },
  {
    name: "fanin-page-64x64",
    full: { connections: 64, messages: 100_000, size: 64 },
    quick: { connections: 64, messages: 5_000, size: 64 },
    timeLimitMs: { full: 240_000, quick: 60_000 },
    run: runFanInWithPage,
  },
  {
    name: "fanin-history-64x64",
    full: { connections: 64, messages: 100_000, size: 64 },
    quick: { connections: 64, messages: 5_000, size: 64 },
    timeLimitMs: { full: 240_000, quick: 60_000 },
    run: runFanInWithHistory,
  },
  {
    name: "fanin-4k",
    full: { connections: 3, messages: 100_000, size: 4096 },
    quick: { connections: 3, messages: 6_000, size: 4096 },
    timeLimitMs: { full: 120_000, quick: 30_000 },
    run: runFanIn,
  },
  {
    name: "fanout-3to1",
    full: { connections: 3, subscribers: 1, messages: 1_000_000, size: 64 },
    quick: { connections: 3, subscribers: 1, messages: 30_000, size: 64 },
    timeLimitMs: { full: 120_000, quick: 30_000 },
    run: runFanOut,
  },
  {
    name: "fanout-1to100",
    full: { connections: 1, subscribers: 100, messages: 200_000, size: 64 },
    quick: { connections: 1, subscribers: 100, messages: 5_000, size: 64 },
    timeLimitMs: { full: 120_000, quick: 30_000 },
    run: runFanOut,
  },
  {
    name: "fanout-1to1000",
    full: { connections: 1, subscribers: 1000, messages: 20_000, size: 64 },
    quick: { connections: 1, subscribers: 1000, messages: 1_000, size: 64 },
    timeLimitMs: { full: 120_000, quick: 30_000 },
    run: runFanOut,
  },
  {
    name: "fanout-nats-1to100",
    full: { connections: 1, subscribers: 100, messages: 200_000, size: 64 },
    quick: { connections: 1, subscribers: 100, messages: 5_000, size: 64 },
    timeLimitMs: { full: 120_000, quick: 30_000 },
    run: runFanOutNats,
  },
  {
    name: "fanout-nats-1to1000",
    full: { connections: 1, subscribers: 1000, messages: 20_000, size: 64 },
    quick: { connections: 1, subscribers: 1000, messages: 1_000, size: 64 },
    timeLimitMs: { full: 120_000, quick: 30_000 },
    run: runFanOutNats,
  },
  {
    name: "cluster-fanout-3to1",
    full: { connections: 3, subscribers: 1, messages: 300_000, size: 64 },
    quick: { connections: 3, subscribers: 1, messages: 30_000, size: 64 },
    timeLimitMs: { full: 240_000, quick: 60_000 },
    run: runFanOutThroughNats,
  },
  {
    name: "idle",
    full: { connections: 10_000, concurrency: 200 },
    quick: { connections: 2_000, concurrency: 100 },
    timeLimitMs: { full: 180_000, quick: 30_000 },
    run: runIdleConnections,
  },
  {
    name: "churn",
    full: { cycles: 5_000, timeMs: 30_000 },
    quick: { cycles: 1_000, timeMs: 5_000 },
    timeLimitMs: { full: 90_000, quick: 30_000 },
    run: runChurn,
  },
  {
    name: "latency",
    full: { ...LATENCY, durationMs: 10_000, warmupMs: 1_000 },
    quick: { ...LATENCY, durationMs: 3_000, warmupMs: 500 },
    timeLimitMs: { full: 90_000, quick: 30_000 },
    run: runLatency,
  },
  {
    name: "latency-1pub",
    full: { ...LATENCY_1PUB, durationMs: 10_000, warmupMs: 1_000 },
    quick: { ...LATENCY_1PUB, durationMs: 3_000, warmupMs: 500 },
    timeLimitMs: { full: 90_000, quick: 30_000 },
    run: runLatency,
  },
  {
    name: "latency-ws",
    full: { ...LATENCY, durationMs: 10_000, warmupMs: 1_000 },
    quick: { ...LATENCY, durationMs: 3_000, warmupMs: 500 },
    timeLimitMs: { full: 90_000, quick: 30_000 },
    run: runLatencyWebSocket,
  },
  {
    name: "latency-cluster",
    full: { ...LATENCY, durationMs: 10_000, warmupMs: 1_000 },
    quick: { ...LATENCY, durationMs: 3_000, warmupMs: 500 },
    timeLimitMs: { full: 90_000, quick: 45_000 },
    run: runLatencyCluster,
  },
  {
    name: "memory",
    full: { connections: 3, messages: 600_000, size: 405 },
    quick: { connections: 3, messages: 60_000, size: 405 },
    timeLimitMs: { full: 150_000, quick: 45_000 },
    run: runMemoryUnderLoad,
  },
];

/** The scenarios `--only` names: each name is a scenario or a group (`fanin`, `fanout`). */
export function selectScenarios(only: readonly string[] | null): BenchScenario[] {
  if (!only) return [...SCENARIOS];
  for (const name of only) {
    if (!SCENARIOS.some((s) => s.name === name || s.name.startsWith(`${name}-`))) {
      throw new Error(`Cannot use --only "${name}": no such scenario or group`);
    }
  }
  return SCENARIOS.filter((s) =>
    only.some((name) => s.name === name || s.name.startsWith(`${name}-`))
  );
}

/** Options of {@linkcode runBenchScenario}. */
export interface RunOptions {
  quick: boolean;
  cores: number;
  progress?: (text: string) => void;
  /** Sizes to use instead of the scenario's (the tests run tiny ones). */
  sizes?: Sizes;
  /** Extra flags for every server started (`--threads <n>`). */
  serverFlags?: string[];
}

/** Runs one scenario and never throws: an error is a failed row. */
export async function runBenchScenario(
  scenario: BenchScenario,
  options: RunOptions,
): Promise<BenchResult> {
  const limitMs = options.quick ? scenario.timeLimitMs.quick : scenario.timeLimitMs.full;
  // The generator gets most of the time; the rest is for starting and checking.
  const sizes = {
    ...(options.sizes ?? (options.quick ? scenario.quick : scenario.full)),
    timeLimitMs: Math.round(limitMs * 0.8),
  };
  const result = await runIsolated(
    "parrot-bench-",
    limitMs,
    (workDir) => {
      const context: BenchContext = {
        workDir,
        quick: options.quick,
        cores: options.cores,
        progress: options.progress ?? (() => {}),
        serverFlags: options.serverFlags,
      };
      return scenario.run(context, sizes);
    },
    (reason): BenchOutcome => ({
      load: "-",
      figure: "-",
      cpu: null,
      serverPeakRssBytes: null,
      metrics: {},
      failures: [reason],
    }),
  );
  return { name: scenario.name, ...result };
}
