/**
 * Integration test of examples/echo_server.ts: the example runs as a real process and
 * two raw sockets check that each line comes back to its own sender only, and that
 * SIGTERM shuts it down gracefully with exit code 0.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DENO, RawClient, spawn } from "../lib/testing.ts";

Deno.test("echo example echoes each line to its own sender and exits 0 on SIGTERM", async () => {
  const server = spawn(DENO, ["run", "--allow-net=127.0.0.1", "examples/echo_server.ts", "0"]);
  const clients: RawClient[] = [];
  try {
    const listening = /^echo server listening on 127\.0\.0\.1:(\d+)$/m;
    const port = Number(listening.exec(await server.stderr.waitForText(listening))![1]);
    const [alice, bob] = [await RawClient.connect(port), await RawClient.connect(port)];
    clients.push(alice, bob);

    await alice.write("hello from alice\n");
    await bob.write("hello from bob\n");
    await alice.write("a line in ");
    await alice.write("two writes\n");
    await alice.received.waitForText("two writes\n");
    await bob.received.waitForText("hello from bob\n");
    assert.equal(alice.received.text(), "hello from alice\na line in two writes\n");
    assert.equal(bob.received.text(), "hello from bob\n");

    server.child.kill("SIGTERM");
    const status = await server.status;
    assert.equal(status.code, 0, server.stderr.text());
    // Shutting down hangs up on the connected clients.
    await alice.closedByServer();
    await bob.closedByServer();
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    try {
      server.child.kill("SIGTERM");
    } catch {
      // It has exited already.
    }
    await server.status;
  }
});
