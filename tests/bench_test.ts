/**
 * The bench at tiny sizes: the scenario functions against real server and generator
 * processes (every message must arrive, and the check must count them), and the CLI
 * once, for its options and the shape of its JSON. No assertion is about speed: the
 * machine may be busy.
 */

import assert from "node:assert/strict";
import { countRecords } from "../scripts/bench/records.ts";
import { RelayCounter } from "../scripts/bench/relay_counter.ts";
import type { BenchReport, BenchResult } from "../scripts/bench/report.ts";
import { runBenchScenario, SCENARIOS, selectScenarios } from "../scripts/bench/scenarios.ts";
import { runDeno } from "../lib/testing.ts";
import { Pacer } from "../scripts/bench/pacer.ts";
import { formatMicroseconds } from "../scripts/bench/scenario_latency.ts";

async function runTiny(name: string, sizes: Record<string, number>): Promise<BenchResult> {
  const scenario = SCENARIOS.find((s) => s.name === name);
  assert.ok(scenario, `no scenario ${name}`);
  const result = await runBenchScenario(scenario, { quick: true, cores: 2, sizes });
  assert.ok(result.passed, `${name} failed:\n${result.failures.join("\n")}`);
  return result;
}

Deno.test("bench fan-in: the server printed every message of every connection", async () => {
  const { metrics, cpu } = await runTiny("fanin-405", { connections: 3, messages: 500, size: 405 });
  assert.equal(metrics.sent, 1_500);
  assert.equal(metrics.printed, 1_500);
  assert.ok(cpu && cpu.serverPercent >= 0 && cpu.generatorPercent >= 0);
});

Deno.test("bench fan-in with the page: both runs printed every message and the page got events", async () => {
  const { metrics, figure } = await runTiny("fanin-page-64x64", {
    connections: 4,
    messages: 300,
    size: 64,
  });
  assert.equal(metrics.sent, 2 * 1_200);
  assert.equal(metrics.printed, 2 * 1_200);
  assert.ok(Number(metrics.feedEvents) >= 1, `${metrics.feedEvents} feed events`);
  assert.ok(
    Number(metrics.messagesPerSecondWithout) > 0 && Number(metrics.messagesPerSecondWithPage) > 0,
  );
  assert.match(figure, /msgs\/s with the page, [\d,]+ without \(\d+%\)$/);
});

Deno.test("bench fan-in with --history: both runs printed every message, the history stored them", async () => {
  const { metrics, figure } = await runTiny("fanin-history-64x64", {
    connections: 4,
    messages: 300,
    size: 64,
  });
  assert.equal(metrics.printed, 2 * 1_200);
  assert.equal(metrics.stored, 1_200);
  assert.match(figure, /msgs\/s with --history, [\d,]+ without \(\d+%\)$/);
});

Deno.test("bench fan-out: every subscriber counted every relayed message", async () => {
  const { metrics } = await runTiny("fanout-1to100", {
    connections: 2,
    subscribers: 5,
    messages: 300,
    size: 64,
  });
  assert.equal(metrics.published, 600);
  assert.equal(metrics.delivered, 5 * 600);
  assert.equal(metrics.printed, 600);
});

const TINY_LATENCY = {
  publishers: 5,
  rate: 500,
  durationMs: 400,
  warmupMs: 100,
  size: 64,
  pingRate: 20,
};

/** Checks a latency row at {@linkcode TINY_LATENCY}: every message arrived, timed and printed. */
function assertLatencyRow(result: BenchResult, publishers: number): void {
  const { metrics, figure, load } = result;
  const expected = Math.round((TINY_LATENCY.rate * 500) / 1000);
  assert.equal(metrics.sent, expected);
  assert.equal(metrics.received, expected);
  assert.equal(metrics.printed, expected);
  assert.equal(metrics.publishers, publishers);
  // Every message after the warm-up's (its first 50 sequence numbers) is timed.
  assert.equal(metrics.timed, expected - 50);
  assert.ok(Number(metrics.pings) > 0);
  // The publishers and the subscriber are in two Workers: their clocks must agree, so
  // no message can be seen arriving before it was sent.
  assert.ok(Number(metrics.minMs) > 0, `a message arrived ${metrics.minMs} ms after it was sent`);
  for (const key of ["p50Us", "p99Us", "p999Us", "maxUs", "lateP99Us", "lateMaxUs"]) {
    assert.equal(typeof metrics[key], "number", key);
  }
  assert.ok(Number(metrics.p50Us) <= Number(metrics.p99Us));
  assert.ok(Number(metrics.p99Us) <= Number(metrics.p999Us));
  assert.ok(Number(metrics.lateP99Us) <= Number(metrics.lateMaxUs));
  // One tick per message (2 ms at 500 msgs/s); the warm-up's are not counted.
  assert.equal(metrics.pacerPeriodMs, 2);
  assert.ok(
    Number(metrics.pacerTicks) > 0 && Number(metrics.pacerTicks) <= 202,
    `${metrics.pacerTicks}`,
  );
  assert.match(
    figure,
    /^p50 [\d.]+ (us|ms) \/ p99 [\d.]+ (us|ms) \/ p99\.9 [\d.]+ (us|ms); pacer late p99 [\d.]+ (us|ms) \/ max [\d.]+ (us|ms); PING /,
  );
  assert.match(load, new RegExp(`^${publishers} pubs? -> 1 sub`));
}

