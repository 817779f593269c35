/**
 * Gives memory back to the system once the server goes quiet.
 *
 * V8 keeps the heap it grew to: after a burst of connections or messages the live
 * heap is back to a few megabytes, but the pages stay mapped and the process's RSS
 * stays where the burst left it. V8 has a memory reducer for this, which Deno does not
 * run for an idle isolate. So the server CLI runs with `--expose-gc` and a small young
 * generation, and this module runs one full collection after activity has stopped:
 * at most one per quiet period, never while work goes on.
 *
 * @module
 */

/** Options of {@linkcode collectWhenIdle}. */
export interface IdleCollectorOptions {
  /** A number that changes whenever work happens (messages, connections). */
  activity: () => number;
  /** Milliseconds without a change of `activity` that count as quiet. Default 1000. */
  quietMs?: number;
  /** The collector; default `globalThis.gc`, which exists only under `--expose-gc`. */
  collect?: () => void;
}

/**
 * Runs `collect` once each time `activity()` has stopped changing for `quietMs`;
 * returns a function that stops it. Does nothing without a collector.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { collectWhenIdle } from "./idle_gc.ts";
 *
 * let collections = 0;
 * const stop = collectWhenIdle({ activity: () => 0, collect: () => collections++ });
 * stop();
 * assert.equal(collections, 0);
 * ```
 */
export function collectWhenIdle(options: IdleCollectorOptions): () => void {
  const collect = options.collect ??
    (globalThis as { gc?: () => void }).gc?.bind(globalThis);
  if (!collect) return () => {};
  let last = options.activity();
  let dirty = false;
  const timer = setInterval(() => {
    const now = options.activity();
    if (now !== last) {
      last = now;
      dirty = true;
    } else if (dirty) {
      dirty = false;
      collect();
    }
  }, options.quietMs ?? 1_000);
  return () => clearInterval(timer);
}
