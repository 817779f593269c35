/**
 * The server's command-line flags, declared once: one table from which `server.ts`
 * builds its usage text, its `parseArgs` configuration and the options it starts the
 * server with.
 *
 * Each row names a flag, its value placeholder, its section of the help, its help
 * lines (with its default filled in) and how its value (or, when not given, its
 * default) goes into the {@linkcode ServerCommandLine}; a flag that depends on
 * another (`--burst` on `--rate`) looks at it from its own row. Reading files (the
 * token, the certificate) is left to the caller: this module does no I/O.
 *
 * @module
 */

import { parseCount, parseDurationOption, parsePort, UsageError } from "./args.ts";
import { type LogFormat, type ParrotLogLevel, parseLogLevel } from "./logging.ts";
import type { TokenSources } from "./token.ts";
import {
  DEFAULT_AUTH_TIMEOUT_MS,
  DEFAULT_GRACE_MS,
  DEFAULT_HISTORY_AGE_MS,
  DEFAULT_HISTORY_MAX,
  DEFAULT_HISTORY_REPLAY_MAX,
  DEFAULT_HOST,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CLIENTS,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_OUTBOUND_BYTES,
  DEFAULT_QUEUE_CAPACITY,
  DEFAULT_READ_TIMEOUT_MS,
  DEFAULT_TCP_BACKLOG,
  DEFAULT_THREADS,
  DEFAULT_WRITE_TIMEOUT_MS,
} from "../defaults.ts";
import { formatDuration } from "../net/duration.ts";
import { RECORD_FORMATS, type RecordFormat } from "../parrot/record_format.ts";
import { bareHostName, normalOrigin } from "../http/guards.ts";
import {
  CLUSTER_FLAGS,
  type ClusterCommandLine,
  parseClusterFlags,
} from "../cluster/cluster_flags.ts";

/** The parts of the server's help, in the order they are printed. */
export type FlagSection = "Options" | "HTTP" | "Cluster" | "History" | "Security" | "Logging";

/** What the server's command line asks for; see {@linkcode parseServerCommandLine}. */
export interface ServerCommandLine {
  /** The port to bind (0: a free one). */
  port: number;
  /** The server options that need no I/O to know. */
  options: {
    hostname: string;
    maxClients: number;
    backlog: number;
    readTimeoutMs: number;
    idleTimeoutMs: number;
    graceMs: number;
    maxFrameBytes: number;
    maxOutboundBytes: number;
    writeTimeoutMs: number;
    queueCapacity: number;
    broadcast: boolean;
    authTimeoutMs: number;
    rateLimit?: { ratePerSecond: number; burst: number };
    records: RecordFormat;
  };
  /** Where the token comes from (`--token`, `--token-file`, else `PARROT_TOKEN`). */
  token: TokenSources;
  /** The certificate and key files, when TLS is asked for. */
  tlsFiles?: { cert: string; key: string };
  /** The HTTP side, when `--http` is given. */
  http?: HttpCommandLine;
  /** Cluster mode, when `--cluster` is given (`lib/cluster/cluster_flags.ts`). */
  cluster?: ClusterCommandLine;
  /** The message history, when `--history` is given. */
  history?: HistoryCommandLine;
  /** Threads to serve on. */
  threads: number;
  /** Interval of the stats line in ms; 0: none. */
  statsMs: number;
  /** `--log-level`. */
  logLevel: ParrotLogLevel;
  /** `--log-format`. */
  logFormat: LogFormat;
}

/** What `--http` and the flags beside it ask for. */
export interface HttpCommandLine {
  /** `--http`: the port (0: a free one). */
  port: number;
  /** `--http-host`, else `--host`. */
  hostname: string;
  /** `--http-allow-origin`, each an origin (`scheme://host[:port]`). */
  allowOrigins: string[];
  /** `--http-allow-host`, each a host name. */
  allowHosts: string[];
}

