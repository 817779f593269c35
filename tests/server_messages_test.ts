/**
 * Integration tests of the server process: what reaches stdout, and what clients
 * hear back (relay, PONG barrier, SUB/UNSUB). Real processes, loopback sockets.
 */

import assert from "node:assert/strict";
import { hasCommand, msg, RawClient, spawn, startServer, waitFor } from "../lib/testing.ts";

Deno.test("server prints each message with its sender's name", async () => {
  const server = await startServer(["--no-broadcast"]);
  const named = await RawClient.connect(server.port);
  const anonymous = await RawClient.connect(server.port);
  await named.write("HELLO polly\n");
  await named.write(msg("first"));
  await named.write("second as a text line\n");
  await anonymous.write(msg("from nowhere"));
  await named.ping();
  await anonymous.ping();
  const { port: localPort } = anonymous.conn.localAddr as Deno.NetAddr;
  await named.close();
  await anonymous.close();
  server.kill("SIGINT");
  assert.equal((await server.status).code, 0);
  const lines = server.stdout.text().split("\n");
  assert.deepEqual(lines.filter((l) => l.startsWith("polly: ")), [
    "polly: first",
    "polly: second as a text line",
  ]);
  assert.ok(lines.includes(`127.0.0.1:${localPort}: from nowhere`), server.stdout.text());
});

Deno.test("server keeps binary, multi-line payloads byte for byte", async () => {
  const server = await startServer(["--no-broadcast"]);
  const client = await RawClient.connect(server.port);
  const payload = new Uint8Array([0, 13, 10, 77, 83, 71, 32, 49, 10, 255, 13, 0, 10]);
  await client.write("HELLO bin\n");
  await client.write(msg(payload));
  await client.ping();
  await client.close();
  server.kill("SIGTERM");
  assert.equal((await server.status).code, 0);
  const expected = new Uint8Array([...new TextEncoder().encode("bin: "), ...payload, 10]);
  assert.deepEqual(server.stdout.bytes(), expected);
});

Deno.test("server's PONG comes only after the messages before it are on stdout", async () => {
  const file = await Deno.makeTempFile({ suffix: ".log" });
  try {
    const server = await startServer(["--no-broadcast"], { stdoutFile: file });
    const client = await RawClient.connect(server.port);
    await client.write("HELLO barrier\n");
    const frames = [];
    for (let i = 0; i < 2000; i++) frames.push(`MSG ${String(i).length}\n${i}\n`);
    await client.write(frames.join("") + "PING\n");
    await waitFor(() => client.received.text().includes("PONG\n"), "PONG");
    const printed = (await Deno.readTextFile(file)).split("\n").filter((l) => l !== "");
    assert.equal(printed.length, 2000);
    assert.equal(printed[1999], "barrier: 1999");
    await client.close();
    server.kill("SIGINT");
    assert.equal((await server.status).code, 0);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("server takes plain text lines from a raw socket, ignoring CR and empty lines", async () => {
  const server = await startServer(["--no-broadcast"]);
  const client = await RawClient.connect(server.port);
  await client.write("HELLO typist\r\nhello there\r\n\r\n\nping is not PING\nPING\r\n");
  await waitFor(() => client.received.text().includes("PONG"), "PONG");
  await client.close();
  server.kill("SIGINT");
  await server.status;
  assert.equal(server.stdout.text(), "typist: hello there\ntypist: ping is not PING\n");
});

const ncMissing = !(await hasCommand("nc"));
if (ncMissing) console.log("skipping the nc test: nc (netcat-openbsd) is not installed");

Deno.test({
  name: "server takes messages from nc",
  ignore: ncMissing,
  async fn() {
    const server = await startServer(["--no-broadcast"]);
    const nc = spawn("nc", ["-q", "1", "127.0.0.1", String(server.port)], { stdin: "piped" });
    const writer = nc.child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("HELLO netcat\nsquawk\nPING\n"));
    await nc.stdout.waitForText("PONG");
    await writer.close();
    assert.equal((await nc.status).code, 0);
    server.kill("SIGINT");
    await server.status;
    assert.equal(server.stdout.text(), "netcat: squawk\n");
  },
});

Deno.test("server relays to other subscribers, never back to the sender", async () => {
  const server = await startServer();
  const ann = await RawClient.connect(server.port);
  const bob = await RawClient.connect(server.port);
  const cat = await RawClient.connect(server.port);
  await ann.write("HELLO ann\n");
  await bob.write("HELLO bob\n");
  await cat.write("HELLO cat\nUNSUB\n");
  await Promise.all([ann.ping(), bob.ping(), cat.ping()]);
  await ann.write(msg("two\nlines"));
  await ann.ping();
  await bob.ping();
  assert.equal(bob.received.text(), "PONG\nMSG ann 9\ntwo\nlines\nPONG\n");
  assert.equal(ann.received.text(), "PONG\nPONG\n");
  await cat.write("SUB\n");
  await cat.ping();
  await bob.write("text from bob\n");
  await bob.ping();
  await cat.ping();
  assert.equal(cat.received.text(), "PONG\nPONG\nMSG bob 13\ntext from bob\nPONG\n");
  await Promise.all([ann.close(), bob.close(), cat.close()]);
  server.kill("SIGINT");
  assert.equal((await server.status).code, 0);
});

Deno.test("server with --no-broadcast relays nothing", async () => {
  const server = await startServer(["--no-broadcast"]);
  const ann = await RawClient.connect(server.port);
  const bob = await RawClient.connect(server.port);
  await bob.ping();
  await ann.write(msg("hello?"));
  await ann.ping();
  await bob.ping();
  assert.equal(bob.received.text(), "PONG\nPONG\n");
  await Promise.all([ann.close(), bob.close()]);
  server.kill("SIGINT");
  await server.status;
  assert.match(server.stdout.text(), /: hello\?\n$/);
});
