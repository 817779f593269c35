/**
 * The Worker entry of {@linkcode Pacer} (scripts/bench/pacer.ts): a thread that does nothing
 * but sleep until each tick is due and announce it.
 *
 * A thread of its own because a timer of the JavaScript event loop cannot pace finely: in
 * Deno 2 a `setTimeout` of 0 or 1 ms returns after about 2.1 ms, so a timer-paced generator
 * sent its messages in bursts every 2 ms. `Atomics.wait` sleeps to a fraction of a
 * millisecond (a futex), and blocking is harmless here since this thread does no I/O. It
 * gets the shared buffer, takes part in the clock exchange, waits for the plan, and then
 * for each tick stores its number and notifies the publishing thread, which waits for it
 * with `Atomics.waitAsync`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import {
  CLOCK_ROUNDS,
  GO_SLOT,
  PERIOD_SLOT,
  START_AT_SLOT,
  STOP_SLOT,
  TICK_SLOT,
  TICKS_SLOT,
  TIME_SLOT,
  TURN_SLOT,
} from "./pacer.ts";

/** Waits for the plan this long at most (the bench's runs are far shorter). */
const PLAN_TIMEOUT_MS = 600_000;

self.onmessage = (event: MessageEvent<SharedArrayBuffer>) => {
  const slots = new Int32Array(event.data, 0, 4);
  const floats = new Float64Array(event.data, 16, 4);
  // The clock exchange (see CLOCK_ROUNDS): offset + performance.now() here is the
  // publishing thread's performance.now().
  let offset = -Infinity;
  for (let round = 0; round < CLOCK_ROUNDS; round++) {
    Atomics.store(slots, TURN_SLOT, 2 * round + 1);
    Atomics.notify(slots, TURN_SLOT);
    if (Atomics.wait(slots, TURN_SLOT, 2 * round + 1, 1_000) === "timed-out") return self.close();
    offset = Math.max(offset, floats[TIME_SLOT] - performance.now());
  }
  const waitedUntil = performance.now() + PLAN_TIMEOUT_MS;
  while (Atomics.load(slots, GO_SLOT) === 0 && Atomics.load(slots, STOP_SLOT) === 0) {
    if (performance.now() > waitedUntil) return self.close();
    Atomics.wait(slots, GO_SLOT, 0, 1_000);
  }
  const startAt = floats[START_AT_SLOT];
  const periodMs = floats[PERIOD_SLOT];
  const ticks = floats[TICKS_SLOT];
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let tick = 1; tick <= ticks; tick++) {
    if (Atomics.load(slots, STOP_SLOT) !== 0) break;
    const wait = startAt + tick * periodMs - (offset + performance.now());
    if (wait > 0) Atomics.wait(sleeper, 0, 0, wait);
    Atomics.store(slots, TICK_SLOT, tick);
    Atomics.notify(slots, TICK_SLOT);
  }
  self.close();
};
