/**
 * The harness the torture scenarios and the bench share, with nothing protocol-specific.
 *
 * It owns starting a real server process per scenario (as a user would, stdout to a
 * file, stderr collected), measuring that process from the outside (RSS and open fds
 * through a `sh` probe of /proc, since reading /proc from Deno would need
 * --allow-all), reading the kernel's TCP table (to see unread bytes without reading
 * them), running scenarios in sequence or each in a process of its own, the command-line
 * options both CLIs take, the result type of a scenario, and the table it is printed in.
 * The torture and bench scenarios import it; the tests only see
 * {@linkcode ScenarioResult}.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { progressLine } from "../../lib/cli/progress.ts";
import { within } from "../../lib/net/delay.ts";
import { type ServerProcess, startServer, waitFor } from "../../lib/testing.ts";

const decoder = new TextDecoder();

/** Sizes of one scenario run: counts by name, chosen by the scenario's registry entry. */
export type Sizes = Record<string, number>;

/** What a scenario gets from whoever runs it. */
export interface ScenarioContext {
  /** A directory for the servers' stdout files; removed by the runner. */
  workDir: string;
  /** Reports a short progress text (the CLI shows it on one live line). */
  progress: (text: string) => void;
  /** Whether this is the small run the tests use. */
  quick: boolean;
  /** Extra flags for every server started (`--threads <n>`). */
  serverFlags?: string[];
}

/** Memory and descriptors of the server process, measured from outside. */
export interface ProcessProbe {
  rssBytes: number;
  /**
   * The anonymous part of RSS: memory the process allocated, without the pages of the
   * deno executable and other files it has mapped (clean, shared, and paged in as
   * code paths are first used).
   */
  anonymousBytes: number;
  fds: number;
}

/** The outcome of one scenario: one row of the table, one object in the JSON. */
export interface ScenarioResult {
  id: number;
  name: string;
  /** What was sent, in a few words. */
  sent: string;
  /** What the server did, in a few words. */
  serverDid: string;
  /** Messages of healthy clients that were not printed (or relayed); null if not measured. */
  lost: number | null;
  /** Server RSS and open fds before the attack and after it (or null where not measured). */
  before: ProcessProbe | null;
  after: ProcessProbe | null;
  passed: boolean;
  /** Why it failed, one line each; empty when passed. */
  failures: string[];
  /** Figures for the JSON (and the tests): counts, rates, timings. */
  metrics: Record<string, number | string | boolean>;
  elapsedMs: number;
}

/** A scenario's verdict before the runner adds its id, name and elapsed time. */
export type ScenarioOutcome = Omit<ScenarioResult, "id" | "name" | "elapsedMs" | "passed">;

/** Collects the failed checks of a scenario. */
export class Checks {
  readonly failures: string[] = [];

  /** Records `message` as a failure unless `condition` holds. */
  expect(condition: boolean, message: string): boolean {
    if (!condition) this.failures.push(message);
    return condition;
  }
}

/**
 * A real `server.ts` process started for one scenario as the `server` task runs it (its
 * environment and `deno run` flags read from deno.json): `server.ts 0 <flags>`,
 * stdout to a file in the work directory (through `sh -c 'exec ...'`, so the pid is
 * the server's), stderr collected. Dispose it to kill it if it is still running.
 */
export class TortureServer implements AsyncDisposable {
  /** Servers not yet exited, so a runner can kill what a timed-out scenario left behind. */
  static readonly live: Set<TortureServer> = new Set();
  readonly process: ServerProcess;
  readonly stdoutFile: string;
  #exited = false;
  #exitCode: number | null = null;

  private constructor(process: ServerProcess, stdoutFile: string) {
    this.process = process;
    this.stdoutFile = stdoutFile;
    TortureServer.live.add(this);
    process.status.then((status) => {
      TortureServer.live.delete(this);
      this.#exited = true;
      this.#exitCode = status.code;
    });
  }

  /**
   * Starts the server with `flags` and waits for its "listening on" line; `runArgs`
   * runs another script in place of server.ts (see startServer).
   */
  static async start(
    context: ScenarioContext,
    name: string,
    flags: string[],
    options: { runArgs?: string[] } = {},
  ) {
    const stdoutFile = `${context.workDir}/${name}-${Date.now()}.out`;
    const process = await startServer([...flags, ...context.serverFlags ?? []], {
      stdoutFile,
      runArgs: options.runArgs,
    });
    return new TortureServer(process, stdoutFile);
  }

