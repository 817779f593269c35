import assert from "node:assert/strict";
import type { ServerStats } from "../parrot/server.ts";
import { WaitHistogram } from "../parrot/wait_histogram.ts";
import { hasCommand } from "../testing.ts";
import { renderMetrics } from "./metrics.ts";

/** Stats where every counter has a value of its own, so a swap would show. */
function sampleStats(): ServerStats {
  const wait = new WaitHistogram([0.001, 0.01]);
  wait.observe(0.0005, 3);
  wait.observe(0.005, 2);
  wait.observe(2);
  return {
    clients: 3,
    connections: 11,
    messages: 101,
    bytes: 1001,
    relayed: 202,
    relayedBytes: 3003,
    written: 99,
    outputBytes: 2002,
    queueDepth: 4,
    rejected: 5,
    slowConsumers: 6,
    slowConsumerDrops: 66,
    authFailures: 7,
    tlsFailures: 8,
    ratePauses: 9,
    readTimeouts: 12,
    idleTimeouts: 13,
    protocolErrors: 15,
    protocolErrorsByReason: { "malformed frame": 14, 'odd "quoted"\\reason': 1 },
    outputWait: wait.snapshot(),
    unwrittenMessages: 0,
  };
}

const MEMORY = { rss: 1000, heapUsed: 200, heapTotal: 300, external: 50 };

/** A parsed sample: `name{labels} value`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A small parser of the text exposition format: every line is a comment (`# HELP`,
 * `# TYPE`) or a sample; every sample's family has a TYPE line before it.
 */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  assert.ok(text.endsWith("\n"), "ends with a line feed");
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split("\n")) {
    const type = /^# TYPE ([a-zA-Z_:][\w:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (type) {
      assert.ok(!types.has(type[1]), `one TYPE line for ${type[1]}`);
      types.set(type[1], type[2]);
      continue;
    }
    if (/^# HELP [a-zA-Z_:][\w:]* \S/.test(line)) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)",?/g)) {
      labels[pair[1]] = pair[2].replace(/\\(.)/g, (_, c) => c === "n" ? "\n" : c);
    }
    const value = match[3] === "+Inf" ? Infinity : Number(match[3]);
    assert.ok(!Number.isNaN(value), `a number: ${line}`);
    const family = match[1].replace(/_(bucket|sum|count)$/, "");
    assert.ok(types.has(match[1]) || types.get(family) === "histogram", `TYPE before ${line}`);
    samples.push({ name: match[1], labels, value });
  }
  return { samples, types };
}

function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  assert.equal(found.length, 1, `one sample ${name} ${JSON.stringify(labels)}`);
  return found[0].value;
}

