/**
 * Keeps the `--help` blocks of docs/CLI.md equal to what the commands print. Each block
 * is a fenced `console` block whose first line is the command (`$ deno task server
 * --help`) and whose other lines are that command's stdout, so a reader sees what to run
 * and tests/docs_test.ts can run it. `deno task docs` rewrites every block from the real
 * output (after a change to a command's help text); `deno task docs --check` only compares
 * and exits 1 naming the commands whose block is stale.
 *
 * Usage: deno task docs [--check] [--file <path>]   (default file: docs/CLI.md)
 *
 * @module
 */

import { parseArgs } from "node:util";

/** The repository root: `deno task` runs every task there. */
const ROOT = new URL("../", import.meta.url);

/**
 * The tasks that answer `--help`, in the order docs/CLI.md shows them: every task but
 * `test` and `check`, which are deno's own subcommands.
 */
export const HELP_TASKS: readonly string[] = [
  "server",
  "client",
  "clients",
  "stop-clients",
  "history",
  "compile",
  "bench",
  "torture",
  "docs",
];

/** One `--help` block of a Markdown file. */
export interface HelpBlock {
  /** The command the block shows, as written after `$ `, e.g. `deno task server --help`. */
  command: string;
  /** The task the command runs, e.g. `server`. */
  task: string;
  /** The block's text after the command line, each line ending with a line feed. */
  output: string;
  /** Where the output starts in the file (a character offset). */
  start: number;
  /** Where the output ends in the file: the closing fence starts here. */
  end: number;
}

const BLOCK = /^```console\n\$ (deno task ([a-z-]+) --help)\n([\s\S]*?)^```$/gm;

/**
 * The `--help` blocks of a Markdown text, in order.
 *
 * @example
 * ```ts
 * const text = "```console\n$ deno task client --help\nUsage: ...\n```\n";
 * const [block] = helpBlocks(text);
 * console.assert(block.task === "client" && block.output === "Usage: ...\n");
 * ```
 */
export function helpBlocks(markdown: string): HelpBlock[] {
  return [...markdown.matchAll(BLOCK)].map((match) => {
    const start = match.index! + match[0].length - match[3].length - 3;
    return {
      command: match[1],
      task: match[2],
      output: match[3],
      start,
      end: start + match[3].length,
    };
  });
}

/**
 * Runs `deno task <task> --help` in the repository, as a user would, and returns its
 * stdout, ending with a line feed. Throws when the command fails or prints nothing.
 *
 * @example
 * ```ts ignore
 * const usage = await taskHelp("server");
 * console.assert(usage.includes("Usage: deno task server"));
 * ```
 */
export async function taskHelp(task: string, signal?: AbortSignal): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("deno", {
    args: ["task", task, "--help"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal,
  }).output();
  const text = new TextDecoder().decode(stdout);
  if (code !== 0 || text.length === 0) {
    const why = new TextDecoder().decode(stderr).trim().split("\n").at(-1);
    throw new Error(`\`deno task ${task} --help\` failed with exit code ${code}: ${why}`);
  }
  return text.endsWith("\n") ? text : `${text}\n`;
}

/**
 * Where two texts first differ, as a short excerpt of each around that point.
 *
 * @example
 * ```ts
 * console.assert(diffStart("a\nb\n", "a\nc\n").includes("line 2"));
 * ```
 */
export function diffStart(documented: string, actual: string): string {
  let at = 0;
  while (at < documented.length && documented[at] === actual[at]) at++;
  const line = documented.slice(0, at).split("\n").length;
  const lineStart = documented.lastIndexOf("\n", at - 1) + 1;
  const excerpt = (text: string) => JSON.stringify(text.slice(lineStart, lineStart + 120));
  return `first difference at line ${line} of the output:\n  documented: ${excerpt(documented)}\n` +
    `  actual:     ${excerpt(actual)}`;
}

/**
 * Rewrites every `--help` block of a Markdown text with the output of its command;
 * returns the new text and the tasks whose block changed.
 */
export async function refreshHelpBlocks(
  markdown: string,
  signal?: AbortSignal,
): Promise<{ text: string; changed: string[] }> {
  let text = "";
  let copied = 0;
  const changed: string[] = [];
  for (const block of helpBlocks(markdown)) {
    const output = await taskHelp(block.task, signal);
    if (output !== block.output) changed.push(block.task);
    text += markdown.slice(copied, block.start) + output;
    copied = block.end;
  }
  return { text: text + markdown.slice(copied), changed };
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      check: { type: "boolean" },
      file: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(`parrot docs: keeps the --help blocks of docs/CLI.md equal to the commands' output.

Usage: deno task docs [--check] [--file <path>]

Runs every command that the file shows as \`$ deno task <name> --help\` and rewrites
the block below it with the command's stdout.

Options:
  --check         only compare; exit 1 naming the stale blocks
  --file <path>   the Markdown file (default docs/CLI.md)
  -h, --help      show this help`);
    return 0;
  }
  const file = values.file ?? "docs/CLI.md";
  const markdown = await Deno.readTextFile(values.file ?? new URL(file, ROOT));
  const missing = HELP_TASKS.filter((task) => !helpBlocks(markdown).some((b) => b.task === task));
  if (missing.length > 0) {
    console.error(`error: ${file} has no \`--help\` block for ${missing.join(", ")}`);
    return 1;
  }
  const { text, changed } = await refreshHelpBlocks(markdown);
  if (values.check) {
    if (changed.length === 0) return 0;
    console.error(
      `error: stale --help blocks in ${file}: ${changed.join(", ")}; run deno task docs`,
    );
    return 1;
  }
  if (changed.length > 0) await Deno.writeTextFile(values.file ?? new URL(file, ROOT), text);
  console.log(
    changed.length === 0 ? `${file} is up to date` : `updated ${file}: ${changed.join(", ")}`,
  );
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    const usageMistake = error instanceof TypeError;
    if (usageMistake) console.error("Run `deno task docs --help` for usage.");
    Deno.exit(usageMistake ? 2 : 1);
  }
}
