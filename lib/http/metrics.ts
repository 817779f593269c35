/**
 * `/metrics`: the server's counters in the Prometheus text exposition format (0.0.4).
 *
 * Written by hand rather than with `npm:prom-client`: every figure already lives in
 * {@linkcode ServerStats} and is read once per scrape, so there is nothing to register
 * or update on the hot path; what is left is a few lines of formatting (HELP, TYPE,
 * escaped label values, a histogram's cumulative buckets). prom-client would add a
 * dependency whose default process metrics read 0 under Deno without `--allow-all`,
 * and which we would have to switch off and replace with `Deno.memoryUsage()` anyway.
 *
 * Names follow Prometheus' conventions: a `parrot_` prefix, `_total` on counters,
 * base units (`_bytes`, `_seconds`), labels for a split (`transport`, `reason`).
 *
 * @module
 */

import type { ServerStats } from "../parrot/server.ts";

/** The transports a client may use; each gets a `parrot_clients` series, 0 or not. */
export const TRANSPORTS: readonly string[] = Object.freeze(["tcp", "tls", "websocket"]);

/** The `Content-Type` of the exposition format. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Where {@linkcode renderMetrics} reads its figures. */
export interface MetricsSource {
  /** The server's counters now. */
  stats(): ServerStats;
  /**
   * The connected clients, for the split by transport (`ParrotServer.clients()`).
   * Without it, every client counts as `defaultTransport`.
   */
  clients?: () => readonly { transport: string }[];
  /** The transport of the TCP listener (`"tls"` with a certificate). Default `"tcp"`. */
  defaultTransport?: string;
  /** Process memory. Default `Deno.memoryUsage()`. */
  memory?: () => Deno.MemoryUsage;
}

/**
 * The metrics of `source` in the Prometheus text format.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { renderMetrics } from "./metrics.ts";
 * import { startParrotServer } from "../parrot/server.ts";
 *
 * const server = startParrotServer({ port: 0, output: null });
 * const text = renderMetrics({ stats: () => server.stats() });
 * assert.match(text, /^parrot_clients\{transport="tcp"\} 0$/m);
 * await server.shutdown();
 * ```
 */