Deno.test("Pacer.next() serves every tick once and records each one's lateness", async () => {
  const pacer = await Pacer.start();
  try {
    pacer.begin(0.5, 40);
    let served = 0;
    for (let calls = 0; served < 40 && calls < 10_000; calls++) {
      const now = await pacer.next();
      assert.ok(now >= served, `ticks went back from ${served} to ${now}`);
      served = now;
    }
    assert.equal(served, 40);
    const late = pacer.lateness();
    assert.equal(late.length, 40);
    assert.ok(late.every((ms, i) => ms >= 0 && (i === 0 || ms >= late[i - 1])), "sorted, >= 0");
    // The warm-up's ticks (the first 10 ms, 20 ticks) are left out on request.
    assert.equal(pacer.lateness(10).length, 20);
  } finally {
    pacer.stop();
  }
});

Deno.test("formatMicroseconds() gives us below a millisecond and ms above", () => {
  assert.equal(formatMicroseconds(71), "71 us");
  assert.equal(formatMicroseconds(2_104), "2.10 ms");
  assert.equal(formatMicroseconds(NaN), "-");
});

Deno.test("bench fanout-1to1000: each of 1,000 subscribers counted every relayed message", async () => {
  const { metrics, load } = await runTiny("fanout-1to1000", {
    connections: 1,
    subscribers: 1000,
    messages: 20,
    size: 64,
  });
  assert.equal(metrics.delivered, 1000 * 20);
  assert.equal(metrics.printed, 20);
  assert.match(load, /-> 1000 sub$/);
});

Deno.test("bench fanout-nats: every NATS subscriber counted every message nats-server relayed", async () => {
  for (const [name, subscribers] of [["fanout-nats-1to100", 5], ["fanout-nats-1to1000", 1000]]) {
    const { metrics, load, figure } = await runTiny(String(name), {
      connections: 1,
      subscribers: Number(subscribers),
      messages: 30,
      size: 64,
    });
    assert.equal(metrics.published, 30);
    assert.equal(metrics.delivered, Number(subscribers) * 30);
    assert.match(String(metrics.nats), /^nats:\/\/127\.0\.0\.1:\d+$/);
    assert.match(load, new RegExp(`-> ${subscribers} sub, nats-server$`));
    assert.match(figure, /^[\d,]+ delivered\/s, [\d,]+ published\/s$/);
  }
});

Deno.test("RelayCounter.push() counts NATS's MSG frames, PINGs and PONGs split at any byte", () => {
  assertCountsSplitAnywhere(
    "nats",
    'INFO {"server_id":"x","max_payload":1048576}\r\n' +
      "MSG bench 1 5\r\nhello\r\nPING\r\n+OK\r\n" +
      "MSG bench 12 reply.to 0\r\n\r\n" +
      // A payload that looks like frames is skipped whole.
      "MSG bench 1 15\r\nPONG\r\nMSG x 1 1\r\nPONG\r\n",
    { msgs: 3, pings: 1, pongs: 1 },
  );
});

Deno.test("RelayCounter.push() counts parrot's MSG frames, PINGs and PONGs split at any byte", () => {
  assertCountsSplitAnywhere(
    "parrot",
    "PONG\nMSG bob 5\nhello\nMSG 127.0.0.1:5000 0\n\nPING\n" +
      "MSG ann 12\nPONG\nMSG x 1\nPONG\n",
    { msgs: 3, pings: 1, pongs: 2 },
  );
});

