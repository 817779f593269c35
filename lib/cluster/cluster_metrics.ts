/**
 * How cluster mode shows up in what the server reports: the lines it adds to `/metrics`
 * (Prometheus text format, `parrot_cluster_*`) and the part it adds to the `--stats` line.
 *
 * Formatting only: the figures are {@linkcode ClusterStats}, read once per scrape or line.
 *
 * @module
 */

import type { ClusterStats } from "./cluster_link.ts";

/** What a server reports of cluster mode: its link's counters and its own checks. */
export interface ClusterReport extends ClusterStats {
  /** Messages of other servers refused here (over the max frame, or an invalid sender name). */
  refused?: number;
  /** Messages of other servers dropped because the server's main task was too far behind. */
  overflow?: number;
}

const COUNTERS: readonly [keyof ClusterReport, string, string][] = [
  [
    "published",
    "parrot_cluster_published_messages_total",
    "Messages of this server handed to NATS.",
  ],
  [
    "received",
    "parrot_cluster_received_messages_total",
    "Messages of other servers delivered here.",
  ],
  [
    "replayed",
    "parrot_cluster_replayed_messages_total",
    "Of the messages received, those that came through a replay after a gap.",
  ],
  [
    "dropped",
    "parrot_cluster_dropped_messages_total",
    "Messages of this server that never reached NATS (buffer full, too large).",
  ],
  [
    "lost",
    "parrot_cluster_lost_messages_total",
    "Messages of other servers known to be missing for good.",
  ],
  [
    "invalid",
    "parrot_cluster_invalid_messages_total",
    "NATS messages on the cluster subjects that were not valid parrot cluster frames.",
  ],
  ["replaysServed", "parrot_cluster_replays_served_total", "Replay requests this server answered."],
  [
    "refused",
    "parrot_cluster_refused_messages_total",
    "Messages of other servers refused here (over the max frame, or an invalid sender name).",
  ],
  [
    "overflow",
    "parrot_cluster_overflow_messages_total",
    "Messages of other servers dropped because this server was too far behind.",
  ],
];

/**
 * The `parrot_cluster_*` metric families, to append to the server's `/metrics` text.
 *
 * @example
 * ```ts
 * import { renderClusterMetrics } from "./cluster_metrics.ts";
 * const text = renderClusterMetrics({
 *   published: 3, received: 2, buffered: 0, replayed: 0, dropped: 0, lost: 0, invalid: 1,
 *   replaysServed: 0, connected: true,
 * });
 * if (!text.includes("parrot_cluster_connected 1\n")) throw new Error("no connected gauge");
 * ```
 */
export function renderClusterMetrics(stats: ClusterReport): string {
  const out: string[] = [];
  const single = (name: string, type: string, help: string, value: number) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
  };
  single(
    "parrot_cluster_connected",
    "gauge",
    "1 while this server is connected to NATS, else 0.",
    stats.connected ? 1 : 0,
  );
  single(
    "parrot_cluster_buffered_messages",
    "gauge",
    "Messages of this server accepted and not yet handed to NATS.",
    stats.buffered,
  );
  for (const [key, name, help] of COUNTERS) {
    single(name, "counter", help, (stats[key] as number | undefined) ?? 0);
  }
  return out.join("\n") + "\n";
}

/**
 * The cluster's counters as the live page shows them: flat `cluster*` keys beside the
 * server's counters (`clusterConnected` is 1 or 0).
 *
 * @example
 * ```ts
 * import { clusterFeedCounters } from "./cluster_metrics.ts";
 * const counters = clusterFeedCounters({
 *   published: 3, received: 2, buffered: 0, replayed: 0, dropped: 0, lost: 0, invalid: 0,
 *   replaysServed: 0, connected: true,
 * });
 * if (counters.clusterReceived !== 2 || counters.clusterConnected !== 1) throw new Error("bad");
 * ```
 */
export function clusterFeedCounters(stats: ClusterReport): Record<`cluster${string}`, number> {
  return {
    clusterConnected: stats.connected ? 1 : 0,
    clusterPublished: stats.published,
    clusterReceived: stats.received,
    clusterBuffered: stats.buffered,
    clusterReplayed: stats.replayed,
    clusterDropped: stats.dropped,
    clusterLost: stats.lost,
    clusterInvalid: stats.invalid,
    clusterRefused: stats.refused ?? 0,
    clusterOverflow: stats.overflow ?? 0,
  };
}

/**
 * The cluster part of the `--stats` line, in its `key=value` style.
 *
 * @example
 * ```ts
 * import { clusterStatsText } from "./cluster_metrics.ts";
 * const text = clusterStatsText({
 *   published: 3, received: 2, buffered: 0, replayed: 0, dropped: 0, lost: 0, invalid: 0,
 *   replaysServed: 0, connected: false,
 * });
 * if (!text.startsWith("cluster=disconnected ")) throw new Error(text);
 * ```
 */
export function clusterStatsText(stats: ClusterReport): string {
  return `cluster=${stats.connected ? "connected" : "disconnected"} ` +
    `cluster_published=${stats.published} cluster_received=${stats.received} ` +
    `cluster_buffered=${stats.buffered} cluster_replayed=${stats.replayed} ` +
    `cluster_dropped=${stats.dropped} cluster_lost=${stats.lost} cluster_invalid=${stats.invalid} ` +
    `cluster_refused=${stats.refused ?? 0} cluster_overflow=${stats.overflow ?? 0}`;
}