  get port(): number {
    return this.process.port;
  }

  get pid(): number {
    return this.process.child.pid;
  }

  get exited(): boolean {
    return this.#exited;
  }

  get exitCode(): number | null {
    return this.#exitCode;
  }

  get stderr(): string {
    return this.process.stderr.text();
  }

  /** RSS and open fds of the server process now. */
  probe(): Promise<ProcessProbe> {
    return probeProcess(this.pid);
  }

  /** The `clients=` figure of every `--stats` line so far, oldest first. */
  clientCounts(): number[] {
    return [...this.stderr.matchAll(/stats: clients=(\d+)/g)].map((match) => Number(match[1]));
  }

  /** The `<name>=` figure of the latest `--stats` line, or -1 before the first one. */
  latestStat(name: string): number {
    const found = [...this.stderr.matchAll(new RegExp(`stats: .*\\b${name}=([\\d.]+)`, "g"))];
    return found.length === 0 ? -1 : Number(found.at(-1)![1]);
  }

  /** Waits for a `--stats` line, printed from now on, that shows `clients` clients. */
  async waitForClientCount(clients: number, timeoutMs = 10_000): Promise<void> {
    const seen = this.clientCounts().length;
    await waitFor(
      () => this.clientCounts().slice(seen).includes(clients),
      `a stats line with clients=${clients} (last: ${this.clientCounts().at(-1)})`,
      timeoutMs,
      20,
    );
  }

  /** Waits until the server's open fds are at most `limit`; returns the last count. */
  async waitForFdsAtMost(limit: number, timeoutMs: number): Promise<number> {
    return (await this.waitForProbe((probe) => probe.fds <= limit, timeoutMs)).fds;
  }

  /** Probes every 100 ms until `done(probe)` or `timeoutMs`; returns the last probe. */
  async waitForProbe(done: (probe: ProcessProbe) => boolean, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    let probe = await this.probe();
    while (!done(probe) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      probe = await this.probe();
    }
    return probe;
  }

  /** Reads the server's stdout file (the printed messages). */
  readStdout(): Promise<string> {
    return Deno.readTextFile(this.stdoutFile);
  }

