/**
 * Cluster mode end to end: parrot server processes joined through a real nats-server, real
 * clients on each. Two servers act as one conversation (both ways, names and bytes exact,
 * nothing twice, nothing echoed); the limits of local traffic apply to remote traffic; a
 * server serves locally while NATS is unreachable; one server's shutdown leaves the other
 * serving; garbage on the cluster subject is counted and dropped.
 */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { BatchEncoder, randomBootId } from "../lib/cluster/cluster_frame.ts";
import {
  concatBytes,
  hasCommand,
  httpListeningPort,
  msg,
  type RawClient,
  restartNats,
  runDeno,
  SERVER_RUN_ARGS,
  startNats,
  waitFor,
} from "../lib/testing.ts";
import {
  namedClient,
  relayedFrames,
  startClusterServer,
  stopServer,
  textsFrom,
  waitForStats,
} from "./cluster_helpers.ts";

const decoder = new TextDecoder();

Deno.test("two servers on one NATS are one conversation: both ways, names and bytes exact, nothing twice or echoed", async () => {
  const nats = await startNats();
  const east = await startClusterServer(nats.url, "east");
  const west = await startClusterServer(nats.url, "west", ["--print-cluster"]);
  const clients: RawClient[] = [];
  try {
    const ann = await namedClient(east.port, "ann");
    const carl = await namedClient(east.port, "carl");
    const bob = await namedClient(west.port, "bob");
    const dora = await namedClient(west.port, "dora");
    clients.push(ann, carl, bob, dora);
    const binary = Uint8Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 0xff);
    binary.set([10, 77, 83, 71, 32, 120, 32, 49, 10, 0, 13], 50); // "\nMSG x 1\n\0\r" inside
    const count = 100;
    const annSays = Array.from({ length: count }, (_, i) => `ann ${i}`);
    const bobSays = Array.from({ length: count }, (_, i) => `bob ${i}`);
    await ann.write(concatBytes(...annSays.map((text) => msg(text)), msg(binary)));
    await bob.write(concatBytes(...bobSays.map((text) => msg(text)), msg(binary)));
    await Promise.all([ann.ping(), bob.ping()]);
    // Each side's last message is the binary one: once it arrived, everything before it did.
    const arrived = (client: RawClient, from: string) =>
      relayedFrames(client.received.bytes()).filter((r) => r.from === from).length === count + 1;
    await waitFor(
      () =>
        arrived(dora, "ann") && arrived(carl, "bob") && arrived(bob, "ann") && arrived(ann, "bob"),
      "every message on the other server",
    );
    // A last round trip each way: anything relayed twice would have come by now.
    await ann.write(msg("last from ann"));
    await bob.write(msg("last from bob"));
    await waitFor(
      () =>
        textsFrom(dora, "ann").includes("last from ann") &&
        textsFrom(carl, "bob").includes("last from bob"),
      "the last messages",
    );
    for (
      const [client, from, said] of [[dora, "ann", annSays], [bob, "ann", annSays], [
        carl,
        "bob",
        bobSays,
      ], [ann, "bob", bobSays]] as const
    ) {
      const frames = relayedFrames(client.received.bytes()).filter((r) => r.from === from);
      assert.deepEqual(
        frames.slice(0, count).map((r) => decoder.decode(r.payload)),
        said,
        `${from}'s messages, once each and in order`,
      );
      assert.deepEqual(frames[count].payload, binary, `${from}'s binary payload, byte for byte`);
      assert.equal(frames.length, count + 2);
    }
    // Nobody hears its own messages back, through NATS or otherwise.
    assert.equal(textsFrom(ann, "ann").length, 0);
    assert.equal(textsFrom(bob, "bob").length, 0);
    // Local clients still hear each other once.
    assert.equal(relayedFrames(carl.received.bytes()).filter((r) => r.from === "ann").length, 102);
  } finally {
    for (const client of clients) await client.close();
    assert.equal(await stopServer(east), 0);
    assert.equal(await stopServer(west), 0);
    await nats.stop();
  }
  // stdout: each server prints its own clients' messages; --print-cluster adds the others'.
  const eastLines = east.stdout.text().split("\n");
  assert.ok(eastLines.includes("ann: ann 0"));
  assert.ok(!eastLines.some((line) => line.startsWith("bob")), "east prints no remote message");
  const westLines = west.stdout.text().split("\n");
  assert.ok(westLines.includes("bob: bob 99"));
  assert.ok(westLines.includes("ann@east: ann 99"), west.stdout.text().slice(0, 400));
  assert.equal(westLines.filter((line) => line.startsWith("ann@east: ann ")).length, 100);
});

