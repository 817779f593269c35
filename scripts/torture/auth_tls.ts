/**
 * Scenario 9: admission. A server with --token gets wrong tokens, no token, a token too
 * late and commands before `AUTH`; a server with --tls-cert/--tls-key gets plain TCP,
 * silence instead of a handshake, and garbage. Every one must be refused (with an
 * `ERR` line where the protocol can carry one) and closed, a real client must still
 * get in, and the server's RSS must not grow by more than 50 MB.
 *
 * Silent peers on the TLS port are the exception Deno imposes: closing a server-side
 * `TlsConn` before the handshake leaves its socket open until the peer sends or
 * leaves (docs/LIMITS.md, scripts/repro/tls_close_before_handshake.ts). For them the
 * server must give up at the auth timeout (counted in `tls_failures`, no client slot
 * held) and release every fd once they leave.
 *
 * @module
 */

import { generateTestCert, RawClient, waitFor } from "../../lib/testing.ts";
import { offend } from "./clients.ts";
import {
  Checks,
  formatMegabytes,
  mapConcurrent,
  type ProcessProbe,
  type ScenarioContext,
  type ScenarioOutcome,
  type Sizes,
  TortureServer,
  within,
} from "../shared/harness.ts";
import { seededRandom } from "./malformed.ts";

const encoder = new TextEncoder();
const TOKEN = "torture-secret";
const AUTH_TIMEOUT_MS = 1_000;
const CLOSE_MARGIN_MS = 3_000;
const RSS_GROWTH_LIMIT_BYTES = 50_000_000;

/** One kind of refused connection and the answer it must get ("" for a bare close). */
interface Refusal {
  kind: string;
  input: string | Uint8Array;
  expected: string | null;
}

const TOKEN_REFUSALS: Refusal[] = [
  { kind: "wrong token", input: "AUTH not-the-token\n", expected: "ERR unauthorized\n" },
  { kind: "no token (HELLO first)", input: "HELLO eve\nPING\n", expected: "ERR unauthorized\n" },
  { kind: "PING before AUTH", input: "PING\n", expected: "ERR unauthorized\n" },
  { kind: "MSG before AUTH", input: "MSG 2\nhi\n", expected: "ERR unauthorized\n" },
  { kind: "text before AUTH", input: "hello there\n", expected: "ERR unauthorized\n" },
  { kind: "nothing (slow token)", input: "", expected: "ERR auth timeout\n" },
  {
    kind: "AUTH line unfinished",
    input: `AUTH ${TOKEN.slice(0, 4)}`,
    expected: "ERR auth timeout\n",
  },
];

interface RefusalTally {
  attempts: number;
  refused: number;
  slowestCloseMs: number;
  wrong: string[];
}

/** Connects `perCase` times for each refusal and checks the answer and the close. */
async function tryRefusals(
  port: number,
  refusals: Refusal[],
  perCase: number,
  concurrency: number,
): Promise<RefusalTally> {
  const attempts = refusals.flatMap((r) => Array.from({ length: perCase }, () => r));
  const outcomes = await mapConcurrent(attempts, concurrency, (refusal) => {
    const bytes = typeof refusal.input === "string" ? encoder.encode(refusal.input) : refusal.input;
    return offend(port, bytes, "keep-open", AUTH_TIMEOUT_MS + CLOSE_MARGIN_MS);
  });
  const tally: RefusalTally = {
    attempts: attempts.length,
    refused: 0,
    slowestCloseMs: 0,
    wrong: [],
  };
  outcomes.forEach((outcome, i) => {
    const { kind, expected } = attempts[i];
    const answered = expected === null
      ? !outcome.received.includes("PONG")
      : outcome.received === expected;
    if (outcome.closed && answered) tally.refused++;
    else if (!tally.wrong.some((w) => w.startsWith(kind))) {
      tally.wrong.push(
        `${kind}: got ${JSON.stringify(outcome.received.slice(0, 60))}${
          outcome.closed ? "" : ", not closed"
        }${expected ? ` (expected ${JSON.stringify(expected)})` : ""}`,
      );
    }
    tally.slowestCloseMs = Math.max(tally.slowestCloseMs, outcome.closeMs);
  });
  return tally;
}

