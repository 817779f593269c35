/**
 * Integration tests of the command lines: user mistakes get one clear line and a
 * usage hint (no stack trace), and the client behaves as the classic client did.
 */

import assert from "node:assert/strict";
import {
  DENO,
  listeningPort,
  RawClient,
  runDeno,
  SERVER_ENV,
  SERVER_RUN_ARGS,
  spawn,
  startServer,
} from "../lib/testing.ts";

const CLIENT_RUN_ARGS = ["run", "--allow-net=127.0.0.1", "--allow-env=PARROT_TOKEN", "client.ts"];

function assertOneClearError(stderr: string, pattern: RegExp) {
  const lines = stderr.trim().split("\n");
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], pattern);
  assert.ok(lines.length <= 2, `more than an error and a hint:\n${stderr}`);
  assert.doesNotMatch(stderr, /^\s+at /m, "a stack trace was printed");
}

Deno.test("server rejects command-line mistakes with one line and exit code 2", async () => {
  const mistakes: [string[], RegExp][] = [
    [[], /missing the port/i],
    [["abc"], /port "abc"/],
    [["70000"], /port "70000"/],
    [["0", "--frobnicate"], /frobnicate/],
    [["0", "--read-timeout", "5x"], /--read-timeout.*"5x"/],
    [["0", "--max-clients", "-3"], /--max-clients/],
    [["0", "--log-format", "xml"], /--log-format "xml"/],
    [["0", "extra"], /Unexpected argument "extra"/],
    [["0", "--output", "xml"], /--output "xml": expected text or json/],
    [["0", "--burst", "5"], /--burst without --rate/],
    [["0", "--tls-cert", "cert.pem"], /give both --tls-cert and --tls-key/],
    [
      ["0", "--threads", String(navigator.hardwareConcurrency + 1)],
      new RegExp(
        `--threads ${
          navigator.hardwareConcurrency + 1
        }: .*CPU cores.*at most ${navigator.hardwareConcurrency}$`,
        "m",
      ),
    ],
  ];
  for (const [args, pattern] of mistakes) {
    const { code, stderr } = await runDeno([...SERVER_RUN_ARGS, ...args]);
    assert.equal(code, 2, `exit code for ${args.join(" ")}`);
    assertOneClearError(stderr, pattern);
    assert.match(stderr, /deno task server --help/);
  }
});

Deno.test("server says clearly when its port is in use", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const { code, stderr } = await runDeno([...SERVER_RUN_ARGS, String(taken.addr.port)]);
    assert.equal(code, 1);
    assertOneClearError(stderr, /already in use/);
  } finally {
    taken.close();
  }
});