/** What `--history` and the flags beside it ask for. */
export interface HistoryCommandLine {
  /** `--history`: the SQLite file. */
  path: string;
  /** `--history-max`: most messages kept (0: no limit). */
  maxMessages: number;
  /** `--history-age`: oldest message kept, in milliseconds (0: no limit). */
  maxAgeMs: number;
  /** `--history-replay-max`: most messages one `HISTORY <n>` sends. */
  replayMax: number;
}

/** One row of {@linkcode SERVER_FLAGS}. */
export interface ServerFlag {
  /** The long name, without the dashes. */
  readonly name: string;
  /** A one-letter alias. */
  readonly short?: string;
  /** The value's placeholder in the help (`<n>`); a flag without one is a switch. */
  readonly value?: string;
  /** Whether it may be given more than once; `apply` gets the values joined by commas. */
  readonly repeatable?: boolean;
  /** Where the help lists it. */
  readonly section: FlagSection;
  /** Its help: the first line, then continuation lines after `\n`. */
  readonly help: string;
  /**
   * Puts the flag into `line`: `given` is its text (`"true"` for a switch that is
   * given), or undefined when it is not given, and then the default applies; `all`
   * holds every flag's text, for a flag that depends on another. Absent for `--help`
   * and `--version`, which `parseProgramArgs()` handles.
   */
  readonly apply?: (
    line: ServerCommandLine,
    given: string | undefined,
    all: Readonly<Record<string, string | undefined>>,
  ) => void;
}

/** The `--threads` checks need to know the runtime; tests give their own. */
export interface ServerFlagsRuntime {
  /** CPU cores (`navigator.hardwareConcurrency`). */
  cores: number;
  /** Whether `--unstable-net` was given (the threads' `reusePort` needs it). */
  unstableNet: boolean;
}

const count = (name: string, min: number, fallback: number, given: string | undefined) =>
  given === undefined ? fallback : parseCount(name, given, min);

const duration = (name: string, fallback: number, given: string | undefined, positive = false) => {
  if (given === undefined) return fallback;
  const ms = parseDurationOption(name, given);
  if (positive && ms === 0) throw new UsageError(`Cannot use --${name} 0: it must be positive`);
  return ms;
};

const choice = <T extends string>(name: string, known: readonly T[], given: string): T => {
  const found = known.find((value) => value === given);
  if (found === undefined) {
    const expected = `${known.slice(0, -1).join(", ")} or ${known[known.length - 1]}`;
    throw new UsageError(`Cannot use --${name} "${given}": expected ${expected}`);
  }
  return found;
};

/** The values of a repeatable flag given as `a,b` and/or more than once, without empties. */
const list = (given: string | undefined): string[] =>
  given === undefined ? [] : given.split(",").map((item) => item.trim()).filter((item) => item);

/** `--http-*` needs `--http`: a flag that would do nothing is a mistake. */
const needsHttp = (name: string, given: string | undefined, all: Record<string, unknown>) => {
  if (given !== undefined && all.http === undefined) {
    throw new UsageError(`Cannot use --${name} without --http`);
  }
};

/** `--history-*` needs `--history`, and puts its value there. */
const historyLimit = (
  name: string,
  given: string | undefined,
  all: Record<string, unknown>,
  set: (history: HistoryCommandLine, value: number) => void,
  parse: (given: string) => number,
  line: ServerCommandLine,
) => {
  if (given === undefined) return;
  if (all.history === undefined) throw new UsageError(`Cannot use --${name} without --history`);
  set(line.history!, parse(given));
};

