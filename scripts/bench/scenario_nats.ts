/**
 * Fan-out against a real `nats-server`, beside parrot's own fan-out rows: the same
 * generator, the same messages (one publisher, `messages` x `size` bytes, 128 KiB writes,
 * the same credit window) and the same check (every subscriber counts every message), spoken
 * in NATS's text protocol (scripts/bench/nats_wire.ts). The `delivered/s` of
 * `fanout-nats-1to100` reads directly against `fanout-1to100`'s.
 *
 * nats-server runs as lib/testing/nats.ts starts it for the tests (its defaults, a free
 * loopback port); its CPU and RSS are read as the parrot server's are.
 *
 * @module
 */

import { type NatsProcess, startNats } from "../../lib/testing.ts";
import type { Sizes } from "../shared/harness.ts";
import { type BenchContext, type BenchOutcome, drive } from "./drive.ts";
import { fanOutOutcome, sendRole, WINDOW_BYTES } from "./scenario_throughput.ts";

/** Fan-out from `connections` NATS publishers to `subscribers` NATS subscribers. */
export async function runFanOutNats(context: BenchContext, sizes: Sizes): Promise<BenchOutcome> {
  const { connections, subscribers, messages } = sizes;
  const total = connections * messages;
  let nats: NatsProcess | undefined;
  try {
    context.progress("starting nats-server");
    nats = await startNats();
    const driven = await drive(context, { pid: nats.running.child.pid, port: nats.port }, [
      { ...sendRole("p", sizes, WINDOW_BYTES), protocol: "nats" },
      {
        kind: "subscribe",
        names: Array.from({ length: subscribers }, (_, i) => `s${i}`),
        expected: total,
        firstSlot: 1,
        protocol: "nats",
      },
    ], { timeLimitMs: sizes.timeLimitMs });
    const failures = [...driven.failures];
    const slow = nats.running.stderr.text().match(/Slow Consumer[^\n]*/);
    if (slow) failures.push(`nats-server: ${slow[0]}`);
    return fanOutOutcome(driven, sizes, ", nats-server", { nats: nats.url }, failures);
  } finally {
    await nats?.stop("SIGTERM");
  }
}
