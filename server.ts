/**
 * `deno task server <port> [options]`: the parrot server on the command line.
 *
 * A thin CLI over {@linkcode startParrotServer}: parse the options, read the token,
 * certificate and key, log to stderr, turn SIGINT/SIGTERM into a graceful shutdown,
 * log SIGHUP and carry on, print stats, exit 0 (or 1 when stdout failed: then not every
 * message was printed). With `--http`, the HTTP side (`lib/http/http_side.ts`) starts
 * after the TCP server, says 503 on `/healthz` from the first signal or a failed
 * stdout on, and stops once the server has finished. The flags are declared in
 * `lib/cli/server_flags.ts`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import denoJson from "./deno.json" with { type: "json" };
import { errorMessage, parseProgramArgs, runCli, UsageError } from "./lib/cli/args.ts";
import { collectServerWhenIdle } from "./lib/cli/idle_gc.ts";
import { closeLogging, setupLogging } from "./lib/cli/logging.ts";
import { parseServerCommandLine, serverParseOptions, serverUsage } from "./lib/cli/server_flags.ts";
import { resolveToken } from "./lib/cli/token.ts";
import { closeServerHistory, openServerHistory } from "./lib/history/server_history.ts";
import { ServerHealth } from "./lib/http/health.ts";
import { type HttpSide, startHttpSide } from "./lib/http/http_side.ts";
import { LiveFeed } from "./lib/http/live_feed.ts";
import { createLivePage } from "./lib/http/live_page.ts";
import { renderMetrics } from "./lib/http/metrics.ts";
import { type ParrotServer, startParrotServer } from "./lib/parrot/server.ts";
import { startShardedServer } from "./lib/parrot/threads/sharded_server.ts";
import { ClusterMember } from "./lib/cluster/cluster_member.ts";
import {
  clusterFeedCounters,
  clusterStatsText,
  renderClusterMetrics,
} from "./lib/cluster/cluster_metrics.ts";
import { RemoteInbox } from "./lib/cluster/remote_inbox.ts";

const HINT = "Run `deno task server --help` for usage.";
const log = getLogger(["parrot", "server"]);

async function main(): Promise<number> {
  const args = parseProgramArgs(Deno.args, serverParseOptions(), serverUsage(denoJson.version), 1);
  if (!args) return 0;
  const line = parseServerCommandLine(args.values, args.positionals);
  const { port, threads, logLevel, logFormat } = line;
  const hostname = line.options.hostname;
  const options = {
    ...line.options,
    port,
    // Escaped on a terminal; exact bytes to a file or a pipe.
    escapeControls: Deno.stdout.isTerminal(),
    token: await resolveToken(line.token),
    tls: line.tlsFiles && await readTls(line.tlsFiles),
  };

  await setupLogging(logLevel, logFormat);
  // Opened before the server listens: a file that cannot be used stops it here.
  const history = line.history && await openServerHistory(line.history).catch(async (error) => {
    await closeLogging();
    throw error;
  });
  const shutdown = new AbortController();
  // The live page's feed sees every message; only with the HTTP side (one thread).
  let server: ParrotServer | undefined;
  const feed = line.http
    ? new LiveFeed({
      // Read once a second while a page watches, which is after the server started.
      clients: () => server?.clients() ?? [],
      stats: () => ({
        ...server!.stats(),
        ...(cluster ? clusterFeedCounters(cluster.stats()) : {}),
      }),
      // With --history, a page that opens shows the recent messages at once.
      history: history && ((n) =>
        history.last(n).map((message) => ({
          ...message,
          sender: message.origin === null ? message.sender : `${message.sender}@${message.origin}`,
        }))),
      signal: shutdown.signal,
    })
    : undefined;
  // Cluster mode: the link opens once the server listens (its default name is host:port);
  // the other servers' messages come in through the inbox.
  let cluster: ClusterMember | undefined;
  const inbox = line.cluster && new RemoteInbox();
  try {
    server = threads === 1
      ? startParrotServer({
        ...options,
        signal: shutdown.signal,
        onMessage: (feed || inbox) && ((from, payload) => {
          feed?.onMessage(from, payload);
          cluster?.publish(from, payload);
        }),
        remote: inbox,
        printRemote: line.cluster?.printCluster,
        // The page lists the other servers' messages too, tagged as --print-cluster does.
        onRemote: feed && ((origin, from, payload) => feed.onMessage(`${from}@${origin}`, payload)),
        history,
      })
      : await startShardedServer({
        ...options,
        shards: threads,
        signal: shutdown.signal,
        logging: { level: logLevel, format: logFormat },
      });
  } catch (error) {
    if (history) await closeServerHistory(history);
    await closeLogging();
    throw new Error(listenFailure(error, hostname, port));
  }
  const tls = options.tls !== undefined;
  const auth = options.token !== undefined;
  log.info(
    `parrot {version} listening on {address}${tls ? " (TLS)" : ""}${
      auth ? ", clients must AUTH" : ""
    }${threads === 1 ? "" : " on {threads} threads"}`,
    {
      version: denoJson.version,
      address: `${server.addr.hostname}:${server.addr.port}`,
      threads,
      tls,
      auth,
      output: options.records,
    },
  );
  if (!isLoopback(hostname) && !auth) {
    log.warn(
      "Listening on {host} without a token: anyone who can reach it may send messages; set PARROT_TOKEN or --token-file",
      { host: hostname },
    );
  }

  if (line.cluster) {
    try {
      cluster = ClusterMember.open({
        cluster: line.cluster,
        serverName: line.cluster.serverName ?? `${server.addr.hostname}:${server.addr.port}`,
        maxFrameBytes: options.maxFrameBytes,
        inbox: inbox!,
      });
    } catch (error) {
      // A cluster setting that cannot be applied (a bad URL, an unreadable creds file): fail
      // closed, after stopping the TCP side that is up already.
      shutdown.abort();
      await server.finished.catch(() => {});
      await closeLogging();
      throw error;
    }
    log.info("Cluster mode: server {name} joins NATS at {servers} on {subject}.*", {
      name: cluster.serverName,
      servers: line.cluster.servers.map(withoutCredentials).join(","),
      subject: line.cluster.subject,
    });
  }

  const health = new ServerHealth();
  health.watch(server);
  let http: HttpSide | undefined;
  if (line.http) {
    const { hostname: httpHost, port: httpPort, allowOrigins, allowHosts } = line.http;
    try {
      http = startHttpSide({
        hostname: httpHost,
        port: httpPort,
        health: () => health.check(),
        metrics: () =>
          renderMetrics({
            stats: () => server.stats(),
            clients: () => server.clients(),
            defaultTransport: tls ? "tls" : "tcp",
          }) + (cluster ? renderClusterMetrics(cluster.stats()) : ""),
        token: options.token,
        allowOrigins,
        allowHosts,
        page: feed && createLivePage(feed),
        webSocket: (request, info) =>
          server.upgradeWebSocket(request, info, { authenticated: info.authenticated }),
      });
    } catch (error) {
      // The TCP side is up already: stop it before saying why we cannot go on.
      shutdown.abort();
      await server.finished.catch(() => {});
      await closeLogging();
      throw new Error(listenFailure(error, httpHost, httpPort, "--http"));
    }
  }

  if (line.http && !isLoopback(line.http.hostname) && !auth) {
    log.warn(
      "HTTP side on {host} without a token: anyone who can reach it may watch the messages and connect; set PARROT_TOKEN or --token-file",
      { host: line.http.hostname },
    );
  }

  const stopSignals = handleSignals(shutdown, server, () => health.shuttingDown());
  const stopStats = line.statsMs > 0 ? printStats(server, line.statsMs, cluster) : () => {};
  // Each shard collects its own thread's garbage (shard.ts); one thread collects here.
  const stopCollector = threads > 1 ? () => {} : collectServerWhenIdle(server);
  let failure: unknown;
  await server.finished.catch((error) => failure = error);
  await http?.shutdown();
  // What the clients sent until the end is published before the link drains and closes.
  await cluster?.close(AbortSignal.timeout(options.graceMs));
  stopCollector();
  stopStats();
  stopSignals();
  if (history) await closeServerHistory(history);
  const { messages } = server.stats();
  log.info(
    `Server stopped: {messages} ${messages === 1 ? "message" : "messages"} received in all`,
    {
      messages,
    },
  );
  await closeLogging();
  if (failure !== undefined) {
    // Exit 0 would say every message was printed: it was not.
    throw failure;
  }
  return 0;
}

/**
 * SIGINT/SIGTERM start the shutdown; a repeat at least a second later exits at once.
 * SIGHUP (a closed terminal, or `kill -HUP`) logs the counters; the server keeps running.
 */
