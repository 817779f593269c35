/**
 * The torture scenarios of `deno task torture`, at their quick sizes: one test per
 * scenario, each against a fresh server process. Every test asserts that the scenario
 * passed and one specific fact of it. No assertion is about speed: the machine may be
 * busy.
 */

import assert from "node:assert/strict";
import type { ScenarioResult } from "../scripts/shared/harness.ts";
import { runScenario, SCENARIOS } from "../scripts/torture/scenarios.ts";

async function runQuick(id: number): Promise<ScenarioResult> {
  const scenario = SCENARIOS.find((s) => s.id === id);
  assert.ok(scenario, `no scenario ${id}`);
  const result = await runScenario(scenario, { quick: true });
  assert.ok(result.passed, `${scenario.name} failed:\n${result.failures.join("\n")}`);
  return result;
}

Deno.test("torture 1: every malformed input gets its ERR line and a close; the healthy client loses nothing", async () => {
  const { metrics, lost } = await runQuick(1);
  assert.equal(metrics.rightReason, metrics.offenders);
  assert.equal(metrics.closed, metrics.offenders);
  assert.equal(lost, 0);
});

Deno.test("torture 2: the frame decoders hold their properties on generated input", async () => {
  const { metrics } = await runQuick(2);
  assert.ok(Number(metrics.runs) > 0);
});

Deno.test("torture 3: slowloris connections are all evicted with ERR read timeout", async () => {
  const { metrics, lost } = await runQuick(3);
  assert.equal(metrics.readTimeouts, metrics.connections);
  assert.equal(lost, 0);
});

Deno.test("torture 4: a connection flood is refused with ERR and every fd comes back", async () => {
  const { metrics } = await runQuick(4);
  assert.equal(metrics.refused, metrics.overLimit);
  assert.ok(Number(metrics.fdsAfter) <= Number(metrics.fdsBefore) + 2);
});

Deno.test("torture 5: a slow consumer is cut off while the readers get every message", async () => {
  const { metrics, lost } = await runQuick(5);
  assert.equal(metrics.sleeperError, "slow consumer");
  assert.equal(lost, 0);
  assert.equal(metrics.clientsBack, true);
});

Deno.test("torture 6: killed client processes and reset connections free their slots", async () => {
  const { metrics, lost } = await runQuick(6);
  assert.ok(Number(metrics.unreadBytesAtReset) > 0, "no connection closed with unread data");
  assert.equal(lost, 0);
});

Deno.test("torture 7: SIGINT and SIGTERM under load print every message once and exit 0", async () => {
  const { metrics } = await runQuick(7);
  assert.equal(metrics.SIGINTExitCode, 0);
  assert.equal(metrics.SIGTERMExitCode, 0);
  assert.equal(metrics.SIGINTMissing, 0);
  assert.equal(metrics.SIGTERMMissing, 0);
});

Deno.test("torture 8: held connections cost no more memory than documented", async () => {
  const { metrics } = await runQuick(8);
  assert.ok(Number(metrics.idleBytesPerConnection) <= Number(metrics.boundBytesPerConnection));
  assert.ok(Number(metrics.unauthenticatedBytesPerConnection) >= 0, "not measured");
});

Deno.test("torture 9: bad tokens, late tokens and non-TLS peers are refused and closed", async () => {
  const { metrics } = await runQuick(9);
  assert.equal(metrics.tokenRefused, metrics.tokenAttempts);
  assert.equal(metrics.tlsRefused, metrics.tlsAttempts);
});
