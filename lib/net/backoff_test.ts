import assert from "node:assert/strict";
import fc from "fast-check";
import { Backoff } from "./backoff.ts";

const TOP = 0.9999999999;

/** A random source that returns `values` in turn. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}

Deno.test("Backoff.next() doubles the bound from initialMs up to maxMs", () => {
  const backoff = new Backoff({ initialMs: 50, maxMs: 1_000, random: () => TOP });
  const delays = Array.from({ length: 8 }, () => backoff.next());
  assert.deepEqual(delays, [50, 100, 200, 400, 800, 1_000, 1_000, 1_000]);
});

Deno.test("Backoff.next() scales the bound by the random value (full jitter)", () => {
  const backoff = new Backoff({ initialMs: 100, maxMs: 1_000, random: sequence(0, 0.5, 0.25) });
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [0, 100, 100]);
});

Deno.test("Backoff.next() returns undefined once maxAttempts are handed out", () => {
  const backoff = new Backoff({ initialMs: 10, maxMs: 10, maxAttempts: 2, random: () => 0 });
  assert.equal(backoff.next(), 0);
  assert.equal(backoff.attempt, 1);
  assert.equal(backoff.next(), 0);
  assert.equal(backoff.attempt, 2);
  assert.equal(backoff.next(), undefined);
  assert.equal(backoff.next(), undefined);
  assert.equal(backoff.attempt, 2, "an exhausted backoff does not count further");
  assert.equal(backoff.maxAttempts, 2);
});

Deno.test("Backoff.next() with maxAttempts 0 never allows an attempt", () => {
  assert.equal(new Backoff({ initialMs: 1, maxMs: 1, maxAttempts: 0 }).next(), undefined);
});

Deno.test("Backoff.reset() starts the bounds and the attempts over", () => {
  const backoff = new Backoff({ initialMs: 10, maxMs: 100, maxAttempts: 3, random: () => TOP });
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next(), backoff.next()], [
    10,
    20,
    40,
    undefined,
  ]);
  backoff.reset();
  assert.equal(backoff.attempt, 0);
  assert.equal(backoff.next(), 10);
});

Deno.test("Backoff keeps every delay a whole number within [0, its bound]", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 10_000 }),
      fc.integer({ min: 0, max: 100_000 }),
      fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), {
        minLength: 1,
        maxLength: 60,
      }),
      (initialMs, extra, randoms) => {
        const maxMs = initialMs + extra;
        const backoff = new Backoff({ initialMs, maxMs, random: sequence(...randoms) });
        for (let n = 0; n < randoms.length; n++) {
          const wait = backoff.next()!;
          const bound = Math.min(maxMs, initialMs * 2 ** n);
          assert.ok(Number.isInteger(wait) && wait >= 0 && wait <= bound, `${wait} > ${bound}`);
        }
      },
    ),
  );
});

Deno.test("Backoff never overflows after very many attempts", () => {
  const backoff = new Backoff({ initialMs: 1, maxMs: 30_000, random: () => TOP });
  let last: number | undefined;
  for (let i = 0; i < 5_000; i++) last = backoff.next();
  assert.equal(last, 30_000);
});

Deno.test("Backoff rejects impossible options with a RangeError", () => {
  const bad = [
    { initialMs: -1, maxMs: 10 },
    { initialMs: 10, maxMs: 5 },
    { initialMs: Number.NaN, maxMs: 5 },
    { initialMs: 0, maxMs: Infinity },
    { initialMs: 1, maxMs: 10, maxAttempts: -1 },
    { initialMs: 1, maxMs: 10, maxAttempts: 1.5 },
  ];
  for (const options of bad) {
    assert.throws(() => new Backoff(options), RangeError, JSON.stringify(options));
  }
});
