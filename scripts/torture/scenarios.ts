/**
 * The list of torture scenarios with their full and quick sizes, and the runner of one.
 *
 * Owned here so that the CLI (scripts/torture.ts) and the tests
 * (tests/torture_test.ts) run exactly the same scenarios with the same sizes: the
 * tests use the quick sizes. The runner bounds each scenario in time, turns a thrown
 * error into a failed row, and kills any server a failed scenario left behind.
 *
 * @module
 */

import { runAuthAndTls } from "./auth_tls.ts";
import { runConnectionFlood, runKilledClients } from "./churn.ts";
import { runDecoderFuzzScenario } from "./decoder.ts";
import {
  runIsolated,
  type ScenarioContext,
  type ScenarioOutcome,
  type ScenarioResult,
  type Sizes,
} from "../shared/harness.ts";
import { runMalformedInputs } from "./malformed.ts";
import { runMemoryBound } from "./memory.ts";
import { runShutdownUnderLoad } from "./shutdown.ts";
import { runSlowConsumers, runSlowloris } from "./slow_peers.ts";

/** One scenario: what it is called, its sizes, its time bound, and how to run it. */
export interface ScenarioDefinition {
  id: number;
  name: string;
  full: Sizes;
  quick: Sizes;
  /** Longest a run may take, full and quick. */
  timeLimitMs: { full: number; quick: number };
  run(context: ScenarioContext, sizes: Sizes): Promise<ScenarioOutcome>;
}

/** Every scenario, in the order of the table. */
export const SCENARIOS: readonly ScenarioDefinition[] = [
  {
    id: 1,
    name: "malformed inputs",
    full: { offenders: 10_000, concurrency: 100 },
    quick: { offenders: 300, concurrency: 100 },
    timeLimitMs: { full: 300_000, quick: 60_000 },
    run: runMalformedInputs,
  },
  {
    id: 2,
    name: "decoder fuzz",
    full: { numRuns: 20_000 },
    quick: { numRuns: 200 },
    timeLimitMs: { full: 300_000, quick: 60_000 },
    run: runDecoderFuzzScenario,
  },
  {
    id: 3,
    name: "slowloris",
    full: { connections: 200, measureMs: 3_000 },
    quick: { connections: 40, measureMs: 1_500 },
    timeLimitMs: { full: 120_000, quick: 60_000 },
    run: runSlowloris,
  },
  {
    id: 4,
    name: "connection flood",
    full: { cycles: 20_000, overLimit: 5_000, maxClients: 50, concurrency: 40 },
    quick: { cycles: 6_000, overLimit: 300, maxClients: 50, concurrency: 40 },
    timeLimitMs: { full: 300_000, quick: 60_000 },
    run: runConnectionFlood,
  },
  {
    id: 5,
    name: "slow consumer",
    full: { messages: 100, messageBytes: 1_048_576, maxOutbound: 8_388_608, readers: 2 },
    quick: { messages: 40, messageBytes: 1_048_576, maxOutbound: 4_194_304, readers: 2 },
    timeLimitMs: { full: 180_000, quick: 60_000 },
    run: runSlowConsumers,
  },
  {
    id: 6,
    name: "killed clients, resets",
    full: { processes: 8, resets: 200 },
    quick: { processes: 2, resets: 20 },
    timeLimitMs: { full: 180_000, quick: 60_000 },
    run: runKilledClients,
  },
  {
    id: 7,
    name: "shutdown under load",
    full: { clients: 200, bytesBeforeSignal: 20_000_000 },
    quick: { clients: 30, bytesBeforeSignal: 1_000_000 },
    timeLimitMs: { full: 180_000, quick: 60_000 },
    run: runShutdownUnderLoad,
  },
  {
    id: 8,
    name: "memory per connection",
    full: { connections: 5_000, concurrency: 200, junkBytes: 4_000 },
    quick: { connections: 1_500, concurrency: 100, junkBytes: 4_000 },
    timeLimitMs: { full: 240_000, quick: 60_000 },
    run: runMemoryBound,
  },
  {
    id: 9,
    name: "auth and TLS",
    full: { perCase: 25, tlsGarbage: 100 },
    quick: { perCase: 5, tlsGarbage: 100 },
    timeLimitMs: { full: 180_000, quick: 60_000 },
    run: runAuthAndTls,
  },
];

/** Runs one scenario with the sizes of `quick` and never throws: a failure is a failed row. */
export async function runScenario(
  scenario: ScenarioDefinition,
  options: { quick: boolean; progress?: (text: string) => void; serverFlags?: string[] },
): Promise<ScenarioResult> {
  const sizes = options.quick ? scenario.quick : scenario.full;
  const limitMs = options.quick ? scenario.timeLimitMs.quick : scenario.timeLimitMs.full;
  const result = await runIsolated(
    "parrot-torture-",
    limitMs,
    (workDir) =>
      scenario.run(
        {
          workDir,
          quick: options.quick,
          progress: options.progress ?? (() => {}),
          serverFlags: options.serverFlags,
        },
        sizes,
      ),
    (reason): ScenarioOutcome => ({
      sent: "-",
      serverDid: "-",
      lost: null,
      before: null,
      after: null,
      failures: [reason],
      metrics: {},
    }),
  );
  return { id: scenario.id, name: scenario.name, ...result };
}
