/**
 * Integration tests of `deno task clients` (scripts/launcher.ts) and `deno task
 * stop-clients` (scripts/stop_clients.ts): real server, launcher and client processes,
 * started through the tasks so the tests run with exactly the permissions users get.
 *
 * @module
 */

import assert from "node:assert/strict";
import { pidFileExists } from "../lib/cli/pid_files.ts";
import { DENO, ROOT, runDeno, type Running, spawn, startServer, waitFor } from "../lib/testing.ts";

/** `deno task clients <port> ...` with piped output. */
function startLauncher(port: number, args: string[]): Running {
  return spawn(DENO, ["task", "-q", "clients", String(port), ...args]);
}

/** The pids of the clients that printed `client(<pid>): running...`. */
function runningClientPids(output: string): number[] {
  return [...output.matchAll(/^client\((\d+)\): running\.\.\.$/gm)].map((m) => Number(m[1]));
}

/**
 * Waits until `count` clients have written a message (so they handle SIGTERM by now)
 * and returns their pids.
 */
async function sendingClientPids(launcher: Running, count: number): Promise<number[]> {
  const sending = () =>
    runningClientPids(launcher.stdout.text()).filter((pid) =>
      launcher.stdout.text().includes(`client(${pid}): write `)
    );
  await waitFor(() => sending().length === count, `${count} clients writing messages`);
  return sending();
}

/** Waits for the launcher's "started" line and returns the launcher's pid. */
async function launcherPid(launcher: Running, clientCount: number): Promise<number> {
  const pattern = new RegExp(`^launcher\\((\\d+)\\): started ${clientCount} clients`, "m");
  const output = await launcher.stdout.waitForText(pattern);
  return Number(pattern.exec(output)![1]);
}

