/**
 * `deno task bench [--quick] [--only <names>] [--json <file>]`: measures a real server
 * process under the project's own load generator, one fresh server per scenario.
 *
 * A thin CLI: it owns the options, the live progress line (stderr), the table (stdout)
 * and the JSON file. The scenarios, the generator (its own `deno run` process, with
 * Workers) and the probes of both processes' CPU and memory are in scripts/bench/,
 * shared with tests/bench_test.ts. Every scenario checks that every message arrived;
 * exits 0 when all did, 1 otherwise, 2 on a usage mistake.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { machineInfo } from "./bench/probes.ts";
import { type BenchReport, formatTable } from "./bench/report.ts";
import { runBenchScenario, SCENARIOS, selectScenarios } from "./bench/scenarios.ts";
import { parseCliOptions, runInSequence, writeReport } from "./shared/harness.ts";

const RESULTS_DIR = "bench-results";

const USAGE = `parrot bench ${denoJson.version}: throughput, latency and memory of a real server.

Usage: deno task bench [options]

Starts a fresh server.ts process per scenario (stdout to a file) and drives it with the
load generator (scripts/bench/generator.ts, a process of its own), reads both processes'
CPU and the server's RSS from /proc, checks that every message arrived, and prints one
table row per scenario. Writes the results as JSON to ${RESULTS_DIR}/bench-<timestamp>.json.

Options:
  --quick          smaller counts, about a minute and a half in all
  --threads <n>    start every server with --threads n (default: the server's default)
  --only <names>   run only these scenarios (comma-separated); a group name such as
                   fanin or fanout selects all of its scenarios
  --json <file>    write the JSON results to this file instead (the task may write
                   in ${RESULTS_DIR}/ and /tmp only)
  -h, --help       show this help

Scenarios:
${SCENARIOS.map((s) => `  ${s.name}`).join("\n")}

Exits 0 when every message of every scenario arrived, 1 otherwise.`;

async function main(): Promise<number> {
  const options = parseCliOptions(Deno.args, "bench", USAGE, (name) => {
    selectScenarios([name]); // Throws on an unknown name.
    return name;
  });
  if (typeof options === "number") return options;
  const selected = selectScenarios(options.only);
  const machine = await machineInfo();
  const { results, totalMs } = await runInSequence(
    selected,
    (scenario) => scenario.name,
    (scenario, progress) =>
      runBenchScenario(scenario, {
        quick: options.quick,
        cores: machine.cores,
        progress,
        serverFlags: options.serverFlags,
      }),
    (result) => result.passed ? `: ${result.figure}` : `: ${result.failures.join("; ")}`,
  );
  console.log(`\n${formatTable(results)}\n`);
  const failed = results.filter((r) => !r.passed);
  console.log(
    `${results.length - failed.length} passed, ${failed.length} failed in ${
      (totalMs / 1000).toFixed(1)
    }s (${options.quick ? "quick" : "full"} sizes; ${machine.cores} cores, ${machine.cpuModel}, ` +
      `deno ${machine.deno}, commit ${machine.commit}` +
      `${options.serverFlags.length > 0 ? `; server ${options.serverFlags.join(" ")}` : ""})`,
  );
  const report: BenchReport = {
    version: denoJson.version,
    date: new Date().toISOString(),
    machine,
    sizes: options.quick ? "quick" : "full",
    serverFlags: options.serverFlags,
    elapsedMs: totalMs,
    passed: failed.length === 0,
    results,
  };
  await writeReport(report, RESULTS_DIR, "bench", options.jsonFile);
  return failed.length === 0 ? 0 : 1;
}

Deno.exit(await main());
