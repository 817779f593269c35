/**
 * Integration tests of `client.ts --reconnect`: real server and client processes. The
 * server is killed with SIGKILL (no QUIT, the way a crash looks to a client) and a new
 * one is started on the same port; the client must come back, say so, and deliver
 * what it could not write meanwhile.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  CLIENT_RUN_ARGS,
  DENO,
  listeningPort,
  runDeno,
  type Running,
  SERVER_RUN_ARGS,
  type ServerProcess,
  spawn,
  startServer,
  stopAll,
  waitFor,
} from "../lib/testing.ts";

/** Starts a server on `port` (the port of a server that died), retrying while it is busy. */
async function startServerOnPort(port: number, args: string[] = []): Promise<ServerProcess> {
  for (let tries = 1;; tries++) {
    const running = spawn(DENO, [...SERVER_RUN_ARGS, String(port), ...args]);
    try {
      await listeningPort(running);
      return { ...running, port, kill: (signal = "SIGTERM") => running.child.kill(signal) };
    } catch (error) {
      if (tries >= 5 || !/already in use/.test(running.stderr.text())) throw error;
    }
  }
}

function startClient(port: number, args: string[]): Running {
  return spawn(DENO, [...CLIENT_RUN_ARGS, String(port), ...args]);
}

function clientPid(client: Running): number {
  const match = client.stdout.text().match(/^client\((\d+)\): running\.\.\.$/m);
  assert.ok(match, client.stdout.text());
  return Number(match[1]);
}

function count(text: string, pattern: RegExp): number {
  return [...text.matchAll(new RegExp(pattern, "gm"))].length;
}

/** A port nobody listens on. */
function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  return port;
}

Deno.test("client --reconnect survives a server restart on the same port", async () => {
  const first = await startServer();
  const port = first.port;
  const client = startClient(port, [
    "--reconnect",
    "--reconnect-attempts",
    "50",
    "--interval",
    "50ms",
    "--message",
    "squawk",
  ]);
  let second: ServerProcess | undefined;
  try {
    await client.stdout.waitForText("write 6 bytes");
    const pid = clientPid(client);
    await first.stdout.waitForText(`${pid}: squawk\n`);

    first.kill("SIGKILL");
    await first.status;
    await client.stdout.waitForText(
      /^client\(\d+\): connection lost \([^)]+\); reconnecting in \d+ms \(attempt 1 of 50\)$/m,
    );
    await client.stdout.waitForText("keep 6 bytes until reconnected");

    second = await startServerOnPort(port);
    const output = await client.stdout.waitForText(
      /reconnected; resent \d+ unconfirmed messages?, dropped 0$/m,
    );
    const resent = Number(output.match(/reconnected; resent (\d+) unconfirmed/)![1]);
    const kept = count(output, /^client\(\d+\): keep 6 bytes until reconnected$/);
    assert.ok(resent >= kept && kept >= 1, `resent ${resent}, kept ${kept}:\n${output}`);
    // Everything resent is printed, and the client goes on sending.
    await waitFor(
      () => count(second!.stdout.text(), new RegExp(`^${pid}: squawk$`)) > resent,
      "the resent and the new messages on the new server's stdout",
    );

    client.child.kill("SIGINT");
    const status = await client.status;
    assert.equal(status.code, 0, client.stderr.text());
    assert.equal(client.stderr.text(), "");
    assert.match(client.stdout.text(), /stopping\.\.\.\n$/);
    second.kill("SIGINT");
    assert.equal((await second.status).code, 0, second.stderr.text());
    assert.equal(
      second.stdout.text().replaceAll(`${pid}: squawk\n`, ""),
      "",
      "only the client's messages, whole",
    );
  } finally {
    await stopAll(client, first, second);
  }
});

Deno.test("client --reconnect gives up after --reconnect-attempts with one line and exit 1", async () => {
  const server = await startServer();
  const client = startClient(server.port, [
    "--reconnect",
    "--reconnect-attempts",
    "3",
    "--interval",
    "50ms",
  ]);
  try {
    await client.stdout.waitForText("write ");
    server.kill("SIGKILL");
    const status = await client.status;
    assert.equal(status.code, 1);
    const pid = clientPid(client);
    const out = client.stdout.text();
    for (const attempt of [1, 2, 3]) {
      assert.match(out, new RegExp(`reconnecting in \\d+ms \\(attempt ${attempt} of 3\\)$`, "m"));
    }
    assert.equal(count(out, /reconnecting in/), 3, out);
    assert.equal(
      client.stderr.text(),
      `client(${pid}): giving up after 3 attempts: connection refused\n`,
    );
  } finally {
    await stopAll(client, server);
  }
});

Deno.test("client --reconnect retries a refused first connection, then gives up", async () => {
  const port = freePort();
  const { code, stdout, stderr } = await runDeno([
    ...CLIENT_RUN_ARGS,
    String(port),
    "--reconnect",
    "--reconnect-attempts",
    "2",
  ]);
  assert.equal(code, 1, stderr);
  assert.equal(
    count(stdout, /^client\(\d+\): cannot connect \(connection refused\); retrying in \d+ms/),
    2,
    stdout,
  );
  assert.match(stderr, /^client\(\d+\): giving up after 2 attempts: connection refused\n$/);
});

Deno.test("client --max-unsent keeps the newest messages while disconnected and says how many it dropped", async () => {
  const first = await startServer();
  const port = first.port;
  const client = startClient(port, [
    "--reconnect",
    "--reconnect-attempts",
    "50",
    "--interval",
    "20ms",
    "--max-unsent",
    "3",
    "--message",
    "squawk",
  ]);
  let second: ServerProcess | undefined;
  try {
    await client.stdout.waitForText("write 6 bytes");
    const pid = clientPid(client);
    first.kill("SIGKILL");
    await first.status;
    await waitFor(
      () => count(client.stdout.text(), /keep 6 bytes until reconnected$/) >= 8,
      "eight messages kept while disconnected",
    );

    second = await startServerOnPort(port);
    const output = await client.stdout.waitForText(
      /reconnected; resent 3 unconfirmed messages, dropped \d+$/m,
    );
    const dropped = Number(output.match(/resent 3 unconfirmed messages, dropped (\d+)/)![1]);
    const kept = count(output, /keep 6 bytes until reconnected$/);
    assert.ok(dropped >= kept - 3, `dropped ${dropped} of ${kept} kept:\n${output}`);
    await waitFor(
      () => count(second!.stdout.text(), new RegExp(`^${pid}: squawk$`)) >= 3,
      "the three kept messages on the new server",
    );
    client.child.kill("SIGTERM");
    assert.equal((await client.status).code, 0, client.stderr.text());
  } finally {
    await stopAll(client, first, second);
  }
});

Deno.test("client rejects --reconnect options without --reconnect, and bad counts", async () => {
  const mistakes: [string[], RegExp][] = [
    [["--max-unsent", "5"], /^error: Cannot use --max-unsent without --reconnect$/m],
    [
      ["--reconnect-attempts", "5"],
      /^error: Cannot use --reconnect-attempts without --reconnect$/m,
    ],
    [["--reconnect", "--reconnect-attempts", "0"], /--reconnect-attempts "0"/],
    [["--reconnect", "--max-unsent", "x"], /--max-unsent "x"/],
  ];
  for (const [args, pattern] of mistakes) {
    const { code, stderr } = await runDeno([...CLIENT_RUN_ARGS, "1234", ...args]);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, pattern);
    assert.equal(stderr.trim().split("\n").length, 2, stderr);
  }
});
