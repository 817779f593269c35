/**
 * Integration tests of the graceful shutdown: SIGINT/SIGTERM while many connections
 * pipeline messages loses nothing and prints nothing twice, with the server started
 * directly, under `deno task`, and signalled as a whole process group.
 */

import assert from "node:assert/strict";
import {
  auditPrinted,
  connectQuiet,
  MAX_PER_CLIENT,
  pipeline,
} from "../scripts/torture/shutdown.ts";
import { DENO, listeningPort, RawClient, spawn, startServer, waitFor } from "../lib/testing.ts";

const CONNECTIONS = 50;

async function shutdownUnderLoad(
  startedAs: "directly" | "deno task" | "process group",
  signal: Deno.Signal,
) {
  const args = ["--grace", "20s"];
  let server;
  let stop: () => Promise<void>;
  if (startedAs === "process group") {
    // setsid makes the task its own process group, as a terminal's foreground job is.
    const running = spawn("setsid", [DENO, "task", "-q", "server", "0", ...args]);
    const port = await listeningPort(running);
    const pid = running.child.pid;
    server = { ...running, port };
    stop = async () => {
      await new Deno.Command("kill", { args: [`-${signal.slice(3)}`, "--", `-${pid}`] }).output();
    };
  } else {
    const started = await startServer(args, { viaTask: startedAs === "deno task" });
    server = started;
    stop = () => Promise.resolve(started.kill(signal));
  }
  const deadline = Date.now() + 60_000;
  const clients = [];
  for (let i = 0; i < CONNECTIONS; i++) {
    const name = `c${i}`;
    // Half say QUIT at the end, half just close their write side.
    clients.push(
      connectQuiet(server.port, name).then((c) => pipeline(c, name, i % 2 === 0, deadline)),
    );
  }
  await waitFor(() => server.stdout.length > 1_500_000, "messages flowing", 30_000);
  await stop();
  const results = await Promise.all(clients);
  const status = await server.status;
  assert.equal(status.code, 0, server.stderr.text());
  assert.match(server.stderr.text(), new RegExp(`received ${signal}`));
  assert.ok(results.some((r) => r.sent < MAX_PER_CLIENT), "the signal came after all was sent");
  assert.deepEqual(auditPrinted(server.stdout.text(), results), {
    printed: results.reduce((sum, r) => sum + r.sent, 0),
    missing: 0,
    duplicates: 0,
    foreign: 0,
  });
  const total = results.reduce((sum, r) => sum + r.sent, 0);
  console.log(`${startedAs}: ${total} messages from ${CONNECTIONS} connections, all printed once`);
}

Deno.test("server started directly prints every message once on SIGINT under load and exits 0", async () => {
  await shutdownUnderLoad("directly", "SIGINT");
});

Deno.test("server under deno task prints every message once on SIGTERM to the task and exits 0", async () => {
  await shutdownUnderLoad("deno task", "SIGTERM");
});

Deno.test("server under deno task survives SIGINT to its whole process group and exits 0", async () => {
  await shutdownUnderLoad("process group", "SIGINT");
});

Deno.test("server ignores a repeated SIGINT within a second and exits at once on one after it", async () => {
  const server = await startServer(["--grace", "30s"]);
  const stubborn = await RawClient.connect(server.port); // never answers QUIT
  await stubborn.ping();
  server.kill("SIGINT");
  server.kill("SIGINT"); // the same Ctrl+C, delivered twice
  await stubborn.received.waitForText("QUIT\n");
  let exited = false;
  server.status.then(() => exited = true);
  // A second Ctrl+C counts only a second after the first; the time itself is the subject.
  await new Promise((resolve) => setTimeout(resolve, 1_100));
  assert.equal(exited, false, "the repeat within a second stopped the server");
  server.kill("SIGINT");
  const status = await server.status;
  assert.equal(status.code, 130);
  await stubborn.close();
});

Deno.test("server closes clients that ignore QUIT when the grace period ends, then exits 0", async () => {
  const server = await startServer(["--grace", "300ms"]);
  const stubborn = await RawClient.connect(server.port);
  await stubborn.write("HELLO late\nlast words\n");
  await stubborn.ping();
  const started = Date.now();
  server.kill("SIGTERM");
  await stubborn.closedByServer();
  assert.equal((await server.status).code, 0);
  assert.ok(Date.now() - started >= 250, "closed before the grace period ended");
  assert.equal(server.stdout.text(), "late: last words\n");
  await stubborn.close();
});