/** The server's flags, in the order the help lists them. */
export const SERVER_FLAGS: readonly ServerFlag[] = [
  {
    name: "host",
    value: "<address>",
    section: "Options",
    help: `address to bind (default ${DEFAULT_HOST})`,
    apply: (line, given) => line.options.hostname = given ?? DEFAULT_HOST,
  },
  {
    name: "max-clients",
    value: "<n>",
    section: "Options",
    help: `most clients at once (default ${DEFAULT_MAX_CLIENTS})`,
    apply: (line, given) =>
      line.options.maxClients = count("max-clients", 1, DEFAULT_MAX_CLIENTS, given),
  },
  {
    name: "backlog",
    value: "<n>",
    section: "Options",
    help: `listen queue for bursts of connects (default ${DEFAULT_TCP_BACKLOG};
the kernel caps it at net.core.somaxconn)`,
    apply: (line, given) => line.options.backlog = count("backlog", 1, DEFAULT_TCP_BACKLOG, given),
  },
  {
    name: "read-timeout",
    value: "<time>",
    section: "Options",
    help: `a frame must complete within this (default ${formatDuration(DEFAULT_READ_TIMEOUT_MS)})`,
    apply: (line, given) =>
      line.options.readTimeoutMs = duration("read-timeout", DEFAULT_READ_TIMEOUT_MS, given, true),
  },
  {
    name: "idle-timeout",
    value: "<time>",
    section: "Options",
    help: `PING a silent client, drop it after as long again; 0 = never
(default ${formatDuration(DEFAULT_IDLE_TIMEOUT_MS)})`,
    apply: (line, given) =>
      line.options.idleTimeoutMs = duration("idle-timeout", DEFAULT_IDLE_TIMEOUT_MS, given),
  },
  {
    name: "grace",
    value: "<time>",
    section: "Options",
    help: `time clients get to finish on shutdown (default ${formatDuration(DEFAULT_GRACE_MS)})`,
    apply: (line, given) => line.options.graceMs = duration("grace", DEFAULT_GRACE_MS, given),
  },
  {
    name: "max-frame",
    value: "<bytes>",
    section: "Options",
    help: `largest message payload (default ${DEFAULT_MAX_FRAME_BYTES})`,
    apply: (line, given) =>
      line.options.maxFrameBytes = count("max-frame", 0, DEFAULT_MAX_FRAME_BYTES, given),
  },
  {
    name: "max-outbound",
    value: "<bytes>",
    section: "Options",
    help: `bytes queued for one client before it is a slow consumer
(default ${DEFAULT_MAX_OUTBOUND_BYTES})`,
    apply: (line, given) =>
      line.options.maxOutboundBytes = count("max-outbound", 1, DEFAULT_MAX_OUTBOUND_BYTES, given),
  },
  {
    name: "write-timeout",
    value: "<time>",
    section: "Options",
    help: `a write to a client may stall this long before it is a slow
consumer (default ${formatDuration(DEFAULT_WRITE_TIMEOUT_MS)})`,
    apply: (line, given) =>
      line.options.writeTimeoutMs = duration(
        "write-timeout",
        DEFAULT_WRITE_TIMEOUT_MS,
        given,
        true,
      ),
  },
  {
    name: "queue",
    value: "<n>",
    section: "Options",
    help: `channel capacity in read batches (default ${DEFAULT_QUEUE_CAPACITY})`,
    apply: (line, given) =>
      line.options.queueCapacity = count("queue", 1, DEFAULT_QUEUE_CAPACITY, given),
  },
  {
    name: "rate",
    value: "<n>",
    section: "Options",
    help: `messages per second per client; a faster client is slowed,
not dropped (default: no limit)`,
    apply: (line, given, all) => {
      if (given === undefined) return;
      const ratePerSecond = parseCount("rate", given, 1);
      const burst = all.burst === undefined ? ratePerSecond : parseCount("burst", all.burst, 1);
      line.options.rateLimit = { ratePerSecond, burst };
    },
  },
  {
    name: "burst",
    value: "<n>",
    section: "Options",
    help: "messages a client may send at once under --rate (default: the rate)",
    apply: (_line, given, all) => {
      if (given !== undefined && all.rate === undefined) {
        throw new UsageError("Cannot use --burst without --rate");
      }
    },
  },
  {
    name: "no-broadcast",
    section: "Options",
    help: "do not relay messages to other clients",
    apply: (line, given) => line.options.broadcast = given === undefined,
  },
  {
    name: "output",
    value: "<format>",
    section: "Options",
    help: `message records on stdout: text (the default, <sender>: <message>)
or json (one object per line; see docs/PROTOCOL.md)`,
    apply: (line, given) =>
      line.options.records = given === undefined ? "text" : choice("output", RECORD_FORMATS, given),
  },
  {
    name: "threads",
    value: "<n>",
    section: "Options",
    help: `serve on n threads, each taking its share of the clients
(default ${DEFAULT_THREADS}; more take busy loads faster, one has the
lowest latency and memory; at most one per CPU core)`,
    apply: (line, given) => line.threads = count("threads", 1, DEFAULT_THREADS, given),
  },
  {
    name: "http",
    value: "<port>",
    section: "HTTP",
    help: `serve the live page, WebSocket clients (/ws), /metrics and /healthz
on this port too (0: a free one; default: no HTTP side)`,
    apply: (line, given, all) => {
      if (given === undefined) return;
      line.http = {
        port: parsePort(given),
        hostname: all["http-host"] ?? all.host ?? DEFAULT_HOST,
        allowOrigins: [],
        allowHosts: [],
      };
    },
  },
  {
    name: "http-host",
    value: "<address>",
    section: "HTTP",
    help: "address of the HTTP side (default: the --host address)",
    apply: (_line, given, all) => needsHttp("http-host", given, all),
  },
  {
    name: "http-allow-origin",
    value: "<origin>",
    section: "HTTP",
    repeatable: true,
    help: `another web origin allowed to open /ws, as http://name:port
(repeat it, or a comma list; default: the page's own only)`,
    apply: (line, given, all) => {
      needsHttp("http-allow-origin", given, all);
      for (const origin of list(given)) {
        if (normalOrigin(origin) === undefined) {
          throw new UsageError(
            `Cannot use --http-allow-origin "${origin}": expected an origin such as http://name:8081`,
          );
        }
        line.http!.allowOrigins.push(origin);
      }
    },
  },
  {
    name: "http-allow-host",
    value: "<name>",
    section: "HTTP",
    repeatable: true,
    help: `another Host name the HTTP side answers (repeat it, or a comma
list; default: loopback names and its own address only)`,
    apply: (line, given, all) => {
      needsHttp("http-allow-host", given, all);
      for (const name of list(given)) {
        if (bareHostName(name) === undefined) {
          throw new UsageError(
            `Cannot use --http-allow-host "${name}": expected a host name or address, without a port`,
          );
        }
        line.http!.allowHosts.push(name);
      }
    },
  },
  // The cluster flags are declared beside cluster mode; `--cluster` checks them all.
  ...CLUSTER_FLAGS.map((flag): ServerFlag => ({
    ...flag,
    section: "Cluster",
    apply: flag.name === "cluster"
      ? (line, _given, all) => line.cluster = parseClusterFlags(all)
      : () => {},
  })),
  {
    name: "history",
    value: "<file>",
    section: "History",
    help: `store every message printed in this SQLite file, and answer
HISTORY <n> from it (default: no history)`,
    apply: (line, given) => {
      if (given === undefined) return;
      if (given === "") throw new UsageError('Cannot use --history "": give a file\'s path');
      line.history = {
        path: given,
        maxMessages: DEFAULT_HISTORY_MAX,
        maxAgeMs: DEFAULT_HISTORY_AGE_MS,
        replayMax: DEFAULT_HISTORY_REPLAY_MAX,
      };
    },
  },
  {
    name: "history-max",
    value: "<n>",
    section: "History",
    help: `messages kept, the oldest batches go first (at least this many
are kept, at most one batch more); 0 = no limit (default ${DEFAULT_HISTORY_MAX})`,
    apply: (line, given, all) =>
      historyLimit(
        "history-max",
        given,
        all,
        (h, n) => h.maxMessages = n,
        (text) => parseCount("history-max", text, 0),
        line,
      ),
  },
  {
    name: "history-age",
    value: "<time>",
    section: "History",
    help: `oldest message kept (7d, 12h); 0 = no limit
(default ${formatDuration(DEFAULT_HISTORY_AGE_MS)})`,
    apply: (line, given, all) =>
      historyLimit(
        "history-age",
        given,
        all,
        (h, ms) => h.maxAgeMs = ms,
        (text) => parseDurationOption("history-age", text),
        line,
      ),
  },
  {
    name: "history-replay-max",
    value: "<n>",
    section: "History",
    help: `most messages one HISTORY <n> sends (default ${DEFAULT_HISTORY_REPLAY_MAX})`,
    apply: (line, given, all) =>
      historyLimit(
        "history-replay-max",
        given,
        all,
        (h, n) => h.replayMax = n,
        (text) => parseCount("history-replay-max", text, 0),
        line,
      ),
  },
  {
    name: "token-file",
    value: "<path>",
    section: "Security",
    help: `require "AUTH <token>" as each client's first line, the token
being the file's first line (or set PARROT_TOKEN)`,
    apply: (line, given) => given !== undefined && (line.token.tokenFile = given),
  },
  {
    name: "token",
    value: "<secret>",
    section: "Security",
    help: "the same with the token given here (visible in `ps`)",
    apply: (line, given) => given !== undefined && (line.token.token = given),
  },
  {
    name: "auth-timeout",
    value: "<time>",
    section: "Security",
    help: `time for the TLS handshake and the AUTH line (default ${
      formatDuration(DEFAULT_AUTH_TIMEOUT_MS)
    })`,
    apply: (line, given) =>
      line.options.authTimeoutMs = duration("auth-timeout", DEFAULT_AUTH_TIMEOUT_MS, given, true),
  },
  {
    name: "tls-cert",
    value: "<file>",
    section: "Security",
    help: "serve TLS with this PEM certificate (needs --tls-key)",
    apply: (line, given, all) => {
      if (given === undefined && all["tls-key"] === undefined) return;
      if (given === undefined || all["tls-key"] === undefined) {
        throw new UsageError("Cannot serve TLS: give both --tls-cert and --tls-key");
      }
      line.tlsFiles = { cert: given, key: all["tls-key"] };
    },
  },
  {
    name: "tls-key",
    value: "<file>",
    section: "Security",
    help: "the PEM private key of --tls-cert",
    // Read with --tls-cert.
    apply: () => {},
  },
  {
    name: "stats",
    value: "<time>",
    section: "Logging",
    help: "print a one-line summary to stderr at this interval",
    apply: (line, given) => line.statsMs = duration("stats", 0, given),
  },
  {
    name: "log-level",
    value: "<level>",
    section: "Logging",
    help: "debug, info, warning or error (default info)",
    apply: (line, given) => {
      const level = parseLogLevel(given ?? "info");
      if (!level) {
        throw new UsageError(
          `Cannot use --log-level "${given}": expected debug, info, warning or error`,
        );
      }
      line.logLevel = level;
    },
  },
  {
    name: "log-format",
    value: "<format>",
    section: "Logging",
    help: "text or json (default text)",
    apply: (line, given) =>
      line.logFormat = given === undefined ? "text" : choice("log-format", ["text", "json"], given),
  },
  { name: "help", short: "h", section: "Logging", help: "show this help" },
  { name: "version", section: "Logging", help: "show the version" },
];