function occurrences(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

/** Stops whatever is still running (after a failed assertion) and waits for every exit. */
async function stopAll(...processes: Running[]): Promise<void> {
  for (const running of processes) {
    try {
      running.child.kill("SIGTERM");
    } catch {
      // It has exited already.
    }
  }
  await Promise.all(processes.map((running) => running.status));
}

const TWO_FAST_CLIENTS = ["--count", "2", "--stagger", "100ms", "--interval", "100ms"];

Deno.test("launcher starts --count clients and exits 0 when the server shuts down", async () => {
  const server = await startServer();
  const launcher = startLauncher(server.port, TWO_FAST_CLIENTS);
  try {
    await waitFor(
      () => runningClientPids(launcher.stdout.text()).length === 2,
      "two clients to print running...",
    );
    const pids = runningClientPids(launcher.stdout.text());
    assert.equal(new Set(pids).size, 2, `two distinct client pids: ${pids}`);
    const pidFile = `${ROOT}.parrot/clients-${await launcherPid(launcher, 2)}.pids`;
    await waitFor(
      () => pids.every((pid) => new RegExp(`^${pid}: `, "m").test(server.stdout.text())),
      "messages from both clients on the server's stdout",
    );

    server.kill("SIGINT");
    const launcherStatus = await launcher.status;
    const output = launcher.stdout.text();
    assert.equal(launcherStatus.code, 0, `launcher output:\n${output}${launcher.stderr.text()}`);
    assert.equal(occurrences(output, "received request to quit"), 2, output);
    for (const pid of pids) assert.match(output, new RegExp(`^client\\(${pid}\\): stopping`, "m"));
    assert.equal(await pidFileExists(pidFile), false, `${pidFile} should be removed`);
    assert.equal((await server.status).code, 0, server.stderr.text());
  } finally {
    await stopAll(launcher, server);
  }
});

Deno.test("stop-clients from another terminal stops the launcher's clients", async () => {
  const server = await startServer();
  const launcher = startLauncher(server.port, TWO_FAST_CLIENTS);
  try {
    const pidFile = `${ROOT}.parrot/clients-${await launcherPid(launcher, 2)}.pids`;
    const pids = (await sendingClientPids(launcher, 2)).sort();
    const recorded = (await Deno.readTextFile(pidFile)).trim().split("\n").map(Number).sort();
    assert.deepEqual(recorded, pids, `${pidFile} lists the running clients`);

    const stop = await runDeno(["task", "-q", "stop-clients"]);
    assert.equal(stop.code, 0, stop.stdout + stop.stderr);
    for (const pid of pids) assert.match(stop.stdout, new RegExp(`^stopped client ${pid}$`, "m"));
    assert.match(stop.stdout, /^stopped 2 clients$/m);

    const launcherStatus = await launcher.status;
    const output = launcher.stdout.text();
    assert.equal(launcherStatus.code, 0, `launcher output:\n${output}${launcher.stderr.text()}`);
    for (const pid of pids) assert.match(output, new RegExp(`^client\\(${pid}\\): stopping`, "m"));
    assert.equal(await pidFileExists(pidFile), false, `${pidFile} should be removed`);

    server.kill("SIGINT");
    assert.equal((await server.status).code, 0, server.stderr.text());
  } finally {
    await stopAll(launcher, server);
  }
});

Deno.test("launcher forwards SIGTERM to its clients and exits 0", async () => {
  const server = await startServer(["--stats", "100ms"]);
  let serverExited = false;
  server.status.then(() => serverExited = true);
  const launcher = startLauncher(server.port, TWO_FAST_CLIENTS);
  try {
    const pidFile = `${ROOT}.parrot/clients-${await launcherPid(launcher, 2)}.pids`;
    const pids = await sendingClientPids(launcher, 2);
    await waitFor(
      () => pids.every((pid) => new RegExp(`^${pid}: `, "m").test(server.stdout.text())),
      "messages from both clients on the server's stdout",
    );

    launcher.child.kill("SIGTERM");
    const launcherStatus = await launcher.status;
    const output = launcher.stdout.text();
    assert.equal(launcherStatus.code, 0, `launcher output:\n${output}${launcher.stderr.text()}`);
    assert.match(output, /stopping the clients/);
    for (const pid of pids) assert.match(output, new RegExp(`^client\\(${pid}\\): stopping`, "m"));
    assert.equal(await pidFileExists(pidFile), false, `${pidFile} should be removed`);
    // Only the launcher's clients stopped: the server is up and sees them gone.
    assert.equal(serverExited, false, "the server should still run");
    const statsFrom = server.stderr.text().length;
    await waitFor(
      () => /stats: clients=0 /.test(server.stderr.text().slice(statsFrom)),
      "a stats line with no clients after the launcher exited",
    );
    server.kill("SIGINT");
    assert.equal((await server.status).code, 0, server.stderr.text());
  } finally {
    await stopAll(launcher, server);
  }
});

Deno.test("launcher exits 1 naming the failed clients when no server is listening", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (listener.addr as Deno.NetAddr).port;
  listener.close();

  const result = await runDeno([
    "task",
    "-q",
    "clients",
    String(closedPort),
    "--count",
    "2",
    "--stagger",
    "0",
  ]);
  assert.equal(result.code, 1, result.stdout + result.stderr);
  const errors = result.stderr.split("\n").filter((line) => line.startsWith("error:"));
  assert.equal(errors.length, 1, result.stderr);
  assert.match(
    errors[0],
    /^error: 2 of 2 clients failed: client \d+ exited with code 1, client \d+ exited with code 1$/,
  );
  assert.doesNotMatch(result.stderr, /^\s+at /m, "no stack trace");
});

Deno.test("launcher rejects a bad port with exit code 2 and one clear line", async () => {
  const result = await runDeno(["task", "-q", "clients", "not-a-port"]);
  assert.equal(result.code, 2, result.stdout + result.stderr);
  assert.equal(result.stdout, "");
  assert.deepEqual(result.stderr.trim().split("\n"), [
    'error: Cannot use port "not-a-port": expected a number from 0 to 65535',
    "Run `deno task clients --help` for usage.",
  ]);
});

