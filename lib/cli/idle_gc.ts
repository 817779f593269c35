/**
 * Gives memory back to the system once the server goes quiet.
 *
 * V8 keeps the heap it grew to: after a burst of connections or messages the live
 * heap is back to a few megabytes, but the pages stay mapped and the process's RSS
 * stays where the burst left it. V8 has a memory reducer for this, which Deno does not
 * run for an idle isolate. So the server CLI runs with `--expose-gc` and a small young
 * generation, and this module runs one collection after activity has stopped: at most
 * one per quiet period, never while work goes on. It asks for V8's "last resort"
 * flavour, which also compacts the heap and unmaps the pages it pooled; a plain
 * `gc()` frees the objects but keeps the pages (20,000 connections churned: heap
 * 24 MB committed after `gc()`, 6 MB after this one).
 *
 * @module
 */

import type { ParrotServer } from "../parrot/server.ts";

/**
 * How long without activity counts as quiet, by default: the collection comes 500 to
 * 1,000 ms after the last message or connection. Short enough that a server is back at
 * its idle size by the time someone looks (10,000 connections held: 5.2 kB each a
 * second after the last one came, where a 1,000 ms period still showed 7.0 kB in two
 * runs of three), long enough never to run inside a burst.
 */
export const DEFAULT_QUIET_MS = 500;

/** Options of {@linkcode collectWhenIdle}. */
export interface IdleCollectorOptions {
  /** A number that changes whenever work happens (messages, connections). */
  activity: () => number;
  /** Called just before each collection, to let go of what is kept for reuse. */
  beforeCollect?: () => void;
  /** Milliseconds without a change of `activity` that count as quiet. Default {@linkcode DEFAULT_QUIET_MS}. */
  quietMs?: number;
  /**
   * The collector; by default a full, memory-reducing collection through
   * `globalThis.gc`, which exists only under `--expose-gc`.
   */
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
  const collect = options.collect ?? reducingCollector();
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
      options.beforeCollect?.();
      collect();
    }
  }, options.quietMs ?? DEFAULT_QUIET_MS);
  return () => clearInterval(timer);
}

/** What {@linkcode collectServerWhenIdle} needs of a server. */
export type CollectableServer = Pick<ParrotServer, "stats" | "trimMemory">;

/**
 * {@linkcode collectWhenIdle} for a parrot server (or one shard of it): it is quiet
 * when no message, connection or refusal has come for a while, and it lets go of its
 * pooled buffers just before the collection. Returns a function that stops it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { collectServerWhenIdle } from "./idle_gc.ts";
 * import { startParrotServer } from "../parrot/server.ts";
 *
 * const server = startParrotServer({ port: 0, output: null });
 * const stop = collectServerWhenIdle(server);
 * stop();
 * await server.shutdown();
 * assert.equal(server.stats().messages, 0);
 * ```
 */
export function collectServerWhenIdle(server: CollectableServer): () => void {
  return collectWhenIdle({
    activity: () => {
      const { messages, connections, rejected } = server.stats();
      return messages + connections + rejected;
    },
    beforeCollect: () => server.trimMemory(),
  });
}

/** V8's `gc()` under `--expose-gc`, as it takes options (V8 11.x and later). */
type ExposedGc = (options?: { type: "major"; execution: "sync"; flavor: "last-resort" }) => void;

/** A collection that also gives pooled pages back, or `undefined` without `--expose-gc`. */
function reducingCollector(): (() => void) | undefined {
  const gc = (globalThis as { gc?: ExposedGc }).gc;
  if (!gc) return undefined;
  return () => gc({ type: "major", execution: "sync", flavor: "last-resort" });
}
