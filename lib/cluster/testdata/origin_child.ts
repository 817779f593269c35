/**
 * A parrot-like process for the cluster tests: joins NATS as server `name`, publishes `count`
 * messages "<prefix><i>" from sender "alice", says "published <count>" on stdout once NATS has
 * them all, then waits to be killed. Run with `--allow-net=127.0.0.1` only: the permissions
 * that cluster mode needs without credentials files.
 *
 * Usage: deno run --allow-net=127.0.0.1 origin_child.ts <nats-url> <name> <count> <prefix>
 *
 * @module
 */

import { ClusterLink } from "../cluster_link.ts";

const [servers, name, count, prefix] = Deno.args;
const link = ClusterLink.open({ servers, serverName: name, onMessage: () => {} });
await link.ready();
const total = Number(count);
const encoder = new TextEncoder();
for (let i = 1; i <= total; i++) link.publish("alice", encoder.encode(`${prefix}${i}`));
const poll = setInterval(() => {
  const stats = link.stats();
  if (stats.published === total && stats.buffered === 0) {
    clearInterval(poll);
    console.log(`published ${total}`);
  }
}, 10);
// The NATS socket does not keep the process alive: stay until killed.
setInterval(() => {}, 60_000);