Deno.test("stop-clients reports stale pids as already gone and removes their file", async () => {
  // In a directory of its own, so the real .parrot/ is not touched.
  const cwd = await Deno.makeTempDir();
  try {
    const stopClients = async () => {
      const output = await new Deno.Command(DENO, {
        args: [
          "run",
          "--allow-run=kill",
          "--allow-read=.parrot",
          "--allow-write=.parrot",
          `${ROOT}scripts/stop_clients.ts`,
        ],
        cwd,
        stdin: "null",
        env: { NO_COLOR: "1" },
      }).output();
      const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
      return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
    };

    const empty = await stopClients();
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, "no clients to stop\n");

    // No process can have this pid: it is above the kernel's largest pid.
    const stalePid = 2_147_483_646;
    await Deno.mkdir(`${cwd}/.parrot`);
    await Deno.writeTextFile(`${cwd}/.parrot/clients-12345.pids`, `${stalePid}\nnot-a-pid\n`);
    const stale = await stopClients();
    assert.equal(stale.code, 0, stale.stdout + stale.stderr);
    assert.equal(
      stale.stdout,
      `client ${stalePid} already gone\nstopped 0 clients (1 already gone)\n`,
    );
    assert.equal(
      stale.stderr,
      'skipping "not-a-pid" in .parrot/clients-12345.pids: not a client process id\n',
    );
    assert.equal(await pidFileExists(`${cwd}/.parrot/clients-12345.pids`), false);
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("launcher spreads its clients over --server servers round robin and says how many each got", async () => {
  const servers = [await startServer(), await startServer()];
  const [a, b] = servers.map(({ port }) => `127.0.0.1:${port}`);
  try {
    const launcher = spawn(DENO, [
      "task",
      "-q",
      "clients",
      "--server",
      `${a},${b}`,
      "--count",
      "4",
      "--name",
      "bird",
      "--stagger",
      "50ms",
      "--messages",
      "3",
      "--interval",
      "20ms",
      "--message",
      "spread",
    ]);
    const status = await launcher.status;
    const output = launcher.stdout.text();
    assert.equal(status.code, 0, output + launcher.stderr.text());
    assert.match(
      output,
      new RegExp(`^launcher\\(\\d+\\): clients per server: 2 on ${a}, 2 on ${b}$`, "m"),
    );
    // Client 1 on the first server, client 2 on the second, and so on: each server's
    // stdout has the three messages of each of its two clients, and nothing else.
    const expected = [["bird-1", "bird-3"], ["bird-2", "bird-4"]];
    servers.forEach((server, i) => {
      const lines = server.stdout.text().split("\n").slice(0, -1).sort();
      assert.deepEqual(
        lines,
        expected[i].flatMap((name) => Array(3).fill(`${name}: spread`)),
        `server ${i + 1}:\n${server.stdout.text()}`,
      );
    });
  } finally {
    for (const server of servers) server.kill("SIGINT");
    await Promise.all(servers.map((server) => server.status));
  }
});

Deno.test("launcher passes --numbered and --confirm-timeout through to every client", async () => {
  const server = await startServer();
  try {
    const launcher = startLauncher(server.port, [
      "--count",
      "2",
      "--name",
      "num",
      "--stagger",
      "50ms",
      "--messages",
      "2",
      "--interval",
      "20ms",
      "--message",
      "hi",
      "--numbered",
      "--confirm-timeout",
      "5s",
    ]);
    const status = await launcher.status;
    assert.equal(status.code, 0, launcher.stdout.text() + launcher.stderr.text());
    const lines = server.stdout.text().split("\n").slice(0, -1).sort();
    assert.deepEqual(lines, ["num-1: 1 hi", "num-1: 2 hi", "num-2: 1 hi", "num-2: 2 hi"]);
  } finally {
    server.kill("SIGINT");
    await server.status;
  }
});

Deno.test("launcher rejects a bad --confirm-timeout with exit code 2 and one clear line", async () => {
  const result = await runDeno(["task", "-q", "clients", "8080", "--confirm-timeout", "soon"]);
  assert.equal(result.code, 2, result.stdout + result.stderr);
  assert.equal(result.stdout, "");
  assert.deepEqual(result.stderr.trim().split("\n"), [
    'error: Cannot use --confirm-timeout "soon": expected a number with an optional ms, s, m, h or d unit',
    "Run `deno task clients --help` for usage.",
  ]);
});
