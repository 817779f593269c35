/**
 * Scenarios 3 and 5: peers that are slow on purpose, on either side of the server.
 *
 * Slowloris (3) sends an unfinished frame one byte a second and must be evicted by the
 * read deadline while a healthy sender keeps flowing. The slow consumer (5) never
 * reads while a publisher sends megabyte messages; it must be cut off once its queue
 * crosses --max-outbound, while the subscribers that read get everything. Both are
 * about one bad peer not costing the others, hence one module.
 *
 * @module
 */

import { delay } from "../../lib/net/delay.ts";
import { msg, RawClient, waitFor } from "../../lib/testing.ts";
import { countPrinted, HealthyClient, RelayCounter } from "./clients.ts";
import {
  checkDeadline,
  Checks,
  formatMegabytes,
  mapConcurrent,
  readTcpTable,
  type ScenarioContext,
  type ScenarioOutcome,
  type Sizes,
  TortureServer,
  within,
} from "../shared/harness.ts";

const encoder = new TextEncoder();

/** One slowloris connection: what it sent and how it ended. */
interface SlowlorisOutcome {
  bytesSent: number;
  received: string;
  closed: boolean;
  /** Milliseconds from its first byte to the server's close. */
  evictedAfterMs: number;
}

/** Sends `frame` one byte every `intervalMs` until the server closes (or `giveUpMs`). */
async function slowloris(
  port: number,
  frame: Uint8Array,
  intervalMs: number,
  giveUpMs: number,
): Promise<SlowlorisOutcome> {
  const client = await RawClient.connect(port);
  let closed = false;
  client.received.done.then(() => closed = true);
  const firstByteAt = performance.now();
  let bytesSent = 0;
  while (bytesSent < frame.length && !closed && performance.now() - firstByteAt < giveUpMs) {
    try {
      await client.write(frame.subarray(bytesSent, bytesSent + 1));
    } catch {
      break; // Closed by the server between two bytes.
    }
    bytesSent++;
    // The pace of the attack itself; wakes early when the server closes.
    await within(client.received.done, intervalMs, undefined);
  }
  const left = giveUpMs - (performance.now() - firstByteAt);
  await within(client.received.done, Math.max(left, 0), undefined);
  const evictedAfterMs = Math.round(performance.now() - firstByteAt);
  await client.close();
  return { bytesSent, received: client.received.text(), closed, evictedAfterMs };
}

/** Sizes: `connections`, `measureMs` (the healthy client's baseline window). */
export async function runSlowloris(
  context: ScenarioContext,
  sizes: Sizes,
): Promise<ScenarioOutcome> {
  const readTimeoutMs = 2_000;
  const evictionMarginMs = 2_000;
  await using server = await TortureServer.start(context, "slowloris", [
    "--read-timeout",
    `${readTimeoutMs}ms`,
    "--no-broadcast",
  ]);
  const healthy = await HealthyClient.start(server.port, "healthy");
  const before = await server.probe();
  context.progress("measuring the healthy client alone");
  const baselineRate = await healthy.rateUntil(delay(sizes.measureMs));
  const payload = "z".repeat(64);
  const frame = encoder.encode(`MSG ${payload.length}\n${payload}\n`);
  context.progress(`${sizes.connections} slowloris connections, one byte a second`);
  const attack = mapConcurrent(
    Array.from({ length: sizes.connections }),
    sizes.connections,
    () => slowloris(server.port, frame, 1_000, readTimeoutMs + evictionMarginMs + 5_000),
  );
  const attackRate = await healthy.rateUntil(attack);
  const outcomes = await attack;
  const healthyResult = await healthy.stop();
  const after = await server.probe();
  const exitCode = await server.stop();
  const printed = countPrinted(await server.readStdout(), "healthy", healthyResult.sent);

  const checks = new Checks();
  const limitMs = readTimeoutMs + evictionMarginMs;
  const timedOut = outcomes.filter((o) => o.received === "ERR read timeout\n" && o.closed).length;
  const late = outcomes.filter((o) => o.evictedAfterMs > limitMs).length;
  const slowest = Math.max(...outcomes.map((o) => o.evictedAfterMs));
  const odd = outcomes.find((o) => o.received !== "ERR read timeout\n");
  checks.expect(
    timedOut === outcomes.length,
    `${outcomes.length - timedOut} connections did not get "ERR read timeout" and a close${
      odd ? ` (one got ${JSON.stringify(odd.received.slice(0, 60))})` : ""
    }`,
  );
  checks.expect(late === 0, `${late} evicted later than ${limitMs} ms after their first byte`);
  checks.expect(healthyResult.error === undefined, `healthy client: ${healthyResult.error}`);
  checks.expect(printed.lost === 0, `${printed.lost} healthy messages lost`);
  checks.expect(exitCode === 0, `server exited ${exitCode} on SIGTERM`);
  const bytesEach = outcomes.map((o) => o.bytesSent);
  return {
    sent: `${outcomes.length} conns, 1 byte/s of an unfinished frame (${Math.min(...bytesEach)}-${
      Math.max(...bytesEach)
    } bytes each); healthy: ${healthyResult.sent} msgs`,
    serverDid:
      `ERR read timeout + close to ${timedOut}/${outcomes.length}, slowest ${slowest} ms after the first byte (read timeout ${readTimeoutMs} ms); healthy ${baselineRate} msgs/s alone, ${attackRate} msgs/s under attack`,
    lost: printed.lost,
    before,
    after,
    failures: checks.failures,
    metrics: {
      connections: outcomes.length,
      readTimeouts: timedOut,
      slowestEvictionMs: slowest,
      healthyBaselineMsgsPerSec: baselineRate,
      healthyUnderAttackMsgsPerSec: attackRate,
      healthySent: healthyResult.sent,
      healthyLost: printed.lost,
    },
  };
}

