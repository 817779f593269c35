/**
 * Integration tests of `server.ts --threads <n>`: the real server process with its
 * shards in Workers, driven over loopback as users would.
 */
import assert from "node:assert/strict";
import {
  RawClient,
  runDeno,
  SERVER_RUN_ARGS,
  startServer,
  TextConn,
  waitFor,
} from "../lib/testing.ts";

const PUBLISHERS = 12;
const MESSAGES = 50;

Deno.test("server --threads 2 prints and relays every message of clients spread over both shards", async () => {
  const server = await startServer(["--threads", "2"]);
  assert.match(server.stderr.text(), /listening on 127\.0\.0\.1:\d+ on 2 threads/);
  const subscriber = await TextConn.connect(server.port);
  await subscriber.write("HELLO sub\nPING\n");
  await subscriber.until("PONG\n");
  // Thirteen connections: the kernel spreads them over both shards' listeners (all on
  // one would take 1 chance in 4,096), so most relays cross from one shard to the other.
  const publishers = await Promise.all(
    Array.from({ length: PUBLISHERS }, () => RawClient.connect(server.port)),
  );
  const expected = new Map<string, string[]>();
  await Promise.all(publishers.map(async (publisher, p) => {
    const lines = Array.from({ length: MESSAGES }, (_, m) => `p${p} message ${m}`);
    expected.set(`p${p}`, lines);
    const frames = lines.map((line) => `MSG ${line.length}\n${line}\n`).join("");
    await publisher.write(`HELLO p${p}\nUNSUB\n${frames}`);
    await publisher.ping();
  }));
  const total = PUBLISHERS * MESSAGES;
  let relayed = "";
  // Two lines per relay: `MSG <from> <n>` and the payload.
  for (let line = 0; line < 2 * total; line++) relayed += await subscriber.until("\n");
  for (const publisher of publishers) await publisher.close();
  subscriber.close();
  server.kill("SIGTERM");
  assert.equal((await server.status).code, 0);
  assert.match(server.stderr.text(), new RegExp(`Server stopped: ${total} messages received`));

  const printed = server.stdout.text().split("\n").slice(0, -1);
  assert.equal(printed.length, total);
  const relayedPayloads = relayed.split("\n").filter((_, i) => i % 2 === 1);
  for (const [name, lines] of expected) {
    const mine = (records: string[], prefix: string) =>
      records.filter((r) => r.startsWith(prefix)).map((r) => r.slice(prefix.length));
    assert.deepEqual(mine(printed, `${name}: `), lines, `${name}'s records, in order`);
    assert.deepEqual(
      mine(relayedPayloads, `${name} `),
      lines.map((line) => line.slice(name.length + 1)),
      `${name}'s relays, in order`,
    );
  }
});

Deno.test("server --threads 2 applies one --max-clients to both shards", async () => {
  const server = await startServer(["--threads", "2", "--max-clients", "2"]);
  const admitted = [await RawClient.connect(server.port), await RawClient.connect(server.port)];
  for (const client of admitted) await client.ping();
  // Whichever shard the kernel hands them to, a third and a fourth find no slot.
  for (let i = 0; i < 2; i++) {
    const extra = await RawClient.connect(server.port);
    assert.equal(await extra.closedByServer(), "ERR too many clients\n");
    await extra.close();
  }
  await admitted[0].close();
  // The slot is free once the server has seen the close: until then, a refusal.
  let later: TextConn | undefined;
  await waitFor(async () => {
    const candidate = await TextConn.connect(server.port);
    await candidate.write("PING\n");
    const reply = await candidate.until("\n");
    if (reply === "PONG\n") later = candidate;
    else candidate.close();
    return later !== undefined;
  }, "the freed slot to take the next client");
  later!.close();
  await admitted[1].close();
  server.kill("SIGTERM");
  assert.equal((await server.status).code, 0);
});

Deno.test("server --threads needs --unstable-net; without it the server runs on one thread", async () => {
  const plain = SERVER_RUN_ARGS.filter((arg) => arg !== "--unstable-net");
  const { code, stderr } = await runDeno([...plain, "0", "--threads", "2"]);
  assert.equal(code, 2);
  assert.match(stderr, /Cannot use --threads 2: it needs `deno run --unstable-net`/);
  assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");

  const oneThread = await startServer([], { runArgs: plain });
  oneThread.kill("SIGTERM");
  assert.equal((await oneThread.status).code, 0);
  assert.match(oneThread.stderr.text(), /listening on 127\.0\.0\.1:\d+\n/, "no threads named");
});
