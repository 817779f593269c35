import assert from "node:assert/strict";
import { startParrotServer } from "../parrot/server.ts";
import { RawClient, waitFor } from "../testing.ts";
import { ServerHealth } from "./health.ts";

Deno.test("ServerHealth.check() is ok until told otherwise", () => {
  assert.deepEqual(new ServerHealth().check(), { ok: true });
});

Deno.test("ServerHealth.outputFailed() makes it unhealthy, and the first reason stays", () => {
  const health = new ServerHealth();
  health.outputFailed();
  health.shuttingDown();
  assert.deepEqual(health.check(), { ok: false, reason: "stdout failed" });
});

Deno.test("ServerHealth.watch() turns unhealthy when the server's stdout fails", async () => {
  const server = startParrotServer({
    port: 0,
    output: { write: () => Promise.reject(new Error("Broken pipe")) },
  });
  const health = new ServerHealth();
  health.watch(server);
  const client = await RawClient.connect(server.addr.port);
  try {
    assert.deepEqual(health.check(), { ok: true });
    await client.write("MSG 2\nhi\n");
    await waitFor(() => !health.check().ok, "the health to change");
    assert.deepEqual(health.check(), { ok: false, reason: "stdout failed" });
  } finally {
    await client.close();
    await server.finished.catch(() => {});
  }
});

Deno.test("ServerHealth.watch() turns unhealthy when finished rejects", async () => {
  const health = new ServerHealth();
  const finished = Promise.reject(new Error("output failed"));
  health.watch({ stats: () => ({ unwrittenMessages: 0 }), finished });
  await finished.catch(() => {});
  assert.deepEqual(health.check(), { ok: false, reason: "stdout failed" });
});
