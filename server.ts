/**
 * `deno task server <port> [options]`: the parrot server on the command line.
 *
 * A thin CLI over {@linkcode startParrotServer}: parse the options, read the token,
 * certificate and key, log to stderr, turn SIGINT/SIGTERM into a graceful shutdown,
 * log SIGHUP and carry on, print stats, exit 0.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import denoJson from "./deno.json" with { type: "json" };
import {
  errorMessage,
  parseCount,
  parseDurationOption,
  parsePort,
  parseProgramArgs,
  runCli,
  UsageError,
} from "./lib/cli/args.ts";
import { collectServerWhenIdle } from "./lib/cli/idle_gc.ts";
import { closeLogging, parseLogLevel, setupLogging } from "./lib/cli/logging.ts";
import { resolveToken } from "./lib/cli/token.ts";
import {
  DEFAULT_AUTH_TIMEOUT_MS,
  DEFAULT_GRACE_MS,
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
} from "./lib/defaults.ts";
import { formatDuration } from "./lib/net/duration.ts";
import { type ParrotServer, startParrotServer } from "./lib/parrot/server.ts";
import { startShardedServer } from "./lib/parrot/threads/sharded_server.ts";

/**
 * Whether `--unstable-net` was given: the shards' `reusePort` needs it, and without it
 * Deno exits the process rather than throw. `Deno.listenDatagram` exists only with it.
 */
function unstableNetEnabled(): boolean {
  return typeof (Deno as { listenDatagram?: unknown }).listenDatagram === "function";
}

const USAGE = `parrot server ${denoJson.version}: many clients send messages, stdout prints them.

Usage: deno task server <port> [options]      (port 0 picks a free port)

Options:
  --host <address>        address to bind (default ${DEFAULT_HOST})
  --max-clients <n>       most clients at once (default ${DEFAULT_MAX_CLIENTS})
  --backlog <n>           listen queue for bursts of connects (default ${DEFAULT_TCP_BACKLOG};
                          the kernel caps it at net.core.somaxconn)
  --read-timeout <time>   a frame must complete within this (default ${
  formatDuration(DEFAULT_READ_TIMEOUT_MS)
})
  --idle-timeout <time>   PING a silent client, drop it after as long again; 0 = never
                          (default ${formatDuration(DEFAULT_IDLE_TIMEOUT_MS)})
  --grace <time>          time clients get to finish on shutdown (default ${
  formatDuration(DEFAULT_GRACE_MS)
})
  --max-frame <bytes>     largest message payload (default ${DEFAULT_MAX_FRAME_BYTES})
  --max-outbound <bytes>  bytes queued for one client before it is a slow consumer
                          (default ${DEFAULT_MAX_OUTBOUND_BYTES})
  --write-timeout <time>  a write to a client may stall this long before it is a slow
                          consumer (default ${formatDuration(DEFAULT_WRITE_TIMEOUT_MS)})
  --queue <n>             channel capacity in read batches (default ${DEFAULT_QUEUE_CAPACITY})
  --rate <n>              messages per second per client; a faster client is slowed,
                          not dropped (default: no limit)
  --burst <n>             messages a client may send at once under --rate (default: the rate)
  --no-broadcast          do not relay messages to other clients
  --threads <n>           serve on n threads, each taking its share of the clients
                          (default 1; more take busy loads faster, one has the
                          lowest latency and memory)

Security:
  --token-file <path>     require "AUTH <token>" as each client's first line, the token
                          being the file's first line (or set PARROT_TOKEN)
  --token <secret>        the same with the token given here (visible in \`ps\`)
  --auth-timeout <time>   time for the TLS handshake and the AUTH line (default ${
  formatDuration(DEFAULT_AUTH_TIMEOUT_MS)
})
  --tls-cert <file>       serve TLS with this PEM certificate (needs --tls-key)
  --tls-key <file>        the PEM private key of --tls-cert

Logging:
  --stats <time>          print a one-line summary to stderr at this interval
  --log-level <level>     debug, info, warning or error (default info)
  --log-format <format>   text or json (default text)
  -h, --help              show this help
  --version               show the version

Times: 250ms, 5s, 1m, or plain milliseconds. Messages go to stdout, logs to stderr.
Binding an address other than loopback without a token logs a warning.
Ctrl+C (SIGINT) or SIGTERM shuts down gracefully; a second Ctrl+C after 1s exits at once.
SIGHUP logs the counters and the server keeps running.`;

const HINT = "Run `deno task server --help` for usage.";
const log = getLogger(["parrot", "server"]);

