/**
 * Scenarios 4 and 6: connections that come and go the hard way.
 *
 * The flood (4) opens and closes connections by the thousand and knocks over the
 * client limit; the server must refuse with `ERR too many clients` and give back
 * every fd. Killed clients (6) are real `client.ts` processes killed with SIGKILL
 * mid-stream, plus connections that close with unread data (so the kernel sends RST);
 * the others must not notice, and the slots must come back. Both are about the
 * server's bookkeeping of connections, hence one module.
 *
 * @module
 */

import { CLIENT_RUN_ARGS, DENO, RawClient, spawn, waitFor } from "../../lib/testing.ts";
import { countPrinted, HealthyClient, writeAll } from "./clients.ts";
import {
  checkDeadline,
  Checks,
  formatMegabytes,
  mapConcurrent,
  readTcpTable,
  type ScenarioContext,
  type ScenarioOutcome,
  type Sizes,
  TCP_ESTABLISHED,
  TortureServer,
  within,
} from "../shared/harness.ts";

const encoder = new TextEncoder();
/** Open fds the server may hold above its starting count once everyone has left. */
const FD_MARGIN = 2;
/**
 * Live heap the server may hold after a flood, over what it held before, once it has
 * gone quiet (the server collects garbage then). A leak of per-connection objects
 * would show here.
 */
const HEAP_MARGIN_MB = 10;
/** How long the server may take to go quiet and collect after the flood. */
const SETTLE_MS = 10_000;
/**
 * Memory the server may keep over its cold start once quiet after a flood: its
 * anonymous RSS, the memory it allocated. The rest of RSS is the deno executable's
 * pages, paged in as code runs for the first time; the table shows it beside
 * (docs/LIMITS.md, "Connection churn").
 */
const FLOOD_RSS_MARGIN_BYTES = 20_000_000;
/** How long RSS may take to come down after the flood (the collection waits for 1 s of quiet). */
const RSS_SETTLE_MS = 15_000;

/** What one pass of the flood saw. */
interface FloodPass {
  connectErrors: number;
  knocks: { received: string; closed: boolean }[];
}

/**
 * Sizes: `cycles`, `overLimit`, `maxClients`, `concurrency`. The flood runs as two
 * equal passes, each churning `cycles / 2` connections and knocking `overLimit / 2`
 * times over the limit; RSS is probed cold, between the passes and after them.
 */
