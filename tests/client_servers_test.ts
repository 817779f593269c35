/**
 * Integration tests of `client.ts` with several servers (`--server host:port`, repeated
 * or a comma list): real, independent server processes on port 0. The client takes the
 * first that accepts; with `--reconnect`, a client whose server is killed (or stopped)
 * moves to the next one and re-sends what that server had not confirmed, so every message
 * reaches one of them (at least once: possibly both).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  CLIENT_RUN_ARGS,
  DENO,
  runDeno,
  type Running,
  type ServerProcess,
  spawn,
  startServer,
  stopAll,
  waitFor,
} from "../lib/testing.ts";

const HOST = "127.0.0.1";

/** A port nobody listens on. */
function freePort(): number {
  const probe = Deno.listen({ hostname: HOST, port: 0 });
  const port = probe.addr.port;
  probe.close();
  return port;
}

function startClient(args: string[]): Running {
  return spawn(DENO, [...CLIENT_RUN_ARGS, ...args]);
}

function clientPid(client: Running): number {
  const match = client.stdout.text().match(/^client\((\d+)\): running\.\.\.$/m);
  assert.ok(match, client.stdout.text());
  return Number(match[1]);
}

/**
 * The numbers of the `--numbered` messages `pid` sent that `stdout` shows, in the order
 * printed; every complete line must be one of them.
 */
function numbersOf(stdout: string, pid: number, message: string): number[] {
  const lines = stdout.split("\n").slice(0, -1); // a line cut by SIGKILL has no newline
  return lines.map((line) => {
    const match = new RegExp(`^${pid}: (\\d+) ${message}$`).exec(line);
    assert.ok(match, `not a whole message of client ${pid}: ${JSON.stringify(line)}`);
    return Number(match[1]);
  });
}

function assertIncreasing(numbers: number[], what: string): void {
  for (let i = 1; i < numbers.length; i++) {
    assert.ok(numbers[i] > numbers[i - 1], `${what} out of order: ${numbers.join(" ")}`);
  }
}

/**
 * Starts two servers and a `--reconnect --numbered` client on both, stops the first with
 * `signal` mid-stream, and checks that the client moved to the second, logged the move,
 * exited 0, and that every message is on one server or both, in order on each.
 */
async function failover(signal: Deno.Signal, reason: RegExp): Promise<void> {
  const servers: ServerProcess[] = [await startServer(), await startServer()];
  const [a, b] = servers.map(({ port }) => `${HOST}:${port}`);
  const total = 300;
  const client = startClient([
    "--server",
    a,
    "--server",
    b,
    "--reconnect",
    "--numbered",
    "--count",
    String(total),
    "--interval",
    "10ms",
    "--message",
    "squawk",
  ]);
  try {
    await client.stdout.waitForText(`connected to ${a}`);
    const pid = clientPid(client);
    await waitFor(
      () => numbersOf(servers[0].stdout.text(), pid, "squawk").length >= 20,
      "twenty messages on the first server",
    );
    servers[0].kill(signal);
    const stopped = await servers[0].status;
    if (signal === "SIGINT") assert.equal(stopped.code, 0, servers[0].stderr.text());

    const status = await client.status;
    const output = client.stdout.text();
    assert.equal(status.code, 0, output + client.stderr.text());
    assert.equal(client.stderr.text(), "");
    assert.match(
      output,
      new RegExp(
        `^client\\(${pid}\\): connection lost \\(${reason.source}\\); reconnecting to ${b} in `,
        "m",
      ),
    );
    assert.match(
      output,
      new RegExp(
        `^client\\(${pid}\\): reconnected to ${b} \\(moved from ${a}\\); ` +
          "resent \\d+ unconfirmed messages?, dropped 0$",
        "m",
      ),
    );

    // The client's exit 0 means the second server confirmed the last message: it is
    // printed. Every message is on one server or both (at least once), in order on each.
    const onA = numbersOf(servers[0].stdout.text(), pid, "squawk");
    const onB = numbersOf(servers[1].stdout.text(), pid, "squawk");
    assertIncreasing(onA, "the first server's messages");
    assertIncreasing(onB, "the second server's messages");
    const union = new Set([...onA, ...onB]);
    const missing = Array.from({ length: total }, (_, i) => i + 1).filter((n) => !union.has(n));
    assert.deepEqual(missing, [], `missing messages; A: ${onA.join(" ")}; B: ${onB.join(" ")}`);
    assert.equal(onB.at(-1), total);
    // The second server took over where the first left off, at the latest.
    assert.ok(onB[0] <= (onA.at(-1) ?? 0) + 1, `A ended at ${onA.at(-1)}, B began at ${onB[0]}`);
  } finally {
    await stopAll(client, ...servers);
  }
}

