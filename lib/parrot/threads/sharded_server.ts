/**
 * The parrot server on several threads: shards, each a whole parrot server for the
 * clients it accepts; the first runs in this thread, the others in Workers.
 *
 * One JavaScript thread decodes, copies and relays about 3.5 million small messages a
 * second here, and then it is the bottleneck: NATS, with both cores, does twice that.
 * So the server can run as shards. Each shard has its own listener on the same port (`SO_REUSEPORT`: the kernel spreads new connections over the listeners),
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
 * Besides running shard 0, this thread starts the others, relays the shutdown to them
 * and waits for all of them: the shutdown is each shard's own (stop accepting, `QUIT`
 * to every client, drain, flush stdout). Shard 0 talks to it through a `MessageChannel`
 * exactly as the others do through their Worker, so all shards run the same code.
 *
 * @module
 */

import { SharedConnectionSlots } from "../../net/connection_slots.ts";
import { settlesWithin } from "../../net/delay.ts";
import { DEFAULT_HOST, DEFAULT_MAX_CLIENTS } from "../../defaults.ts";
import type { ParrotServer, ServerStats } from "../server.ts";
import { emptyHistogram } from "../wait_histogram.ts";
import { shardPorts } from "./shard_link.ts";
import {
  serveShard,
  type ShardCommand,
  type ShardInit,
  type ShardLogging,
  type ShardReport,
  type ShardServerOptions,
  STAT_KEYS,
} from "./shard.ts";

/** Options of {@linkcode startShardedServer}. */
export interface ShardedServerOptions extends ShardServerOptions {
  /** How many shards (threads: this one and a Worker for each other); at least 1. */
  shards: number;
  /** Print message records on stdout. Default true. */
  stdout?: boolean;
  /** How the Workers' shards log (shard 0 logs as this thread is set up). Default: not set up. */
  logging?: ShardLogging;
  /** Aborting it starts the graceful shutdown. */
  signal?: AbortSignal;
}

/** A running sharded server: a {@linkcode ParrotServer} whose counters add up every shard's. */
export type ShardedServer = ParrotServer;

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
  const handles: ShardHandle[] = [];
  const finishedShards: Promise<void>[] = [];
  let port = serverOptions.port ?? 0;
  try {
    for (let index = 0; index < shards; index++) {
      const handle = index === 0 ? shardInThisThread() : shardInWorker(index);
      handles.push(handle);
      const listening = Promise.withResolvers<number>();
      const finished = Promise.withResolvers<void>();
      finishedShards.push(finished.promise);
      finished.promise.catch(() => {}); // Looked at through allSettled, or not at all.
      handle.channel.onmessage = (event: MessageEvent<ShardReport>) => {
        const report = event.data;
        if (report.type === "listening") listening.resolve(report.port);
        else if (report.type === "failed") {
          // Before it listens: it could not start. After: it stopped (its stdout
          // failed); the others stop too, and the server's finished rejects.
          const error = revive(report);
          listening.reject(error);
          finished.reject(error);
          for (const other of handles) other.channel.postMessage({ type: "shutdown" });
        } else if (report.type === "published") {
          if (publishing && --publishing.left === 0) publishing.done.resolve();
        } else finished.resolve();
      };
      handle.onerror = (message) => {
        const error = new Error(`Shard ${index} failed: ${message}`);
        listening.reject(error);
        finished.reject(error);
      };
      const init: ShardInit = {
        index,
        options: { ...serverOptions, port },
        stdout,
        // This thread's logging is set up already, by whoever started the server.
        logging: index === 0 ? undefined : logging,
        ...shared,
        ports: ports[index],
      };
      handle.channel.postMessage(init, ports[index].filter((p) => p !== undefined));
      // The first shard finds the port when asked for 0; the others join it.
      port = await listening.promise;
    }
  } catch (error) {
    for (const handle of handles) handle.end();
    throw error;
  }

  const tellAll = (command: ShardCommand) => {
    for (const handle of handles) handle.channel.postMessage(command);
  };
  let finishing: Promise<void> | undefined;
  const shutdown = () => {
    finishing ??= (async () => {
      tellAll({ type: "shutdown" });
      const results = await Promise.allSettled(finishedShards);
      for (const handle of handles) handle.end();
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
        tellAll({ type: "publish" });
        // A shard that is gone does not answer: its last copy stands.
        await settlesWithin(publishing.done.promise, FRESH_STATS_WAIT_MS);
        publishing = undefined;
      } else if (publishing) {
        await settlesWithin(publishing.done.promise, FRESH_STATS_WAIT_MS);
      }
      return sumStats(counters, shards);
    },
    shutdown: () => shutdown().then(() => finished.promise),
    trimMemory: () => tellAll({ type: "trim" }),
    upgradeWebSocket: () =>
      new Response("Cannot accept a WebSocket client: WebSocket clients need --threads 1\n", {
        status: 501,
        headers: { "content-type": "text/plain; charset=utf-8" },
      }),
    // The clients live in the shards' Workers; they are not listed (yet).
    clients: () => [],
  };
}

/** A shard as this thread sees it: in a Worker, or in this thread behind a `MessageChannel`. */
interface ShardHandle {
  /** Where its init and commands go and its reports come from. */
  channel: Worker | MessagePort;
  /** Called if the shard's Worker dies of an uncaught error. */
  onerror: ((message: string) => void) | null;
  /** Ends the Worker, or closes the channel. */
  end(): void;
}

function shardInWorker(index: number): ShardHandle {
  const worker = new Worker(WORKER_URL, { type: "module", name: `parrot shard ${index}` });
  const handle: ShardHandle = { channel: worker, onerror: null, end: () => worker.terminate() };
  worker.onerror = (event) => {
    event.preventDefault();
    handle.onerror?.(event.message);
  };
  return handle;
}

/** Shard 0 runs in this thread: one Worker and one isolate fewer (two threads at rest: 77 -> 67 MB). */
function shardInThisThread(): ShardHandle {
  const { port1, port2 } = new MessageChannel();
  serveShard(port2);
  return {
    channel: port1,
    onerror: null,
    end: () => {
      port1.close();
      port2.close();
    },
  };
}

function sumStats(counters: Float64Array, shards: number): ServerStats {
  // The shards share numbers only: no counts by reason, no histogram.
  const stats = { protocolErrorsByReason: {}, outputWait: emptyHistogram() } as ServerStats;
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