  /** Sends `signal` to the server process. */
  kill(signal: Deno.Signal): void {
    if (!this.#exited) this.process.kill(signal);
  }

  /** Stops the server gracefully (SIGTERM) and returns its exit code; SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<number> {
    this.kill("SIGTERM");
    const timer = setTimeout(() => this.kill("SIGKILL"), graceMs);
    try {
      return (await this.process.status).code;
    } finally {
      clearTimeout(timer);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) this.kill("SIGKILL");
    await this.process.status;
    await Deno.remove(this.stdoutFile).catch(() => {});
  }
}

/** Runs `sh -c script sh ...args` and returns its stdout (a probe never throws on exit code). */
export async function shell(script: string, ...args: string[]): Promise<string> {
  const { stdout } = await new Deno.Command("sh", {
    args: ["-c", script, "sh", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return decoder.decode(stdout);
}

/** RSS and open fds of process `pid`, read from /proc by a `sh` subprocess. */
export async function probeProcess(pid: number): Promise<ProcessProbe> {
  const text = await shell(
    'grep -E "^(VmRSS|RssAnon):" /proc/"$1"/status; ls /proc/"$1"/fd | wc -l',
    String(pid),
  );
  const rss = text.match(/VmRSS:\s+(\d+)\s+kB/);
  const anonymous = text.match(/RssAnon:\s+(\d+)\s+kB/);
  const lines = text.trim().split("\n");
  if (!rss || !anonymous) {
    throw new Error(`Cannot probe process ${pid}: ${text.trim() || "it is gone"}`);
  }
  return {
    rssBytes: Number(rss[1]) * 1024,
    anonymousBytes: Number(anonymous[1]) * 1024,
    fds: Number(lines.at(-1)),
  };
}

/** One IPv4 socket of the kernel's TCP table (/proc/net/tcp). */
export interface TcpSocket {
  localPort: number;
  remotePort: number;
  /** The kernel's state number: 1 established, 6 time-wait, 10 listen, ... */
  state: number;
  /** Bytes sent and not yet acknowledged by the peer. */
  sendQueue: number;
  /** Bytes received and not yet read by the owner. */
  receiveQueue: number;
}

/** TCP state number of an established connection in /proc/net/tcp. */
export const TCP_ESTABLISHED = 1;

/** The loopback IPv4 sockets of the kernel's TCP table, read by a `sh` subprocess. */
export async function readTcpTable(): Promise<TcpSocket[]> {
  const text = await shell("cat /proc/net/tcp");
  const sockets: TcpSocket[] = [];
  for (const line of text.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5) continue;
    const [, local, remote, state, queues] = fields;
    const [sendQueue, receiveQueue] = queues.split(":").map((hex) => parseInt(hex, 16));
    sockets.push({
      localPort: parseInt(local.split(":")[1], 16),
      remotePort: parseInt(remote.split(":")[1], 16),
      state: parseInt(state, 16),
      sendQueue,
      receiveQueue,
    });
  }
  return sockets;
}

/** Runs `task` for every item with at most `limit` running at once; results in item order. */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  limit: number,
  task: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await task(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Re-exported for the scenarios: a promise's value, or a fallback once time is up. */
export { within };

/** The options `deno task torture` and `deno task bench` share. */
export interface RunOptions<Only> {
  /** Small sizes. */
  quick: boolean;
  /** The scenarios asked for with `--only`, or `null` for all. */
  only: Only[] | null;
  /** Where the JSON report goes, or `null` for the results folder. */
  jsonFile: string | null;
  /** Flags for every server started: `--threads <n>` when given. */
  serverFlags: string[];
}

/**
 * Parses `--quick`, `--only a,b`, `--json <file>`, `--threads <n>` and `-h`; returns
 * `null` for help.
 * `select` turns one `--only` item into a scenario key, throwing on an unknown one.
 */
export function parseRunOptions<Only>(
  args: string[],
  select: (item: string) => Only,
): RunOptions<Only> | null {
  const { values, positionals } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      quick: { type: "boolean", default: false },
      only: { type: "string" },
      json: { type: "string" },
      threads: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return null;
  if (positionals.length > 0) throw new Error(`Unexpected argument "${positionals[0]}"`);
  const only = values.only === undefined ? null : values.only.split(",")
    .map((item) => item.trim()).filter((item) => item !== "").map(select);
  const threads = values.threads;
  if (threads !== undefined && !/^[1-9]\d*$/.test(threads)) {
    throw new Error(`Cannot use --threads "${threads}": expected a whole number of at least 1`);
  }
  return {
    quick: values.quick,
    only,
    jsonFile: values.json ?? null,
    serverFlags: threads === undefined ? [] : ["--threads", threads],
  };
}

/**
 * {@linkcode parseRunOptions} for a CLI: the options, or the exit code once it has
 * printed `usage` (0, for `--help`) or the mistake (2).
 */
export function parseCliOptions<Only>(
  args: string[],
  task: string,
  usage: string,
  select: (item: string) => Only,
): RunOptions<Only> | number {
  try {
    const options = parseRunOptions(args, select);
    if (options) return options;
    console.log(usage);
    return 0;
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split(". ")[0];
    console.error(`error: ${message}\nRun \`deno task ${task} --help\` for usage.`);
    return 2;
  }
}

/**
 * Runs `scenarios` one after another under a live progress line (stderr), and says
 * on stderr how each ended, with `detail` of its result. Returns the results and the
 * total time.
 */
export async function runInSequence<S, R extends { passed: boolean; elapsedMs: number }>(
  scenarios: readonly S[],
  label: (scenario: S) => string,
  run: (scenario: S, progress: (text: string) => void) => Promise<R>,
  detail: (result: R) => string = () => "",
): Promise<{ results: R[]; totalMs: number }> {
  const progress = progressLine();
  const results: R[] = [];
  const startedAt = performance.now();
  for (const [index, scenario] of scenarios.entries()) {
    const name = `[${index + 1}/${scenarios.length}] ${label(scenario)}`;
    const scenarioStart = performance.now();
    const elapsed = () => `${((performance.now() - scenarioStart) / 1000).toFixed(0)}s`;
    progress.show(`${name} ...`);
    const result = await run(scenario, (text) => progress.show(`${name}: ${text} (${elapsed()})`));
    progress.clear();
    const verdict = `${result.passed ? "PASS" : "FAIL"} in ${
      (result.elapsedMs / 1000).toFixed(1)
    }s`;
    console.error(`${name}: ${verdict}${detail(result)}`);
    results.push(result);
  }
  return { results, totalMs: Math.round(performance.now() - startedAt) };
}

/**
 * Runs one scenario in a fresh work directory within `limitMs`, and never throws: an
 * error or a timeout becomes `failed(reason)`. Afterwards it kills any server the
 * scenario left running and removes the directory. Adds `passed` and `elapsedMs`.
 */
export async function runIsolated<O extends { failures: string[] }>(
  prefix: string,
  limitMs: number,
  run: (workDir: string) => Promise<O>,
  failed: (reason: string) => O,
): Promise<O & { passed: boolean; elapsedMs: number }> {
  const startedAt = performance.now();
  const workDir = await Deno.makeTempDir({ prefix });
  let outcome: O;
  try {
    outcome = await runWithinLimit(run(workDir), limitMs);
  } catch (error) {
    outcome = failed(`scenario error: ${error instanceof Error ? error.message : String(error)}`);
  }
  for (const server of TortureServer.live) server.kill("SIGKILL");
  await Deno.remove(workDir, { recursive: true }).catch(() => {});
  return {
    ...outcome,
    passed: outcome.failures.length === 0,
    elapsedMs: Math.round(performance.now() - startedAt),
  };
}

/**
 * Runs a scenario with a time limit: its result, or an error saying it did not finish.
 * A scenario that times out keeps running unobserved, so its later failure is muted.
 */
async function runWithinLimit<T>(running: Promise<T>, limitMs: number): Promise<T> {
  running.catch(() => {});
  const result = await within(running, limitMs, TIMED_OUT);
  if (result === TIMED_OUT) throw new Error(`did not finish within ${limitMs / 1000}s`);
  return result as T;
}

const TIMED_OUT = Symbol("timed out");

/**
 * Writes a script's JSON report to `file`, or to `<dir>/<prefix>-<timestamp>.json`
 * (creating `dir`), and says where.
 */
export async function writeReport(
  report: unknown,
  dir: string,
  prefix: string,
  file: string | null,
): Promise<void> {
  const stamp = new Date().toISOString().replaceAll(":", "-").replace(/\.\d+Z$/, "Z");
  const path = file ?? `${dir}/${prefix}-${stamp}.json`;
  if (!file) await Deno.mkdir(dir, { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
  console.log(`wrote ${path}`);
}

/** Throws when `deadline` (a `Date.now()` value) has passed: the time bound of a loop. */
export function checkDeadline(deadline: number, what: string): void {
  if (Date.now() > deadline) throw new Error(`${what} ran out of time`);
}

/** `12.3 MB` style (decimal megabytes), for the table. */
export function formatMegabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** `<before> -> <after>` for a probe figure, or `-` when not measured. */
function transition(
  before: ProcessProbe | null,
  after: ProcessProbe | null,
  pick: (probe: ProcessProbe) => string,
): string {
  if (!before && !after) return "-";
  return `${before ? pick(before) : "?"} -> ${after ? pick(after) : "?"}`;
}

/** The results as a Markdown table, one row per scenario. */
export function formatTable(results: readonly ScenarioResult[]): string {
  const header = [
    "#",
    "scenario",
    "sent",
    "server did",
    "lost",
    "server RSS",
    "server fds",
    "result",
  ];
  const rows = results.map((r) => [
    String(r.id),
    r.name,
    r.sent,
    r.serverDid,
    r.lost === null ? "-" : String(r.lost),
    transition(r.before, r.after, (p) => formatMegabytes(p.rssBytes)),
    transition(r.before, r.after, (p) => String(p.fds)),
    r.passed ? "PASS" : `FAIL: ${r.failures.join("; ")}`,
  ]);
  const escape = (cell: string) => cell.replaceAll("|", "\\|").replaceAll("\n", " ");
  return [header, header.map(() => "---"), ...rows]
    .map((cells) => `| ${cells.map(escape).join(" | ")} |`)
    .join("\n");
}
