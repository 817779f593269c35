/**
 * The cost of `--history`: the fan-in of `connections` x `messages` x `size`, once on a
 * plain server and once on a server that stores every message in a SQLite file, each on
 * a fresh server run as the other rows run it (the `server` task's flags, allowed to
 * write the file in the run's work directory). The row gives both rates, their ratio,
 * and checks that the history stored every message printed.
 *
 * @module
 */

import { SERVER_RUN_ARGS } from "../../lib/testing.ts";
import { TortureServer } from "../shared/harness.ts";
import type { Sizes } from "../shared/harness.ts";
import { type BenchContext, type BenchOutcome, drive } from "./drive.ts";
import { checkPrinted, compareFanIn, sendRole, stopServer } from "./scenario_throughput.ts";

/** One fan-in run on a fresh server, with or without a history file. */
async function fanIn(context: BenchContext, sizes: Sizes, withHistory: boolean) {
  const { connections, messages } = sizes;
  const file = `${context.workDir}/history-${Date.now()}.db`;
  await using server = await TortureServer.start(
    context,
    withHistory ? "fan-in-history" : "fan-in-no-history",
    withHistory ? ["--history", file] : [],
    { runArgs: ["run", `--allow-write=${context.workDir}`, ...SERVER_RUN_ARGS.slice(1)] },
  );
  const driven = await drive(context, server, [sendRole("c", sizes)], {
    timeLimitMs: Math.round(sizes.timeLimitMs / 2),
  });
  const failures = [...driven.failures, ...await stopServer(server)];
  const printed = await checkPrinted(server, "c", connections, messages);
  failures.push(...printed.failures);
  let stored = 0;
  if (withHistory) {
    stored = Number(server.stderr.match(/History stopped: (\d+) messages stored/)?.[1] ?? -1);
    if (stored !== printed.printed) {
      failures.push(`the history stored ${stored} of ${printed.printed} messages printed`);
    }
  }
  return { driven, failures, printed: printed.printed, stored };
}

/** Fan-in without, then with, `--history`: both rates and their ratio. */
export async function runFanInWithHistory(
  context: BenchContext,
  sizes: Sizes,
): Promise<BenchOutcome> {
  const compared = await compareFanIn(
    sizes,
    { name: "--history", versus: "--history vs not" },
    (withHistory) => fanIn(context, sizes, withHistory),
  );
  const { outcome, withFeature, ratePerSecond, ratio } = compared;
  return {
    ...outcome,
    metrics: {
      ...outcome.metrics,
      stored: withFeature.stored,
      messagesPerSecondWithHistory: ratePerSecond,
      withHistoryRatio: Math.round(ratio * 1000) / 1000,
    },
  };
}