/** Pushes `stream` whole, then 1, 2, 3 and 7 bytes at a time: the same counts each way. */
function assertCountsSplitAnywhere(
  wire: "parrot" | "nats",
  stream: string,
  expected: { msgs: number; pings: number; pongs: number },
): void {
  const bytes = new TextEncoder().encode(stream);
  const whole = new RelayCounter(wire).push(bytes);
  assert.deepEqual({ ...whole }, { ...expected, error: null });
  for (const step of [1, 2, 3, 7]) {
    const counter = new RelayCounter(wire);
    const sum = { msgs: 0, pings: 0, pongs: 0 };
    for (let i = 0; i < bytes.length; i += step) {
      const counts = counter.push(bytes.subarray(i, i + step));
      assert.equal(counts.error, null);
      sum.msgs += counts.msgs;
      sum.pings += counts.pings;
      sum.pongs += counts.pongs;
    }
    assert.deepEqual(sum, expected, `${step} bytes at a time`);
  }
}

Deno.test("RelayCounter.push() reports the server's error, QUIT, a bad size and an overlong line", () => {
  const encode = (text: string) => new TextEncoder().encode(text);
  assert.equal(
    new RelayCounter("nats").push(encode("-ERR 'Authorization Violation'\r\n")).error,
    "-ERR 'Authorization Violation'",
  );
  assert.equal(
    new RelayCounter("parrot").push(encode("ERR slow consumer\n")).error,
    "ERR slow consumer",
  );
  assert.equal(new RelayCounter("parrot").push(encode("QUIT\n")).error, "QUIT");
  // parrot has no +OK or INFO.
  assert.equal(new RelayCounter("parrot").push(encode("+OK\n")).error, "+OK");
  assert.match(
    String(new RelayCounter("nats").push(encode("MSG bench 1 abc\r\n")).error),
    /^Cannot read the size of a MSG frame/,
  );
  assert.match(
    String(new RelayCounter("parrot").push(encode("MSG bob 99999999999\n")).error),
    /^Cannot read the size of a MSG frame/,
  );
  const long = new RelayCounter("parrot");
  assert.equal(long.push(new Uint8Array(60 * 1024).fill(0x41)).error, null);
  assert.match(String(long.push(new Uint8Array(8 * 1024).fill(0x41)).error), /longer than/);
  // After an error, nothing more is counted.
  const failed = new RelayCounter("parrot");
  failed.push(encode("ERR flood\n"));
  assert.equal(failed.push(encode("MSG bob 1\nx\n")).msgs, 0);
});

Deno.test("bench latency: every paced message reached the subscriber and was timed", async () => {
  assertLatencyRow(await runTiny("latency", TINY_LATENCY), 5);
});

Deno.test("bench latency-1pub: one publisher's every message was timed, the pacer's lateness beside", async () => {
  assertLatencyRow(await runTiny("latency-1pub", { ...TINY_LATENCY, publishers: 1 }), 1);
});

Deno.test("bench latency-ws: a WebSocket subscriber got and timed every message", async () => {
  const result = await runTiny("latency-ws", TINY_LATENCY);
  assertLatencyRow(result, 5);
  assert.match(result.load, /1 sub on WebSocket/);
});

Deno.test("bench latency-ws under --threads 2 fails at once, saying /ws needs one thread", async () => {
  const scenario = SCENARIOS.find((s) => s.name === "latency-ws");
  assert.ok(scenario);
  const result = await runBenchScenario(scenario, {
    quick: true,
    cores: 2,
    sizes: TINY_LATENCY,
    serverFlags: ["--threads", "2"],
  });
  assert.equal(result.passed, false);
  assert.deepEqual(result.failures, [
    "latency-ws needs one thread: the server answers /ws 501 with --threads 2",
  ]);
});

