/**
 * `deno task bench [--quick]`: fan-in throughput of the real server process.
 *
 * Starts `server.ts` as a user would (its own process, `--allow-net=127.0.0.1`, stdout
 * to a file), drives it with pipelined `MSG` frames from N connections written in
 * large batches, ends each connection with `PING` and waits for its `PONG` (the
 * barrier: every message is on stdout by then), and checks the message file holds
 * every message. Prints a table and writes `bench-results/bench.json`.
 *
 * Small on purpose: the performance work grows it (fan-out, idle connections, churn,
 * latency). Every loop is bounded in count and time.
 *
 * @module
 */

import { parseArgs } from "node:util";
import denoJson from "../deno.json" with { type: "json" };

interface Scenario {
  connections: number;
  messages: number;
  size: number;
}

interface Result extends Scenario {
  elapsedMs: number;
  messagesPerSecond: number;
  megabytesPerSecond: number;
  printed: number;
}

const FULL: Scenario[] = [
  { connections: 3, messages: 200_000, size: 405 },
  { connections: 64, messages: 20_000, size: 64 },
  { connections: 1000, messages: 500, size: 64 },
  { connections: 3, messages: 20_000, size: 4096 },
];
const QUICK: Scenario[] = [
  { connections: 3, messages: 50_000, size: 405 },
  { connections: 64, messages: 5_000, size: 64 },
];
const BATCH_BYTES = 128 * 1024;
const TIME_LIMIT_MS = 120_000;
const OUT_DIR = "bench-results";
const encoder = new TextEncoder();

const USAGE = `Usage: deno task bench [--quick]

Fan-in throughput of the real server (stdout to a file), every message checked.
  --quick     two small scenarios (a few seconds) instead of the full set
  -h, --help  show this help`;

let quick = false;
try {
  const { values } = parseArgs({
    options: { quick: { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  quick = values.quick;
} catch (error) {
  console.error(`error: ${(error as Error).message.split(". ")[0]}\n${USAGE}`);
  Deno.exit(2);
}
const scenarios = quick ? QUICK : FULL;

async function run(scenario: Scenario): Promise<Result> {
  const messageFile = `${OUT_DIR}/messages.log`;
  const server = new Deno.Command("sh", {
    args: [
      "-c",
      'out="$1"; shift; exec "$@" > "$out"',
      "sh",
      messageFile,
      "deno",
      "run",
      "--allow-net=127.0.0.1",
      "--v8-flags=--expose-gc,--max-semi-space-size=2",
      "server.ts",
      "0",
      "--no-broadcast",
      "--max-clients",
      String(scenario.connections + 10),
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const port = await listeningPort(server.stderr);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: scenario.connections }, (_, i) => drive(port, `c${i}`, scenario)),
  );
  const elapsedMs = performance.now() - started;
  server.kill("SIGTERM");
  await server.status;
  const printed = await countLines(messageFile);
  await Deno.remove(messageFile);
  const total = scenario.connections * scenario.messages;
  if (printed !== total) {
    throw new Error(
      `Lost messages: ${total} sent, ${printed} printed (${JSON.stringify(scenario)})`,
    );
  }
  return {
    ...scenario,
    elapsedMs: Math.round(elapsedMs),
    messagesPerSecond: Math.round(total / (elapsedMs / 1000)),
    megabytesPerSecond: Math.round((total * scenario.size) / (elapsedMs / 1000) / 1e5) / 10,
    printed,
  };
}

/** One connection: HELLO, UNSUB, the messages in large writes, then PING and its PONG. */
async function drive(port: number, name: string, { messages, size }: Scenario): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const frame = encoder.encode(`MSG ${size}\n${"x".repeat(size)}\n`);
    const perBatch = Math.max(1, Math.floor(BATCH_BYTES / frame.length));
    const batch = new Uint8Array(perBatch * frame.length);
    for (let i = 0; i < perBatch; i++) batch.set(frame, i * frame.length);
    await writeAll(conn, encoder.encode(`HELLO ${name}\nUNSUB\n`));
    const deadline = Date.now() + TIME_LIMIT_MS;
    for (let sent = 0; sent < messages;) {
      if (Date.now() > deadline) throw new Error(`${name} ran out of time`);
      const count = Math.min(perBatch, messages - sent);
      await writeAll(conn, batch.subarray(0, count * frame.length));
      sent += count;
    }
    await writeAll(conn, encoder.encode("PING\n"));
    const reply = new Uint8Array(64);
    let heard = "";
    while (!heard.includes("PONG")) {
      const n = await conn.read(reply);
      if (n === null) throw new Error(`${name}: the server closed before PONG`);
      heard += new TextDecoder().decode(reply.subarray(0, n));
    }
  } finally {
    conn.close();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
}

async function listeningPort(stderr: ReadableStream<Uint8Array>): Promise<number> {
  const decoder = new TextDecoder();
  let text = "";
  const reader = stderr.getReader();
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`The server exited before listening:\n${text}`);
    text += decoder.decode(value);
    const match = text.match(/listening on [\d.]+:(\d+)/);
    if (match) {
      // Keep draining stderr so the server never blocks on it.
      (async () => {
        while (!(await reader.read()).done) { /* discard */ }
      })();
      return Number(match[1]);
    }
  }
}

async function countLines(path: string): Promise<number> {
  let lines = 0;
  using file = await Deno.open(path);
  const buffer = new Uint8Array(1 << 20);
  for (;;) {
    const n = await file.read(buffer);
    if (n === null) return lines;
    for (let i = buffer.indexOf(10); i !== -1 && i < n; i = buffer.indexOf(10, i + 1)) lines++;
  }
}

await Deno.mkdir(OUT_DIR, { recursive: true });
const results: Result[] = [];
for (const scenario of scenarios) {
  const label = `${scenario.connections} x ${scenario.messages} x ${scenario.size} B`;
  await Deno.stderr.write(encoder.encode(`running fan-in ${label} ...\n`));
  results.push(await run(scenario));
}
console.log("| fan-in (stdout to a file) | msgs/s | MB/s | elapsed ms | printed |");
console.log("|---|---|---|---|---|");
for (const r of results) {
  console.log(
    `| ${r.connections} conns x ${r.messages} x ${r.size} B | ${r.messagesPerSecond} | ${r.megabytesPerSecond} | ${r.elapsedMs} | ${r.printed} |`,
  );
}
const report = {
  version: denoJson.version,
  deno: Deno.version.deno,
  date: new Date().toISOString(),
  results,
};
await Deno.writeTextFile(`${OUT_DIR}/bench.json`, JSON.stringify(report, null, 2) + "\n");
console.log(`\nwrote ${OUT_DIR}/bench.json`);
