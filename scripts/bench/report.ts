/**
 * The bench's results: the row type, the Markdown table, and the JSON report.
 *
 * Owned apart from the scenarios so that the CLI and the tests read one shape: a
 * {@linkcode BenchResult} per scenario, and a {@linkcode BenchReport} with the machine,
 * the Deno version and the git commit they were measured on.
 *
 * @module
 */

import { formatMegabytes } from "../shared/harness.ts";
import type { BenchOutcome } from "./drive.ts";
import type { MachineInfo } from "./probes.ts";

/** One scenario's result: one row of the table, one object in the JSON. */
export interface BenchResult extends BenchOutcome {
  name: string;
  /** True when every message arrived (and every other check held). */
  passed: boolean;
  elapsedMs: number;
}

/** The JSON file of a run. */
export interface BenchReport {
  version: string;
  date: string;
  machine: MachineInfo;
  sizes: "quick" | "full";
  /** The flags every server was started with besides the task's (`--threads <n>`). */
  serverFlags: string[];
  elapsedMs: number;
  passed: boolean;
  results: BenchResult[];
}

/** The results as a Markdown table, one row per scenario. */
export function formatTable(results: readonly BenchResult[]): string {
  const header = [
    "scenario",
    "load",
    "result",
    "server CPU (busiest thread)",
    "generator CPU (busiest thread)",
    "bound",
    "server peak RSS",
    "check",
  ];
  const rows = results.map((r) => [
    r.name,
    r.load,
    r.figure,
    r.cpu ? `${r.cpu.serverPercent}% (${r.cpu.serverThreadPercent}%)` : "-",
    r.cpu
      ? `${r.cpu.generatorPercent}% (${r.cpu.generatorThreadPercent}%, ` +
        `${r.cpu.generatorWorkers} worker${r.cpu.generatorWorkers === 1 ? "" : "s"})`
      : "-",
    r.cpu?.bound ?? "-",
    r.serverPeakRssBytes ? formatMegabytes(r.serverPeakRssBytes) : "-",
    r.passed ? "PASS" : `FAIL: ${r.failures.slice(0, 3).join("; ")}`,
  ]);
  const escape = (cell: string) => cell.replaceAll("|", "\\|").replaceAll("\n", " ");
  return [header, header.map(() => "---"), ...rows]
    .map((cells) => `| ${cells.map(escape).join(" | ")} |`)
    .join("\n");
}