/** Where the help text's second column starts. */
const HELP_COLUMN = 26;

/**
 * The server's `--help` text, built from {@linkcode SERVER_FLAGS}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serverUsage } from "./server_flags.ts";
 *
 * assert.match(serverUsage("1.0.0"), /^  --max-clients <n> +most clients at once/m);
 * ```
 */
export function serverUsage(version: string): string {
  const sections: string[] = [];
  for (const section of ["Options", "HTTP", "Cluster", "History", "Security", "Logging"] as const) {
    const rows = SERVER_FLAGS.filter((flag) => flag.section === section).map((flag) => {
      const name = `  ${flag.short ? `-${flag.short}, ` : ""}--${flag.name}${
        flag.value ? ` ${flag.value}` : ""
      }`;
      const [first, ...more] = flag.help.split("\n");
      return [
        `${name.padEnd(HELP_COLUMN - 2)}  ${first}`,
        ...more.map((text) => `${" ".repeat(HELP_COLUMN)}${text}`),
      ].join("\n");
    });
    sections.push(`${section}:\n${rows.join("\n")}`);
  }
  return `parrot server ${version}: many clients send messages, stdout prints them.

Usage: deno task server <port> [options]      (port 0 picks a free port)

${sections.join("\n\n")}

Times: 250ms, 5s, 1m, or plain milliseconds. Messages go to stdout, logs to stderr.
Binding an address other than loopback without a token logs a warning.
Ctrl+C (SIGINT) or SIGTERM shuts down gracefully; a second Ctrl+C after 1s exits at once.
SIGHUP logs the counters and the server keeps running.
A failed write to stdout (a closed pipe) stops the server with exit code 1.`;
}