/** Whether `AUTH <token>` and `PING` get `PONG` on a plain connection. */
async function tokenAdmits(port: number): Promise<boolean> {
  const client = await RawClient.connect(port);
  try {
    await client.write(`AUTH ${TOKEN}\nHELLO admitted\nPING\n`);
    await client.received.waitForText("PONG\n", 5_000);
    return true;
  } catch {
    return false;
  } finally {
    await client.close();
  }
}

/** Whether a TLS client that trusts `certFile` gets `PONG`. */
async function tlsAdmits(port: number, certFile: string): Promise<boolean> {
  let conn: Deno.TlsConn | undefined;
  try {
    conn = await Deno.connectTls({
      hostname: "127.0.0.1",
      port,
      caCerts: [await Deno.readTextFile(certFile)],
    });
    await conn.write(encoder.encode("HELLO tls\nPING\n"));
    const buffer = new Uint8Array(64);
    let heard = "";
    const deadline = Date.now() + 5_000;
    while (!heard.includes("PONG\n") && Date.now() < deadline) {
      const n = await within(conn.read(buffer), 5_000, null);
      if (n === null) break;
      heard += new TextDecoder().decode(buffer.subarray(0, n));
    }
    return heard.includes("PONG\n");
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch {
      // Closed by the server already.
    }
  }
}

async function attackTokenServer(context: ScenarioContext, sizes: Sizes) {
  await using server = await TortureServer.start(context, "auth", [
    "--token",
    TOKEN,
    "--auth-timeout",
    `${AUTH_TIMEOUT_MS}ms`,
  ]);
  const before = await server.probe();
  context.progress("token server: refusals");
  const tally = await tryRefusals(server.port, TOKEN_REFUSALS, sizes.perCase, 50);
  const admits = await tokenAdmits(server.port);
  const after = await server.probe();
  const exitCode = await server.stop();
  return { tally, admits, before, after, exitCode };
}

