/**
 * Integration test of examples/kv_server.ts: the example runs as a real process, as its
 * doc comment says to run it, and raw sockets check its commands, its limits (line
 * length, client count, idle deadline) and its graceful shutdown on SIGINT (exit 0).
 *
 * @module
 */

import assert from "node:assert/strict";
import { DENO, RawClient, type Running, spawn } from "../lib/testing.ts";

/** Starts the example with `args`; returns it and its port once it listens. */
async function startKv(args: string[] = []): Promise<{ server: Running; port: number }> {
  const server = spawn(DENO, [
    "run",
    "--allow-net=127.0.0.1",
    "examples/kv_server.ts",
    "0",
    ...args,
  ]);
  const listening = /^kv server listening on 127\.0\.0\.1:(\d+)$/m;
  const port = Number(listening.exec(await server.stderr.waitForText(listening))![1]);
  return { server, port };
}

/** Stops the example if it still runs, closes the clients, and waits for both. */
async function cleanUp(server: Running, clients: RawClient[]): Promise<void> {
  await Promise.all(clients.map((client) => client.close()));
  try {
    server.child.kill("SIGTERM");
  } catch {
    // It has exited already.
  }
  await server.status;
}

Deno.test("kv example sets, gets and deletes across clients, and says BYE to QUIT", async () => {
  const { server, port } = await startKv();
  const clients: RawClient[] = [];
  try {
    const [ann, bob] = [await RawClient.connect(port), await RawClient.connect(port)];
    clients.push(ann, bob);
    await ann.write("SET colour deep ");
    await ann.write("blue\r\n"); // a command in two writes, with a CRLF line end
    await ann.received.waitForText("OK\n");
    await bob.write("GET colour\nGET size\nDEL colour\nGET colour\nFLY away\nQUIT\n");
    assert.equal(
      await bob.closedByServer(),
      "VALUE deep blue\nNIL\nOK\nNIL\n" +
        "ERR expected SET <key> <value>, GET <key>, DEL <key> or QUIT\nBYE\n",
    );
    assert.equal(ann.received.text(), "OK\n");
  } finally {
    await cleanUp(server, clients);
  }
});

Deno.test("kv example refuses a line over 4 KiB and a client over --max-clients", async () => {
  const { server, port } = await startKv(["--max-clients", "1"]);
  const clients: RawClient[] = [];
  try {
    const first = await RawClient.connect(port);
    clients.push(first);
    await first.write("GET a\n");
    await first.received.waitForText("NIL\n"); // it holds the one slot
    const second = await RawClient.connect(port);
    clients.push(second);
    assert.equal(await second.closedByServer(), "ERR too many clients\n");

    await first.write(`SET big ${"x".repeat(5000)}\n`);
    assert.equal(await first.closedByServer(), "NIL\nERR line too long\n");
  } finally {
    await cleanUp(server, clients);
  }
});

Deno.test("kv example ends a silent connection after --idle-timeout", async () => {
  const { server, port } = await startKv(["--idle-timeout", "100ms"]);
  const clients: RawClient[] = [];
  try {
    const silent = await RawClient.connect(port);
    clients.push(silent);
    assert.equal(await silent.closedByServer(), "ERR timeout\n");
  } finally {
    await cleanUp(server, clients);
  }
});

Deno.test("kv example tells its clients BYE and exits 0 on SIGINT", async () => {
  const { server, port } = await startKv();
  const clients: RawClient[] = [];
  try {
    const client = await RawClient.connect(port);
    clients.push(client);
    await client.write("SET k v\n");
    await client.received.waitForText("OK\n");
    server.child.kill("SIGINT");
    assert.equal(await client.closedByServer(), "OK\nBYE server shutting down\n");
    const status = await server.status;
    assert.equal(status.code, 0, server.stderr.text());
  } finally {
    await cleanUp(server, clients);
  }
});

Deno.test("kv example refuses bad arguments with one line and exit code 2", async () => {
  const server = spawn(DENO, ["run", "examples/kv_server.ts", "0", "--max-clients", "lots"]);
  const status = await server.status;
  assert.equal(status.code, 2);
  assert.equal(server.stderr.text(), "Cannot use 0 --max-clients lots: expected whole numbers\n");
});
