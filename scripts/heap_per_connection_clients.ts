/**
 * The idle clients of scripts/heap_per_connection.ts, in a Worker so that their objects
 * are not in the server's heap snapshots.
 *
 * Each `{ port, count }` message opens `count` more clients, 100 at a time; each says
 * `HELLO` and `PING` and waits for its `PONG`, and all of them stay open. The answer is
 * `"ready"`, or the reason a client failed.
 *
 * @module
 */

/// <reference lib="deno.worker" />

const held: Deno.Conn[] = [];
const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function openIdleClient(port: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  held.push(conn);
  await conn.write(encoder.encode(`HELLO idle${held.length}\nPING\n`));
  const reply = new Uint8Array(64);
  let text = "";
  while (!text.includes("PONG\n")) {
    const n = await conn.read(reply);
    if (n === null) throw new Error("The server closed a client before its PONG");
    text += decoder.decode(reply.subarray(0, n));
  }
}

self.onmessage = async (event: MessageEvent<{ port: number; count: number }>) => {
  const { port, count } = event.data;
  try {
    for (let opened = 0; opened < count; opened += 100) {
      const batch = Math.min(100, count - opened);
      await Promise.all(Array.from({ length: batch }, () => openIdleClient(port)));
    }
    self.postMessage("ready");
  } catch (error) {
    self.postMessage(error instanceof Error ? error.message : String(error));
  }
};
