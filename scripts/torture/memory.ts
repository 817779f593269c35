/**
 * Scenario 8: what a connection costs the server, measured from outside.
 *
 * Holds thousands of idle connections (each said `HELLO` and got `PONG`), then, on a
 * server with --token, thousands of unauthenticated connections each holding an
 * unfinished line of junk (under 4096 bytes, so it is buffered, not refused). The
 * server's RSS with them minus before, divided by their number, must stay within the
 * bound docs/LIMITS.md documents.
 *
 * @module
 */

import { RawClient, waitFor } from "../../lib/testing.ts";
import {
  Checks,
  mapConcurrent,
  type ProcessProbe,
  readTcpTable,
  type ScenarioContext,
  type ScenarioOutcome,
  type Sizes,
  TCP_ESTABLISHED,
  TortureServer,
} from "../shared/harness.ts";
import { seededRandom } from "./malformed.ts";

const LIMITS_DOC = new URL("../../docs/LIMITS.md", import.meta.url);
const TOKEN = "torture-secret";

/**
 * The most server RSS one held connection may cost, in bytes, as docs/LIMITS.md states
 * it ("Bound per connection: 32 KiB"). Throws when the document no longer says so: the
 * scenario checks the documented bound, not a number of its own.
 */
export async function documentedBytesPerConnection(): Promise<number> {
  const text = await Deno.readTextFile(LIMITS_DOC);
  const match = text.match(/^Bound per connection: (\d+(?:\.\d+)?) KiB/m);
  if (!match) throw new Error('Cannot find "Bound per connection: <n> KiB" in docs/LIMITS.md');
  return Number(match[1]) * 1024;
}

/** One measurement: RSS before, with the connections held, and the cost per connection. */
interface HeldMeasurement {
  before: ProcessProbe;
  held: ProcessProbe;
  bytesPerConnection: number;
}

async function measureIdle(context: ScenarioContext, sizes: Sizes): Promise<HeldMeasurement> {
  await using server = await TortureServer.start(context, "memory-idle", [
    "--idle-timeout",
    "0",
    "--max-clients",
    String(sizes.connections + 100),
  ]);
  const warmUp = await RawClient.connect(server.port);
  await warmUp.ping();
  await warmUp.close();
  const before = await server.probe();
  let opened = 0;
  const clients = await mapConcurrent(
    Array.from({ length: sizes.connections }),
    sizes.concurrency,
    async (_, i) => {
      const client = await RawClient.connect(server.port);
      await client.write(`HELLO idle${i}\n`);
      await client.ping(30_000);
      if (++opened % 100 === 0) context.progress(`${opened}/${sizes.connections} idle held`);
      return client;
    },
  );
  const held = await server.probe();
  await Promise.all(clients.map((client) => client.close()));
  await server.stop();
  return {
    before,
    held,
    bytesPerConnection: Math.round((held.rssBytes - before.rssBytes) / sizes.connections),
  };
}

async function measureUnauthenticated(
  context: ScenarioContext,
  sizes: Sizes,
): Promise<HeldMeasurement> {
  await using server = await TortureServer.start(context, "memory-unauth", [
    "--token",
    TOKEN,
    "--auth-timeout",
    "5m",
    "--read-timeout",
    "5m",
    "--idle-timeout",
    "0",
    "--max-clients",
    String(sizes.connections + 100),
  ]);
  const warmUp = await RawClient.connect(server.port);
  await warmUp.write(`AUTH ${TOKEN}\n`);
  await warmUp.ping();
  await warmUp.close();
  const before = await server.probe();
  const random = seededRandom(8);
  const junk = new Uint8Array(sizes.junkBytes);
  for (let i = 0; i < junk.length; i++) junk[i] = 0x21 + Math.floor(random() * 94);
  let opened = 0;
  const conns = await mapConcurrent(
    Array.from({ length: sizes.connections }),
    sizes.concurrency,
    async () => {
      const client = await RawClient.connect(server.port);
      await client.write(junk);
      if (++opened % 100 === 0) context.progress(`${opened}/${sizes.connections} junk held`);
      return client;
    },
  );
  // Held for certain: the server has accepted them all (one fd each) and read every byte.
  await waitFor(
    async () => {
      const probe = await server.probe();
      const unread =
        (await readTcpTable()).filter((s) =>
          s.localPort === server.port && s.state === TCP_ESTABLISHED && s.receiveQueue > 0
        ).length;
      return probe.fds >= before.fds + sizes.connections && unread === 0;
    },
    "the server to read every connection's junk",
    60_000,
    100,
  );
  const held = await server.probe();
  const refused = conns.filter((c) => c.received.length > 0).length;
  if (refused > 0) throw new Error(`${refused} unauthenticated connections got an answer early`);
  await Promise.all(conns.map((client) => client.close()));
  await server.stop();
  return {
    before,
    held,
    bytesPerConnection: Math.round((held.rssBytes - before.rssBytes) / sizes.connections),
  };
}

/** Sizes: `connections`, `concurrency`, `junkBytes` (under 4096). */
export async function runMemoryBound(
  context: ScenarioContext,
  sizes: Sizes,
): Promise<ScenarioOutcome> {
  const bound = await documentedBytesPerConnection();
  const checks = new Checks();
  const idle = await measureIdle(context, sizes);
  let unauthenticated: HeldMeasurement | undefined;
  try {
    unauthenticated = await measureUnauthenticated(context, sizes);
  } catch (error) {
    checks.expect(false, `unauthenticated connections: ${String(error)}`);
  }
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  checks.expect(
    idle.bytesPerConnection <= bound,
    `idle: ${kib(idle.bytesPerConnection)} per connection, over ${kib(bound)}`,
  );
  if (unauthenticated) {
    checks.expect(
      unauthenticated.bytesPerConnection <= bound,
      `unauthenticated: ${kib(unauthenticated.bytesPerConnection)} per connection, over ${
        kib(bound)
      }`,
    );
  }
  return {
    sent:
      `${sizes.connections} idle conns (HELLO, PONG); ${sizes.connections} unauthenticated conns with ${sizes.junkBytes} bytes of junk, no line end (--token)`,
    serverDid: `held them: idle ${kib(idle.bytesPerConnection)}/conn, unauthenticated ${
      unauthenticated ? kib(unauthenticated.bytesPerConnection) : "-"
    }/conn (bound ${kib(bound)}, docs/LIMITS.md); RSS/fds: before -> with the idle ones`,
    lost: null,
    before: idle.before,
    after: idle.held,
    failures: checks.failures,
    metrics: {
      connections: sizes.connections,
      idleBytesPerConnection: idle.bytesPerConnection,
      unauthenticatedBytesPerConnection: unauthenticated?.bytesPerConnection ?? -1,
      unauthenticatedRssBefore: unauthenticated?.before.rssBytes ?? -1,
      unauthenticatedRssHeld: unauthenticated?.held.rssBytes ?? -1,
      boundBytesPerConnection: bound,
    },
  };
}