Deno.test("renderMetrics() exposes every counter of the stats under its name", () => {
  const stats = sampleStats();
  const { samples, types } = parseExposition(
    renderMetrics({ stats: () => stats, memory: () => MEMORY }),
  );
  assert.equal(valueOf(samples, "parrot_clients", { transport: "tcp" }), stats.clients);
  assert.equal(valueOf(samples, "parrot_clients", { transport: "websocket" }), 0);
  assert.equal(valueOf(samples, "parrot_connections_total"), stats.connections);
  assert.equal(valueOf(samples, "parrot_messages_in_total"), stats.messages);
  assert.equal(valueOf(samples, "parrot_bytes_in_total"), stats.bytes);
  assert.equal(valueOf(samples, "parrot_relayed_messages_total"), stats.relayed);
  assert.equal(valueOf(samples, "parrot_relayed_bytes_total"), stats.relayedBytes);
  assert.equal(valueOf(samples, "parrot_output_messages_total"), stats.written);
  assert.equal(valueOf(samples, "parrot_output_bytes_total"), stats.outputBytes);
  assert.equal(valueOf(samples, "parrot_queue_depth"), stats.queueDepth);
  assert.equal(valueOf(samples, "parrot_slow_consumers_total"), stats.slowConsumers);
  assert.equal(
    valueOf(samples, "parrot_slow_consumer_dropped_messages_total"),
    stats.slowConsumerDrops,
  );
  const rejected = (reason: string) =>
    valueOf(samples, "parrot_connections_rejected_total", { reason });
  assert.equal(rejected("too many clients"), stats.rejected);
  assert.equal(rejected("auth"), stats.authFailures);
  assert.equal(rejected("tls"), stats.tlsFailures);
  assert.equal(valueOf(samples, "parrot_auth_failures_total"), stats.authFailures);
  assert.equal(valueOf(samples, "parrot_tls_failures_total"), stats.tlsFailures);
  assert.equal(
    valueOf(samples, "parrot_protocol_errors_total", { reason: "malformed frame" }),
    14,
  );
  assert.equal(
    valueOf(samples, "parrot_protocol_errors_total", { reason: 'odd "quoted"\\reason' }),
    1,
    "label values escaped and read back",
  );
  assert.equal(valueOf(samples, "parrot_rate_limit_pauses_total"), stats.ratePauses);
  assert.equal(valueOf(samples, "parrot_timeouts_total", { kind: "read" }), stats.readTimeouts);
  assert.equal(valueOf(samples, "parrot_timeouts_total", { kind: "idle" }), stats.idleTimeouts);
  assert.equal(valueOf(samples, "process_resident_memory_bytes"), MEMORY.rss);
  assert.equal(valueOf(samples, "parrot_heap_used_bytes"), MEMORY.heapUsed);
  assert.equal(valueOf(samples, "parrot_heap_total_bytes"), MEMORY.heapTotal);
  assert.equal(valueOf(samples, "parrot_external_memory_bytes"), MEMORY.external);
  assert.equal(types.get("parrot_output_wait_seconds"), "histogram");
});

Deno.test("renderMetrics() writes the wait histogram with cumulative buckets, +Inf, sum and count", () => {
  const stats = sampleStats();
  const { samples } = parseExposition(renderMetrics({ stats: () => stats, memory: () => MEMORY }));
  const bucket = (le: string) => valueOf(samples, "parrot_output_wait_seconds_bucket", { le });
  assert.equal(bucket("0.001"), 3);
  assert.equal(bucket("0.01"), 5);
  assert.equal(bucket("+Inf"), 6);
  assert.equal(valueOf(samples, "parrot_output_wait_seconds_count"), 6);
  assert.ok(Math.abs(valueOf(samples, "parrot_output_wait_seconds_sum") - 2.0115) < 1e-9);
});

Deno.test("renderMetrics() splits clients by the transport clients() reports", () => {
  const { samples } = parseExposition(renderMetrics({
    stats: sampleStats,
    memory: () => MEMORY,
    clients: () => [{ transport: "websocket" }, { transport: "tls" }, { transport: "websocket" }],
  }));
  assert.equal(valueOf(samples, "parrot_clients", { transport: "websocket" }), 2);
  assert.equal(valueOf(samples, "parrot_clients", { transport: "tls" }), 1);
  assert.equal(valueOf(samples, "parrot_clients", { transport: "tcp" }), 0);
});

Deno.test("renderMetrics() counts every client as TLS for a TLS listener without clients()", () => {
  const { samples } = parseExposition(
    renderMetrics({ stats: sampleStats, memory: () => MEMORY, defaultTransport: "tls" }),
  );
  assert.equal(valueOf(samples, "parrot_clients", { transport: "tls" }), 3);
  assert.equal(valueOf(samples, "parrot_clients", { transport: "tcp" }), 0);
});

Deno.test("renderMetrics() output passes promtool check metrics", async () => {
  // Not skipped when missing: CI installs it (.ci/run), and a skip counts as a failure.
  assert.ok(
    await hasCommand("promtool"),
    "promtool is missing: install it with `apt-get install -y prometheus` (.ci/run does)",
  );
  const text = renderMetrics({ stats: sampleStats });
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const said = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, said);
  assert.equal(said.trim(), "", "no lint warnings");
});
