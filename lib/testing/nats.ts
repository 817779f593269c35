/**
 * Real `nats-server` processes for the cluster tests: one server on a free loopback port, or
 * a cluster of several joined by routes, that a test can kill and start again on the same
 * port. Import it through `lib/testing.ts`.
 *
 * @module
 */

import { type Running, spawn } from "./processes.ts";
import { waitFor } from "../testing.ts";

/** A running `nats-server`. */
export interface NatsProcess {
  /** Its client port on 127.0.0.1. */
  port: number;
  /** Its route (cluster) port, when started as a cluster node. */
  routePort?: number;
  /** The cluster it belongs to, when started as a cluster node. */
  clusterName?: string;
  /** `nats://127.0.0.1:<port>`. */
  url: string;
  /** The running process. */
  running: Running;
  /** Sends `signal` (default SIGKILL) and waits for the process to exit. */
  stop(signal?: Deno.Signal): Promise<void>;
}

/** How to start a `nats-server`. */
export interface NatsStartOptions {
  /** Client port; 0 (default) picks a free one. */
  port?: number;
  /** Make it a cluster node named `clusterName`, with a route port (0: a free one). */
  cluster?: { name: string; routePort?: number; routes?: string[] };
  /** More arguments for nats-server (e.g. `--auth`, `--tls`). */
  args?: string[];
}

const CLIENT_LINE = /Listening for client connections on [^\s]+:(\d+)/;
const ROUTE_LINE = /Listening for route connections on [^\s]+:(\d+)/;

/**
 * Starts `nats-server` on 127.0.0.1 and waits until it is ready.
 *
 * @example
 * ```ts ignore
 * import { startNats } from "../testing.ts";
 * const nats = await startNats();
 * console.log(nats.url);
 * await nats.stop();
 * ```
 */
export async function startNats(options: NatsStartOptions = {}): Promise<NatsProcess> {
  const args = ["-a", "127.0.0.1", "-p", String(options.port || -1)];
  if (options.cluster) {
    args.push(
      "--cluster_name",
      options.cluster.name,
      "--cluster",
      `nats://127.0.0.1:${options.cluster.routePort || -1}`,
    );
    if (options.cluster.routes?.length) args.push("--routes", options.cluster.routes.join(","));
  }
  args.push(...options.args ?? []);
  const running = spawn("nats-server", args);
  let exited = false;
  running.status.then(() => exited = true);
  await waitFor(
    () =>
      exited || (/Server is ready/.test(running.stderr.text()) &&
        (!options.cluster || ROUTE_LINE.test(running.stderr.text()))),
    "nats-server to be ready",
    10_000,
  );
  const text = running.stderr.text();
  const port = text.match(CLIENT_LINE);
  if (exited || !port) throw new Error(`nats-server did not start:\n${text}`);
  const route = text.match(ROUTE_LINE);
  return {
    port: Number(port[1]),
    routePort: route ? Number(route[1]) : undefined,
    clusterName: options.cluster?.name,
    url: `nats://127.0.0.1:${port[1]}`,
    running,
    async stop(signal: Deno.Signal = "SIGKILL") {
      if (!exited) {
        try {
          running.child.kill(signal);
        } catch {
          // Already gone.
        }
      }
      await running.status;
    },
  };
}

/** Starts the same node again on its old ports (after {@linkcode NatsProcess.stop}). */
export function restartNats(
  old: NatsProcess,
  options: Omit<NatsStartOptions, "port"> = {},
): Promise<NatsProcess> {
  const cluster = options.cluster && { ...options.cluster, routePort: old.routePort };
  return startNats({ ...options, cluster, port: old.port });
}

/** Counts the routes a node has made or accepted so far. */
function routes(node: NatsProcess): number {
  return node.running.stderr.text().match(/Route connection created/g)?.length ?? 0;
}

/**
 * Starts `size` nats-server nodes joined by routes into one cluster, and waits until every
 * node has a route to every other. `args` go to every node (e.g. `--no_advertise`).
 *
 * @example
 * ```ts ignore
 * import { startNatsCluster } from "../testing.ts";
 * const nodes = await startNatsCluster(3);
 * await Promise.all(nodes.map((node) => node.stop()));
 * ```
 */
export async function startNatsCluster(
  size: number,
  options: { args?: string[] } = {},
): Promise<NatsProcess[]> {
  const name = `parrot-test-${crypto.randomUUID().slice(0, 8)}`;
  const seed = await startNats({ cluster: { name }, args: options.args });
  const nodes = [seed];
  for (let i = 1; i < size; i++) {
    nodes.push(
      await startNats({
        cluster: { name, routes: [`nats://127.0.0.1:${seed.routePort}`] },
        args: options.args,
      }),
    );
  }
  await waitFor(
    () => nodes.every((node) => routes(node) >= size - 1),
    `${size} nats-server nodes to route to each other`,
    15_000,
  );
  return nodes;
}
