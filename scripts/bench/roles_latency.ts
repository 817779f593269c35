/**
 * The two halves of the latency scenarios, each in a Worker of its own: many publishers
 * at a fixed, paced rate with PING/PONG round trips meanwhile, and one subscriber on TCP
 * that timestamps what it reads (the WebSocket subscriber is in
 * scripts/bench/roles_latency_ws.ts).
 *
 * They run apart so that neither waits for the other's work: with both on one thread, a
 * read that returned while the publishers were being flushed was timed late, and the
 * p99 was 1.7-1.9 ms where it is 0.8-1.0 ms apart. Their times come from the
 * generator's shared clock (`sharedClock()` in scripts/bench/role.ts), and each payload
 * carries its sequence number and its send time (scripts/bench/latency_stamp.ts); the
 * subscriber takes one clock reading per read, so the figure is the time from a
 * publisher's write call to the subscriber's read returning, including the server's
 * stdout write and relay.
 *
 * The pace comes from a {@linkcode Pacer}, a thread that ticks every `1000 / rate` ms (at
 * most 10,000 times a second): every tick sends the messages (and PINGs) due by then,
 * round-robin over the publishers, one write per publisher per tick, so at 10,000 msgs/s
 * each message is its own write as in the yardstick's latgen. How late this thread was for
 * each tick is reported beside the latencies (`late*`), so that a starved generator is
 * seen. Messages of the warm-up are sent and checked, not timed.
 *
 * @module
 */

import { mapConcurrent } from "../shared/harness.ts";
import {
  latencyCounts,
  LatencyRecord,
  percentiles,
  readAscii,
  SEQUENCE_DIGITS,
  STALL_MS,
  STAMP_BYTES,
  TIME_CHARS,
  writeAscii,
} from "./latency_stamp.ts";
import { MIN_PERIOD_MS, Pacer } from "./pacer.ts";
import { checkDeadline, Peer } from "./peer.ts";
import type { LatencyListenRole, LatencyPublishRole } from "./plan.ts";
import { type PreparedRole, quantile, type RoleContext, round } from "./role.ts";

const encoder = new TextEncoder();
const PING_LINE = encoder.encode("PING\n");

/** Subscribes on TCP; its `go` counts and times what arrives until it has every message. */
export async function prepareLatencyListener(
  context: RoleContext,
  role: LatencyListenRole,
): Promise<PreparedRole> {
  const { deadline } = context;
  const record = new LatencyRecord(role);
  const listener = await Peer.connect(role.port ?? context.port, 256 * 1024);
  await listener.write("HELLO latency\nPING\n");
  await listener.untilPong(deadline);
  const failures: string[] = [];

  return {
    async go() {
      let lastHeard = Date.now();
      const watchdog = setInterval(() => {
        if (Date.now() - lastHeard > STALL_MS || Date.now() > deadline) listener.close();
      }, 500);
      try {
        while (record.received < record.total) {
          const frames = await listener.read();
          const now = context.clock();
          if (frames === null) throw new Error(`the subscriber's connection closed`);
          lastHeard = Date.now();
          for (const frame of frames) {
            if (frame.type === "err") throw new Error(`the subscriber got ERR ${frame.reason}`);
            if (frame.type !== "msg") continue;
            const payload = frame.payload;
            record.add(
              readAscii(payload, 0, SEQUENCE_DIGITS),
              readAscii(payload, SEQUENCE_DIGITS + 1, STAMP_BYTES),
              now,
            );
          }
          if (record.received % 1000 < frames.length) {
            context.progress(
              `${record.received.toLocaleString("en-US")} of ${record.total} msgs received`,
            );
          }
        }
      } catch (error) {
        failures.push(record.failure(error));
      } finally {
        clearInterval(watchdog);
      }
      return { kind: "latency-listen", metrics: record.finish(failures), failures };
    },
    close() {
      listener.close();
    },
  };
}

interface Publisher {
  peer: Peer;
  /** Messages due on the next tick. */
  due: number;
  pingsDue: number;
  /** Send times of PINGs not yet answered, oldest first; `timed` false in the warm-up. */
  pings: { sentAt: number; timed: boolean }[];
  /** The write in flight: the next one waits for it, so writes never overlap. */
  writing: Promise<void>;
  /** Resolves when `pings` is empty after the last PING. */
  drained: PromiseWithResolvers<void> | null;
}

