/**
 * The connection roles of the load generator: many idle connections held at once, and
 * connection churn (one short-lived connection after another).
 *
 * Idle: `count` connections, at most `concurrency` opening at once, each says
 * `HELLO i<n>\nPING\n` and waits for `PONG`; then they stay open, silent, until the
 * generator exits, so the bench can read the server's RSS with them. Churn: one
 * connection at a time connects, says `HELLO`, gets `PONG` and closes, for a fixed
 * count or time. Both read through a tiny buffer: a 10,000-connection generator must
 * not hold 10,000 large ones.
 *
 * @module
 */

import { mapConcurrent } from "../shared/harness.ts";
import { checkDeadline, Peer } from "./peer.ts";
import type { ChurnRole, IdleRole } from "./plan.ts";
import { type PreparedRole, quantile, type RoleContext, round } from "./role.ts";

const SMALL_READ_BUFFER = 64;

/** Nothing to set up: the connections are the measured load. */
export function prepareIdle(context: RoleContext, role: IdleRole): Promise<PreparedRole> {
  const { port, deadline } = context;
  let peers: Peer[] = [];
  return Promise.resolve({
    async go() {
      const times = new Float64Array(role.count);
      let connected = 0;
      const startedAt = performance.now();
      peers = await mapConcurrent(
        Array.from({ length: role.count }),
        role.concurrency,
        async (_, i) => {
          checkDeadline(deadline, "opening idle connections");
          const t0 = performance.now();
          const peer = await Peer.connect(port, SMALL_READ_BUFFER);
          peers.push(peer); // Closed with the others even if the PONG never comes.
          await peer.write(`HELLO i${i}\nPING\n`);
          await peer.untilPong(deadline);
          times[i] = performance.now() - t0;
          if (++connected % 500 === 0) context.progress(`${connected} idle connections`);
          return peer;
        },
      );
      const elapsedMs = performance.now() - startedAt;
      times.sort();
      return {
        kind: "idle",
        metrics: {
          connections: connected,
          elapsedMs: round(elapsedMs, 1),
          connectionsPerSecond: Math.round(connected / (elapsedMs / 1000)),
          p50Ms: round(quantile(times, 0.5)),
          p99Ms: round(quantile(times, 0.99)),
        },
        failures: connected === role.count
          ? []
          : [`${role.count - connected} of ${role.count} connections got no PONG`],
      };
    },
    close() {
      for (const peer of peers) peer.close();
    },
  });
}

/** Nothing to set up: each cycle opens and closes its own connection. */
export function prepareChurn(context: RoleContext, role: ChurnRole): Promise<PreparedRole> {
  const { port, deadline } = context;
  let current: Peer | null = null;
  return Promise.resolve({
    async go() {
      const times: number[] = [];
      const failures: string[] = [];
      const startedAt = performance.now();
      const until = Math.min(deadline, Date.now() + role.timeMs);
      for (let i = 0; i < role.count && Date.now() < until; i++) {
        const t0 = performance.now();
        try {
          current = await Peer.connect(port, SMALL_READ_BUFFER);
          await current.write(`HELLO churn${i}\nPING\n`);
          await current.untilPong(deadline);
          times.push(performance.now() - t0);
        } catch (error) {
          failures.push(`cycle ${i}: ${error instanceof Error ? error.message : error}`);
          if (failures.length >= 5) break;
        } finally {
          current?.close();
          current = null;
        }
        if (i % 100 === 99) context.progress(`${i + 1} connect/PONG/close cycles`);
      }
      const elapsedMs = performance.now() - startedAt;
      times.sort((a, b) => a - b);
      return {
        kind: "churn",
        metrics: {
          cycles: times.length,
          failed: failures.length,
          elapsedMs: round(elapsedMs, 1),
          cyclesPerSecond: Math.round(times.length / (elapsedMs / 1000)),
          p50Ms: round(quantile(times, 0.5)),
          p99Ms: round(quantile(times, 0.99)),
        },
        failures,
      };
    },
    close() {
      current?.close();
    },
  });
}