Deno.test("server in cluster mode serves its clients while NATS is unreachable, says so once, and joins when NATS comes", async () => {
  // A port nothing listens on: start a NATS to learn a free port, stop it.
  const probe = await startNats();
  await probe.stop();
  const url = `nats://127.0.0.1:${probe.port}`;
  const east = await startClusterServer(url, "east", [], { connected: false });
  let nats: Awaited<ReturnType<typeof startNats>> | undefined;
  let west: Awaited<ReturnType<typeof startClusterServer>> | undefined;
  const clients: RawClient[] = [];
  try {
    await east.stderr.waitForText("Cannot connect to NATS");
    const ann = await namedClient(east.port, "ann");
    const carl = await namedClient(east.port, "carl");
    clients.push(ann, carl);
    await ann.write(msg("while NATS is away"));
    await waitFor(() => textsFrom(carl, "ann").length === 1, "the local relay");
    // Still trying, said once.
    await waitFor(
      () => east.stderr.text().split("\n").filter((l) => l.includes("Cannot connect")).length >= 1,
      "the first failure",
    );
    nats = await restartNats(probe);
    await east.stderr.waitForText("Connected to NATS at", 15_000);
    assert.equal(
      east.stderr.text().split("\n").filter((l) => l.includes("Cannot connect to NATS")).length,
      1,
      east.stderr.text(),
    );
    west = await startClusterServer(nats.url, "west");
    const bob = await namedClient(west.port, "bob");
    clients.push(bob);
    await ann.write(msg("now through NATS"));
    await waitFor(
      () => textsFrom(bob, "ann").includes("now through NATS"),
      "ann's message on west",
    );
  } finally {
    for (const client of clients) await client.close();
    assert.equal(await stopServer(east), 0);
    if (west) assert.equal(await stopServer(west), 0);
    await nats?.stop();
  }
});

Deno.test("server in cluster mode: one server's SIGINT leaves the other serving and relaying", async () => {
  const nats = await startNats();
  const east = await startClusterServer(nats.url, "east");
  const west = await startClusterServer(nats.url, "west");
  const survivors: RawClient[] = [];
  try {
    const ann = await namedClient(east.port, "ann");
    const bob = await namedClient(west.port, "bob");
    const dora = await namedClient(west.port, "dora");
    survivors.push(bob, dora);
    await ann.write(msg("before the shutdown"));
    await ann.ping();
    const eastExit = stopServer(east);
    // What ann sent before the shutdown is published before east leaves.
    await waitFor(() => textsFrom(bob, "ann").includes("before the shutdown"), "ann's message");
    await ann.close();
    assert.equal(await eastExit, 0, east.stderr.text());
    await bob.write(msg("still here"));
    await waitFor(() => textsFrom(dora, "bob").includes("still here"), "the local relay on west");
    // West also still talks to the cluster: a new server joins and hears it.
    const south = await startClusterServer(nats.url, "south");
    try {
      const eve = await namedClient(south.port, "eve");
      await bob.write(msg("to the newcomer"));
      await waitFor(
        () => textsFrom(eve, "bob").includes("to the newcomer"),
        "bob's message on south",
      );
      await eve.close();
    } finally {
      assert.equal(await stopServer(south), 0);
    }
  } finally {
    for (const client of survivors) await client.close();
    assert.equal(await stopServer(west), 0);
    await nats.stop();
  }
});

