import assert from "node:assert/strict";
import {
  DEFAULT_CLIENT_INTERVAL_MS,
  DEFAULT_GRACE_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_READ_TIMEOUT_MS,
} from "../defaults.ts";
import { formatDuration, parseDuration } from "./duration.ts";

function parseError(text: string): { name: string; message: string } {
  return {
    name: "RangeError",
    message: `Cannot parse duration ${
      JSON.stringify(text)
    }: expected a number with an optional ms, s, m, h or d unit`,
  };
}

Deno.test("parseDuration() reads each unit", () => {
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("5s"), 5_000);
  assert.equal(parseDuration("1m"), 60_000);
  assert.equal(parseDuration("2h"), 7_200_000);
  assert.equal(parseDuration("7d"), 604_800_000);
});

Deno.test("parseDuration() reads plain numbers as milliseconds", () => {
  assert.equal(parseDuration("1500"), 1_500);
  assert.equal(parseDuration("0"), 0);
  assert.equal(parseDuration("0ms"), 0);
  assert.equal(parseDuration("0s"), 0);
  assert.equal(parseDuration("007s"), 7_000);
});

Deno.test("parseDuration() reads fractions and rounds them to whole milliseconds", () => {
  assert.equal(parseDuration("1.5s"), 1_500);
  assert.equal(parseDuration("0.25m"), 15_000);
  assert.equal(parseDuration("2.3s"), 2_300);
  assert.equal(parseDuration("0.0015s"), 2);
  assert.equal(parseDuration("0.4ms"), 0);
  assert.equal(parseDuration("12.6"), 13);
  for (const text of ["1.5s", "0.0015s", "12.6", "0.1h"]) {
    assert.ok(Number.isInteger(parseDuration(text)), text);
  }
});

Deno.test("parseDuration() rejects text that is not a duration", () => {
  const invalid = [
    "",
    " ",
    "abc",
    "5x",
    "-5",
    "-1s",
    "+5s",
    "5 s",
    " 5s",
    "5s ",
    "5S",
    "1.",
    ".5s",
    "1e3",
    "0x10",
    "NaN",
    "Infinity",
    "5ms5",
    "1s500ms",
    "ms",
  ];
  for (const text of invalid) {
    assert.throws(() => parseDuration(text), parseError(text), JSON.stringify(text));
  }
});

Deno.test("parseDuration() quotes odd text in its error message", () => {
  assert.throws(() => parseDuration('5"s'), {
    message:
      'Cannot parse duration "5\\"s": expected a number with an optional ms, s, m, h or d unit',
  });
});

Deno.test("parseDuration() rejects a duration beyond the safe integer range", () => {
  const text = `${"9".repeat(20)}h`;
  assert.throws(() => parseDuration(text), {
    name: "RangeError",
    message: `Cannot parse duration "${text}": it is longer than 9007199254740991ms`,
  });
  assert.throws(() => parseDuration("9".repeat(400)), RangeError);
});

Deno.test("formatDuration() uses the largest unit that divides the duration", () => {
  assert.equal(formatDuration(0), "0ms");
  assert.equal(formatDuration(1), "1ms");
  assert.equal(formatDuration(250), "250ms");
  assert.equal(formatDuration(1_500), "1500ms");
  assert.equal(formatDuration(5_000), "5s");
  assert.equal(formatDuration(90_000), "90s");
  assert.equal(formatDuration(60_000), "1m");
  assert.equal(formatDuration(5_400_000), "90m");
  assert.equal(formatDuration(3_600_000), "1h");
  assert.equal(formatDuration(86_400_000), "24h");
});

Deno.test("formatDuration() prints the default timeouts so that parseDuration() reads them back", () => {
  const defaults = [
    DEFAULT_READ_TIMEOUT_MS,
    DEFAULT_IDLE_TIMEOUT_MS,
    DEFAULT_GRACE_MS,
    DEFAULT_CLIENT_INTERVAL_MS,
  ];
  for (const ms of defaults) {
    const text = formatDuration(ms);
    assert.match(text, /^\d+(ms|s|m|h)$/);
    assert.equal(parseDuration(text), ms);
  }
});

Deno.test("formatDuration() rejects a negative, fractional or non-finite duration", () => {
  for (const ms of [-1, 1.5, NaN, Infinity, 2 ** 53]) {
    assert.throws(() => formatDuration(ms), {
      name: "RangeError",
      message:
        `Cannot format duration ${ms}: expected a non-negative integer number of milliseconds`,
    });
  }
});

Deno.test("parseDuration() reads back what formatDuration() prints", () => {
  const samples = [0, 1, 999, 1_000, 1_001, 59_999, 60_000, 3_599_999, 3_600_000, 123_456_789];
  for (let ms = 0; ms < 5_000; ms += 37) samples.push(ms * 1_000, ms * 60_000);
  samples.push(Number.MAX_SAFE_INTEGER);
  for (const ms of samples) {
    assert.equal(parseDuration(formatDuration(ms)), ms, `${ms}ms`);
  }
});
