/**
 * What every role of the load generator gets and gives back, inside its Worker.
 *
 * Owned apart from the roles so that the worker entry (scripts/bench/worker.ts) can run
 * any role the same way: set up (connections open, HELLO answered), then `go` (the
 * measured load), then `close`. Also the one small statistics helper the roles share.
 *
 * @module
 */

import type { RoleResult } from "./plan.ts";

/** What a role gets from its Worker. */
export interface RoleContext {
  port: number;
  /** A `Date.now()` value: every loop of the role ends by then. */
  deadline: number;
  /** Counters shared by every Worker of the generator (subscribers' counts). */
  shared: Int32Array;
  /** Reports a short progress text (throttled by the worker). */
  progress(text: string): void;
  /** Milliseconds on a clock that every Worker of the generator shares (see {@linkcode sharedClock}). */
  clock(): number;
}

/**
 * A clock in milliseconds whose zero is `origin`, a `performance.timeOrigin` of another
 * thread. Every Worker has its own `performance.timeOrigin`, taken from the wall clock
 * when it started, so `performance.timeOrigin + performance.now()` reads the same on
 * every thread of a process (to a few microseconds here), and a time taken in one Worker
 * can be compared with a time taken in another.
 */
export function sharedClock(origin: number): () => number {
  const offset = performance.timeOrigin - origin;
  return () => offset + performance.now();
}

/** A role that has set up its connections and waits for `go`. */
export interface PreparedRole {
  /** Runs the measured load; resolves with the role's figures and failed checks. */
  go(): Promise<RoleResult>;
  /** Closes every connection of the role. */
  close(): void;
}

/** The `q` quantile (0..1) of `sorted` (ascending), nearest rank; NaN when empty. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

/** Rounds to `digits` decimals. */
export function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
