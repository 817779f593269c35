import assert from "node:assert/strict";
import { hasCommand } from "../testing.ts";
import { COUNTER_LABELS } from "../http/page/page.ts";
import {
  clusterFeedCounters,
  type ClusterReport,
  clusterStatsText,
  renderClusterMetrics,
} from "./cluster_metrics.ts";

const stats: ClusterReport = {
  published: 10,
  received: 20,
  buffered: 3,
  replayed: 4,
  dropped: 5,
  lost: 6,
  invalid: 7,
  replaysServed: 8,
  refused: 9,
  overflow: 11,
  connected: true,
};

Deno.test("renderClusterMetrics() gives every figure once, under its name", () => {
  const text = renderClusterMetrics(stats);
  const samples = new Map(
    text.split("\n").filter((line) => line && !line.startsWith("#")).map((line) => {
      const [name, value] = line.split(" ");
      return [name, Number(value)] as const;
    }),
  );
  assert.deepEqual(Object.fromEntries(samples), {
    parrot_cluster_connected: 1,
    parrot_cluster_buffered_messages: 3,
    parrot_cluster_published_messages_total: 10,
    parrot_cluster_received_messages_total: 20,
    parrot_cluster_replayed_messages_total: 4,
    parrot_cluster_dropped_messages_total: 5,
    parrot_cluster_lost_messages_total: 6,
    parrot_cluster_invalid_messages_total: 7,
    parrot_cluster_replays_served_total: 8,
    parrot_cluster_refused_messages_total: 9,
    parrot_cluster_overflow_messages_total: 11,
  });
  assert.match(
    renderClusterMetrics({ ...stats, connected: false }),
    /^parrot_cluster_connected 0$/m,
  );
});

Deno.test("renderClusterMetrics() output passes promtool check metrics", async () => {
  assert.ok(
    await hasCommand("promtool"),
    "promtool is missing: install it with `apt-get install -y prometheus` (.ci/run does)",
  );
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(renderClusterMetrics(stats)));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const said = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, said);
  assert.equal(said.trim(), "", "no lint warnings");
});

Deno.test("clusterStatsText() names every figure", () => {
  assert.equal(
    clusterStatsText(stats),
    "cluster=connected cluster_published=10 cluster_received=20 cluster_buffered=3 " +
      "cluster_replayed=4 cluster_dropped=5 cluster_lost=6 cluster_invalid=7 " +
      "cluster_refused=9 cluster_overflow=11",
  );
});

Deno.test("clusterFeedCounters() gives every figure a label on the live page", () => {
  const counters = clusterFeedCounters(stats);
  assert.equal(counters.clusterReceived, 20);
  assert.equal(counters.clusterOverflow, 11);
  for (const key of Object.keys(counters)) {
    assert.ok(key in COUNTER_LABELS, `${key} has a label`);
  }
});