export async function runConnectionFlood(
  context: ScenarioContext,
  sizes: Sizes,
): Promise<ScenarioOutcome> {
  await using server = await TortureServer.start(context, "flood", [
    "--max-clients",
    String(sizes.maxClients),
    "--stats",
    "200ms",
  ]);
  const warmUp = await RawClient.connect(server.port);
  await warmUp.ping();
  await warmUp.close();
  await server.waitForClientCount(0);
  const before = await server.probe();
  const heapBefore = server.latestStat("heap_mb");
  // Connections made so far. A closed connect may still wait in the listen queue, so
  // "no clients" means nothing until the server has accepted all of them.
  let connectsMade = 1;
  const allAccepted = () =>
    waitFor(
      () => server.latestStat("accepted") >= connectsMade,
      "the server to accept every connection made",
      20_000,
      20,
    );
  const deadline = Date.now() + 240_000;

  const pass = async (label: string): Promise<FloodPass> => {
    const cycles = Math.ceil(sizes.cycles / 2);
    // Connect and close at once, below the limit.
    let connectErrors = 0;
    let cycled = 0;
    await mapConcurrent(Array.from({ length: cycles }), sizes.concurrency, async () => {
      checkDeadline(deadline, "connect/close cycles");
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        connectsMade++;
        conn.close();
      } catch {
        connectErrors++;
      }
      if (++cycled % 200 === 0) context.progress(`${label}: ${cycled}/${cycles} connect/close`);
    });
    // Fill every slot, then knock: each knock must be refused with ERR and closed.
    await allAccepted();
    await server.waitForClientCount(0);
    const held = await mapConcurrent(Array.from({ length: sizes.maxClients }), 10, async () => {
      const client = await RawClient.connect(server.port);
      connectsMade++;
      await client.ping().catch((error) => {
        throw new Error(
          `${error.message}; the held client got ${JSON.stringify(client.received.text())}`,
        );
      });
      return client;
    });
    await server.waitForClientCount(sizes.maxClients);
    let knocked = 0;
    const overLimit = Math.ceil(sizes.overLimit / 2);
    const knocks = await mapConcurrent(
      Array.from({ length: overLimit }),
      sizes.concurrency,
      async () => {
        checkDeadline(deadline, "attempts over the limit");
        const client = await RawClient.connect(server.port);
        connectsMade++;
        const closed = await within(client.received.done.then(() => true), 5_000, false);
        await client.close();
        if (++knocked % 100 === 0) context.progress(`${label}: ${knocked}/${overLimit} refused`);
        return { received: client.received.text(), closed };
      },
    );
    await Promise.all(held.map((client) => client.close()));
    await server.waitForClientCount(0);
    return { connectErrors, knocks };
  };

  const first = await pass("pass 1");
  await server.waitForFdsAtMost(before.fds + FD_MARGIN, 10_000);
  const middle = await server.probe();
  const second = await pass("pass 2");
  const stillServed = await RawClient.connect(server.port).catch(() => undefined);
  await stillServed?.ping();
  await stillServed?.close();
  await server.waitForClientCount(0);
  const fdsAfter = await server.waitForFdsAtMost(before.fds + FD_MARGIN, 10_000);
  const loaded = await server.probe();
  // Quiet now: the server collects, and its live heap must be back where it was.
  let heapSettled = true;
  await waitFor(
    () => server.latestStat("heap_mb") <= heapBefore + HEAP_MARGIN_MB,
    "the live heap to settle",
    SETTLE_MS,
    50,
  ).catch(() => heapSettled = false);
  const heapAfter = server.latestStat("heap_mb");
  // V8 hands pooled pages back some seconds after the collection.
  const after = await server.waitForProbe(
    (probe) => probe.anonymousBytes <= before.anonymousBytes + FLOOD_RSS_MARGIN_BYTES,
    RSS_SETTLE_MS,
  );
  const exitCode = await server.stop();

  const knocks = [...first.knocks, ...second.knocks];
  const connectErrors = first.connectErrors + second.connectErrors;
  const refused = knocks.filter((k) => k.received === "ERR too many clients\n" && k.closed).length;
  const odd = knocks.find((k) => k.received !== "ERR too many clients\n");
  const checks = new Checks();
  checks.expect(connectErrors === 0, `${connectErrors} connects failed during the churn`);
  checks.expect(
    refused === knocks.length,
    `${knocks.length - refused} attempts over the limit were not refused with ERR too many clients${
      odd ? ` (one got ${JSON.stringify(odd.received.slice(0, 60))})` : ""
    }`,
  );
  checks.expect(stillServed !== undefined, "the server took no connection after the flood");
  checks.expect(
    fdsAfter <= before.fds + FD_MARGIN,
    `open fds ${before.fds} -> ${fdsAfter} (margin ${FD_MARGIN})`,
  );
  checks.expect(
    heapSettled,
    `live heap ${heapBefore} MB -> ${heapAfter} MB after the flood (margin ${HEAP_MARGIN_MB} MB)`,
  );
  const keptBytes = after.anonymousBytes - before.anonymousBytes;
  checks.expect(
    keptBytes <= FLOOD_RSS_MARGIN_BYTES,
    `anonymous RSS ${formatMegabytes(before.anonymousBytes)} -> ${
      formatMegabytes(after.anonymousBytes)
    } once quiet (margin ${formatMegabytes(FLOOD_RSS_MARGIN_BYTES)})`,
  );
  checks.expect(exitCode === 0, `server exited ${exitCode} on SIGTERM`);
  const signed = (bytes: number) => `${bytes >= 0 ? "+" : ""}${formatMegabytes(bytes)}`;
  return {
    sent:
      `${sizes.cycles} connect/close cycles (${sizes.concurrency} at a time); ${sizes.maxClients} held + ${sizes.overLimit} attempts over --max-clients ${sizes.maxClients}; in two equal passes`,
    serverDid: `refused ${refused}/${knocks.length} with ERR too many clients; fds back within ${
      fdsAfter - before.fds
    } of the start (margin ${FD_MARGIN}); live heap ${heapBefore} -> ${heapAfter} MB once quiet (margin ${HEAP_MARGIN_MB} MB); RSS ${
      signed(middle.rssBytes - before.rssBytes)
    } after pass 1, ${signed(loaded.rssBytes - before.rssBytes)} after pass 2, ${
      signed(after.rssBytes - before.rssBytes)
    } once quiet, of which allocated memory ${signed(keptBytes)} (margin ${
      formatMegabytes(FLOOD_RSS_MARGIN_BYTES)
    }) and the rest deno's code paged in`,
    lost: null,
    before,
    after: { ...after, fds: fdsAfter },
    failures: checks.failures,
    metrics: {
      cycles: sizes.cycles,
      connectErrors,
      overLimit: knocks.length,
      refused,
      fdsBefore: before.fds,
      fdsAfter,
      rssBeforeBytes: before.rssBytes,
      rssMiddleBytes: middle.rssBytes,
      rssLoadedBytes: loaded.rssBytes,
      rssAfterBytes: after.rssBytes,
      anonymousBeforeBytes: before.anonymousBytes,
      anonymousAfterBytes: after.anonymousBytes,
      heapBeforeMb: heapBefore,
      heapAfterMb: heapAfter,
    },
  };
}

/**
 * Waits until each of the local `ports` has unread bytes in its kernel receive queue;
 * returns how many bytes they hold in all.
 */
