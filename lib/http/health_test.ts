import assert from "node:assert/strict";
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