Deno.test("server in cluster mode counts and drops garbage on the subject, too large and badly named messages, and keeps relaying", async () => {
  const nats = await startNats();
  const east = await startClusterServer(nats.url, "east");
  const west = await startClusterServer(nats.url, "west", [
    "--max-frame",
    "100",
    "--stats",
    "100ms",
  ]);
  const clients: RawClient[] = [];
  const foreign = await connect({ servers: nats.url });
  try {
    const ann = await namedClient(east.port, "ann");
    const bob = await namedClient(west.port, "bob");
    clients.push(ann, bob);
    // Garbage from a foreign NATS client, on the subject every parrot server listens to.
    foreign.publish("parrot.msg.mallory", new TextEncoder().encode("not a parrot frame"));
    foreign.publish("parrot.msg.mallory", new Uint8Array(0));
    foreign.publish(
      "parrot.msg.mallory",
      Uint8Array.of(0x50, 0x43, 1, 1, ...new Array(40).fill(255)),
    );
    await foreign.flush();
    await waitForStats(west, (s) => Number(s.cluster_invalid) === 3, "three invalid frames");
    // A well-formed frame whose sender name no parrot client can have: MSG would break.
    const forged = new BatchEncoder({ name: "mallory", boot: randomBootId(), age: () => 0 });
    forged.add("bad name", new TextEncoder().encode("forged"));
    foreign.publish("parrot.msg.mallory", forged.seal(1));
    await foreign.flush();
    await waitForStats(west, (s) => Number(s.cluster_refused) === 1, "the bad name refused");
    assert.match(west.stderr.text(), /the sender name "bad name" is not valid/);
    // Over west's max frame (east allows it): refused on west alone, its neighbours relayed.
    await ann.write(concatBytes(msg("small before"), msg("x".repeat(101)), msg("small after")));
    await waitFor(() => textsFrom(bob, "ann").includes("small after"), "the small messages");
    assert.deepEqual(textsFrom(bob, "ann"), ["small before", "small after"]);
    const stats = await waitForStats(west, (s) => Number(s.cluster_refused) === 2, "two refused");
    assert.equal(stats.cluster_received, "4");
    assert.equal(textsFrom(bob, "bad").length, 0);
  } finally {
    await foreign.close();
    for (const client of clients) await client.close();
    assert.equal(await stopServer(east), 0);
    assert.equal(await stopServer(west), 0);
    await nats.stop();
  }
});

Deno.test("server in cluster mode cuts off a subscriber too slow for remote traffic, as for local", async () => {
  const nats = await startNats();
  const east = await startClusterServer(nats.url, "east");
  const west = await startClusterServer(nats.url, "west", [
    "--max-outbound",
    "65536",
    "--write-timeout",
    "500ms",
    "--stats",
    "100ms",
  ]);
  const clients: RawClient[] = [];
  // A subscriber that never reads.
  const sleeper = await Deno.connect({ hostname: "127.0.0.1", port: west.port });
  try {
    await sleeper.write(new TextEncoder().encode("HELLO sleeper\n"));
    const bob = await namedClient(west.port, "bob");
    const ann = await namedClient(east.port, "ann");
    clients.push(ann, bob);
    const chunk = new Uint8Array(60_000).fill(97);
    // Bounded: 12 MB at most, far past what the sleeper's socket and queue take.
    for (let i = 0; i < 200 && !west.stderr.text().includes("Cut off slow consumer"); i++) {
      await ann.write(msg(chunk));
      if (i % 20 === 0) await ann.ping();
    }
    await west.stderr.waitForText(/Cut off slow consumer sleeper/);
    const stats = await waitForStats(
      west,
      (s) => Number(s.slow_consumers) === 1,
      "one slow consumer",
    );
    assert.equal(stats.clients, "2");
    // Bob reads: he gets the remote messages and is not cut off.
    await waitFor(() => textsFrom(bob, "ann").length > 0, "remote messages for bob");
  } finally {
    sleeper.close();
    for (const client of clients) await client.close();
    assert.equal(await stopServer(east), 0);
    assert.equal(await stopServer(west), 0);
    await nats.stop();
  }
});

