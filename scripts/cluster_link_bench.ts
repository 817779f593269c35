/**
 * Throughput of cluster mode's NATS path alone: two ClusterLinks in this process on one
 * nats-server on loopback, one publishing, the other receiving. The figure is an upper bound
 * for what a parrot server can relay through NATS (no TCP clients, no stdout).
 *
 * Usage: deno run --allow-net=127.0.0.1 --allow-run=nats-server --allow-read scripts/cluster_link_bench.ts [count] [size]
 *
 * @module
 */

import { startNats, waitFor } from "../lib/testing.ts";
import { ClusterLink } from "../lib/cluster/cluster_link.ts";

const count = Number(Deno.args[0] ?? 1_000_000);
const size = Number(Deno.args[1] ?? 64);
const nats = await startNats();
let received = 0;
const publisher = ClusterLink.open({ servers: nats.url, serverName: "a", onMessage: () => {} });
const receiver = ClusterLink.open({
  servers: nats.url,
  serverName: "b",
  onMessage: () => received++,
});
try {
  await Promise.all([publisher.ready(), receiver.ready()]);
  const payload = new Uint8Array(size);
  const started = performance.now();
  let sent = 0;
  while (sent < count) {
    // About what one drain batch of a busy server hands to onMessage, then a turn.
    for (let i = 0; i < 256 && sent < count; i++, sent++) publisher.publish("client-1", payload);
    if (sent % 8192 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
    else await Promise.resolve();
  }
  await waitFor(() => received >= count, "every message", 300_000, 5);
  const ms = performance.now() - started;
  const stats = receiver.stats();
  console.log(
    `${count} messages of ${size} B through NATS in ${ms.toFixed(0)} ms: ` +
      `${Math.round(count / ms * 1000)} msg/s, ${(count * size / ms / 1000).toFixed(1)} MB/s ` +
      `(lost ${stats.lost}, replayed ${stats.replayed})`,
  );
} finally {
  await publisher.close();
  await receiver.close();
  await nats.stop();
}
