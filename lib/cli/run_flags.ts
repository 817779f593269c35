/**
 * The run flags of the `server` and `client` tasks, read from deno.json.
 *
 * deno.json's tasks are the one place where the programs' permissions, V8 flags and
 * environment are spelled: the tests, the bench, the torture suite and `deno task
 * compile` read them from here, so what they run is what a user runs. A task is a plain
 * `NAME=value ... deno run <flags> <script>` line; anything else (quotes, pipes, `&&`,
 * arguments after the script) is refused rather than guessed at.
 *
 * @module
 */

import denoJson from "../../deno.json" with { type: "json" };

/** A `deno run` task split into its parts. */
export interface RunTask {
  /** The environment variables set before `deno`, e.g. `GLIBC_TUNABLES`. */
  env: Record<string, string>;
  /** The flags between `deno run` and the script: permissions, `--v8-flags`, `--unstable-*`. */
  flags: string[];
  /** The script the task runs, relative to the project root. */
  script: string;
}

/** The tasks whose run flags others read. */
export type RunTaskName = "server" | "client";

/**
 * Splits a task line `NAME=value ... deno run <flags> <script>` into its parts.
 *
 * @throws {Error} If the line is not of that form.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRunTask } from "./run_flags.ts";
 *
 * assert.deepEqual(parseRunTask("A=1 deno run --allow-net app.ts"), {
 *   env: { A: "1" },
 *   flags: ["--allow-net"],
 *   script: "app.ts",
 * });
 * ```
 */
export function parseRunTask(line: string): RunTask {
  const refuse = (why: string) => new Error(`Cannot read the task "${line}": ${why}`);
  if (/["'`$\\|&;<>()]/.test(line)) throw refuse("it must be a plain deno run line");
  const words = line.trim().split(/\s+/);
  const env: Record<string, string> = {};
  let at = 0;
  for (; at < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[at]); at++) {
    const equals = words[at].indexOf("=");
    env[words[at].slice(0, equals)] = words[at].slice(equals + 1);
  }
  if (words[at] !== "deno" || words[at + 1] !== "run") throw refuse("expected deno run");
  const rest = words.slice(at + 2);
  const scriptAt = rest.findIndex((word) => !word.startsWith("-"));
  if (scriptAt === -1) throw refuse("it names no script");
  if (scriptAt !== rest.length - 1) throw refuse("expected nothing after the script");
  return { env, flags: rest.slice(0, scriptAt), script: rest[scriptAt] };
}

/**
 * The parts of deno.json's `server` or `client` task.
 *
 * @example Run the server as its task does
 * ```ts
 * import assert from "node:assert/strict";
 * import { runTask } from "./run_flags.ts";
 *
 * const { env, flags, script } = runTask("server");
 * assert.equal(script, "server.ts");
 * const command = new Deno.Command("deno", { args: ["run", ...flags, script, "8080"], env });
 * assert.ok(command);
 * ```
 */
export function runTask(name: RunTaskName): RunTask {
  return parseRunTask(denoJson.tasks[name]);
}