/**
 * The `node:util` `parseArgs` options of the server, from {@linkcode SERVER_FLAGS}
 * (without `--help` and `--version`, which `parseProgramArgs()` adds).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serverParseOptions } from "./server_flags.ts";
 *
 * assert.deepEqual(serverParseOptions()["no-broadcast"], { type: "boolean" });
 * ```
 */
export function serverParseOptions(): Record<
  string,
  { type: "string" | "boolean"; multiple?: boolean }
> {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {};
  for (const flag of SERVER_FLAGS) {
    if (!flag.apply) continue;
    options[flag.name] = flag.repeatable
      ? { type: "string", multiple: true }
      : { type: flag.value ? "string" : "boolean" };
  }
  return options;
}

/**
 * Turns parsed flags into a {@linkcode ServerCommandLine}: each row of
 * {@linkcode SERVER_FLAGS} applies its value or its default, then the checks across
 * flags. Throws a {@linkcode UsageError} for any mistake.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseServerCommandLine } from "./server_flags.ts";
 *
 * const line = parseServerCommandLine({ "max-clients": "5" }, ["8080"]);
 * assert.equal(line.port, 8080);
 * assert.equal(line.options.maxClients, 5);
 * ```
 */
export function parseServerCommandLine(
  values: Record<string, string | boolean | (string | boolean)[] | undefined>,
  positionals: string[],
  runtime: ServerFlagsRuntime = currentRuntime(),
): ServerCommandLine {
  const line: ServerCommandLine = {
    port: parsePort(positionals[0]),
    options: {} as ServerCommandLine["options"],
    token: {},
    threads: DEFAULT_THREADS,
    statsMs: 0,
    logLevel: "info",
    logFormat: "text",
  };
  const all: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(values)) {
    all[name] = value === undefined || value === false
      ? undefined
      : Array.isArray(value)
      ? value.join(",")
      : String(value);
  }
  for (const flag of SERVER_FLAGS) flag.apply?.(line, all[flag.name], all);
  if (line.threads > runtime.cores) {
    // Refused rather than capped: each thread costs memory (a V8 isolate) and more
    // threads than cores only take turns, so the user should choose.
    throw new UsageError(
      `Cannot use --threads ${line.threads}: more threads than the ${runtime.cores} CPU cores only cost memory; give at most ${runtime.cores}`,
    );
  }
  if (line.http && line.threads > 1) {
    throw new UsageError(
      `Cannot use --http with --threads ${line.threads}: the HTTP side serves one thread for now; give --threads 1`,
    );
  }
  if (line.cluster && line.threads > 1) {
    throw new UsageError(
      `Cannot use --cluster with --threads ${line.threads}: cluster mode serves one thread for now; give --threads 1`,
    );
  }
  if (line.history && line.threads > 1) {
    throw new UsageError(
      `Cannot use --history with --threads ${line.threads}: the history is kept by one thread for now; give --threads 1`,
    );
  }
  if (line.threads > 1 && !runtime.unstableNet) {
    throw new UsageError(
      `Cannot use --threads ${line.threads}: it needs \`deno run --unstable-net\` (the server task has it)`,
    );
  }
  return line;
}

/** This process's cores and whether it runs with `--unstable-net`. */
function currentRuntime(): ServerFlagsRuntime {
  return {
    cores: navigator.hardwareConcurrency,
    // Deno.listenDatagram exists only with --unstable-net; without it, reusePort
    // makes Deno exit the process rather than throw.
    unstableNet: typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function",
  };
}
