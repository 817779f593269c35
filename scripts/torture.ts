/**
 * `deno task torture [--quick] [--only 1,3,5] [--json <file>]`: attacks a real server
 * process, one fresh server per scenario, and prints one table row per scenario.
 *
 * A thin CLI: it owns the options, the live progress line (stderr), the table
 * (stdout) and the JSON file. The scenarios are in scripts/torture/, shared with
 * tests/torture_test.ts, which runs their quick sizes. Exits 0 when every scenario
 * passed, 1 otherwise, 2 on a usage mistake.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import {
  formatTable,
  parseRunOptions,
  type ScenarioResult,
  writeReport,
} from "./torture/harness.ts";
import { runScenario, SCENARIOS } from "./torture/scenarios.ts";
import { progressLine } from "../lib/cli/progress.ts";

const RESULTS_DIR = "torture-results";

const USAGE = `parrot torture ${denoJson.version}: attacks a real server, one scenario at a time.

Usage: deno task torture [options]

Starts a fresh server.ts process per scenario (stdout to a file), attacks it, measures its
RSS and open fds from outside, and prints one table row per scenario. Writes the results as
JSON to ${RESULTS_DIR}/torture-<timestamp>.json.

Options:
  --quick          small counts (what the tests run), well under two minutes
  --only <ids>     run only these scenarios, e.g. --only 1,3,5
  --json <file>    write the JSON results to this file instead (the task may write
                   in torture-results/ and /tmp only)
  -h, --help       show this help

Scenarios:
${SCENARIOS.map((s) => `  ${s.id}. ${s.name}`).join("\n")}

Exits 0 when every scenario passed, 1 otherwise.`;

function parseOptions(args: string[]) {
  return parseRunOptions(args, (text) => {
    const id = Number(text);
    if (!SCENARIOS.some((s) => s.id === id)) {
      throw new Error(`Cannot use --only: no scenario "${text}"`);
    }
    return id;
  });
}

async function main(): Promise<number> {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions(Deno.args);
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split(". ")[0];
    console.error(`error: ${message}\nRun \`deno task torture --help\` for usage.`);
    return 2;
  }
  if (!options) {
    console.log(USAGE);
    return 0;
  }
  const selected = SCENARIOS.filter((s) => !options.only || options.only.includes(s.id));
  const progress = progressLine();
  const results: ScenarioResult[] = [];
  const startedAt = performance.now();
  for (const [index, scenario] of selected.entries()) {
    const label = `[${index + 1}/${selected.length}] ${scenario.id}. ${scenario.name}`;
    const scenarioStart = performance.now();
    const elapsed = () => `${((performance.now() - scenarioStart) / 1000).toFixed(0)}s`;
    progress.show(`${label} ...`);
    const result = await runScenario(scenario, {
      quick: options.quick,
      progress: (text) => progress.show(`${label}: ${text} (${elapsed()})`),
    });
    progress.clear();
    console.error(
      `${label}: ${result.passed ? "PASS" : "FAIL"} in ${(result.elapsedMs / 1000).toFixed(1)}s`,
    );
    results.push(result);
  }
  const totalMs = Math.round(performance.now() - startedAt);
  console.log(`\n${formatTable(results)}\n`);
  const failed = results.filter((r) => !r.passed);
  console.log(
    `${results.length - failed.length} passed, ${failed.length} failed in ${
      (totalMs / 1000).toFixed(1)
    }s (${options.quick ? "quick" : "full"} sizes)`,
  );
  const report = {
    version: denoJson.version,
    deno: Deno.version.deno,
    date: new Date().toISOString(),
    sizes: options.quick ? "quick" : "full",
    elapsedMs: totalMs,
    passed: failed.length === 0,
    results,
  };
  await writeReport(report, RESULTS_DIR, "torture", options.jsonFile);
  return failed.length === 0 ? 0 : 1;
}

Deno.exit(await main());
