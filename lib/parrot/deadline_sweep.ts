/**
 * The read and idle deadlines of every client, enforced by one periodic sweep instead
 * of a timer per connection.
 *
 * Each connection task only notes times on its {@linkcode Session} after each read
 * (`Session.heardFrom`: when the client was last heard from and when its unfinished frame
 * began) and marks it held while the server makes it wait (`Session.hold`). The sweep, run a few times per deadline by the server, does the rest: a
 * frame unfinished for the read timeout gets `ERR read timeout`, a client silent for
 * the idle timeout gets `PING`, and silent for as long again `ERR idle timeout`.
 * Closing the connection ends the task's pending read, so no read is ever raced
 * against a timer: a pending read costs nothing but the read.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { REASON } from "./frame.ts";
import type { Session } from "./session.ts";

const log = getLogger(["parrot", "connection"]);

/** The deadlines a sweep enforces. */
export interface Deadlines {
  /** Milliseconds an unfinished frame may take from its first byte. */
  readTimeoutMs: number;
  /** Milliseconds of silence before `PING`, and again before the drop; 0 disables. */
  idleTimeoutMs: number;
}

/** What a sweep counts. */
export interface SweepCounters {
  /** Clients closed by the read timeout. */
  readTimeouts: number;
  /** Clients closed by the idle timeout. */
  idleTimeouts: number;
}

/**
 * Checks every session in `sessions` against `deadlines` at time `now`.
 *
 * @example A client silent for the idle timeout gets PING
 * ```ts
 * import assert from "node:assert/strict";
 * import { sweepDeadlines } from "./deadline_sweep.ts";
 * import { Session } from "./session.ts";
 *
 * const written: string[] = [];
 * const conn = {
 *   write: (p: Uint8Array) => (written.push(new TextDecoder().decode(p)), Promise.resolve(p.length)),
 *   close: () => {},
 * };
 * const session = new Session(conn, 1, "ann");
 * const counters = { readTimeouts: 0, idleTimeouts: 0 };
 * sweepDeadlines([session], session.lastHeardAt + 1000, { readTimeoutMs: 5000, idleTimeoutMs: 1000 }, counters);
 * await session.outbound.flush();
 * assert.deepEqual(written, ["PING\n"]);
 * ```
 */
export function sweepDeadlines(
  sessions: Iterable<Session>,
  now: number,
  deadlines: Deadlines,
  counters: SweepCounters,
): void {
  const { readTimeoutMs, idleTimeoutMs } = deadlines;
  for (const session of sessions) {
    if (session.held || session.closed) continue;
    if (session.frameStartedAt !== 0 && now - session.frameStartedAt >= readTimeoutMs) {
      counters.readTimeouts++;
      log.info("Closing {name}: {reason}", { name: session.label, reason: REASON.readTimeout });
      session.fail(REASON.readTimeout);
    } else if (idleTimeoutMs > 0 && now - session.lastHeardAt >= idleTimeoutMs) {
      if (session.pinged) {
        counters.idleTimeouts++;
        log.info("Closing {name}: {reason}", { name: session.label, reason: REASON.idleTimeout });
        session.fail(REASON.idleTimeout);
      } else {
        session.ping(now);
      }
    }
  }
}

/** How often to sweep so that no deadline overshoots by more than a quarter (10 ms to 1 s). */
export function sweepInterval(...timeoutsMs: number[]): number {
  const shortest = Math.min(...timeoutsMs.filter((ms) => ms > 0));
  return Math.min(Math.max(Math.floor(shortest / 4), 10), 1_000);
}
