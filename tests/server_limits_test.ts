/**
 * Integration tests of the server's limits and deadlines: each offender gets a clear
 * `ERR` line and a close, and the other clients keep flowing.
 */

import assert from "node:assert/strict";
import {
  DENO,
  listeningPort,
  msg,
  RawClient,
  type Running,
  SERVER_RUN_ARGS,
  spawn,
  startServer,
  waitFor,
} from "../lib/testing.ts";

/** Sends a message from `client` and checks it reached stdout (the PONG is a barrier). */
async function stillServed(
  client: RawClient,
  server: { stdout: { text(): string } },
  text: string,
) {
  await client.write(msg(text));
  await client.ping();
  assert.ok(server.stdout.text().includes(`: ${text}\n`), `"${text}" was not printed`);
}

/** Closes `clients`, stops the server with SIGINT and checks that it exits 0. */
async function closeAndStop(server: Running, ...clients: RawClient[]): Promise<void> {
  await Promise.all(clients.map((client) => client.close()));
  server.child.kill("SIGINT");
  assert.equal((await server.status).code, 0);
}

Deno.test("server refuses clients over --max-clients and frees the slot when one leaves", async () => {
  const server = await startServer(["--max-clients", "2"]);
  const first = await RawClient.connect(server.port);
  const second = await RawClient.connect(server.port);
  await Promise.all([first.ping(), second.ping()]);
  const third = await RawClient.connect(server.port);
  assert.equal(await third.closedByServer(), "ERR too many clients\n");
  await first.close();
  // The slot frees once the server has seen the close: knock until it lets us in.
  let admitted: RawClient | undefined;
  for (let attempt = 0; attempt < 100 && !admitted; attempt++) {
    const knocking = await RawClient.connect(server.port);
    await knocking.write("PING\n");
    let closed = false;
    knocking.received.done.then(() => closed = true);
    await waitFor(() => closed || knocking.received.text() === "PONG\n", "an answer");
    if (closed) await knocking.close();
    else admitted = knocking;
  }
  assert.ok(admitted, "the slot was never freed");
  await stillServed(admitted, server, "a free slot");
  await closeAndStop(server, second, third, admitted);
});

Deno.test("server answers bad frames with ERR, closes them, and keeps serving others", async () => {
  const server = await startServer(["--max-frame", "16"]);
  const healthy = await RawClient.connect(server.port);
  await healthy.write("HELLO healthy\nUNSUB\n");
  const cases: [string, string][] = [
    ["MSG 17\n", "ERR frame too large\n"],
    ["MSG 99999999999999999999999999999999999999\n", "ERR frame too large\n"],
    ["MSG abc\n", "ERR malformed frame\n"],
    ["MSG -1\n", "ERR malformed frame\n"],
    ["MSG 3\nabcdef\n", "ERR malformed frame\n"],
    ["HELLO two words\n", "ERR invalid name\n"],
    ["x".repeat(5000), "ERR control line too long\n"],
  ];
  for (const [index, [input, expected]] of cases.entries()) {
    const offender = await RawClient.connect(server.port);
    await offender.write(input);
    assert.equal(
      await offender.closedByServer(),
      expected,
      `for ${JSON.stringify(input.slice(0, 20))}`,
    );
    await offender.close();
    await stillServed(healthy, server, `ok ${index}`);
  }
  await closeAndStop(server, healthy);
  assert.doesNotMatch(server.stderr.text(), /\bat .*\.ts:\d+/, "a stack trace was logged");
});

