/**
 * `deno task compile`: builds the single binaries `dist/parrot-server` and
 * `dist/parrot-client` with `deno compile`, with the flags of their tasks baked in (read
 * from deno.json's `server` and `client` tasks through lib/cli/run_flags.ts: network
 * access for any `--host`, read access and `PARROT_TOKEN` for the token, CA,
 * certificate and key files, and the server's V8 flags).
 *
 * It owns turning the compiler's output into one line a user can act on, and checking
 * that what it built is parrot. `deno compile` downloads `denort`, the runtime every
 * binary is built on, on first use; offline that fails, and `deno compile` then honours
 * the `DENORT_BIN` environment variable natively (no flag needed): set it to a `denort`
 * binary of the same Deno version and the build works without a network. The full
 * `deno` binary given as `DENORT_BIN` builds a file that is the deno CLI, not parrot: so
 * each binary is run with `--version` once built, and one that does not answer as
 * parrot is removed and the build fails. A failed build exits 1 with one line and never
 * leaves a fake binary behind. The task grants `--allow-run` for `deno` and the two
 * binaries, `--allow-env=DENORT_BIN`, `--allow-read=.` and `--allow-write=dist`, which is
 * all this needs.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { errorMessage, parseProgramArgs, runCli } from "../lib/cli/args.ts";
import { runTask } from "../lib/cli/run_flags.ts";

const USAGE = `parrot compile ${denoJson.version}: builds the single binaries with deno compile.

Usage: deno task compile

Builds dist/parrot-server from server.ts and dist/parrot-client from client.ts with the
permissions of their tasks (deno task server, deno task client): the network, for any
--host; reading files (token, certificates); reading PARROT_TOKEN. Each binary is run with
--version once built; one that does not answer as parrot is removed, and the build fails.
deno compile downloads denort (the runtime of the binaries) on first use; offline, set
DENORT_BIN to a denort binary of Deno ${Deno.version.deno} and it is used instead (not the
deno binary itself: that builds copies of deno, which the check refuses).

Options:
  -h, --help   show this help`;

const HINT = "Run `deno task compile --help` for usage.";

/** What `--version` prints for a parrot program. */
const PARROT_VERSION = `parrot ${denoJson.version}`;
/** How long a built binary may take to answer `--version`. */
const VERSION_TIMEOUT_MS = 30_000;

/** What is built, from which entry point, with which flags (those of its task). */
const BINARIES = [
  {
    output: "dist/parrot-server",
    source: "server.ts",
    // The server's shards run lib/parrot/threads/shard_worker.ts in Workers, and
    // --history writes in lib/history/history_worker.ts: compile them in.
    // (The task's environment, GLIBC_TUNABLES, cannot be baked into a binary.)
    flags: [
      ...runTask("server").flags,
      "--include=lib/parrot/threads/shard_worker.ts",
      "--include=lib/history/history_worker.ts",
    ],
  },
  { output: "dist/parrot-client", source: "client.ts", flags: runTask("client").flags },
] as const;

async function main(): Promise<number> {
  if (!parseProgramArgs(Deno.args, {}, USAGE, 0)) return 0;

  await Deno.mkdir("dist", { recursive: true });
  for (const { output, source, flags } of BINARIES) {
    const result = await new Deno.Command("deno", {
      args: ["compile", ...flags, "--output", output, source],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    if (!result.success) {
      const compilerOutput = new TextDecoder().decode(result.stderr);
      throw new Error(explainFailure(source, compilerOutput, result.code));
    }
    const answer = await versionOf(output);
    if (answer !== PARROT_VERSION) {
      await removeBuilt(output);
      throw new Error(
        `Cannot build ${output}: the built file answers --version with ${answer}, not ` +
          `"${PARROT_VERSION}"` +
          (Deno.env.get("DENORT_BIN") === undefined
            ? ""
            : " (is DENORT_BIN a denort binary? the deno binary itself builds copies of deno)") +
          "; it was removed",
      );
    }
    const { size } = await Deno.stat(output);
    console.log(`built ${output} from ${source} (${(size / 1_048_576).toFixed(1)} MB)`);
  }
  return 0;
}

/**
 * Removes a built binary. Deno refuses this process write access to the binaries it may
 * run (`--allow-run=./dist/...`, and their folders), so a `deno` child allowed to write
 * that one file removes it.
 */
async function removeBuilt(path: string): Promise<void> {
  const child = new Deno.Command("deno", {
    args: ["run", "--no-config", "--no-lock", `--allow-write=./${path}`, "-", `./${path}`],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("await Deno.remove(Deno.args[0]);\n"));
  await writer.close();
  const { success, stderr } = await child.output();
  if (!success) {
    const why = new TextDecoder().decode(stderr).trim().split("\n")[0];
    throw new Error(`Cannot remove ${path}, which is not parrot: ${why}`);
  }
}

/** The first line a built binary prints for `--version`, quoted, or what went wrong. */
async function versionOf(path: string): Promise<string> {
  try {
    const result = await new Deno.Command(`./${path}`, {
      args: ["--version"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      env: { NO_COLOR: "1" },
      signal: AbortSignal.timeout(VERSION_TIMEOUT_MS),
    }).output();
    const first = new TextDecoder().decode(result.stdout).trim().split("\n")[0];
    if (result.success) return JSON.stringify(first);
    return result.signal === null
      ? `exit code ${result.code}${first === "" ? "" : ` and ${JSON.stringify(first)}`}`
      : `nothing within ${VERSION_TIMEOUT_MS / 1000}s`;
  } catch (error) {
    return `an error (${errorMessage(error)})`;
  }
}

/** One line saying why `deno compile` failed on `source`, from its stderr. */
function explainFailure(source: string, stderr: string, code: number): string {
  // deno compile prints a Rust error: "error: <what>", then "Caused by:" and numbered
  // causes, sometimes followed by a "Stack backtrace:" that says nothing to users.
  // deno-lint-ignore no-control-regex
  const text = stderr.replace(/\x1b\[[0-9;]*m/g, "").split("Stack backtrace:")[0];
  const lines = text.split("\n").map((line) => line.trim()).filter((line) => line !== "");
  const errorAt = lines.findIndex((line) => line.startsWith("error:"));
  const failure = errorAt === -1 ? lines : lines.slice(errorAt);
  const causes = failure
    .map((line) => /^\d+: (.*)$/.exec(line)?.[1])
    .filter((cause): cause is string => cause !== undefined);

  if (Deno.env.get("DENORT_BIN") === undefined && isDenortDownloadFailure(failure)) {
    const version = /release\/v([^/\s]+)\//.exec(text)?.[1] ?? Deno.version.deno;
    return "Cannot build single binaries: deno compile could not download denort (offline?); " +
      `set DENORT_BIN to a denort binary of Deno ${version}`;
  }
  const typeError = lines.find((line) => /^TS\d+ \[ERROR\]/.test(line));
  const detail = typeError ??
    (causes.length > 1 && causes[0] !== causes.at(-1)
      ? `${causes[0].replace(/\.$/, "")}: ${causes.at(-1)}`
      : causes[0]) ??
    failure.findLast((line) => line.startsWith("error:"))?.replace(/^error:\s*/, "") ??
    lines.at(-1) ??
    `deno compile exited with code ${code}`;
  return `Cannot build ${source}: ${detail}`;
}

/** Whether the error lines say the denort download failed (and no DENORT_BIN was given). */
function isDenortDownloadFailure(errorLines: string[]): boolean {
  const error = errorLines.join("\n");
  return /denort/i.test(error) && /(download|error sending request|base binary)/i.test(error);
}

if (import.meta.main) await runCli(main, HINT);
