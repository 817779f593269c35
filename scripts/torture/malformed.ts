/**
 * Scenario 1: thousands of malformed inputs, one offender per connection, while a
 * healthy client keeps sending.
 *
 * Owns the generator of inputs that are invalid for certain. Since any non-empty line
 * that is not a verb is a valid text message (NUL and random bytes included), every
 * kind here breaks a rule the server must enforce: an over-long line, a bad `MSG`
 * header, a payload without its line end, a bad name, a frame cut short. Each input
 * carries the `ERR` reason docs/PROTOCOL.md gives for it.
 *
 * @module
 */

import { concatBytes } from "../../lib/testing.ts";
import { countPrinted, type Ending, HealthyClient, offend } from "./clients.ts";
import {
  Checks,
  mapConcurrent,
  type ScenarioContext,
  type ScenarioOutcome,
  type Sizes,
  TortureServer,
} from "../shared/harness.ts";

const LF = 0x0a;
const CR = 0x0d;
/** The longest line the server accepts (docs/PROTOCOL.md). */
const MAX_LINE_BYTES = 4096;

/** One generated offence. */
export interface MalformedInput {
  kind: string;
  bytes: Uint8Array;
  /** Whether the offender then closes its write side or stays silent. */
  ending: Ending;
  /** The reason the server must give after `ERR `. */
  expected: string;
}

/** A small seeded PRNG (mulberry32), so a failing input can be generated again. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;

const between = (random: Random, min: number, max: number) =>
  min + Math.floor(random() * (max - min + 1));

/** `length` random bytes, none of them in `excluded`. */
function randomBytes(random: Random, length: number, excluded: number[] = []): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    let byte = between(random, 0, 255);
    while (excluded.includes(byte)) byte = between(random, 0, 255);
    bytes[i] = byte;
  }
  return bytes;
}