Deno.test("server evicts a slowloris sender with ERR read timeout while others flow", async () => {
  const server = await startServer(["--read-timeout", "300ms"]);
  const healthy = await RawClient.connect(server.port);
  const slow = await RawClient.connect(server.port);
  await slow.write("UNSUB\n");
  await slow.ping();
  const started = Date.now();
  // One byte every 50 ms: each read is in time, but the line never completes.
  let evicted = false;
  slow.received.done.then(() => evicted = true);
  for (let i = 0; i < 100 && !evicted; i++) {
    try {
      await slow.write("z");
    } catch {
      break; // The server closed on us.
    }
    await stillServed(healthy, server, `beat ${i}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal(await slow.closedByServer(), "PONG\nERR read timeout\n");
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 250 && elapsed < 3_000, `evicted after ${elapsed}ms`);
  await closeAndStop(server, healthy, slow);
});

Deno.test("server PINGs an idle client and drops it with ERR idle timeout", async () => {
  const server = await startServer(["--idle-timeout", "200ms"]);
  const silent = await RawClient.connect(server.port);
  const answering = await RawClient.connect(server.port);
  // The one that answers every PING is still served after several idle periods.
  const answers = (async () => {
    for (let pings = 1; pings <= 3; pings++) {
      await waitFor(
        () => answering.received.text().split("PING\n").length > pings,
        `PING ${pings}`,
      );
      await answering.write("PONG\n");
    }
  })();
  assert.equal(await silent.closedByServer(), "PING\nERR idle timeout\n");
  await answers;
  await stillServed(answering, server, "still here");
  assert.doesNotMatch(answering.received.text(), /ERR/);
  await closeAndStop(server, silent, answering);
});

Deno.test("server cuts off a slow consumer while the other subscribers get every message", async () => {
  const server = await startServer(["--max-outbound", "1048576"]);
  const publisher = await RawClient.connect(server.port);
  const reader = await RawClient.connect(server.port);
  // The sleeper never reads until the end: its socket buffers fill, then its queue.
  const sleeper = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  await sleeper.write(new TextEncoder().encode("HELLO sleeper\n"));
  await publisher.write("HELLO pub\nUNSUB\n");
  await reader.write("HELLO reader\n");
  await Promise.all([publisher.ping(), reader.ping()]);
  const payload = "p".repeat(16 * 1024);
  const count = 1600; // 25 MiB: far beyond the sleeper's socket buffers and 1 MiB
  const frameBytes = `MSG pub ${payload.length}\n`.length + payload.length + 1;
  // In rounds of 512 KiB, each taken by the reader before the next: a reader that keeps
  // up, whatever the speed of this process, while the sleeper's backlog only grows.
  const round = 32;
  for (let sent = 0; sent < count; sent += round) {
    for (let i = 0; i < round; i++) await publisher.write(msg(payload));
    await waitFor(
      () => reader.received.length >= (sent + round) * frameBytes,
      `the reader to get ${sent + round} messages`,
      30_000,
    );
  }
  await publisher.ping(60_000);
  assert.equal(reader.received.text().split(`MSG pub ${payload.length}\n`).length - 1, count);
  await waitFor(() => server.stderr.text().includes("slow consumer"), "the slow-consumer log");
  assert.match(server.stderr.text(), /slow consumer sleeper/);
  const heard = new Uint8Array(await new Response(sleeper.readable).arrayBuffer());
  assert.ok(heard.length < count * frameBytes, "the sleeper got everything after all");
  await closeAndStop(server, publisher, reader);
});

Deno.test("server logs one line when it runs out of file descriptors and keeps serving", async () => {
  // A tiny open-file limit, set by the shell the way `ulimit -n` is in a terminal.
  const running = spawn("sh", [
    "-c",
    'ulimit -n 64; exec "$@"',
    "sh",
    DENO,
    ...SERVER_RUN_ARGS,
    "0",
  ]);
  const port = await listeningPort(running);
  const held: RawClient[] = [];
  for (let i = 0; i < 100; i++) held.push(await RawClient.connect(port));
  await running.stderr.waitForText("out of file descriptors");
  const warnings = running.stderr.text().split("\n").filter((l) => l.includes("file descriptors"));
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /while holding \d+; raise the limit with `ulimit -n`/);
  for (const client of held) await client.close();
  const fresh = await RawClient.connect(port);
  await fresh.write("HELLO fresh\nstill alive\n");
  await fresh.ping();
  await closeAndStop(running, fresh);
  assert.match(running.stdout.text(), /^fresh: still alive$/m);
});
