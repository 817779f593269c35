/**
 * One shard of a sharded parrot server (`sharded_server.ts`), as a Worker's entry.
 *
 * It binds its own listener on the server's port with `SO_REUSEPORT`, runs a whole
 * {@linkcode startParrotServer} for the clients the kernel gives it, and wires that
 * server to what the shards share: the client limit, the stdout lock, the links to the
 * other shards and its slot of the counters. It tells the starting thread when it
 * listens (or why it cannot), shuts down when told, and says when it has finished.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { collectWhenIdle } from "../cli/idle_gc.ts";
import { closeLogging, setupLogging } from "../cli/logging.ts";
import { SharedConnectionSlots } from "../net/connection_slots.ts";
import { ExclusiveWriter } from "../net/exclusive_writer.ts";
import { DEFAULT_HOST, DEFAULT_MAX_CLIENTS, DEFAULT_TCP_BACKLOG } from "../defaults.ts";
import { startParrotServer } from "./server.ts";
import { ShardLink } from "./shard_link.ts";
import {
  type ShardCommand,
  type ShardInit,
  type ShardReport,
  STAT_KEYS,
  STATS_PUBLISH_MS,
} from "./sharded_server.ts";

function report(message: ShardReport): void {
  self.postMessage(message);
}

self.onmessage = (event: MessageEvent<ShardInit>) => {
  self.onmessage = null;
  start(event.data).catch((error) =>
    report({ type: "failed", name: error?.name ?? "Error", message: String(error?.message) })
  );
};

async function start(init: ShardInit): Promise<void> {
  const { options } = init;
  if (init.logging) await setupLogging(init.logging.level, init.logging.format);
  const hostname = options.hostname ?? DEFAULT_HOST;
  const listenOptions = {
    hostname,
    port: options.port ?? 0,
    reusePort: true,
    tcpBacklog: options.backlog ?? DEFAULT_TCP_BACKLOG,
  };
  const listener = options.tls
    ? Deno.listenTls({ ...listenOptions, ...options.tls })
    : Deno.listen(listenOptions);
  const link = new ShardLink({
    index: init.index,
    subscriberCounts: init.subscriberCounts,
    ports: init.ports,
  });
  const server = startParrotServer({
    ...options,
    listener,
    output: init.stdout ? new ExclusiveWriter(Deno.stdout, init.stdoutLock) : null,
    peers: link,
    connectionSlots: new SharedConnectionSlots(
      options.maxClients ?? DEFAULT_MAX_CLIENTS,
      init.clientSlots,
    ),
    claimWarning: () => Atomics.exchange(new Int32Array(init.warnings), 0, 1) === 0,
  });
  const counters = new Float64Array(
    init.stats,
    init.index * STAT_KEYS.length * 8,
    STAT_KEYS.length,
  );
  const publish = () => {
    const stats = server.stats();
    STAT_KEYS.forEach((key, field) => counters[field] = stats[key]);
  };
  const publisher = setInterval(publish, STATS_PUBLISH_MS);
  const stopCollector = collectWhenIdle({
    activity: () => {
      const { messages, connections, rejected } = server.stats();
      return messages + connections + rejected;
    },
    beforeCollect: () => server.trimMemory(),
  });
  self.onmessage = (event: MessageEvent<ShardCommand>) => {
    const command = event.data.type;
    if (command === "shutdown") server.shutdown();
    else if (command === "trim") server.trimMemory();
    else {
      publish();
      report({ type: "published" });
    }
  };
  report({ type: "listening", port: (listener.addr as Deno.NetAddr).port });
  await server.finished;
  clearInterval(publisher);
  stopCollector();
  publish();
  link.close();
  if (init.logging) await closeLogging();
  report({ type: "finished" });
}