Deno.test("server without permission for its --host suggests a command, and that command works", async () => {
  // 127.0.0.2 is loopback too, but not the 127.0.0.1 this command may listen on.
  const { code, stderr } = await runDeno([
    "run",
    "--allow-net=127.0.0.1",
    "--allow-read",
    "--allow-env=PARROT_TOKEN",
    "server.ts",
    "0",
    "--host",
    "127.0.0.2",
  ]);
  assert.equal(code, 1);
  assertOneClearError(stderr, /Cannot listen on 127\.0\.0\.2:0: no network permission/);
  const suggested = stderr.match(/run `([^`]+)`/)?.[1];
  assert.equal(suggested, "deno task server 0 --host 127.0.0.2");
  const [command, ...args] = suggested!.split(" ");
  const server = spawn(command, args);
  await listeningPort(server);
  assert.match(server.stderr.text(), /listening on 127\.0\.0\.2:\d+/);
  server.child.kill("SIGINT");
  assert.equal((await server.status).code, 0, server.stderr.text());
});

Deno.test("server and client print help and version", async () => {
  const serverHelp = await runDeno([...SERVER_RUN_ARGS, "--help"]);
  assert.equal(serverHelp.code, 0);
  assert.match(serverHelp.stdout, /Usage: deno task server <port>/);
  for (
    const option of ["--max-clients", "--read-timeout", "--idle-timeout", "--grace", "--stats"]
  ) {
    assert.ok(serverHelp.stdout.includes(option), `help lacks ${option}`);
  }
  const clientHelp = await runDeno([...CLIENT_RUN_ARGS, "-h"]);
  assert.equal(clientHelp.code, 0);
  assert.match(clientHelp.stdout, /Usage: deno task client <port \| host:port>/);
  assert.match(clientHelp.stdout, /deno task client --server <host:port>/);
  const version = await runDeno([...SERVER_RUN_ARGS, "--version"]);
  assert.match(version.stdout, /^parrot \d+\.\d+\.\d+/);
});

Deno.test("client sends --count messages under its pid, then quits and exits 0", async () => {
  const server = await startServer(["--no-broadcast"]);
  const client = await runDeno([
    ...CLIENT_RUN_ARGS,
    String(server.port),
    "--count",
    "3",
    "--interval",
    "10ms",
    "--message",
    "squawk",
  ]);
  assert.equal(client.code, 0, client.stderr);
  const pid = client.stdout.match(/^client\((\d+)\): running\.\.\.$/m)?.[1];
  assert.ok(pid, client.stdout);
  assert.equal(
    client.stdout.split("\n").filter((l) => l === `client(${pid}): write 6 bytes`).length,
    3,
  );
  assert.match(client.stdout, new RegExp(`client\\(${pid}\\): stopping\\.\\.\\.`));
  server.kill("SIGINT");
  await server.status;
  assert.equal(server.stdout.text(), `${pid}: squawk\n`.repeat(3));
});

Deno.test("client reports a refused connection and exits 1", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = probe.addr.port;
  probe.close();
  const { code, stderr } = await runDeno([...CLIENT_RUN_ARGS, String(port)]);
  assert.equal(code, 1);
  assert.match(stderr, new RegExp(`cannot connect to 127\\.0\\.0\\.1:${port}: connection refused`));
  assert.doesNotMatch(stderr, /^\s+at /m);
});

Deno.test("client prints relayed reads, quits on the server's QUIT and exits 0", async () => {
  const server = await startServer();
  const client = spawn(DENO, [...CLIENT_RUN_ARGS, String(server.port), "--interval", "1m"]);
  await client.stdout.waitForText("write ");
  const talker = await RawClient.connect(server.port);
  await talker.write("MSG 5\nhello\n");
  await client.stdout.waitForText("read 5 bytes");
  await talker.close();
  server.kill("SIGINT");
  const status = await client.status;
  assert.equal(status.code, 0, client.stderr.text());
  const out = client.stdout.text();
  assert.match(out, /received request to quit\n.*stopping\.\.\.\n$/);
  assert.equal((await server.status).code, 0);
});

Deno.test("client sends QUIT and exits 0 on SIGINT", async () => {
  const server = await startServer();
  const client = spawn(DENO, [...CLIENT_RUN_ARGS, String(server.port), "--interval", "1m"]);
  await client.stdout.waitForText("write ");
  client.child.kill("SIGINT");
  assert.equal((await client.status).code, 0);
  assert.match(client.stdout.text(), /stopping\.\.\.\n$/);
  server.kill("SIGINT");
  assert.equal((await server.status).code, 0);
  assert.equal(
    server.stdout.text().split("Polly").length - 1,
    1,
    "the one message was not printed once",
  );
});

Deno.test("client rejects a bad --name before connecting", async () => {
  const { code, stderr } = await runDeno([...CLIENT_RUN_ARGS, "1234", "--name", "two words"]);
  assert.equal(code, 2);
  assertOneClearError(stderr, /--name "two words"/);
});

Deno.test("client shows the server's error and exits 1", async () => {
  const server = await startServer(["--max-frame", "4"]);
  const { code, stderr } = await runDeno([
    ...CLIENT_RUN_ARGS,
    String(server.port),
    "--message",
    "too long",
  ]);
  assert.equal(code, 1, stderr);
  assert.match(stderr, /ERR frame too large/);
  server.kill("SIGINT");
  await server.status;
});

Deno.test("server logs JSON lines and periodic stats on stderr when asked", async () => {
  const server = await startServer(["--log-format", "json", "--stats", "100ms"]);
  const client = await RawClient.connect(server.port);
  await client.write("counted\n");
  await client.ping();
  await server.stderr.waitForText(/"message":"stats: clients=1 [^"]*total=1 /);
  await client.close();
  server.kill("SIGINT");
  assert.equal((await server.status).code, 0);
  const records = server.stderr.text().trim().split("\n").map((line) => JSON.parse(line));
  assert.match(records[0].message, /^parrot \S+ listening on 127\.0\.0\.1:\d+( on \d+ threads)?$/);
  assert.ok(records.every((record) => record.level && record.time && record.logger));
  assert.equal(server.stdout.text().split("\n")[0].endsWith(": counted"), true);
});

Deno.test("client says the server is gone and exits 1 when the server dies", async () => {
  const server = await startServer();
  const client = spawn(DENO, [...CLIENT_RUN_ARGS, String(server.port), "--interval", "1m"]);
  await client.stdout.waitForText("write ");
  server.kill("SIGKILL");
  await server.status;
  const status = await client.status;
  assert.equal(status.code, 1);
  assert.match(client.stderr.text(), /the server closed the connection/);
  assert.doesNotMatch(client.stderr.text(), /^\s+at /m);
});

Deno.test("the server task runs with the flags and environment the tests start it with", async () => {
  const denoJson = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const task: string = denoJson.tasks.server;
  const [, ...runArgs] = SERVER_RUN_ARGS;
  const environment = Object.entries(SERVER_ENV).map(([name, value]) => `${name}=${value}`);
  assert.equal(task, [...environment, "deno", "run", ...runArgs].join(" "));
});