const SERVER_OPTIONS = {
  host: { type: "string", default: DEFAULT_HOST },
  "max-clients": { type: "string" },
  backlog: { type: "string" },
  "read-timeout": { type: "string" },
  "idle-timeout": { type: "string" },
  grace: { type: "string" },
  "max-frame": { type: "string" },
  "max-outbound": { type: "string" },
  "write-timeout": { type: "string" },
  queue: { type: "string" },
  rate: { type: "string" },
  burst: { type: "string" },
  token: { type: "string" },
  "token-file": { type: "string" },
  "auth-timeout": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "no-broadcast": { type: "boolean", default: false },
  threads: { type: "string" },
  stats: { type: "string" },
  "log-level": { type: "string", default: "info" },
  "log-format": { type: "string", default: "text" },
} as const;

async function main(): Promise<number> {
  const args = parseProgramArgs(Deno.args, SERVER_OPTIONS, USAGE, 1);
  if (!args) return 0;
  const { values, positionals } = args;
  const port = parsePort(positionals[0]);
  const option = (name: string) => values[name] as string | undefined;
  const duration = (name: string, fallback: number) => {
    const text = option(name);
    return text === undefined ? fallback : parseDurationOption(name, text);
  };
  const count = (name: string, fallback: number, min: number) => {
    const text = option(name);
    return text === undefined ? fallback : parseCount(name, text, min);
  };
  const logLevel = parseLogLevel(values["log-level"] as string);
  if (!logLevel) {
    throw new UsageError(
      `Cannot use --log-level "${values["log-level"]}": expected debug, info, warning or error`,
    );
  }
  const logFormat = values["log-format"];
  if (logFormat !== "text" && logFormat !== "json") {
    throw new UsageError(`Cannot use --log-format "${logFormat}": expected text or json`);
  }
  const hostname = values.host as string;
  const options = {
    hostname,
    port,
    maxClients: count("max-clients", DEFAULT_MAX_CLIENTS, 1),
    backlog: count("backlog", DEFAULT_TCP_BACKLOG, 1),
    readTimeoutMs: duration("read-timeout", DEFAULT_READ_TIMEOUT_MS),
    idleTimeoutMs: duration("idle-timeout", DEFAULT_IDLE_TIMEOUT_MS),
    graceMs: duration("grace", DEFAULT_GRACE_MS),
    maxFrameBytes: count("max-frame", DEFAULT_MAX_FRAME_BYTES, 0),
    maxOutboundBytes: count("max-outbound", DEFAULT_MAX_OUTBOUND_BYTES, 1),
    writeTimeoutMs: duration("write-timeout", DEFAULT_WRITE_TIMEOUT_MS),
    queueCapacity: count("queue", DEFAULT_QUEUE_CAPACITY, 1),
    broadcast: !values["no-broadcast"],
    authTimeoutMs: duration("auth-timeout", DEFAULT_AUTH_TIMEOUT_MS),
    rateLimit: rateLimit(option("rate"), option("burst")),
    token: await resolveToken({ token: option("token"), tokenFile: option("token-file") }),
    tls: await readTls(option("tls-cert"), option("tls-key")),
  };
  const threads = count("threads", DEFAULT_THREADS, 1);
  if (threads > 1 && !unstableNetEnabled()) {
    throw new UsageError(
      `Cannot use --threads ${threads}: it needs \`deno run --unstable-net\` (the server task has it)`,
    );
  }
  const statsMs = option("stats") === undefined ? 0 : duration("stats", 0);
  for (const name of ["read-timeout", "write-timeout", "auth-timeout"] as const) {
    if (option(name) !== undefined && duration(name, 1) === 0) {
      throw new UsageError(`Cannot use --${name} 0: it must be positive`);
    }
  }

  await setupLogging(logLevel, logFormat);
  const shutdown = new AbortController();
  let server: ParrotServer;
  try {
    server = threads === 1
      ? startParrotServer({ ...options, signal: shutdown.signal })
      : await startShardedServer({
        ...options,
        shards: threads,
        signal: shutdown.signal,
        logging: { level: logLevel, format: logFormat },
      });
  } catch (error) {
    await closeLogging();
    throw new Error(listenFailure(error, hostname, port));
  }
  log.info("parrot {version} listening on {address}{tls}{auth}{threads}", {
    version: denoJson.version,
    address: `${server.addr.hostname}:${server.addr.port}`,
    threads: threads === 1 ? "" : ` on ${threads} threads`,
    tls: options.tls ? " (TLS)" : "",
    auth: options.token ? ", clients must AUTH" : "",
  });
  if (!isLoopback(hostname) && !options.token) {
    log.warn(
      "Listening on {host} without a token: anyone who can reach it may send messages; set PARROT_TOKEN or --token-file",
      { host: hostname },
    );
  }

  const stopSignals = handleSignals(shutdown, server);
  const stopStats = statsMs > 0 ? printStats(server, statsMs) : () => {};
  // Each shard collects its own thread's garbage (shard.ts); one thread collects here.
  const stopCollector = threads > 1 ? () => {} : collectServerWhenIdle(server);
  await server.finished;
  stopCollector();
  stopStats();
  stopSignals();
  const stats = server.stats();
  log.info("Server stopped: {messages} messages received in all", { messages: stats.messages });
  await closeLogging();
  return 0;
}

