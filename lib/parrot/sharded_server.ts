/**
 * The parrot server on several threads: one shard per Worker, each a whole parrot
 * server for the clients it accepts.
 *
 * One JavaScript thread decodes, copies and relays about 3.5 million small messages a
 * second here, and then it is the bottleneck: NATS, with both cores, does twice that.
 * So the server can run as shards. Each shard is a Worker with its own listener on the
 * same port (`SO_REUSEPORT`: the kernel spreads new connections over the listeners),
 * its own connection tasks, channel, main task and hub; {@linkcode startParrotServer}
 * runs in each. What they share:
 *
 * - the client limit: one count in shared memory (`SharedConnectionSlots`);
 * - stdout: every shard writes its own batches, each one whole under a lock in shared
 *   memory (`ExclusiveWriter`), so records never interleave; a client's messages stay
 *   in order, as they all go through its shard;
 * - the relays: each shard forwards its relay batches to the shards with subscribers
 *   (`shard_link.ts`);
 * - the counters: each shard copies its own into shared memory every 100 ms and when
 *   it stops; {@linkcode ShardedServer.stats} adds them up.
 *
 * This thread only starts the shards, relays the shutdown to them and waits for all of
 * them: the shutdown is each shard's own (stop accepting, `QUIT` to every client, drain,
 * flush stdout).
 *
 * @module
 */

import { SharedConnectionSlots } from "../net/connection_slots.ts";
import { settlesWithin } from "../net/delay.ts";
import { DEFAULT_HOST, DEFAULT_MAX_CLIENTS } from "../defaults.ts";
import type { ParrotServer, ParrotServerOptions, ServerStats } from "./server.ts";
import { shardPorts } from "./shard_link.ts";

/** The options of one shard: those of {@linkcode ParrotServerOptions} that can cross to a Worker. */
export type ShardServerOptions = Omit<
  ParrotServerOptions,
  "listener" | "output" | "onMessage" | "signal" | "peers" | "connectionSlots"
>;

/** Options of {@linkcode startShardedServer}. */
export interface ShardedServerOptions extends ShardServerOptions {
  /** How many shards (Workers); at least 1. */
  shards: number;
  /** Print message records on stdout. Default true. */
  stdout?: boolean;
  /** How the shards log. Default: not set up (LogTape logs nothing). */
  logging?: ShardLogging;
  /** Aborting it starts the graceful shutdown. */
  signal?: AbortSignal;
}

/** How the shards log (LogTape, to stderr), as the server CLI's `--log-level` and `--log-format`. */
export interface ShardLogging {
  /** The lowest level logged. */
  level: "debug" | "info" | "warning" | "error";
  /** Plain text lines or JSON lines. */
  format: "text" | "json";
}

/** A running sharded server: a {@linkcode ParrotServer} whose counters add up every shard's. */
export type ShardedServer = ParrotServer;

/** What a shard's Worker is started with. */
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

/** The counters each shard copies to shared memory, in this order. */
export const STAT_KEYS: readonly (keyof ServerStats)[] = [
  "clients",
  "connections",
  "messages",
  "bytes",
  "relayed",
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
];

/** How often a shard copies its counters to shared memory (ms). */
export const STATS_PUBLISH_MS = 100;
/** Longest {@linkcode ShardedServer.freshStats} waits for the shards to answer (ms). */
const FRESH_STATS_WAIT_MS = 1_000;

const WORKER_URL = new URL("./shard_worker.ts", import.meta.url);

/**
 * Starts `options.shards` shards on one port and resolves once all of them listen.
 * Rejects (with the first shard's error, such as `Deno.errors.AddrInUse`) when one
 * cannot. Needs `--unstable-net` (for `reusePort`) when there is more than one shard.
 *
 * @example Two shards, a message from a client of each
 * ```ts ignore
 * import { startShardedServer } from "./sharded_server.ts";
 *
 * const server = await startShardedServer({ shards: 2, port: 0 });
 * console.log(`listening on ${server.addr.port}`);
 * await server.shutdown();
 * console.log(`${server.stats().messages} messages`);
 * ```
 */