function pick<T>(random: Random, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

const NOT_DIGITS = "abcxyzXYZ!#+-.,:;_/ \t";
const CONTROL_OR_WIDE = ["\0", "\t", "\x7f", "\x1b", " ", "é", "\u2603"];

/** The kinds of offence, each a maker of one input. */
const KINDS: Record<string, (random: Random, maxFrame: number) => Omit<MalformedInput, "kind">> = {
  "junk line over 4096 bytes": (random) => ({
    bytes: randomBytes(random, between(random, MAX_LINE_BYTES + 1, 3 * MAX_LINE_BYTES), [LF]),
    ending: "keep-open",
    expected: "control line too long",
  }),
  "NUL then megabytes without LF": (random) => ({
    bytes: concatBytes("\0", junkPool().subarray(0, between(random, 1, 2) * 1024 * 1024)),
    ending: "keep-open",
    expected: "control line too long",
  }),
  "MSG with a non-digit length": (random) => {
    let length = "";
    for (let i = between(random, 1, 8); i > 0; i--) length += pick(random, [...NOT_DIGITS]);
    if (random() < 0.5) length = `${between(random, 0, 99)}${length}`;
    return {
      bytes: concatBytes(`MSG ${length}\n`),
      ending: "keep-open",
      expected: "malformed frame",
    };
  },
  "MSG with a negative length": (random) => ({
    bytes: concatBytes(`MSG -${between(random, 1, 1_000_000)}\n`),
    ending: "keep-open",
    expected: "malformed frame",
  }),
  "MSG with a 20 to 60 digit length": (random) => {
    let digits = String(between(random, 1, 9));
    for (let i = between(random, 19, 59); i > 0; i--) digits += between(random, 0, 9);
    return {
      bytes: concatBytes(`MSG ${digits}\n`),
      ending: "keep-open",
      expected: "frame too large",
    };
  },
  "MSG over --max-frame": (random, maxFrame) => ({
    bytes: concatBytes(`MSG ${maxFrame + between(random, 1, 1_000_000)}\n`),
    ending: "keep-open",
    expected: "frame too large",
  }),
  "payload not followed by LF": (random) => {
    const length = between(random, 0, 2048);
    return {
      bytes: concatBytes(
        `MSG ${length}\n`,
        randomBytes(random, length),
        randomBytes(random, 1, [LF, CR]),
      ),
      ending: "keep-open",
      expected: "malformed frame",
    };
  },
  "lone CR in a MSG header": (random) => {
    const length = between(random, 1, 64);
    return {
      bytes: concatBytes(`MSG ${length}\r`, randomBytes(random, length, [LF]), "\n"),
      ending: "keep-open",
      expected: "malformed frame",
    };
  },
  "HELLO with an invalid name": (random) => {
    const bad = pick(random, CONTROL_OR_WIDE);
    const name = random() < 0.2 ? "n".repeat(between(random, 65, 200)) : `a${bad}b`;
    return { bytes: concatBytes(`HELLO ${name}\n`), ending: "keep-open", expected: "invalid name" };
  },
  // TextDecoder drops a leading byte-order mark by default: the name must be checked as bytes.
  "HELLO with a byte-order mark before the name": (random) => ({
    bytes: concatBytes("HELLO \ufeff", pick(random, ["b", "bob", "x1"]), "\n"),
    ending: "keep-open",
    expected: "invalid name",
  }),
  "frame cut short, write side closed": (random) => {
    const length = between(random, 2, 4096);
    return {
      bytes: concatBytes(`MSG ${length}\n`, randomBytes(random, between(random, 0, length - 1))),
      ending: "close-write",
      expected: "truncated frame",
    };
  },
  "frame cut short, then silence": (random) => {
    const length = between(random, 2, 4096);
    return {
      bytes: concatBytes(`MSG ${length}\n`, randomBytes(random, between(random, 0, length - 1))),
      ending: "keep-open",
      expected: "read timeout",
    };
  },
  "line cut short, then silence": (random) => ({
    bytes: concatBytes(pick(random, ["HELLO bo", "MSG 12", "PIN", "some text"])),
    ending: "keep-open",
    expected: "read timeout",
  }),
};

let pool: Uint8Array | undefined;
/** 2 MiB of random bytes without LF, made once: the megabyte offences share it. */
function junkPool(): Uint8Array {
  return pool ??= randomBytes(seededRandom(0), 2 * 1024 * 1024, [LF]);
}

/** The number of kinds of offence. */
export const MALFORMED_KINDS: number = Object.keys(KINDS).length;

/** Offence number `index`: the kinds are taken in turn, and `seed` and `index` fix the bytes. */
export function malformedInput(index: number, maxFrame: number, seed = 1): MalformedInput {
  const [kind, make] = Object.entries(KINDS)[index % MALFORMED_KINDS];
  return { kind, ...make(seededRandom(seed * 1_000_003 + index), maxFrame) };
}

/** Sizes: `offenders`, `concurrency`. */
export async function runMalformedInputs(
  context: ScenarioContext,
  sizes: Sizes,
): Promise<ScenarioOutcome> {
  const readTimeoutMs = 1_000;
  const closeMarginMs = 3_000;
  const maxFrame = 65_536;
  await using server = await TortureServer.start(context, "malformed", [
    "--read-timeout",
    `${readTimeoutMs}ms`,
    "--max-frame",
    String(maxFrame),
    "--no-broadcast",
  ]);
  const healthy = await HealthyClient.start(server.port, "healthy");
  const before = await server.probe();
  // Made one at a time as they are sent: megabytes of junk each are not kept around.
  const inputs = Array.from({ length: sizes.offenders }, (_, index) => index);
  let done = 0;
  const outcomes = await mapConcurrent(inputs, sizes.concurrency, async (index) => {
    const input = malformedInput(index, maxFrame);
    const outcome = await offend(
      server.port,
      input.bytes,
      input.ending,
      readTimeoutMs + closeMarginMs,
    );
    if (++done % 50 === 0) context.progress(`${done}/${inputs.length} offenders answered`);
    return { ...outcome, kind: input.kind, expected: input.expected };
  });
  const healthyResult = await healthy.stop();
  const after = await server.probe();
  const stillRunning = !server.exited;
  const exitCode = await server.stop();
  const printed = countPrinted(await server.readStdout(), "healthy", healthyResult.sent);

  const checks = new Checks();
  const wrong = new Map<string, { count: number; example: string }>();
  let answered = 0;
  let closed = 0;
  let slowestCloseMs = 0;
  for (const outcome of outcomes) {
    if (outcome.received.startsWith("ERR ")) answered++;
    if (outcome.closed) closed++;
    slowestCloseMs = Math.max(slowestCloseMs, outcome.closeMs);
    const expected = `ERR ${outcome.expected}\n`;
    if (outcome.received !== expected || !outcome.closed) {
      const entry = wrong.get(outcome.kind) ?? { count: 0, example: "" };
      entry.count++;
      entry.example ||= `${JSON.stringify(outcome.received.slice(0, 60))}${
        outcome.closed ? "" : " and not closed"
      } (expected ${JSON.stringify(expected)})`;
      wrong.set(outcome.kind, entry);
    }
  }
  for (const [kind, { count, example }] of wrong) {
    checks.expect(false, `${count} x "${kind}": got ${example}`);
  }
  checks.expect(closed === inputs.length, `${inputs.length - closed} offenders were not closed`);
  checks.expect(stillRunning && exitCode === 0, `server crashed or exited ${exitCode}`);
  checks.expect(healthyResult.error === undefined, `healthy client: ${healthyResult.error}`);
  checks.expect(printed.lost === 0, `${printed.lost} healthy messages lost`);
  checks.expect(printed.duplicates === 0, `${printed.duplicates} healthy messages printed twice`);
  checks.expect(!/\bat .*\.ts:\d+/.test(server.stderr), "the server logged a stack trace");
  return {
    sent: `${inputs.length} malformed inputs (${
      Object.keys(KINDS).length
    } kinds, ${sizes.concurrency} at a time); healthy: ${healthyResult.sent} msgs`,
    serverDid: `ERR to ${answered}/${inputs.length} (right reason: ${
      inputs.length - [...wrong.values()].reduce((sum, w) => sum + w.count, 0)
    }), closed ${closed}, slowest close ${slowestCloseMs} ms (limit ${
      readTimeoutMs + closeMarginMs
    }); healthy msgs printed ${printed.printed}`,
    lost: printed.lost,
    before,
    after,
    failures: checks.failures,
    metrics: {
      offenders: inputs.length,
      answeredWithErr: answered,
      rightReason: inputs.length - [...wrong.values()].reduce((sum, w) => sum + w.count, 0),
      closed,
      slowestCloseMs,
      healthySent: healthyResult.sent,
      healthyLost: printed.lost,
    },
  };
}