Deno.test("server refuses a cluster setting it cannot apply with one line, and --cluster with --threads", async () => {
  const bad = await runDeno([...SERVER_RUN_ARGS, "0", "--cluster", "http://127.0.0.1:4222"]);
  assert.equal(bad.code, 1, bad.stderr);
  assert.match(
    bad.stderr,
    /^error: Cannot use --cluster URL "http:\/\/127\.0\.0\.1:4222": the scheme must be nats:\/\/ or tls:\/\/$/m,
  );
  const missing = await runDeno([
    ...SERVER_RUN_ARGS,
    "0",
    "--cluster",
    "nats://127.0.0.1:4222",
    "--cluster-creds",
    "/nonexistent/parrot.creds",
  ]);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(
    missing.stderr,
    /^error: Cannot read --cluster-creds file \/nonexistent\/parrot\.creds/m,
  );
  const threads = await runDeno([
    ...SERVER_RUN_ARGS,
    "0",
    "--cluster",
    "nats://127.0.0.1:4222",
    "--threads",
    "2",
  ]);
  assert.equal(threads.code, 2);
  assert.match(threads.stderr, /^error: Cannot use --cluster with --threads 2: /m);
});

Deno.test("server in cluster mode shows the cluster's counters in /metrics (promtool clean) and on the live page, with their messages", async () => {
  assert.ok(await hasCommand("promtool"), "promtool is missing (.ci/run installs it)");
  const nats = await startNats();
  const east = await startClusterServer(nats.url, "east");
  const west = await startClusterServer(nats.url, "west", ["--http", "0"]);
  const clients: RawClient[] = [];
  try {
    const base = `http://127.0.0.1:${await httpListeningPort(west)}`;
    const ann = await namedClient(east.port, "ann");
    const bob = await namedClient(west.port, "bob");
    clients.push(ann, bob);
    await ann.write(concatBytes(msg("one"), msg("two")));
    await waitFor(() => textsFrom(bob, "ann").length === 2, "ann's messages on west");
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^parrot_cluster_received_messages_total 2$/m);
    assert.match(metrics, /^parrot_cluster_connected 1$/m);
    assert.match(metrics, /^parrot_cluster_refused_messages_total 0$/m);
    const promtool = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = promtool.stdin.getWriter();
    await writer.write(new TextEncoder().encode(metrics));
    await writer.close();
    const checked = await promtool.output();
    const said = decoder.decode(checked.stdout) + decoder.decode(checked.stderr);
    assert.equal(checked.code, 0, said);
    assert.equal(said.trim(), "", "no lint warnings");
    // The live page's event stream carries the same figures.
    const controller = new AbortController();
    const response = await fetch(`${base}/live`, { signal: controller.signal });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/data: .*\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const event = JSON.parse(text.match(/data: (.*)\n/)![1]);
    assert.equal(event.counters.clusterReceived, 2);
    assert.equal(event.counters.clusterConnected, 1);
    // Its message list shows the other server's messages too, tagged with their origin.
    await ann.write(msg("three"));
    const shown: string[] = [];
    let pending = "";
    while (!shown.includes("ann@east: three")) {
      const { value, done } = await reader.read();
      assert.ok(!done, `the feed ended before ann's message showed: ${shown.join(", ")}`);
      const lines = (pending + value).split("\n");
      pending = lines.pop()!; // a line the next read completes
      for (const line of lines.filter((line) => line.startsWith("data: "))) {
        for (const { from, preview } of JSON.parse(line.slice(6)).messages ?? []) {
          shown.push(`${from}: ${preview}`);
        }
      }
    }
    controller.abort();
    await reader.cancel().catch(() => {});
  } finally {
    for (const client of clients) await client.close();
    assert.equal(await stopServer(east), 0);
    assert.equal(await stopServer(west), 0);
    await nats.stop();
  }
});

