/**
 * One shard of the server on several threads (`sharded_server.ts`): a whole parrot
 * server for the clients its own listener accepts, wired to what the shards share.
 *
 * It binds its own listener on the server's port with `SO_REUSEPORT`, runs
 * {@linkcode startParrotServerWith} with the shared client limit, the stdout lock, the
 * links to the other shards and its slot of the counters, and runs its own idle
 * collection. It talks to the thread that started it through an endpoint: `self` in a
 * Worker (`shard_worker.ts`), or one end of a `MessageChannel` for the shard that runs
 * in the starting thread itself. It says when it listens (or why it cannot), shuts
 * down when told, and says when it has finished.
 *
 * @module
 */

import { collectServerWhenIdle } from "../../cli/idle_gc.ts";
import {
  closeLogging,
  type LogFormat,
  type ParrotLogLevel,
  setupLogging,
} from "../../cli/logging.ts";
import { SharedConnectionSlots } from "../../net/connection_slots.ts";
import { ExclusiveWriter } from "../../net/exclusive_writer.ts";
import { DEFAULT_HOST, DEFAULT_MAX_CLIENTS } from "../../defaults.ts";
import { type ParrotServerOptions, type ServerStats, startParrotServerWith } from "../server.ts";
import { ShardLink } from "./shard_link.ts";
import { listenTcp } from "../../net/listen_tcp.ts";

/** The options of one shard: those of {@linkcode ParrotServerOptions} that can cross to a Worker. */
export type ShardServerOptions = Omit<
  ParrotServerOptions,
  "listener" | "output" | "onMessage" | "signal"
>;

/** How the shards log (LogTape, to stderr), as the server CLI's `--log-level` and `--log-format`. */
export interface ShardLogging {
  /** The lowest level logged. */
  level: ParrotLogLevel;
  /** Plain text lines or JSON lines. */
  format: LogFormat;
}

/** What a shard is started with. */
export interface ShardInit {
  index: number;
  options: ShardServerOptions;
  stdout: boolean;
  logging?: ShardLogging;
  subscriberCounts: SharedArrayBuffer;
  clientSlots: SharedArrayBuffer;
  stdoutLock: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  /** One `Int32` per once-only warning: 1 once a shard has logged it. */
  warnings: SharedArrayBuffer;
  ports: (MessagePort | undefined)[];
}

/** What a shard tells this thread. */
export type ShardReport =
  | { type: "listening"; port: number }
  | { type: "failed"; name: string; message: string }
  | { type: "published" }
  | { type: "finished" };

/** What this thread tells a shard. */
export type ShardCommand = { type: "shutdown" } | { type: "trim" } | { type: "publish" };

/** The counters of {@linkcode ServerStats} that are plain numbers. */
export type NumericStatKey = {
  [K in keyof ServerStats]: ServerStats[K] extends number ? K : never;
}[keyof ServerStats];

/** The counters each shard copies to shared memory, in this order. */
export const STAT_KEYS: readonly NumericStatKey[] = [
  "clients",
  "connections",
  "messages",
  "bytes",
  "relayed",
  "written",
  "outputBytes",
  "queueDepth",
  "rejected",
  "slowConsumers",
  "slowConsumerDrops",
  "authFailures",
  "tlsFailures",
  "ratePauses",
  "readTimeouts",
  "idleTimeouts",
  "protocolErrors",
  "unwrittenMessages",
];

/** How often a shard copies its counters to shared memory (ms). */
export const STATS_PUBLISH_MS = 100;
/** How a shard and the thread that started it talk: `self` in a Worker, or a `MessagePort`. */
export interface ShardEndpoint {
  /** Sends a report to the starting thread. */
  postMessage(message: ShardReport): void;
  /** Receives the init, then the commands. */
  onmessage: ((event: MessageEvent) => void) | null;
}

/**
 * Serves one shard on `endpoint`: waits for its {@linkcode ShardInit}, starts it, and
 * follows the commands until it has finished.
 *
 * @example A shard in this thread, as the starting thread runs shard 0
 * ```ts ignore
 * import { serveShard } from "./shard.ts";
 *
 * const { port1, port2 } = new MessageChannel();
 * serveShard(port2);
 * port1.onmessage = (event) => console.log(event.data); // { type: "listening", port }
 * // port1.postMessage(init, transfer) starts it; { type: "shutdown" } stops it.
 * ```
 */
export function serveShard(endpoint: ShardEndpoint): void {
  endpoint.onmessage = (event: MessageEvent<ShardInit>) => {
    endpoint.onmessage = null;
    start(event.data, endpoint).catch((error) =>
      endpoint.postMessage({
        type: "failed",
        name: error?.name ?? "Error",
        message: String(error?.message),
      })
    );
  };
}

async function start(init: ShardInit, endpoint: ShardEndpoint): Promise<void> {
  const report = (message: ShardReport) => endpoint.postMessage(message);
  const { options } = init;
  if (init.logging) await setupLogging(init.logging.level, init.logging.format);
  const hostname = options.hostname ?? DEFAULT_HOST;
  const listener = listenTcp({
    hostname,
    port: options.port ?? 0,
    backlog: options.backlog,
    reusePort: true,
    tls: options.tls,
  });
  const link = new ShardLink({
    index: init.index,
    subscriberCounts: init.subscriberCounts,
    ports: init.ports,
  });
  const warnings = new Int32Array(init.warnings);
  const server = startParrotServerWith({
    ...options,
    listener,
    output: init.stdout ? new ExclusiveWriter(Deno.stdout, init.stdoutLock) : null,
  }, {
    peers: link,
    connectionSlots: new SharedConnectionSlots(
      options.maxClients ?? DEFAULT_MAX_CLIENTS,
      init.clientSlots,
    ),
    claimWarning: () => Atomics.exchange(warnings, 0, 1) === 0,
  });
  const counters = new Float64Array(
    init.stats,
    init.index * STAT_KEYS.length * Float64Array.BYTES_PER_ELEMENT,
    STAT_KEYS.length,
  );
  const publish = () => {
    const stats = server.stats();
    STAT_KEYS.forEach((key, field) => counters[field] = stats[key]);
  };
  const publisher = setInterval(publish, STATS_PUBLISH_MS);
  const stopCollector = collectServerWhenIdle(server);
  endpoint.onmessage = (event: MessageEvent<ShardCommand>) => {
    const command = event.data.type;
    if (command === "shutdown") server.shutdown();
    else if (command === "trim") server.trimMemory();
    else {
      publish();
      report({ type: "published" });
    }
  };
  report({ type: "listening", port: (listener.addr as Deno.NetAddr).port });
  // A failed stdout rejects it: the shard stops all the same, then reports "failed".
  const failure = await server.finished.then(() => undefined, (error: Error) => error);
  clearInterval(publisher);
  stopCollector();
  publish();
  link.close();
  if (init.logging) await closeLogging();
  if (failure) throw failure;
  report({ type: "finished" });
}
