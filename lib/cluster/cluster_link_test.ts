import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import {
  generateTestCert,
  hasSettled,
  type NatsProcess,
  restartNats,
  type Running,
  spawn,
  startNats,
  startNatsCluster,
  waitFor,
} from "../testing.ts";
import { ClusterLink, type ClusterLinkOptions } from "./cluster_link.ts";
import { BatchEncoder, randomBootId } from "./cluster_frame.ts";
import { ClusterConfigError } from "./nats_options.ts";

interface Received {
  origin: string;
  from: string;
  payload: Uint8Array;
}

/** Opens a link that records what it receives. */
function link(
  servers: string | string[],
  serverName: string,
  options: Partial<ClusterLinkOptions> = {},
): { link: ClusterLink; received: Received[] } {
  const received: Received[] = [];
  const opened = ClusterLink.open({
    servers,
    serverName,
    onMessage: (origin, from, payload) => received.push({ origin, from, payload: payload.slice() }),
    ...options,
  });
  return { link: opened, received };
}

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const bytes = (value: string) => new TextEncoder().encode(value);

/** The numbers carried by "<n>" payloads, in arrival order. */
const numbers = (received: Received[]) => received.map((r) => Number(text(r.payload)));
const range = (first: number, last: number) =>
  Array.from({ length: last - first + 1 }, (_, i) => first + i);

Deno.test("ClusterLink exchanges messages both ways, names and binary payloads exact, no echo", async () => {
  const nats = await startNats();
  const a = link(nats.url, "server-a");
  const b = link(nats.url, "server-b");
  try {
    await Promise.all([a.link.ready(), b.link.ready()]);
    const binary = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
    a.link.publish("alice", bytes("hello from a"));
    a.link.publish("alice", binary);
    b.link.publish("bob", bytes("hello from b"));
    b.link.publish("émile", new Uint8Array(0));
    await waitFor(() => a.received.length >= 2 && b.received.length >= 2, "both sides to receive");
    assert.deepEqual(b.received.map((r) => [r.origin, r.from]), [
      ["server-a", "alice"],
      ["server-a", "alice"],
    ]);
    assert.equal(text(b.received[0].payload), "hello from a");
    assert.deepEqual(Array.from(b.received[1].payload), Array.from(binary));
    assert.deepEqual(a.received.map((r) => [r.origin, r.from, text(r.payload)]), [
      ["server-b", "bob", "hello from b"],
      ["server-b", "émile", ""],
    ]);
    // Nothing comes back to its sender, even after a round trip through NATS.
    b.link.publish("bob", bytes("marker"));
    await waitFor(() => a.received.length === 3, "the marker");
    assert.equal(b.received.length, 2);
    const statsA = a.link.stats();
    assert.equal(statsA.published, 2);
    assert.equal(statsA.received, 3);
    assert.equal(statsA.connected, true);
    assert.equal(statsA.invalid, 0);
  } finally {
    await a.link.close();
    await b.link.close();
    await nats.stop();
  }
});

Deno.test("ClusterLink counts and drops garbage published on the cluster subject", async () => {
  const nats = await startNats();
  const a = link(nats.url, "server-a");
  const b = link(nats.url, "server-b");
  const foreign = await connect({ servers: nats.url });
  try {
    await Promise.all([a.link.ready(), b.link.ready()]);
    foreign.publish("parrot.msg.intruder", bytes("not a parrot frame"));
    foreign.publish("parrot.msg.intruder", new Uint8Array([0x50, 0x43, 1, 1, 0, 0]));
    foreign.publish("parrot.msg.replay.server-a", bytes("no reply subject"));
    await foreign.flush();
    a.link.publish("alice", bytes("still works"));
    await waitFor(() => b.link.stats().invalid === 2 && b.received.length === 1, "b's counts")
      .catch((error) => {
        throw new Error(`${error.message}: ${JSON.stringify(b.link.stats())}`);
      });
    assert.equal(text(b.received[0].payload), "still works");
    await waitFor(() => a.link.stats().invalid === 3, "a's count");
    assert.equal(a.received.length, 0);
  } finally {
    await foreign.close();
    await a.link.close();
    await b.link.close();
    await nats.stop();
  }
});

