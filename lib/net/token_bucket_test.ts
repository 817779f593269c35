import assert from "node:assert/strict";
import { TokenBucket } from "./token_bucket.ts";

function bucket(ratePerSecond: number, burst?: number) {
  const clock = { now: 1_000 };
  return { clock, bucket: new TokenBucket({ ratePerSecond, burst, now: () => clock.now }) };
}

Deno.test("TokenBucket.take() is free within the burst", () => {
  const { bucket: limiter } = bucket(100, 10);
  for (let i = 0; i < 10; i++) assert.equal(limiter.take(1), 0);
  assert.ok(limiter.take(1) > 0, "the eleventh token is owed");
});

Deno.test("TokenBucket.take() asks for a pause that repays the debt at the rate", () => {
  const { bucket: limiter, clock } = bucket(1000, 100);
  assert.equal(limiter.take(600), 500, "500 tokens of debt at 1 per ms");
  clock.now += 500;
  assert.equal(limiter.take(0), 0, "repaid after the pause");
  assert.equal(limiter.take(1), 1);
});

Deno.test("TokenBucket.take() refills no further than the burst", () => {
  const { bucket: limiter, clock } = bucket(10, 5);
  limiter.take(5);
  clock.now += 60_000;
  assert.equal(limiter.take(5), 0);
  assert.equal(limiter.take(1), 100, "a minute of quiet still buys only the burst");
});

Deno.test("TokenBucket holds a steady reader to its rate", () => {
  const { bucket: limiter, clock } = bucket(200, 10);
  const start = clock.now;
  let taken = 0;
  while (taken < 1010) {
    clock.now += limiter.take(10);
    taken += 10;
  }
  // The burst is free; the other 1000 tokens take 5 s at 200 a second.
  assert.equal(clock.now - start, 5000);
});

Deno.test("TokenBucket refuses a rate that is not positive", () => {
  assert.throws(() => new TokenBucket({ ratePerSecond: 0 }), RangeError);
  assert.throws(() => new TokenBucket({ ratePerSecond: Number.NaN }), RangeError);
});
