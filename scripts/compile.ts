/**
 * `deno task compile`: builds the single binaries `dist/parrot-server` and
 * `dist/parrot-client` with `deno compile`, with the permissions of their tasks baked in
 * (`--allow-net=127.0.0.1`, and read access and `PARROT_TOKEN` for the token, CA,
 * certificate and key files).
 *
 * It owns turning the compiler's output into one line a user can act on. `deno
 * compile` downloads `denort`, the runtime every binary is built on, on first use;
 * offline that fails, and `deno compile` then honours the `DENORT_BIN` environment
 * variable natively (no flag needed): set it to a `denort` binary of the same Deno
 * version and the build works without a network. (The full `deno` binary does not
 * work as `DENORT_BIN`.) A failed build exits 1 with one line and never leaves a
 * fake binary behind. The task grants `--allow-run=deno --allow-env=DENORT_BIN
 * --allow-read=. --allow-write=dist`, which is all this needs.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { parseProgramArgs, runCli } from "../lib/cli/args.ts";

const USAGE = `parrot compile ${denoJson.version}: builds the single binaries with deno compile.

Usage: deno task compile

Builds dist/parrot-server from server.ts and dist/parrot-client from client.ts, both
allowed to use the network on 127.0.0.1 only, to read files (token, certificates) and
to read PARROT_TOKEN. deno compile downloads denort (the
runtime of the binaries) on first use; offline, set DENORT_BIN to a denort binary of
Deno ${Deno.version.deno} and it is used instead.

Options:
  -h, --help   show this help`;

const HINT = "Run `deno task compile --help` for usage.";

/** What is built, from which entry point, with which flags (permissions, V8). */
const PERMISSIONS = ["--allow-net=127.0.0.1", "--allow-read", "--allow-env=PARROT_TOKEN"];
const BINARIES = [
  {
    output: "dist/parrot-server",
    source: "server.ts",
    // The server's task flags too: a small young generation and a collection when idle,
    // and its shards (Workers on one port through reusePort, which is unstable).
    flags: [
      ...PERMISSIONS,
      "--v8-flags=--expose-gc,--max-semi-space-size=2",
      "--unstable-net",
      "--include=lib/parrot/threads/shard_worker.ts",
    ],
  },
  { output: "dist/parrot-client", source: "client.ts", flags: PERMISSIONS },
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
    const { size } = await Deno.stat(output);
    console.log(`built ${output} from ${source} (${(size / 1_048_576).toFixed(1)} MB)`);
  }
  return 0;
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
