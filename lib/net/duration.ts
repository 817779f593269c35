/**
 * Durations as command-line flags write them: `250ms`, `5s`, `1.5s`, `1m`,
 * `2h`, `7d`, or plain milliseconds such as `1500`.
 *
 * It owns the one syntax that every timeout flag accepts and that help texts
 * print, so that what {@linkcode formatDuration} prints,
 * {@linkcode parseDuration} reads back to the same number of milliseconds.
 *
 * @example Round trip
 * ```ts
 * import { formatDuration, parseDuration } from "./duration.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseDuration("1.5s"), 1500);
 * assert.equal(formatDuration(60_000), "1m");
 * assert.equal(parseDuration(formatDuration(90_000)), 90_000);
 * ```
 *
 * @module
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;

/**
 * Parses a duration into milliseconds.
 *
 * The text is a non-negative decimal number with an optional unit: `ms`,
 * `s`, `m`, `h` or `d` (24 hours); without a unit it counts milliseconds. Fractions are
 * rounded to the nearest millisecond, so `1.5s` is 1500 and `0.4ms` is 0.
 * Nothing else is accepted: no sign, exponent, spaces or upper case.
 *
 * @param text The duration, e.g. the value of `--read-timeout`.
 * @returns The duration in whole milliseconds.
 * @throws {RangeError} If `text` is not a duration, or is longer than
 * `Number.MAX_SAFE_INTEGER` milliseconds.
 *
 * @example Usage
 * ```ts
 * import { parseDuration } from "./duration.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseDuration("250ms"), 250);
 * assert.equal(parseDuration("5s"), 5_000);
 * assert.equal(parseDuration("1m"), 60_000);
 * assert.equal(parseDuration("1500"), 1_500);
 * assert.throws(() => parseDuration("5x"), {
 *   message: 'Cannot parse duration "5x": expected a number with an optional ms, s, m, h or d unit',
 * });
 * ```
 */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text);
  if (match === null) {
    throw new RangeError(
      `Cannot parse duration ${
        JSON.stringify(text)
      }: expected a number with an optional ms, s, m, h or d unit`,
    );
  }
  const ms = Math.round(Number(match[1]) * UNIT_MS[match[2] ?? "ms"]);
  if (!Number.isSafeInteger(ms)) {
    throw new RangeError(
      `Cannot parse duration ${
        JSON.stringify(text)
      }: it is longer than ${Number.MAX_SAFE_INTEGER}ms`,
    );
  }
  return ms;
}

/**
 * Formats milliseconds as the shortest exact duration that
 * {@linkcode parseDuration} reads back: in the largest of `h`, `m` and `s`
 * that divides it, else in `ms`.
 *
 * @param ms The duration in milliseconds.
 * @returns The duration, e.g. `"5s"` for 5000 or `"1500ms"` for 1500.
 * @throws {RangeError} If `ms` is not a non-negative safe integer.
 *
 * @example Usage
 * ```ts
 * import { formatDuration } from "./duration.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatDuration(250), "250ms");
 * assert.equal(formatDuration(5_000), "5s");
 * assert.equal(formatDuration(60_000), "1m");
 * assert.equal(formatDuration(1_500), "1500ms");
 * ```
 */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new RangeError(
      `Cannot format duration ${ms}: expected a non-negative integer number of milliseconds`,
    );
  }
  if (ms === 0) return "0ms";
  if (ms % UNIT_MS.h === 0) return `${ms / UNIT_MS.h}h`;
  if (ms % UNIT_MS.m === 0) return `${ms / UNIT_MS.m}m`;
  if (ms % UNIT_MS.s === 0) return `${ms / UNIT_MS.s}s`;
  return `${ms}ms`;
}
