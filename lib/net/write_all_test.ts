import assert from "node:assert/strict";
import { tcpPair } from "../testing.ts";
import { writeAll } from "./write_all.ts";

/** A writer that takes at most `most` bytes per write and records them. */
function shortWriter(most: number) {
  const chunks: number[][] = [];
  return {
    chunks,
    write(p: Uint8Array): Promise<number> {
      const n = Math.min(p.length, most);
      chunks.push([...p.subarray(0, n)]);
      return Promise.resolve(n);
    },
  };
}

Deno.test("writeAll() loops over short writes until every byte is taken, in order", async () => {
  const writer = shortWriter(2);
  await writeAll(writer, new Uint8Array([1, 2, 3, 4, 5]));
  assert.deepEqual(writer.chunks, [[1, 2], [3, 4], [5]]);
});

Deno.test("writeAll() writes nothing for an empty buffer", async () => {
  const writer = shortWriter(2);
  await writeAll(writer, new Uint8Array(0));
  assert.deepEqual(writer.chunks, []);
});

Deno.test("writeAll() throws WriteZero when the writer takes no bytes", async () => {
  const stuck = { write: () => Promise.resolve(0) };
  await assert.rejects(
    writeAll(stuck, new Uint8Array(3)),
    (error) => error instanceof Deno.errors.WriteZero && /took 0 of 3 bytes/.test(error.message),
  );
});

Deno.test("writeAll() rejects with the signal's reason when a write does not drain", async () => {
  const { promise: never } = Promise.withResolvers<number>();
  const controller = new AbortController();
  const writing = writeAll({ write: () => never }, new Uint8Array(3), {
    signal: controller.signal,
  });
  const reason = new Error("Gave up");
  controller.abort(reason);
  await assert.rejects(writing, (error) => error === reason);
});

Deno.test("writeAll() with an aborted signal writes nothing", async () => {
  const writer = shortWriter(8);
  const reason = new Error("Already stopped");
  await assert.rejects(
    writeAll(writer, new Uint8Array(3), { signal: AbortSignal.abort(reason) }),
    (error) => error === reason,
  );
  assert.deepEqual(writer.chunks, []);
});

Deno.test("writeAll() sends a buffer larger than the socket buffers through a real connection", async () => {
  const { client, server, close } = await tcpPair();
  try {
    const bytes = new Uint8Array(4 * 1024 * 1024).map((_, i) => i % 251);
    const receiving = new Response(server.readable).bytes();
    await writeAll(client, bytes);
    client.close();
    assert.deepEqual(await receiving, bytes);
  } finally {
    close();
  }
});