Deno.test("server in cluster mode takes the NATS token from PARROT_CLUSTER_TOKEN or the URL, and never logs it", async () => {
  const nats = await startNats({ args: ["--auth", "s3cret-token"] });
  const fromEnv = await startClusterServer(nats.url, "east", [], {
    env: { PARROT_CLUSTER_TOKEN: "s3cret-token" },
  });
  const inUrl = await startClusterServer(
    `nats://s3cret-token@127.0.0.1:${nats.port}`,
    "west",
  );
  const wrong = await startClusterServer(nats.url, "south", [], {
    connected: false,
    env: { PARROT_CLUSTER_TOKEN: "wrong-token" },
  });
  try {
    await wrong.stderr.waitForText(/Cannot connect to NATS .*[Aa]uthorization/);
    // It keeps trying (NATS refuses each attempt; a refused connection's late socket error
    // once ended the process after a few), and keeps serving its own clients.
    const refusals = () =>
      nats.running.stderr.text().split("\n").filter((line) =>
        line.includes('nats.js:south" - authentication error')
      ).length;
    await waitFor(() => refusals() >= 12, "12 refused attempts", 30_000);
    let exited = false;
    wrong.status.then(() => exited = true);
    const ann = await namedClient(wrong.port, "ann");
    await ann.close();
    assert.equal(exited, false, wrong.stderr.text());
  } finally {
    for (const server of [fromEnv, inUrl, wrong]) assert.equal(await stopServer(server), 0);
    await nats.stop();
  }
  for (const server of [fromEnv, inUrl, wrong]) {
    assert.ok(!server.stderr.text().includes("s3cret"), server.stderr.text());
  }
});

Deno.test("server in cluster mode stops on SIGINT with exit 0 while NATS is unreachable", async () => {
  const probe = await startNats();
  await probe.stop();
  const east = await startClusterServer(`nats://127.0.0.1:${probe.port}`, "east", [], {
    connected: false,
  });
  await east.stderr.waitForText(
    `Cannot connect to NATS (127.0.0.1:${probe.port}): connection refused; still trying`,
  );
  assert.equal(await stopServer(east), 0, east.stderr.text());
});

Deno.test("server in cluster mode with --history stores the other servers' messages too: HISTORY replays them, deno task history prints them as --print-cluster does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parrot-cluster-history-" });
  const file = `${dir}/west.db`;
  const nats = await startNats();
  const east = await startClusterServer(nats.url, "east");
  const west = await startClusterServer(nats.url, "west", ["--history", file], {
    runArgs: ["run", `--allow-write=${dir}`, ...SERVER_RUN_ARGS.slice(1)],
  });
  const clients: RawClient[] = [];
  try {
    const ann = await namedClient(east.port, "ann");
    const bob = await namedClient(west.port, "bob");
    clients.push(ann, bob);
    await ann.write(msg("hello from east"));
    await waitFor(() => textsFrom(bob, "ann").length === 1, "ann's message on west");
    await bob.write(msg("hello from west"));
    await bob.ping();
    // A client that comes later gets both, with their senders' names, as live relays are.
    const carl = await namedClient(west.port, "carl");
    clients.push(carl);
    await carl.write("HISTORY 10\n");
    await carl.ping();
    assert.deepEqual(
      relayedFrames(carl.received.bytes()).map((r) => `${r.from}: ${decoder.decode(r.payload)}`),
      ["ann: hello from east", "bob: hello from west"],
    );
  } finally {
    for (const client of clients) await client.close();
    assert.equal(await stopServer(east), 0);
    assert.equal(await stopServer(west), 0);
    await nats.stop();
  }
  try {
    const printed = await runDeno(["task", "-q", "history", file]);
    assert.equal(printed.code, 0, printed.stderr);
    assert.equal(printed.stdout, "ann@east: hello from east\nbob: hello from west\n");
    const fromAnn = await runDeno(["task", "-q", "history", file, "--from", "ann"]);
    assert.equal(fromAnn.stdout, "ann@east: hello from east\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