Deno.test("bench latency-cluster: a subscriber on server B got every message published on A", async () => {
  const result = await runTiny("latency-cluster", TINY_LATENCY);
  assertLatencyRow(result, 5);
  assert.match(result.load, /1 sub on server B \(via NATS\)/);
  assert.match(String(result.metrics.nats), /^nats:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(typeof result.metrics.serverBPercent, "number");
  assert.match(result.figure, /; server B CPU \d+%$/);
});

Deno.test("bench idle and churn: every connection got its PONG", async () => {
  const idle = await runTiny("idle", { connections: 50, concurrency: 10 });
  assert.equal(idle.metrics.connections, 50);
  assert.equal(typeof idle.metrics.bytesPerConnection, "number");
  const churn = await runTiny("churn", { cycles: 20, timeMs: 10_000 });
  assert.equal(churn.metrics.cycles, 20);
  assert.equal(churn.metrics.failed, 0);
});

Deno.test("bench's stdout check counts every sender's records and sees a missing one", async () => {
  const file = await Deno.makeTempFile({ prefix: "parrot-bench-", suffix: ".out" });
  try {
    // c1 lost one message; a stray line and a record of an unknown sender are "other".
    await Deno.writeTextFile(file, "c0: a:b\nc1: x\nc0: \nstray\nc12: y\nc0: z\n");
    const counts = await countRecords(file, "c", 2);
    assert.deepEqual(counts.perSender, [3, 1]);
    assert.equal(counts.other, 2);
    assert.equal(counts.lines, 6);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("bench --only selects scenarios and groups, and refuses unknown names", () => {
  assert.deepEqual(selectScenarios(["fanout"]).map((s) => s.name), [
    "fanout-3to1",
    "fanout-1to100",
    "fanout-1to1000",
    "fanout-nats-1to100",
    "fanout-nats-1to1000",
  ]);
  assert.deepEqual(selectScenarios(["fanout-nats"]).map((s) => s.name), [
    "fanout-nats-1to100",
    "fanout-nats-1to1000",
  ]);
  assert.deepEqual(selectScenarios(["latency"]).map((s) => s.name), [
    "latency",
    "latency-1pub",
    "latency-ws",
    "latency-cluster",
  ]);
  assert.deepEqual(selectScenarios(["churn", "idle"]).map((s) => s.name), ["idle", "churn"]);
  assert.throws(() => selectScenarios(["nope"]), /no such scenario/);
});

Deno.test("deno task bench --quick --only churn --threads 1 writes a passing JSON report", async () => {
  const jsonFile = await Deno.makeTempFile({ prefix: "parrot-bench-", suffix: ".json" });
  try {
    const { code, stdout, stderr } = await runDeno([
      "task",
      "-q",
      "bench",
      "--quick",
      "--only",
      "churn",
      "--threads",
      "1",
      "--json",
      jsonFile,
    ]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /\| churn \|.*\| PASS \|/);
    assert.match(stdout, new RegExp(`wrote ${jsonFile}`));
    const report = JSON.parse(await Deno.readTextFile(jsonFile)) as BenchReport;
    assert.equal(report.sizes, "quick");
    assert.deepEqual(report.serverFlags, ["--threads", "1"]);
    assert.match(stdout, /; server --threads 1\)/);
    assert.equal(report.passed, true);
    assert.equal(typeof report.machine.cores, "number");
    assert.equal(typeof report.machine.cpuModel, "string");
    assert.equal(report.machine.deno, Deno.version.deno);
    assert.match(report.machine.commit, /^([0-9a-f]{4,}|unknown)$/);
    assert.deepEqual(report.results.map((r) => r.name), ["churn"]);
    const [churn] = report.results;
    assert.equal(churn.passed, true);
    assert.deepEqual(churn.failures, []);
    assert.ok(churn.cpu && typeof churn.cpu.bound === "string");
    assert.equal(typeof churn.metrics.cyclesPerSecond, "number");
  } finally {
    await Deno.remove(jsonFile).catch(() => {});
  }
});

Deno.test("deno task bench refuses a usage mistake with exit 2", async () => {
  const { code, stderr } = await runDeno(["task", "-q", "bench", "--only", "nope"]);
  assert.equal(code, 2);
  assert.match(stderr, /^error: Cannot use --only "nope"/);
  const threads = await runDeno(["task", "-q", "bench", "--threads", "0"]);
  assert.equal(threads.code, 2);
  assert.match(threads.stderr, /^error: Cannot use --threads "0": expected a whole number/);
});

Deno.test("bench fan-out through NATS: both runs delivered every message, and the row gives the ratio", async () => {
  const { metrics, figure } = await runTiny("cluster-fanout-3to1", {
    connections: 2,
    subscribers: 1,
    messages: 500,
    size: 64,
  });
  assert.equal(metrics.delivered, 2 * 1_000);
  assert.equal(metrics.printed, 2 * 1_000);
  assert.ok(Number(metrics.deliveredPerSecondThroughNats) > 0);
  assert.match(figure, /delivered\/s through NATS, [\d,]+ on one server \(\d+%\)$/);
});