async function waitForUnreadBytes(ports: number[], serverPort: number, timeoutMs: number) {
  const wanted = new Set(ports);
  let unreadBytes = 0;
  await waitFor(
    async () => {
      const unread = (await readTcpTable()).filter((s) =>
        wanted.has(s.localPort) && s.remotePort === serverPort && s.state === TCP_ESTABLISHED &&
        s.receiveQueue > 0
      );
      unreadBytes = unread.reduce((sum, s) => sum + s.receiveQueue, 0);
      return unread.length === wanted.size;
    },
    "unread bytes",
    timeoutMs,
    50,
  );
  return unreadBytes;
}

/** Sizes: `processes` (client.ts processes killed with SIGKILL), `resets` (RST connections). */
export async function runKilledClients(
  context: ScenarioContext,
  sizes: Sizes,
): Promise<ScenarioOutcome> {
  await using server = await TortureServer.start(context, "killed", ["--stats", "200ms"]);
  const healthy = await HealthyClient.start(server.port, "healthy");
  await server.waitForClientCount(1);
  const before = await server.probe();
  const checks = new Checks();

  context.progress(`starting ${sizes.processes} client processes`);
  const victims = Array.from({ length: sizes.processes }, (_, i) =>
    spawn(DENO, [
      ...CLIENT_RUN_ARGS,
      String(server.port),
      "--interval",
      "1ms",
      "--name",
      `victim${i}`,
      "--message",
      `from victim${i}`,
    ]));
  // Mid-stream: every victim has written messages, and the server has printed some.
  await waitFor(
    () => victims.every((v) => v.stdout.text().split("write ").length > 20),
    "every client process writing",
    60_000,
  );
  await server.waitForClientCount(1 + sizes.processes, 20_000);
  for (const victim of victims) victim.child.kill("SIGKILL");
  const statuses = await Promise.all(victims.map((v) => v.status));
  const killed = statuses.filter((s) => s.signal === "SIGKILL").length;
  checks.expect(killed === victims.length, `${victims.length - killed} victims were not killed`);
  await server.waitForClientCount(1, 20_000).catch(() => {
    checks.expect(false, "the slots of the killed clients were not freed");
  });

  context.progress(`${sizes.resets} connections closing with unread data (RST)`);
  const resetters = await mapConcurrent(Array.from({ length: sizes.resets }), 50, async (_, i) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    // Ends in the middle of a frame, so the reset lands mid-frame.
    await writeAll(conn, encoder.encode(`HELLO reset${i}\nPING\nMSG 100\nhalf a fra`));
    return conn;
  });
  // The PONG and the healthy client's relayed messages sit unread: closing now sends RST.
  const unreadBytes = await waitForUnreadBytes(
    resetters.map((conn) => (conn.localAddr as Deno.NetAddr).port),
    server.port,
    20_000,
  );
  for (const conn of resetters) conn.close();
  await server.waitForClientCount(1, 20_000).catch(() => {
    checks.expect(false, "the slots of the reset connections were not freed");
  });

  const healthyResult = await healthy.stop();
  await server.waitForClientCount(0, 10_000).catch(() => {});
  const after = await server.probe();
  const exitCode = await server.stop();
  const stdout = await server.readStdout();
  const printed = countPrinted(stdout, "healthy", healthyResult.sent);
  const victimLines = victims.map((_, i) =>
    stdout.split("\n").filter((l) => l === `victim${i}: from victim${i}`).length
  );
  checks.expect(healthyResult.error === undefined, `healthy client: ${healthyResult.error}`);
  checks.expect(printed.lost === 0, `${printed.lost} healthy messages lost`);
  checks.expect(printed.duplicates === 0, `${printed.duplicates} healthy messages printed twice`);
  checks.expect(victimLines.every((n) => n > 0), "a victim's messages never reached stdout");
  checks.expect(!/failed:|\bat .*\.ts:\d+/.test(server.stderr), "the server logged a failure");
  checks.expect(exitCode === 0, `server exited ${exitCode} on SIGTERM`);
  return {
    sent:
      `${sizes.processes} client.ts processes (--interval 1ms) killed with SIGKILL mid-stream; ${sizes.resets} conns reset mid-frame (closed with ${unreadBytes} unread bytes: RST); healthy: ${healthyResult.sent} msgs`,
    serverDid: `printed ${
      victimLines.reduce((a, b) => a + b, 0)
    } victim msgs before the kills; client count back to 1 after the kills and the resets; healthy msgs printed ${printed.printed}`,
    lost: printed.lost,
    before,
    after,
    failures: checks.failures,
    metrics: {
      processesKilled: killed,
      resets: sizes.resets,
      unreadBytesAtReset: unreadBytes,
      victimMessagesPrinted: victimLines.reduce((a, b) => a + b, 0),
      healthySent: healthyResult.sent,
      healthyLost: printed.lost,
    },
  };
}
