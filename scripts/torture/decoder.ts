/**
 * Scenario 2: property-based fuzzing of the frame decoder, as a row of the table.
 *
 * The properties themselves live in scripts/torture/decoder_fuzz.ts (owned by another
 * engineer); this module only runs them with the scenario's size and turns the answer
 * into a result, so the decoder's fuzzing is reported next to the attacks on the
 * server process.
 *
 * @module
 */

import { runDecoderFuzz } from "./decoder_fuzz.ts";
import {
  Checks,
  type ScenarioContext,
  type ScenarioOutcome,
  type Sizes,
} from "../shared/harness.ts";

/** Sizes: `numRuns` (generated cases per property). */
export function runDecoderFuzzScenario(
  context: ScenarioContext,
  sizes: Sizes,
): Promise<ScenarioOutcome> {
  context.progress(`fuzzing the decoders, ${sizes.numRuns} cases per property`);
  const seed = Date.now() % 2_147_483_647;
  const report = runDecoderFuzz({ numRuns: sizes.numRuns, seed });
  const checks = new Checks();
  for (const failure of report.failures) checks.expect(false, failure);
  checks.expect(report.properties > 0 && report.runs > 0, "no property was run");
  return Promise.resolve({
    sent: `${report.runs} generated cases over ${report.properties} properties (seed ${seed})`,
    serverDid: `both frame decoders, in process: ${report.failures.length} properties failed`,
    lost: null,
    before: null,
    after: null,
    failures: checks.failures,
    metrics: { properties: report.properties, runs: report.runs, numRuns: sizes.numRuns, seed },
  });
}
