/**
 * `deno task stop-clients`: stops every client a launcher started, like the classic
 * `stopClient.sh`.
 *
 * It owns the other end of the launchers' pid files: it reads every
 * `.parrot/clients-*.pids`, sends SIGTERM to each pid with the `kill` command (the
 * task grants `--allow-run=kill` only), so each client sends QUIT and exits 0, and
 * removes the files. A pid that no longer exists is reported as already gone, not as
 * an error.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { errorMessage, parseProgramArgs, runCli } from "../lib/cli/args.ts";
import { readClientPidFiles, removePidFile } from "../lib/cli/pid_files.ts";

const USAGE =
  `parrot stop-clients ${denoJson.version}: stops the clients started by \`deno task clients\`.

Usage: deno task stop-clients

Sends SIGTERM to every pid in .parrot/clients-*.pids (each client sends QUIT and
exits), prints one line per client and a summary, and removes the files. Pids that
no longer exist are reported as already gone. Exits 1 only if a client could not be
signalled.

Options:
  -h, --help   show this help`;

const HINT = "Run `deno task stop-clients --help` for usage.";

type StopOutcome = { kind: "stopped" } | { kind: "gone" } | { kind: "failed"; reason: string };

async function main(): Promise<number> {
  if (!parseProgramArgs(Deno.args, {}, USAGE, 0)) return 0;

  const files = await readClientPidFiles();
  if (files.every((file) => file.pids.length === 0 && file.invalid.length === 0)) {
    for (const file of files) await removePidFile(file.path);
    console.log("no clients to stop");
    return 0;
  }

  let stopped = 0;
  let gone = 0;
  const failures: string[] = [];
  for (const file of files) {
    for (const line of file.invalid) {
      console.error(`skipping "${line}" in ${file.path}: not a client process id`);
    }
    let keepFile = false;
    for (const pid of file.pids) {
      const outcome = await sendTerminate(pid);
      if (outcome.kind === "stopped") {
        stopped++;
        console.log(`stopped client ${pid}`);
      } else if (outcome.kind === "gone") {
        gone++;
        console.log(`client ${pid} already gone`);
      } else {
        keepFile = true;
        failures.push(`client ${pid}: ${outcome.reason}`);
      }
    }
    // A file with a client that could not be signalled stays, so a retry finds it.
    if (!keepFile) await removePidFile(file.path);
  }

  console.log(
    `stopped ${stopped} client${stopped === 1 ? "" : "s"}` +
      (gone > 0 ? ` (${gone} already gone)` : ""),
  );
  if (failures.length > 0) {
    console.error(
      `error: Cannot stop ${failures.length} client${failures.length === 1 ? "" : "s"}: ${
        failures.join("; ")
      }`,
    );
    return 1;
  }
  return 0;
}

/** Runs `kill -TERM <pid>` and tells what came of it. */
async function sendTerminate(pid: number): Promise<StopOutcome> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("kill", {
      args: ["-TERM", String(pid)],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
  } catch (error) {
    throw new Error(`Cannot run the kill command: ${errorMessage(error)}`);
  }
  if (output.success) return { kind: "stopped" };
  const message = new TextDecoder().decode(output.stderr).trim();
  if (/no such process/i.test(message)) return { kind: "gone" };
  return { kind: "failed", reason: message || `kill exited with code ${output.code}` };
}

if (import.meta.main) await runCli(main, HINT);