function handleSignals(
  shutdown: AbortController,
  server: ParrotServer,
  onShutdown: () => void,
): () => void {
  let firstAt = 0;
  const signals = ["SIGINT", "SIGTERM"] as const;
  const handlers = signals.map((signal) => {
    const handler = () => {
      const now = Date.now();
      if (firstAt === 0) {
        firstAt = now;
        onShutdown();
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

async function readTls(
  files: { cert: string; key: string },
): Promise<{ cert: string; key: string }> {
  const read = async (name: string, path: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound ? "no such file" : errorMessage(error);
      throw new UsageError(`Cannot read --${name} ${path}: ${why}`);
    }
  };
  return { cert: await read("tls-cert", files.cert), key: await read("tls-key", files.key) };
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\./.test(hostname);
}

function printStats(
  server: ParrotServer,
  intervalMs: number,
  cluster: ClusterMember | undefined,
): () => void {
  let last = server.stats();
  let lastAt = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    const stats = server.stats();
    const memory = Deno.memoryUsage();
    const seconds = Math.max((now - lastAt) / 1000, 0.001);
    log.info(
      `stats: clients={clients} accepted={accepted} msgs/s={rate} bytes/s={bytes} queue={queue} relayed/s={relayed} total={total} slow_consumers={slow} undelivered={dropped} auth_failures={auth} tls_failures={tls} rate_pauses={pauses} rss_mb={rss} heap_mb={heap}${
        cluster ? " {cluster}" : ""
      }`,
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
        cluster: cluster && clusterStatsText(cluster.stats()),
      },
    );
    last = stats;
    lastAt = now;
  }, intervalMs);
  return () => clearInterval(timer);
}

/** A NATS URL as the log may show it: without a user, password or token. */
function withoutCredentials(url: string): string {
  return url.replace(/^([a-z]+:\/\/)[^/@]*@/i, "$1");
}

function megabytes(bytes: number): string {
  return (bytes / 1_048_576).toFixed(1);
}

function listenFailure(error: unknown, hostname: string, port: number, flag = ""): string {
  const where = `${hostname}:${port}${flag ? ` for ${flag}` : ""}`;
  if (error instanceof Deno.errors.AddrInUse) {
    return `Cannot listen on ${where}: the address is already in use (is another server running?)`;
  }
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    if (flag) return `Cannot listen on ${where}: no network permission for this address`;
    return `Cannot listen on ${where}: no network permission for this address; the server task has it: run \`deno task server ${port} --host ${hostname}\``;
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
