import assert from "node:assert/strict";
import { parseCommandLine, parseDurationOption, UsageError } from "./args.ts";

const OPTIONS = {
  "read-timeout": { type: "string" },
  count: { type: "string" },
  tls: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

Deno.test("parseCommandLine() passes a value starting with a dash to its option", () => {
  const { values, positionals } = parseCommandLine(
    ["8080", "--read-timeout", "-1", "--count", "-3"],
    OPTIONS,
  );
  assert.equal(values["read-timeout"], "-1");
  assert.equal(values.count, "-3");
  assert.deepEqual(positionals, ["8080"]);
});

Deno.test("parseCommandLine() says which option lacks its value when an option follows it", () => {
  for (const next of ["--count", "--tls", "-h", "--count=3"]) {
    assert.throws(
      () => parseCommandLine(["--read-timeout", next], OPTIONS),
      (error) =>
        error instanceof UsageError &&
        error.message === `Missing the value of --read-timeout (before ${next})`,
    );
  }
});

Deno.test("parseCommandLine() leaves the words after -- alone", () => {
  const { positionals } = parseCommandLine(["--", "--read-timeout", "-1"], OPTIONS);
  assert.deepEqual(positionals, ["--read-timeout", "-1"]);
});

Deno.test("parseDurationOption() refuses a bad duration in one sentence naming the option and value", () => {
  assert.equal(parseDurationOption("interval", "1.5s"), 1500);
  for (const text of ["-1", "5x", 'a"b']) {
    assert.throws(
      () => parseDurationOption("interval", text),
      (error) =>
        error instanceof UsageError &&
        error.message ===
          `Cannot use --interval ${
            JSON.stringify(text)
          }: expected a number with an optional ms, s, m, h or d unit`,
    );
  }
});