Deno.test("client --reconnect moves to the next --server when its server is killed, and every message reaches one", async () => {
  await failover("SIGKILL", /[^)]+/);
});

Deno.test("client --reconnect moves to the next --server when its server shuts down, and every message reaches one", async () => {
  await failover("SIGINT", /the server is shutting down/);
});

Deno.test("client --server connects to the first server that accepts and says which", async () => {
  const server = await startServer();
  const down = freePort();
  try {
    const { code, stdout, stderr } = await runDeno([
      ...CLIENT_RUN_ARGS,
      "--server",
      `${HOST}:${down},${HOST}:${server.port}`,
      "--count",
      "2",
      "--interval",
      "10ms",
      "--message",
      "hi",
    ]);
    assert.equal(code, 0, stdout + stderr);
    assert.match(
      stdout,
      new RegExp(`^client\\(\\d+\\): connected to ${HOST}:${server.port}$`, "m"),
    );
    const pid = stdout.match(/^client\((\d+)\)/m)![1];
    assert.equal(server.stdout.text(), `${pid}: hi\n`.repeat(2));
  } finally {
    server.kill("SIGINT");
    await server.status;
  }
});

Deno.test("client takes host:port as its positional argument, beside --server", async () => {
  const servers = [await startServer(), await startServer()];
  try {
    // The positional server comes first; the --server one is not needed.
    const { code, stdout, stderr } = await runDeno([
      ...CLIENT_RUN_ARGS,
      `${HOST}:${servers[0].port}`,
      "--server",
      String(servers[1].port),
      "--count",
      "1",
      "--message",
      "hi",
    ]);
    assert.equal(code, 0, stdout + stderr);
    const pid = stdout.match(/^client\((\d+)\)/m)![1];
    assert.equal(servers[0].stdout.text(), `${pid}: hi\n`);
    assert.equal(servers[1].stdout.text(), "");
  } finally {
    for (const server of servers) server.kill("SIGINT");
    await Promise.all(servers.map((server) => server.status));
  }
});

Deno.test("client with no server accepting says why for each, in one line, and exits 1", async () => {
  const ports = [freePort(), freePort()];
  const { code, stdout, stderr } = await runDeno([
    ...CLIENT_RUN_ARGS,
    "--server",
    ports.map((port) => `${HOST}:${port}`).join(","),
  ]);
  assert.equal(code, 1, stdout + stderr);
  const refused = "connection refused (is the server running?)";
  assert.match(
    stderr,
    new RegExp(
      `^client\\(\\d+\\): cannot connect to ${HOST}:${ports[0]}: ${escape(refused)}; ` +
        `nor to ${HOST}:${ports[1]}: ${escape(refused)}\n$`,
    ),
  );
});

Deno.test("client refuses a bad --server in one line with exit code 2", async () => {
  const mistakes: [string[], string][] = [
    [["--server", "localhost"], 'Cannot use --server "localhost": expected host:port'],
    [["--server", "a:1,a:1"], "Cannot use the server a:1 twice: give it once"],
    [["--server", "a:70000"], 'Cannot use --server "a:70000": the port must be a number'],
    [[], "Missing the server: give its port (or host:port), or --server host:port"],
  ];
  for (const [args, message] of mistakes) {
    const { code, stdout, stderr } = await runDeno([...CLIENT_RUN_ARGS, ...args]);
    assert.equal(code, 2, `${args.join(" ")}: ${stdout}${stderr}`);
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 2, stderr);
    assert.ok(lines[0].startsWith(`error: ${message}`), stderr);
    assert.equal(lines[1], "Run `deno task client --help` for usage.");
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
