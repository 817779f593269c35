/**
 * Scenario 7: SIGINT, then SIGTERM on a second server, while many clients pipeline.
 *
 * The approach of tests/shutdown_test.ts, at torture sizes and against a server whose
 * stdout goes to a file: once every client is connected and unsubscribed, each writes
 * batches of numbered messages (a `PING` every few batches keeps the amount in flight
 * bounded) until it sees `QUIT`, then finishes (half say `QUIT`, half close their write
 * side). Every message sent must be
 * printed exactly once, and the server must exit 0 within --grace.
 *
 * @module
 */

import { RawClient } from "../../lib/testing.ts";
import {
  checkDeadline,
  Checks,
  mapConcurrent,
  type ProcessProbe,
  type ScenarioContext,
  type ScenarioOutcome,
  type Sizes,
  TortureServer,
} from "../shared/harness.ts";

const BATCH = 100;
const BATCHES_PER_PING = 5;
/** A pipelining client stops by itself after this many messages. */
export const MAX_PER_CLIENT = 200_000;
const GRACE_MS = 15_000;
/** Time for the process to exit once the last connection is done (log flush, runtime exit). */
const EXIT_MARGIN_MS = 2_000;

/** A connection that has said `HELLO` and `UNSUB` and had them confirmed by `PONG`. */
export async function connectQuiet(port: number, name: string): Promise<RawClient> {
  const client = await RawClient.connect(port);
  await client.write(`HELLO ${name}\nUNSUB\n`);
  await client.ping(30_000);
  return client;
}

/**
 * One pipelining connection: writes batches of `<name>-<n>` messages until the server
 * says QUIT (or `deadline`, ms since the epoch, passes), then leaves: with `QUIT`, or
 * by closing its write side. Returns how many it sent.
 */
export async function pipeline(
  client: RawClient,
  name: string,
  sayQuit: boolean,
  deadline: number,
) {
  let sent = 0;
  while (sent < MAX_PER_CLIENT && !client.received.text().includes("QUIT\n")) {
    checkDeadline(deadline, `${name}'s pipeline`);
    let batch = "";
    for (let i = 0; i < BATCH; i++) {
      const payload = `${name}-${sent + i}`;
      batch += `MSG ${payload.length}\n${payload}\n`;
    }
    await client.write(batch);
    sent += BATCH;
    if ((sent / BATCH) % BATCHES_PER_PING === 0) await client.ping(30_000);
  }
  if (sayQuit) await client.write("QUIT\n");
  else await client.conn.closeWrite();
  await client.closedByServer(GRACE_MS + 10_000);
  await client.close();
  return { name, sent };
}

/** Lines missing from, repeated in, and foreign to `stdout`, given what each client sent. */
export function auditPrinted(stdout: string, results: { name: string; sent: number }[]) {
  const lines = stdout.split("\n").filter((line) => line !== "");
  const seen = new Set(lines);
  const expected = new Set<string>();
  for (const { name, sent } of results) {
    for (let i = 0; i < sent; i++) expected.add(`${name}: ${name}-${i}`);
  }
  let missing = 0;
  for (const line of expected) if (!seen.has(line)) missing++;
  let foreign = 0;
  for (const line of seen) if (!expected.has(line)) foreign++;
  return { printed: lines.length, missing, duplicates: lines.length - seen.size, foreign };
}

interface SignalRun {
  signal: Deno.Signal;
  sent: number;
  missing: number;
  duplicates: number;
  foreign: number;
  exitCode: number;
  exitMs: number;
  before: ProcessProbe;
  underLoad: ProcessProbe;
}

async function shutdownOnce(
  context: ScenarioContext,
  sizes: Sizes,
  signal: Deno.Signal,
): Promise<SignalRun> {
  await using server = await TortureServer.start(context, `shutdown-${signal}`, [
    "--grace",
    `${GRACE_MS}ms`,
    "--max-clients",
    String(sizes.clients + 10),
  ]);
  const before = await server.probe();
  const deadline = Date.now() + 120_000;
  // Everyone is unsubscribed before anyone sends, so nobody has relayed messages to read.
  const connected = await mapConcurrent(
    Array.from({ length: sizes.clients }, (_, i) => `c${i}`),
    50,
    (name) => connectQuiet(server.port, name),
  );
  const clients = Promise.all(
    connected.map((client, i) => pipeline(client, `c${i}`, i % 2 === 0, deadline)),
  );
  clients.catch(() => {}); // Awaited below; a failure before then must not go unhandled.
  // Bounded wait for the load to build up before the signal.
  for (let size = 0; size < sizes.bytesBeforeSignal;) {
    checkDeadline(deadline, "waiting for messages to flow");
    await new Promise((resolve) => setTimeout(resolve, 50));
    size = (await Deno.stat(server.stdoutFile)).size;
    context.progress(`${signal}: ${size} bytes printed before the signal`);
  }
  const underLoad = await server.probe();
  const signalledAt = performance.now();
  server.kill(signal);
  context.progress(`${signal} sent, clients finishing`);
  const results = await clients;
  const exitCode = (await server.process.status).code;
  const exitMs = Math.round(performance.now() - signalledAt);
  const audit = auditPrinted(await server.readStdout(), results);
  const sent = results.reduce((sum, r) => sum + r.sent, 0);
  return { signal, sent, ...audit, exitCode, exitMs, before, underLoad };
}

/** Sizes: `clients`, `bytesBeforeSignal`. */
export async function runShutdownUnderLoad(
  context: ScenarioContext,
  sizes: Sizes,
): Promise<ScenarioOutcome> {
  const runs = [
    await shutdownOnce(context, sizes, "SIGINT"),
    await shutdownOnce(context, sizes, "SIGTERM"),
  ];
  const checks = new Checks();
  for (const run of runs) {
    checks.expect(run.missing === 0, `${run.signal}: ${run.missing} messages lost`);
    checks.expect(run.duplicates === 0, `${run.signal}: ${run.duplicates} printed twice`);
    checks.expect(run.foreign === 0, `${run.signal}: ${run.foreign} lines nobody sent`);
    checks.expect(run.exitCode === 0, `${run.signal}: exit code ${run.exitCode}`);
    checks.expect(
      run.exitMs <= GRACE_MS + EXIT_MARGIN_MS,
      `${run.signal}: exited ${run.exitMs} ms after the signal (--grace ${GRACE_MS} ms)`,
    );
  }
  const describe = (run: SignalRun) => `${run.signal} ${run.sent} msgs`;
  return {
    sent: `${sizes.clients} clients pipelining, signalled mid-stream: ${
      runs.map(describe).join(", ")
    }`,
    serverDid:
      runs.map((run) =>
        `${run.signal}: exit ${run.exitCode} after ${run.exitMs} ms (--grace ${GRACE_MS} ms), ${run.missing} missing, ${run.duplicates} twice`
      ).join("; ") + " (RSS/fds: start -> under load, SIGINT run)",
    lost: runs.reduce((sum, run) => sum + run.missing, 0),
    before: runs[0].before,
    after: runs[0].underLoad,
    failures: checks.failures,
    metrics: Object.fromEntries(runs.flatMap((run) => [
      [`${run.signal}Sent`, run.sent],
      [`${run.signal}Missing`, run.missing],
      [`${run.signal}Duplicates`, run.duplicates],
      [`${run.signal}ExitCode`, run.exitCode],
      [`${run.signal}ExitMs`, run.exitMs],
    ])),
  };
}