/** Bytes the kernel holds for one connection: unread at the client, unacknowledged at the server. */
async function kernelHeldBytes(serverPort: number, clientPort: number): Promise<number> {
  let held = 0;
  for (const socket of await readTcpTable()) {
    if (socket.localPort === clientPort && socket.remotePort === serverPort) {
      held += socket.receiveQueue;
    } else if (socket.localPort === serverPort && socket.remotePort === clientPort) {
      held += socket.sendQueue;
    }
  }
  return held;
}

/** Sizes: `messages`, `messageBytes`, `maxOutbound`, `readers`. */
export async function runSlowConsumers(
  context: ScenarioContext,
  sizes: Sizes,
): Promise<ScenarioOutcome> {
  const cutOffWithinMs = 2_000;
  const maxFrame = Math.max(sizes.messageBytes, 1_048_576);
  await using server = await TortureServer.start(context, "slow-consumer", [
    "--max-frame",
    String(maxFrame),
    "--max-outbound",
    String(sizes.maxOutbound),
    "--stats",
    "200ms",
  ]);
  const readers = await Promise.all(
    Array.from(
      { length: sizes.readers },
      (_, i) => RelayCounter.connect(server.port, `reader${i}`, maxFrame),
    ),
  );
  const publisher = await RawClient.connect(server.port);
  await publisher.write("HELLO pub\nUNSUB\n");
  await publisher.ping();
  const baselineClients = sizes.readers + 1;
  await server.waitForClientCount(baselineClients);
  const sleeper = await RelayCounter.connect(server.port, "sleeper", maxFrame, { paused: true });
  await server.waitForClientCount(baselineClients + 1);
  const sleeperPort = (sleeper.conn.localAddr as Deno.NetAddr).port;
  const before = await server.probe();

  const frame = msg(new Uint8Array(sizes.messageBytes).fill(0x70));
  const relayedBytes = `MSG pub ${sizes.messageBytes}\n`.length + sizes.messageBytes + 1;
  const checks = new Checks();
  const cutOffLogged = () => /slow consumer/.test(server.stderr);
  let crossed: { message: number; at: number } | undefined;
  let cutOff: { message: number; at: number } | undefined;
  let maxKernelHeld = 0;
  const deadline = Date.now() + 120_000;
  for (let i = 1; i <= sizes.messages; i++) {
    checkDeadline(deadline, "publishing");
    await publisher.write(frame);
    await publisher.ping(60_000); // The barrier: message i has been handed to the relay.
    if (!cutOff && !crossed) {
      // What the server still holds for the sleeper is at least what it was sent minus what
      // the kernel buffers took; past --max-outbound the bound was crossed for certain.
      const held = await kernelHeldBytes(server.port, sleeperPort);
      maxKernelHeld = Math.max(maxKernelHeld, held);
      if (i * relayedBytes - held > sizes.maxOutbound) {
        crossed = { message: i, at: performance.now() };
      }
    }
    if (!cutOff && cutOffLogged()) cutOff = { message: i, at: performance.now() };
    if (cutOff) sleeper.startReading(); // Drain it now, so its ERR line can get through.
    context.progress(`${i}/${sizes.messages} messages of ${formatMegabytes(sizes.messageBytes)}`);
  }
  if (!cutOff) {
    await server.process.stderr.waitForText("slow consumer", cutOffWithinMs).catch(() => "");
    if (cutOffLogged()) cutOff = { message: sizes.messages, at: performance.now() };
    else checks.expect(false, "the sleeper was never cut off as a slow consumer");
  }
  sleeper.startReading();
  const readersDone = await Promise.all(
    readers.map((reader) => waitForCount(reader, "pub", sizes.messages, 60_000)),
  ).then(() => true, () => false);
  checks.expect(readersDone, "the readers did not get every message within 60 s");
  const sleeperClosed = await within(sleeper.done.then(() => true), 10_000, false);
  let clientsBack = true;
  try {
    await server.waitForClientCount(baselineClients, 10_000);
  } catch {
    clientsBack = false;
  }
  const after = await server.probe();
  await Promise.all([...readers.map((r) => r.close()), publisher.close(), sleeper.close()]);
  const exitCode = await server.stop();

  const lost = readers.reduce((sum, r) => sum + (sizes.messages - r.from("pub")), 0);
  // Zero when the cut-off came before the outside estimate could prove the bound crossed.
  const cutOffLatencyMs = cutOff && crossed ? Math.max(0, Math.round(cutOff.at - crossed.at)) : 0;
  const logLine = server.stderr.split("\n").find((line) => line.includes("slow consumer")) ?? "";
  checks.expect(
    cutOffLatencyMs <= cutOffWithinMs,
    `cut off ${cutOffLatencyMs} ms after the bound was surely crossed (limit ${cutOffWithinMs} ms)`,
  );
  checks.expect(
    sleeper.count.error === "slow consumer",
    `the sleeper's last line was not "ERR slow consumer" (error: ${sleeper.count.error})`,
  );
  checks.expect(sleeperClosed, "the sleeper's connection was not closed");
  checks.expect(lost === 0, `the readers missed ${lost} messages`);
  checks.expect(clientsBack, `the client count did not return to ${baselineClients}`);
  checks.expect(exitCode === 0, `server exited ${exitCode} on SIGTERM`);
  return {
    sent: `${sizes.messages} x ${
      formatMegabytes(sizes.messageBytes)
    } to ${sizes.readers} readers and a sleeper that never reads (Deno cannot shrink its receive buffer; the kernel took up to ${
      formatMegabytes(maxKernelHeld)
    }); --max-outbound ${formatMegabytes(sizes.maxOutbound)}`,
    serverDid: `cut the sleeper off ${cutOff ? `by message ${cutOff.message}` : "never"} (${
      crossed
        ? `${cutOffLatencyMs} ms after the bound was surely crossed at message ${crossed.message}`
        : "before the bound could be proven crossed from outside"
    }), it got ${sleeper.from("pub")} msgs then ERR ${sleeper.count.error ?? "-"}; readers got ${
      readers.map((r) => r.from("pub")).join("+")
    }; clients back to ${baselineClients}: ${clientsBack}`,
    lost,
    before,
    after,
    failures: checks.failures,
    metrics: {
      messages: sizes.messages,
      messageBytes: sizes.messageBytes,
      maxOutbound: sizes.maxOutbound,
      cutOffByMessage: cutOff?.message ?? -1,
      boundCrossedByMessage: crossed?.message ?? -1,
      cutOffLatencyMs,
      sleeperReceived: sleeper.from("pub"),
      sleeperError: sleeper.count.error ?? "",
      maxKernelHeldBytes: maxKernelHeld,
      readersLost: lost,
      clientsBack,
      logLine: logLine.replace(/^.*?parrot\.server: /, ""),
    },
  };
}

/** Waits (at most `timeoutMs`) until `reader` has counted `count` messages from `from`. */
function waitForCount(reader: RelayCounter, from: string, count: number, timeoutMs: number) {
  return waitFor(() => reader.from(from) >= count, `${count} messages at a reader`, timeoutMs, 20);
}