/** Connects the publishers (UNSUB); its `go` sends the paced messages and PINGs. */
export async function prepareLatencyPublishers(
  context: RoleContext,
  role: LatencyPublishRole,
): Promise<PreparedRole> {
  const { port, deadline } = context;
  const { total } = latencyCounts(role);
  const publishers: Publisher[] = await mapConcurrent(
    Array.from({ length: role.publishers }),
    32,
    async (_, i) => {
      const peer = await Peer.connect(port, 256);
      await peer.write(`HELLO p${i}\nUNSUB\nPING\n`);
      await peer.untilPong(deadline);
      return { peer, due: 0, pingsDue: 0, pings: [], writing: Promise.resolve(), drained: null };
    },
  );
  const header = encoder.encode(`MSG ${role.size}\n`);
  const frameBytes = header.length + role.size + 1;
  const template = new Uint8Array(frameBytes);
  template.set(header);
  template.fill(0x78, header.length, header.length + role.size); // "x"
  template[frameBytes - 1] = 0x0a;
  const rtts: number[] = [];
  let sequence = 0;
  let closing = false;
  const pacer = await Pacer.start();
  const failures: string[] = [];

  /** Reads a publisher's PONGs and times its PINGs, until its connection closes. */
  async function hearPongs(publisher: Publisher): Promise<void> {
    try {
      for (;;) {
        const frames = await publisher.peer.read();
        const now = context.clock();
        if (frames === null) return;
        for (const frame of frames) {
          if (frame.type === "err") throw new Error(`a publisher got ERR ${frame.reason}`);
          if (frame.type !== "pong") continue;
          const ping = publisher.pings.shift();
          if (ping?.timed) rtts.push(now - ping.sentAt);
          if (publisher.pings.length === 0) publisher.drained?.resolve();
        }
      }
    } catch (error) {
      if (!closing) failures.push(error instanceof Error ? error.message : String(error));
    }
  }

  /** Writes a publisher's due messages and PINGs in one write, stamped just before it. */
  function flush(publisher: Publisher, timed: boolean): void {
    const count = publisher.due;
    const pings = publisher.pingsDue;
    publisher.due = 0;
    publisher.pingsDue = 0;
    const bytes = new Uint8Array(count * frameBytes + pings * PING_LINE.length);
    for (let i = 0; i < count; i++) {
      bytes.set(template, i * frameBytes);
      writeAscii(bytes, i * frameBytes + header.length, SEQUENCE_DIGITS, String(sequence++));
    }
    for (let i = 0; i < pings; i++) bytes.set(PING_LINE, count * frameBytes + i * PING_LINE.length);
    publisher.writing = publisher.writing.then(async () => {
      const now = context.clock();
      const stamp = now.toFixed(4);
      for (let i = 0; i < count; i++) {
        writeAscii(bytes, i * frameBytes + header.length + SEQUENCE_DIGITS + 1, TIME_CHARS, stamp);
      }
      for (let i = 0; i < pings; i++) publisher.pings.push({ sentAt: now, timed });
      await publisher.peer.write(bytes);
    });
  }

  return {
    async go() {
      const hearing = publishers.map(hearPongs);
      const periodMs = 1000 / role.rate;
      const runMs = role.warmupMs + role.durationMs;
      pacer.begin(periodMs, Math.ceil(runMs / Math.max(periodMs, MIN_PERIOD_MS)) + 2);
      const startedAt = pacer.startAt;
      let scheduled = 0;
      let pingsScheduled = 0;
      let next = 0;
      const touched: Publisher[] = [];
      try {
        while (scheduled < total) {
          checkDeadline(deadline, "the paced run");
          await pacer.next();
          const elapsed = performance.now() - startedAt;
          if (elapsed < 0) continue;
          const dueNow = Math.min(total, Math.floor((elapsed * role.rate) / 1000)) - scheduled;
          const pingsNow = Math.floor((elapsed * role.pingRate) / 1000) - pingsScheduled;
          for (let i = 0; i < dueNow + pingsNow; i++) {
            const publisher = publishers[next++ % publishers.length];
            if (publisher.due === 0 && publisher.pingsDue === 0) touched.push(publisher);
            if (i < dueNow) publisher.due++;
            else publisher.pingsDue++;
          }
          scheduled += dueNow;
          pingsScheduled += pingsNow;
          const timed = elapsed >= role.warmupMs;
          // Only the publishers with something due (one, mostly, at 10,000 ticks a second).
          for (const publisher of touched) flush(publisher, timed);
          touched.length = 0;
          if (Math.floor(scheduled / 1000) !== Math.floor((scheduled - dueNow) / 1000)) {
            context.progress(`${scheduled.toLocaleString("en-US")} of ${total} paced msgs`);
          }
        }
      } finally {
        pacer.stop();
      }
      const sendMs = performance.now() - startedAt;
      // The barrier: a PING after each publisher's last message, answered once the
      // server has taken everything before it.
      await Promise.all(publishers.map(async (publisher) => {
        publisher.pingsDue++;
        flush(publisher, false);
        await publisher.writing; // The last PING is in `pings` from here on.
        publisher.drained = Promise.withResolvers();
        if (publisher.pings.length === 0) publisher.drained.resolve();
        await publisher.drained.promise;
      }));
      closing = true;
      for (const publisher of publishers) publisher.peer.close();
      await Promise.all(hearing);
      rtts.sort((a, b) => a - b);
      const late = pacer.lateness(role.warmupMs);
      return {
        kind: "latency-publish",
        metrics: {
          publishers: publishers.length,
          sent: scheduled,
          offeredPerSecond: Math.round(scheduled / (sendMs / 1000)),
          pacerPeriodMs: round(pacer.periodMs, 4),
          pacerTicks: late.length,
          ...percentiles(late, "late"),
          pings: rtts.length,
          pingP50Ms: round(quantile(rtts, 0.5)),
          pingP99Ms: round(quantile(rtts, 0.99)),
          pingP999Ms: round(quantile(rtts, 0.999)),
        },
        failures,
      };
    },
    close() {
      closing = true;
      pacer.stop();
      for (const publisher of publishers) publisher.peer.close();
    },
  };
}
