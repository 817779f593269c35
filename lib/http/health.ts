/**
 * What `/healthz` says: whether the server still accepts connections and prints what it
 * receives. The CLI knows both facts first (its signal handler starts the shutdown, and
 * `finished` rejecting with an `OutputError` says stdout failed): it tells a
 * {@linkcode ServerHealth}, and the HTTP side asks it on every probe.
 *
 * @module
 */

/** What {@linkcode ServerHealth.watch} reads of a server (a `ParrotServer`). */
export interface WatchedServer {
  /** Its counters; `unwrittenMessages` is above 0 once stdout failed. */
  stats(): { unwrittenMessages: number };
  /** Rejects when stdout failed. */
  readonly finished: Promise<void>;
}

/** The answer of a health check: ok, or why not. */
export type Health = { ok: true } | { ok: false; reason: string };

/**
 * A server's health, told by whoever learns of a change: once unhealthy, it stays so
 * (a server that shuts down or lost its stdout does not come back), and the first
 * reason is kept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ServerHealth } from "./health.ts";
 *
 * const health = new ServerHealth();
 * assert.deepEqual(health.check(), { ok: true });
 * health.shuttingDown();
 * assert.deepEqual(health.check(), { ok: false, reason: "shutting down" });
 * ```
 */
export class ServerHealth {
  #reason: string | undefined;
  #server: WatchedServer | undefined;

  /**
   * Follows `server`'s output: unhealthy once a write to stdout failed (it counts
   * unwritten messages, or `finished` rejects). The server stops by itself then; this
   * says so while it does.
   */
  watch(server: WatchedServer): void {
    this.#server = server;
    server.finished.catch(() => this.outputFailed());
  }

  /** The shutdown has begun: new connections are no longer accepted. */
  shuttingDown(): void {
    this.#reason ??= "shutting down";
  }

  /** Writing to stdout failed: received messages are no longer printed. */
  outputFailed(): void {
    this.#reason ??= "stdout failed";
  }

  /** The state now. */
  check(): Health {
    if (this.#reason === undefined && (this.#server?.stats().unwrittenMessages ?? 0) > 0) {
      this.outputFailed();
    }
    return this.#reason === undefined ? { ok: true } : { ok: false, reason: this.#reason };
  }
}