/**
 * SIGINT/SIGTERM start the shutdown; a repeat at least a second later exits at once.
 * SIGHUP (a closed terminal, or `kill -HUP`) logs the counters; the server keeps running.
 */
function handleSignals(shutdown: AbortController, server: ParrotServer): () => void {
  let firstAt = 0;
  const signals = ["SIGINT", "SIGTERM"] as const;
  const handlers = signals.map((signal) => {
    const handler = () => {
      const now = Date.now();
      if (firstAt === 0) {
        firstAt = now;
        log.info("Server received {signal}: shutting down (again after 1s to exit at once)", {
          signal,
        });
        shutdown.abort();
      } else if (now - firstAt >= 1000) {
        log.warn("Server received {signal} again: exiting now", { signal });
        closeLogging().finally(() => Deno.exit(signal === "SIGINT" ? 130 : 143));
      }
    };
    Deno.addSignalListener(signal, handler);
    return () => Deno.removeSignalListener(signal, handler);
  });
  const onHangup = async () => {
    const { clients, messages } = await server.freshStats();
    log.info(
      "Server received SIGHUP: still serving {clients} clients, {messages} messages so far; SIGINT or SIGTERM stops it",
      { clients, messages },
    );
  };
  Deno.addSignalListener("SIGHUP", onHangup);
  return () => {
    handlers.forEach((remove) => remove());
    Deno.removeSignalListener("SIGHUP", onHangup);
  };
}

function rateLimit(
  rate: string | undefined,
  burst: string | undefined,
): { ratePerSecond: number; burst: number } | undefined {
  if (rate === undefined) {
    if (burst !== undefined) throw new UsageError("Cannot use --burst without --rate");
    return undefined;
  }
  const ratePerSecond = parseCount("rate", rate, 1);
  return {
    ratePerSecond,
    burst: burst === undefined ? ratePerSecond : parseCount("burst", burst, 1),
  };
}

async function readTls(
  certFile: string | undefined,
  keyFile: string | undefined,
): Promise<{ cert: string; key: string } | undefined> {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) {
    throw new UsageError("Cannot serve TLS: give both --tls-cert and --tls-key");
  }
  const read = async (name: string, path: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound ? "no such file" : errorMessage(error);
      throw new UsageError(`Cannot read --${name} ${path}: ${why}`);
    }
  };
  return { cert: await read("tls-cert", certFile), key: await read("tls-key", keyFile) };
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\./.test(hostname);
}

function printStats(server: ParrotServer, intervalMs: number): () => void {
  let last = server.stats();
  let lastAt = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const stats = server.stats();
    const memory = Deno.memoryUsage();
    const seconds = Math.max((now - lastAt) / 1000, 0.001);
    log.info(
      "stats: clients={clients} accepted={accepted} msgs/s={rate} bytes/s={bytes} queue={queue} relayed/s={relayed} total={total} slow_consumers={slow} undelivered={dropped} auth_failures={auth} tls_failures={tls} rate_pauses={pauses} rss_mb={rss} heap_mb={heap}",
      {
        clients: stats.clients,
        accepted: stats.connections + stats.rejected,
        rate: Math.round((stats.messages - last.messages) / seconds),
        bytes: Math.round((stats.bytes - last.bytes) / seconds),
        queue: stats.queueDepth,
        relayed: Math.round((stats.relayed - last.relayed) / seconds),
        total: stats.messages,
        slow: stats.slowConsumers,
        dropped: stats.slowConsumerDrops,
        auth: stats.authFailures,
        tls: stats.tlsFailures,
        pauses: stats.ratePauses,
        rss: megabytes(memory.rss),
        heap: megabytes(memory.heapUsed),
      },
    );
    last = stats;
    lastAt = now;
  }, intervalMs);
  return () => clearInterval(timer);
}

function megabytes(bytes: number): string {
  return (bytes / 1_048_576).toFixed(1);
}

function listenFailure(error: unknown, hostname: string, port: number): string {
  const where = `${hostname}:${port}`;
  if (error instanceof Deno.errors.AddrInUse) {
    return `Cannot listen on ${where}: the address is already in use (is another server running?)`;
  }
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    return `Cannot listen on ${where}: no network permission for this address; the server task allows 127.0.0.1 only, so run \`deno run --allow-net=${hostname} server.ts ${port} --host ${hostname}\``;
  }
  if (
    error instanceof Deno.errors.InvalidData || /certificate|private key/i.test(errorMessage(error))
  ) {
    return `Cannot listen on ${where} with TLS: ${
      errorMessage(error)
    } (check --tls-cert and --tls-key)`;
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return `Cannot listen on ${where}: the address is not available on this machine`;
  }
  return `Cannot listen on ${where}: ${errorMessage(error)}`;
}

if (import.meta.main) await runCli(main, HINT);
