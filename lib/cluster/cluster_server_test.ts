/**
 * ClusterLink beside a real in-process parrot server: the server's `onMessage` hook is all the
 * publishing side needs. Its payloads are views into read buffers that the server reuses, so
 * this checks that what crosses NATS is what the clients sent, byte for byte, under load.
 */

import assert from "node:assert/strict";
import { concatBytes, RawClient, startNats, waitFor } from "../testing.ts";
import { startParrotServer } from "../parrot/server.ts";
import { ClusterLink } from "./cluster_link.ts";

Deno.test("ClusterLink publishes what a parrot server's clients send, names and bytes exact", async () => {
  const nats = await startNats();
  const received: { origin: string; from: string; payload: Uint8Array }[] = [];
  const remote = ClusterLink.open({
    servers: nats.url,
    serverName: "server-b",
    onMessage: (origin, from, payload) => received.push({ origin, from, payload: payload.slice() }),
  });
  const local = ClusterLink.open({
    servers: nats.url,
    serverName: "server-a",
    onMessage: () => {},
  });
  const server = startParrotServer({
    port: 0,
    output: null,
    onMessage: (from, payload) => local.publish(from, payload),
  });
  const clients: RawClient[] = [];
  try {
    await Promise.all([remote.ready(), local.ready()]);
    const perClient = 200;
    const expected = new Map<string, Uint8Array[]>();
    for (let c = 0; c < 5; c++) {
      const client = await RawClient.connect(server.addr.port);
      clients.push(client);
      const name = `client-${c}`;
      const payloads = Array.from(
        { length: perClient },
        (_, i) => Uint8Array.from({ length: (i * 7 + c) % 300 }, (_, b) => (b * 31 + i + c) & 0xff),
      );
      expected.set(name, payloads);
      // Everything in one write: the server parses many frames from one read buffer.
      await client.write(concatBytes(
        `HELLO ${name}\n`,
        ...payloads.flatMap((p) => [`MSG ${p.length}\n`, p, "\n"]),
      ));
    }
    await Promise.all(clients.map((client) => client.ping()));
    const total = 5 * perClient;
    await waitFor(() => received.length === total, `all ${total} messages on server-b`);
    for (const [name, payloads] of expected) {
      const got = received.filter((r) => r.from === name);
      assert.equal(got.length, payloads.length, name);
      got.forEach((r, i) => assert.deepEqual(Array.from(r.payload), Array.from(payloads[i])));
      assert.ok(got.every((r) => r.origin === "server-a"));
    }
  } finally {
    for (const client of clients) client.conn.close();
    await server.shutdown();
    await local.close();
    await remote.close();
    await nats.stop();
  }
});