export async function startShardedServer(options: ShardedServerOptions): Promise<ShardedServer> {
  const { shards, stdout = true, logging, signal, ...serverOptions } = options;
  if (!Number.isInteger(shards) || shards < 1) {
    throw new RangeError(`Cannot start ${shards} shards: expected a whole number of at least 1`);
  }
  const hostname = serverOptions.hostname ?? DEFAULT_HOST;
  // Every shard binds with SO_REUSEPORT, which would just as well share the port with
  // another such server: make sure it is free first.
  if ((serverOptions.port ?? 0) !== 0) Deno.listen({ hostname, port: serverOptions.port! }).close();

  const shared = {
    subscriberCounts: new SharedArrayBuffer(shards * Int32Array.BYTES_PER_ELEMENT),
    clientSlots: new SharedConnectionSlots(serverOptions.maxClients ?? DEFAULT_MAX_CLIENTS)
      .buffer,
    stdoutLock: new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT),
    stats: new SharedArrayBuffer(shards * STAT_KEYS.length * Float64Array.BYTES_PER_ELEMENT),
    warnings: new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT),
  };
  // Shards that have not yet answered the current freshStats() request.
  let publishing: { left: number; done: PromiseWithResolvers<void> } | undefined;
  const ports = shardPorts(shards);
  const workers: Worker[] = [];
  const finishedShards: Promise<void>[] = [];
  let port = serverOptions.port ?? 0;
  try {
    for (let index = 0; index < shards; index++) {
      const worker = new Worker(WORKER_URL, { type: "module", name: `parrot shard ${index}` });
      workers.push(worker);
      const listening = Promise.withResolvers<number>();
      const finished = Promise.withResolvers<void>();
      finishedShards.push(finished.promise);
      worker.onmessage = (event: MessageEvent<ShardReport>) => {
        const report = event.data;
        if (report.type === "listening") listening.resolve(report.port);
        else if (report.type === "failed") listening.reject(revive(report));
        else if (report.type === "published") {
          if (publishing && --publishing.left === 0) publishing.done.resolve();
        } else finished.resolve();
      };
      worker.onerror = (event) => {
        event.preventDefault();
        const error = new Error(`Shard ${index} failed: ${event.message}`);
        listening.reject(error);
        finished.reject(error);
      };
      const init: ShardInit = {
        index,
        options: { ...serverOptions, port },
        stdout,
        logging,
        ...shared,
        ports: ports[index],
      };
      worker.postMessage(init, ports[index].filter((p) => p !== undefined));
      // The first shard finds the port when asked for 0; the others join it.
      port = await listening.promise;
    }
  } catch (error) {
    for (const worker of workers) worker.terminate();
    throw error;
  }

  let finishing: Promise<void> | undefined;
  const shutdown = () => {
    finishing ??= (async () => {
      for (const worker of workers) worker.postMessage({ type: "shutdown" } satisfies ShardCommand);
      const results = await Promise.allSettled(finishedShards);
      for (const worker of workers) worker.terminate();
      const failed = results.find((result) => result.status === "rejected");
      if (failed) throw failed.reason;
    })();
    return finishing;
  };
  if (signal?.aborted) shutdown();
  else signal?.addEventListener("abort", () => shutdown(), { once: true });
  const finished = Promise.withResolvers<void>();
  // Settles when every shard has finished, whether or not shutdown() was called.
  Promise.allSettled(finishedShards).then(() => shutdown()).then(finished.resolve, finished.reject);

  const counters = new Float64Array(shared.stats);
  return {
    addr: { transport: "tcp", hostname, port },
    finished: finished.promise,
    stats: () => sumStats(counters, shards),
    freshStats: async () => {
      if (!publishing && !finishing) {
        publishing = { left: shards, done: Promise.withResolvers() };
        for (const worker of workers) {
          worker.postMessage({ type: "publish" } satisfies ShardCommand);
        }
        // A shard that is gone does not answer: its last copy stands.
        await settlesWithin(publishing.done.promise, FRESH_STATS_WAIT_MS);
        publishing = undefined;
      } else if (publishing) {
        await settlesWithin(publishing.done.promise, FRESH_STATS_WAIT_MS);
      }
      return sumStats(counters, shards);
    },
    shutdown: () => shutdown().then(() => finished.promise),
    trimMemory: () => {
      for (const worker of workers) worker.postMessage({ type: "trim" } satisfies ShardCommand);
    },
  };
}

function sumStats(counters: Float64Array, shards: number): ServerStats {
  const stats = {} as Record<keyof ServerStats, number>;
  STAT_KEYS.forEach((key, field) => {
    let total = 0;
    for (let shard = 0; shard < shards; shard++) {
      total += counters[shard * STAT_KEYS.length + field];
    }
    stats[key] = total;
  });
  return stats;
}

/** The shard's error again, as the class the CLI knows (`Deno.errors.AddrInUse`, ...). */
function revive(report: { name: string; message: string }): Error {
  const known = (Deno.errors as unknown as Record<string, new (message: string) => Error>)[
    report.name
  ];
  const error = known ? new known(report.message) : new Error(report.message);
  if (!known) error.name = report.name;
  return error;
}