Deno.test("ClusterLink loses nothing across a NATS restart while publishing, in order", async () => {
  let nats = await startNats();
  const a = link(nats.url, "server-a");
  const b = link(nats.url, "server-b");
  try {
    await Promise.all([a.link.ready(), b.link.ready()]);
    let sent = 0;
    const send = (count: number) => {
      for (let i = 0; i < count; i++) a.link.publish("alice", bytes(String(++sent)));
    };
    send(50);
    await waitFor(() => b.received.length === 50, "the first 50");
    await nats.stop("SIGKILL");
    await waitFor(() => !a.link.stats().connected && !b.link.stats().connected, "both to notice");
    // NATS stays away for 5 s while a keeps publishing, 4 messages every 50 ms.
    const outageEnds = Date.now() + 5_000;
    while (Date.now() < outageEnds) {
      send(4);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(a.link.stats().buffered, sent - 50);
    nats = await restartNats(nats);
    send(50);
    await waitFor(() => b.received.length >= sent, `all ${sent} messages`, 20_000);
    assert.deepEqual(numbers(b.received), range(1, sent));
    const stats = a.link.stats();
    assert.equal(stats.buffered, 0);
    assert.equal(stats.dropped, 0);
    assert.equal(stats.published, sent);
    assert.equal(b.link.stats().lost, 0);
  } finally {
    await a.link.close();
    await b.link.close();
    await nats.stop();
  }
});

Deno.test("ClusterLink fills a receiver's gap by replay after the receiver was away", async () => {
  // The nodes do not tell clients about each other: b knows n2 only, so it stays away
  // until n2 is back (else it may fail over to n1 at once, and miss nothing).
  const noAdvertise = ["--no_advertise"];
  const [n1, n2] = await startNatsCluster(2, { args: noAdvertise });
  const a = link(n1.url, "server-a");
  const b = link(n2.url, "server-b");
  let n2Again: NatsProcess | undefined;
  try {
    await Promise.all([a.link.ready(), b.link.ready()]);
    let sent = 0;
    a.link.publish("alice", bytes(String(++sent)));
    await waitFor(() => b.received.length === 1, "the first message");
    // (It may have come by replay too, when the route had not yet heard of b's interest.)
    const replayedBefore = b.link.stats().replayed;
    await n2.stop("SIGKILL");
    await waitFor(() => !b.link.stats().connected, "b to notice");
    for (let i = 0; i < 100; i++) a.link.publish("alice", bytes(String(++sent)));
    await waitFor(() => a.link.stats().published === sent, "a to publish");
    // Nobody heard those on n1 but a: core NATS kept nothing for b.
    n2Again = await restartNats(n2, {
      cluster: { name: n2.clusterName!, routes: [`nats://127.0.0.1:${n1.routePort}`] },
      args: noAdvertise,
    });
    await waitFor(() => b.received.length === sent, `all ${sent} on b`, 20_000);
    assert.deepEqual(numbers(b.received), range(1, sent));
    assert.equal(b.link.stats().replayed - replayedBefore, 100, "the 100 sent while b was away");
    assert.equal(b.link.stats().lost, 0);
    assert.ok(a.link.stats().replaysServed >= 1);
  } finally {
    await a.link.close();
    await b.link.close();
    await Promise.all([n1.stop(), n2.stop(), n2Again?.stop()]);
  }
});

Deno.test("ClusterLink fails over to another node of a 3-node NATS cluster while publishing", async () => {
  const [n1, n2, n3] = await startNatsCluster(3);
  const a = link(n1.url, "server-a");
  // b is on n2 first, n3 next.
  const b = link([n2.url, n3.url], "server-b");
  try {
    await Promise.all([a.link.ready(), b.link.ready()]);
    const total = 3000;
    let sent = 0;
    const publishing = (async () => {
      while (sent < total) {
        for (let i = 0; i < 10; i++) b.link.publish(`client-${sent % 20}`, bytes(String(++sent)));
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    })();
    await waitFor(() => a.received.length >= 500, "the first 500 on a");
    await n2.stop("SIGKILL");
    await publishing;
    await waitFor(() => a.received.length >= total, `all ${total} on a`, 30_000);
    // The contract: b's outage is shorter than its ring, so every message b accepted arrives
    // on a exactly once, in b's order, each with its sender's name.
    assert.deepEqual(numbers(a.received), range(1, total));
    assert.deepEqual(
      a.received.map((r) => r.from),
      range(1, total).map((n) => `client-${(n - 1) % 20}`),
    );
    const statsB = b.link.stats();
    assert.equal(statsB.dropped, 0);
    assert.equal(statsB.connected, true);
    assert.equal(a.link.stats().lost, 0);
    console.log(
      `failover: ${total} sent, ${a.received.length} received, ` +
        `${a.link.stats().replayed} through replay, b published ${statsB.published}`,
    );
  } finally {
    await a.link.close();
    await b.link.close();
    await Promise.all([n1.stop(), n2.stop(), n3.stop()]);
  }
});

Deno.test("ClusterLink authenticates with a URL user and password, and with a token", async () => {
  const withUser = await startNats({ args: ["--user", "parrot", "--pass", "s3cret"] });
  const withToken = await startNats({ args: ["--auth", "t0ken"] });
  const a = link(`nats://parrot:s3cret@127.0.0.1:${withUser.port}`, "server-a");
  const b = link(`nats://127.0.0.1:${withUser.port}`, "server-b");
  const c = link(withToken.url, "server-c", { token: "t0ken" });
  const d = link(withToken.url, "server-d", { token: "wrong" });
  try {
    await Promise.all([a.link.ready(), c.link.ready()]);
    assert.equal(a.link.stats().connected, true);
    assert.equal(c.link.stats().connected, true);
    // Without (or with wrong) credentials: not connected, still trying, and closable.
    assert.equal(b.link.stats().connected, false);
    assert.equal(d.link.stats().connected, false);
  } finally {
    await Promise.all([a.link.close(), b.link.close(), c.link.close(), d.link.close()]);
    await Promise.all([withUser.stop(), withToken.stop()]);
  }
});

Deno.test("ClusterLink connects over TLS with a CA file", async () => {
  const cert = await generateTestCert();
  const nats = await startNats({
    args: ["--tls", "--tlscert", cert.certFile, "--tlskey", cert.keyFile],
  });
  const a = link(nats.url, "server-a", { tlsCaFile: cert.certFile });
  const b = link(nats.url, "server-b", { tlsCaFile: cert.certFile });
  try {
    await Promise.all([a.link.ready(), b.link.ready()]);
    a.link.publish("alice", bytes("over tls"));
    await waitFor(() => b.received.length === 1, "the message over TLS");
    assert.equal(text(b.received[0].payload), "over tls");
  } finally {
    await a.link.close();
    await b.link.close();
    await nats.stop();
    await Deno.remove(cert.dir, { recursive: true });
  }
});

Deno.test("ClusterLink started before NATS serves, buffers and connects when NATS comes", async () => {
  // A port that nothing listens on yet: start NATS, note its port, stop it.
  const probe = await startNats();
  await probe.stop();
  const a = link(probe.url, "server-a");
  const b = link(probe.url, "server-b");
  let nats: NatsProcess | undefined;
  try {
    a.link.publish("alice", bytes("1"));
    a.link.publish("alice", bytes("2"));
    await waitFor(() => a.link.stats().buffered === 2, "the messages to wait");
    assert.equal(a.link.stats().connected, false);
    nats = await restartNats(probe);
    await Promise.all([a.link.ready(), b.link.ready()]);
    a.link.publish("alice", bytes("3"));
    // b joined before a's stream started: it gets the stream from 1, through replay if need be.
    await waitFor(() => b.received.length === 3, "all 3 on b");
    assert.deepEqual(numbers(b.received), [1, 2, 3]);
  } finally {
    await a.link.close();
    await b.link.close();
    await nats?.stop();
  }
});

Deno.test("ClusterLink drops the oldest past its buffer during an outage, counted on both sides", async () => {
  let nats = await startNats();
  const a = link(nats.url, "server-a", { bufferBytes: 4096 });
  const b = link(nats.url, "server-b");
  try {
    await Promise.all([a.link.ready(), b.link.ready()]);
    a.link.publish("alice", bytes("0"));
    await waitFor(() => b.received.length === 1, "the first message");
    await nats.stop("SIGKILL");
    await waitFor(() => !a.link.stats().connected, "a to notice");
    const payload = new Uint8Array(100);
    for (let i = 0; i < 200; i++) {
      a.link.publish("alice", payload);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    const stats = a.link.stats();
    assert.ok(stats.dropped > 0, `dropped ${stats.dropped}`);
    assert.equal(stats.dropped + stats.buffered, 200);
    nats = await restartNats(nats);
    await waitFor(() => b.received.length === 1 + stats.buffered, "what a still had", 20_000);
    await waitFor(() => b.link.stats().lost === stats.dropped, "b to count the loss", 20_000);
    assert.equal(a.link.stats().buffered, 0);
  } finally {
    await a.link.close();
    await b.link.close();
    await nats.stop();
  }
});

Deno.test("ClusterLink.close() publishes what it holds before it stops", async () => {
  const nats = await startNats();
  const a = link(nats.url, "server-a");
  const b = link(nats.url, "server-b");
  try {
    await Promise.all([a.link.ready(), b.link.ready()]);
    for (let i = 1; i <= 100; i++) a.link.publish("alice", bytes(String(i)));
    await a.link.close(AbortSignal.timeout(5_000));
    assert.equal(a.link.stats().buffered, 0);
    await waitFor(() => b.received.length === 100, "all 100 on b");
    assert.deepEqual(numbers(b.received), range(1, 100));
    // Closed: publish is a no-op, close again resolves.
    a.link.publish("alice", bytes("late"));
    await a.link.close();
  } finally {
    await b.link.close();
    await nats.stop();
  }
});

Deno.test("ClusterLink drops a message larger than NATS's max_payload and counts it", async () => {
  const dir = await Deno.makeTempDir();
  const config = `${dir}/nats.conf`;
  await Deno.writeTextFile(config, "max_payload: 2048\n");
  const nats = await startNats({ args: ["-c", config] });
  const a = link(nats.url, "server-a");
  const b = link(nats.url, "server-b");
  try {
    await Promise.all([a.link.ready(), b.link.ready()]);
    a.link.publish("alice", new Uint8Array(4096));
    a.link.publish("alice", bytes("small"));
    await waitFor(() => b.received.length === 1, "the small one");
    assert.equal(text(b.received[0].payload), "small");
    assert.equal(a.link.stats().dropped, 1);
    assert.equal(b.link.stats().lost, 0);
  } finally {
    await a.link.close();
    await b.link.close();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ClusterLink goes on delivering in order when its message handler throws", async () => {
  const nats = await startNats();
  const a = link(nats.url, "server-a");
  const got: string[] = [];
  const b = ClusterLink.open({
    servers: nats.url,
    serverName: "server-b",
    onMessage: (_origin, _from, payload) => {
      const value = text(payload);
      if (value === "2") throw new Error("handler bug");
      got.push(value);
    },
  });
  try {
    await Promise.all([a.link.ready(), b.ready()]);
    for (const value of ["1", "2", "3"]) a.link.publish("alice", bytes(value));
    await waitFor(() => got.length === 2, "the messages around the failing one");
    assert.deepEqual(got, ["1", "3"]);
    a.link.publish("alice", bytes("4"));
    await waitFor(() => got.length === 3, "the next one");
    assert.equal(got[2], "4");
  } finally {
    await a.link.close();
    await b.close();
    await nats.stop();
  }
});

Deno.test("ClusterLink: an origin killed and started again is a new stream, delivered from its start", async () => {
  const nats = await startNats();
  const b = link(nats.url, "server-b");
  const child = (count: number, prefix: string) =>
    spawn("deno", [
      "run",
      "--allow-net=127.0.0.1",
      "lib/cluster/testdata/origin_child.ts",
      nats.url,
      "server-a",
      String(count),
      prefix,
    ]);
  let first: Running | undefined;
  let second: Running | undefined;
  try {
    await b.link.ready();
    first = child(30, "first-");
    await first.stdout.waitForText("published 30", 30_000);
    await waitFor(() => b.received.length === 30, "the first run's messages");
    first.child.kill("SIGKILL");
    await first.status;
    second = child(20, "second-");
    await second.stdout.waitForText("published 20", 30_000);
    await waitFor(() => b.received.length === 50, "the second run's messages");
    assert.deepEqual(
      b.received.map((r) => text(r.payload)),
      [...range(1, 30).map((i) => `first-${i}`), ...range(1, 20).map((i) => `second-${i}`)],
    );
    assert.equal(b.link.stats().lost, 0);
  } finally {
    for (const running of [first, second]) {
      try {
        running?.child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await Promise.all([first?.status, second?.status]);
    await b.link.close();
    await nats.stop();
  }
});

Deno.test("ClusterLink drops and counts a batch sealed before NATS said its max_payload", async () => {
  const dir = await Deno.makeTempDir();
  const config = `${dir}/nats.conf`;
  await Deno.writeTextFile(config, "max_payload: 2048\n");
  const probe = await startNats({ args: ["-c", config] });
  await probe.stop();
  const b = link(probe.url, "server-b");
  await new Promise((resolve) => setTimeout(resolve, 5)); // b is older than a by a few ms
  const a = link(probe.url, "server-a");
  let nats: NatsProcess | undefined;
  try {
    // One turn, one batch of about 3 KiB: fine by the 1 MiB default, too large for this NATS.
    for (let i = 0; i < 30; i++) a.link.publish("alice", new Uint8Array(100));
    await waitFor(() => a.link.stats().buffered === 30, "the batch to wait");
    nats = await restartNats(probe, { args: ["-c", config] });
    await Promise.all([a.link.ready(), b.link.ready()]);
    await waitFor(() => a.link.stats().dropped === 30, "the batch to be dropped");
    a.link.publish("alice", bytes("after"));
    await waitFor(() => b.received.some((r) => text(r.payload) === "after"), "the next message");
    assert.equal(a.link.stats().buffered, 0);
    assert.equal(a.link.stats().published, 1);
    // b joined first: it wanted a's stream from 1, and learns the batch is gone for good.
    await waitFor(() => b.link.stats().lost === 30, "b to count the dropped batch");
  } finally {
    await a.link.close();
    await b.link.close();
    await nats?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ClusterLink.close(signal) returns by the signal while a connect hangs", async () => {
  // A listener that accepts and never answers: the NATS handshake waits.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) accepted.push(conn);
  })();
  const a = link(`nats://127.0.0.1:${silent.addr.port}`, "server-a");
  try {
    await waitFor(() => accepted.length > 0, "the link to connect");
    // The handshake never completes; an aborted signal lets close() return at once anyway.
    const closing = a.link.close(AbortSignal.abort());
    assert.equal(await hasSettled(closing), true);
    assert.equal(a.link.stats().connected, false);
  } finally {
    silent.close();
    for (const conn of accepted) conn.close();
    await accepting.catch(() => {});
    // Let the abandoned connect attempt end before the test's resource check.
    await a.link.close();
  }
});

Deno.test("ClusterLink: the receiver's NATS node is killed mid-stream; it fails over and replays the gap", async () => {
  const [n1, n2, n3] = await startNatsCluster(3);
  const a = link(n1.url, "server-a");
  const b = link([n2.url, n3.url], "server-b");
  try {
    await Promise.all([a.link.ready(), b.link.ready()]);
    const total = 3000;
    let sent = 0;
    const publishing = (async () => {
      while (sent < total) {
        for (let i = 0; i < 10; i++) a.link.publish(`client-${sent % 20}`, bytes(String(++sent)));
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    })();
    await waitFor(() => b.received.length >= 500, "the first 500 on b");
    await n2.stop("SIGKILL");
    await publishing;
    await waitFor(() => b.received.length >= total, `all ${total} on b`, 30_000);
    assert.deepEqual(numbers(b.received), range(1, total));
    assert.equal(b.link.stats().lost, 0);
    assert.equal(b.link.stats().connected, true);
    console.log(`receiver failover: ${b.link.stats().replayed} of ${total} through replay`);
  } finally {
    await a.link.close();
    await b.link.close();
    await Promise.all([n1.stop(), n2.stop(), n3.stop()]);
  }
});

Deno.test("ClusterLink.open() refuses a bad server name, subject or URL with a ClusterConfigError", () => {
  const open = (options: Partial<ClusterLinkOptions>) => () =>
    ClusterLink.open({
      servers: "nats://127.0.0.1:4222",
      serverName: "server-a",
      onMessage: () => {},
      ...options,
    });
  assert.throws(
    open({ serverName: "two words" }),
    (e) =>
      e instanceof ClusterConfigError && /Cannot use the server name "two words"/.test(e.message),
  );
  assert.throws(
    open({ subject: "parrot.>" }),
    (e) =>
      e instanceof ClusterConfigError &&
      /Cannot use the cluster subject "parrot\.>"/.test(e.message),
  );
  assert.throws(open({ servers: "http://127.0.0.1" }), ClusterConfigError);
});

Deno.test("ClusterLink publishes a batch larger than its buffer while connected, dropping nothing", async () => {
  const nats = await startNats();
  const a = link(nats.url, "server-a", { bufferBytes: 1024 });
  const b = link(nats.url, "server-b");
  try {
    await Promise.all([a.link.ready(), b.link.ready()]);
    // One turn: one batch of 50 x 100 B, five times the buffer.
    for (let i = 0; i < 50; i++) a.link.publish("alice", new Uint8Array(100).fill(i));
    await waitFor(() => b.received.length === 50, "all 50 on b");
    assert.deepEqual(b.received.map((r) => r.payload[0]), range(0, 49));
    assert.equal(a.link.stats().dropped, 0);
  } finally {
    await a.link.close();
    await b.link.close();
    await nats.stop();
  }
});

Deno.test("ClusterLink does not count NATS's no-responders answer to a replay request as invalid", async () => {
  const nats = await startNats();
  const b = link(nats.url, "server-b", { replayTimeoutMs: 100 });
  const foreign = await connect({ servers: nats.url });
  try {
    await b.link.ready();
    // A frame of an origin nobody answers for, after a gap: b asks for 1 to 4, nobody listens.
    const ghost = new BatchEncoder({ name: "ghost", boot: randomBootId(), age: () => 0 });
    ghost.add("casper", bytes("boo"));
    foreign.publish("parrot.msg.ghost", ghost.seal(5));
    await foreign.flush();
    await waitFor(() => b.link.stats().lost === 4, "the gap declared lost after the retries");
    assert.deepEqual(b.received.map((r) => text(r.payload)), ["boo"]);
    assert.equal(b.link.stats().invalid, 0);
  } finally {
    await foreign.close();
    await b.link.close();
    await nats.stop();
  }
});