async function attackTlsServer(context: ScenarioContext, sizes: Sizes) {
  const cert = await generateTestCert();
  try {
    await using server = await TortureServer.start(context, "tls", [
      "--tls-cert",
      cert.certFile,
      "--tls-key",
      cert.keyFile,
      "--auth-timeout",
      `${AUTH_TIMEOUT_MS}ms`,
      "--stats",
      "100ms",
    ]);
    const before = await server.probe();
    context.progress("TLS server: plain TCP, silence and garbage");
    const random = seededRandom(9);
    const garbage: Refusal[] = Array.from({ length: sizes.tlsGarbage }, (_, i) => {
      const bytes = new Uint8Array(1 + Math.floor(random() * 4096));
      for (let j = 0; j < bytes.length; j++) bytes[j] = Math.floor(random() * 256);
      return { kind: `garbage ${i}`, input: bytes, expected: null };
    });
    const plain = await tryRefusals(
      server.port,
      [{ kind: "plain TCP parrot", input: "HELLO plain\nPING\n", expected: null }],
      sizes.perCase,
      50,
    );
    const silent = await holdSilentPeers(server, sizes.perCase, before.fds, plain.attempts);
    const noise = await tryRefusals(server.port, garbage, 1, garbage.length);
    const admits = await tlsAdmits(server.port, cert.certFile);
    const after = await server.probe();
    const exitCode = await server.stop();
    return { plain, silent, noise, admits, before, after, exitCode };
  } finally {
    await Deno.remove(cert.dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Opens `count` connections that never start the handshake, waits for the server to
 * give up on them (`tls_failures` counts them, `clients` stays 0), closes them, and
 * waits for the server's fds to come back to `fdsBefore`. `failuresBefore` is how many
 * TLS failures the server has counted already.
 */
async function holdSilentPeers(
  server: TortureServer,
  count: number,
  fdsBefore: number,
  failuresBefore: number,
) {
  await waitFor(
    () => server.latestStat("tls_failures") >= failuresBefore,
    "the earlier TLS failures in the stats",
    CLOSE_MARGIN_MS,
    20,
  );
  const started = Date.now();
  const peers = await mapConcurrent(
    Array.from({ length: count }),
    50,
    () => Deno.connect({ hostname: "127.0.0.1", port: server.port }),
  );
  let givenUp = false;
  try {
    await waitFor(
      () => server.latestStat("tls_failures") >= failuresBefore + count,
      "tls_failures to count the silent peers",
      AUTH_TIMEOUT_MS + CLOSE_MARGIN_MS,
      20,
    );
    givenUp = true;
  } catch {
    // Reported below.
  }
  const givenUpMs = Date.now() - started;
  const clientsWhileHeld = server.latestStat("clients");
  const fdsWhileHeld = (await server.probe()).fds;
  for (const peer of peers) peer.close();
  const fdsAfter = await server.waitForFdsAtMost(fdsBefore + 2, 10_000);
  return { count, givenUp, givenUpMs, clientsWhileHeld, fdsWhileHeld, fdsBefore, fdsAfter };
}

function growth(before: ProcessProbe, after: ProcessProbe): number {
  return after.rssBytes - before.rssBytes;
}

/** Sizes: `perCase` (connections per kind of refusal), `tlsGarbage`. */
export async function runAuthAndTls(
  context: ScenarioContext,
  sizes: Sizes,
): Promise<ScenarioOutcome> {
  const checks = new Checks();
  const token = await attackTokenServer(context, sizes);
  const tls = await attackTlsServer(context, sizes);
  for (
    const [what, tally] of [["token", token.tally], ["TLS", tls.plain], ["TLS", tls.noise]] as const
  ) {
    checks.expect(
      tally.refused === tally.attempts,
      `${what}: ${tally.attempts - tally.refused} not refused: ${
        tally.wrong.slice(0, 3).join("; ")
      }`,
    );
  }
  const silent = tls.silent;
  checks.expect(
    silent.givenUp && silent.clientsWhileHeld === 0,
    `TLS: ${silent.count} silent peers were not given up within the auth timeout (clients=${silent.clientsWhileHeld})`,
  );
  checks.expect(
    silent.fdsAfter <= silent.fdsBefore + 2,
    `TLS: fds ${silent.fdsBefore} -> ${silent.fdsAfter} after the silent peers left`,
  );
  checks.expect(token.admits, "the right token was not admitted");
  checks.expect(tls.admits, "a TLS client that trusts the certificate was not admitted");
  for (const [what, run] of [["token", token], ["TLS", tls]] as const) {
    const grew = growth(run.before, run.after);
    checks.expect(
      grew < RSS_GROWTH_LIMIT_BYTES,
      `${what} server RSS grew ${formatMegabytes(grew)} (limit ${
        formatMegabytes(RSS_GROWTH_LIMIT_BYTES)
      })`,
    );
    checks.expect(run.exitCode === 0, `${what} server exited ${run.exitCode} on SIGTERM`);
  }
  const tlsAttempts = tls.plain.attempts + tls.noise.attempts;
  return {
    sent:
      `token server: ${token.tally.attempts} bad admissions (${TOKEN_REFUSALS.length} kinds); TLS server: ${tls.plain.attempts} plain TCP + ${silent.count} silent + ${tls.noise.attempts} garbage`,
    serverDid:
      `refused and closed ${token.tally.refused}/${token.tally.attempts} (ERR unauthorized / auth timeout) and ${
        tls.plain.refused + tls.noise.refused
      }/${tlsAttempts} on TLS; slowest close ${
        Math.max(token.tally.slowestCloseMs, tls.plain.slowestCloseMs, tls.noise.slowestCloseMs)
      } ms (auth timeout ${AUTH_TIMEOUT_MS} ms); silent TLS peers given up after ${silent.givenUpMs} ms, their sockets held by Deno until they left (fds ${silent.fdsBefore} -> ${silent.fdsWhileHeld} -> ${silent.fdsAfter}); RSS +${
        formatMegabytes(growth(token.before, token.after))
      } / +${formatMegabytes(growth(tls.before, tls.after))}; RSS/fds columns: token server`,
    lost: null,
    before: token.before,
    after: token.after,
    failures: checks.failures,
    metrics: {
      tokenAttempts: token.tally.attempts,
      tokenRefused: token.tally.refused,
      tlsAttempts,
      tlsRefused: tls.plain.refused + tls.noise.refused,
      tokenAdmits: token.admits,
      tlsAdmits: tls.admits,
      tokenRssGrowthBytes: growth(token.before, token.after),
      tlsRssGrowthBytes: growth(tls.before, tls.after),
    },
  };
}