export function renderMetrics(source: MetricsSource): string {
  const stats = source.stats();
  const out: string[] = [];
  const family = (name: string, type: string, help: string) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  const sample = (name: string, value: number, labels?: Record<string, string>) => {
    out.push(`${name}${labelText(labels)} ${formatValue(value)}`);
  };
  const single = (name: string, type: string, help: string, value: number) => {
    family(name, type, help);
    sample(name, value);
  };

  family("parrot_clients", "gauge", "Clients connected now, by transport.");
  for (const [transport, count] of clientsByTransport(source, stats)) {
    sample("parrot_clients", count, { transport });
  }
  single(
    "parrot_connections_total",
    "counter",
    "Connections served (not counting those refused by the client limit).",
    stats.connections,
  );
  single("parrot_messages_in_total", "counter", "Messages received from clients.", stats.messages);
  single("parrot_bytes_in_total", "counter", "Payload bytes received from clients.", stats.bytes);
  single(
    "parrot_relayed_messages_total",
    "counter",
    "Messages relayed to subscribers (one per subscriber).",
    stats.relayed,
  );
  single(
    "parrot_relayed_bytes_total",
    "counter",
    "Bytes relayed to subscribers (their MSG frames).",
    stats.relayedBytes,
  );
  single(
    "parrot_output_messages_total",
    "counter",
    "Messages whose records are written to stdout.",
    stats.written,
  );
  single("parrot_output_bytes_total", "counter", "Bytes written to stdout.", stats.outputBytes);
  single(
    "parrot_output_unwritten_messages",
    "gauge",
    "Messages received but not written to stdout, which failed (0 while it works).",
    stats.unwrittenMessages,
  );
  single(
    "parrot_queue_depth",
    "gauge",
    "Read batches waiting for the main task.",
    stats.queueDepth,
  );
  single(
    "parrot_slow_consumers_total",
    "counter",
    "Clients cut off as slow consumers.",
    stats.slowConsumers,
  );
  single(
    "parrot_slow_consumer_dropped_messages_total",
    "counter",
    "Messages queued for slow consumers that they did not receive.",
    stats.slowConsumerDrops,
  );
  family(
    "parrot_connections_rejected_total",
    "counter",
    "Connections refused, by reason: the client limit, AUTH, or the TLS handshake.",
  );
  sample("parrot_connections_rejected_total", stats.rejected, { reason: "too many clients" });
  sample("parrot_connections_rejected_total", stats.authFailures, { reason: "auth" });
  sample("parrot_connections_rejected_total", stats.tlsFailures, { reason: "tls" });
  single(
    "parrot_auth_failures_total",
    "counter",
    "Connections refused for a missing, wrong or late AUTH.",
    stats.authFailures,
  );
  single(
    "parrot_tls_failures_total",
    "counter",
    "Connections whose TLS handshake failed or took too long.",
    stats.tlsFailures,
  );
  family(
    "parrot_protocol_errors_total",
    "counter",
    "Clients closed for a protocol error, by reason (the text after ERR).",
  );
  const reasons = Object.entries(stats.protocolErrorsByReason).sort(([a], [b]) => a < b ? -1 : 1);
  for (const [reason, count] of reasons) {
    sample("parrot_protocol_errors_total", count, { reason });
  }
  single(
    "parrot_rate_limit_pauses_total",
    "counter",
    "Reads paused by the rate limit.",
    stats.ratePauses,
  );
  family("parrot_timeouts_total", "counter", "Clients closed by a deadline, by kind.");
  sample("parrot_timeouts_total", stats.readTimeouts, { kind: "read" });
  sample("parrot_timeouts_total", stats.idleTimeouts, { kind: "idle" });

  const wait = stats.outputWait;
  family(
    "parrot_output_wait_seconds",
    "histogram",
    "Time a message waits between the read that brought it and the end of the stdout write that holds it.",
  );
  wait.bounds.forEach((bound, i) => {
    sample("parrot_output_wait_seconds_bucket", wait.cumulative[i], { le: formatValue(bound) });
  });
  sample("parrot_output_wait_seconds_bucket", wait.count, { le: "+Inf" });
  sample("parrot_output_wait_seconds_sum", wait.sum);
  sample("parrot_output_wait_seconds_count", wait.count);

  const memory = (source.memory ?? Deno.memoryUsage)();
  single(
    "process_resident_memory_bytes",
    "gauge",
    "Resident set size of the process.",
    memory.rss,
  );
  single("parrot_heap_used_bytes", "gauge", "V8 heap in use.", memory.heapUsed);
  single("parrot_heap_total_bytes", "gauge", "V8 heap reserved.", memory.heapTotal);
  single(
    "parrot_external_memory_bytes",
    "gauge",
    "Memory outside the V8 heap held by JavaScript objects (buffers).",
    memory.external,
  );
  return `${out.join("\n")}\n`;
}

function clientsByTransport(source: MetricsSource, stats: ServerStats): Map<string, number> {
  const counts = new Map<string, number>(TRANSPORTS.map((transport) => [transport, 0]));
  if (source.clients) {
    for (const { transport } of source.clients()) {
      counts.set(transport, (counts.get(transport) ?? 0) + 1);
    }
  } else {
    const transport = source.defaultTransport ?? "tcp";
    counts.set(transport, (counts.get(transport) ?? 0) + stats.clients);
  }
  return counts;
}

function labelText(labels: Record<string, string> | undefined): string {
  if (labels === undefined) return "";
  const pairs = Object.entries(labels).map(([name, value]) =>
    `${name}="${value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')}"`
  );
  return `{${pairs.join(",")}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}
