/**
 * The two halves of the latency scenario, each in a Worker of its own: many publishers
 * at a fixed, paced rate with PING/PONG round trips meanwhile, and one subscriber that
 * timestamps what it reads.
 *
 * They run apart so that neither waits for the other's work: with both on one thread, a
 * read that returned while the publishers were being flushed was timed late, and the
 * p99 was 1.7-1.9 ms where it is 0.8-1.0 ms apart. Their times come from the
 * generator's shared clock (`sharedClock()` in scripts/bench/role.ts). Each payload
 * carries its sequence number and its send time, in ASCII (the server prints payloads,
 * one record a line, so they hold no LF); the subscriber takes one clock reading per
 * read, so the figure is the time from a publisher's write call to the subscriber's
 * read returning, including the server's stdout write and relay. The pacing is a timer
 * by nature: every tick sends the messages (and PINGs) that are due by then,
 * round-robin over the publishers, one write per publisher per tick. Messages of the
 * warm-up are sent and checked, not timed.
 *
 * @module
 */

import { mapConcurrent } from "../shared/harness.ts";
import { checkDeadline, Peer } from "./peer.ts";
import type { LatencyListenRole, LatencyPace, LatencyPublishRole } from "./plan.ts";
import { type PreparedRole, quantile, type RoleContext, round } from "./role.ts";

const encoder = new TextEncoder();
const PING_LINE = encoder.encode("PING\n");
/** A payload starts with its sequence number (10 digits), a space and its send time (16). */
const SEQUENCE_DIGITS = 10;
const TIME_CHARS = 16;
const STAMP_BYTES = SEQUENCE_DIGITS + 1 + TIME_CHARS;

/** Writes `text`, padded on the left with spaces to `width`, at `offset` (ASCII only). */
function writeAscii(bytes: Uint8Array, offset: number, width: number, text: string): void {
  const start = offset + width - text.length;
  bytes.fill(0x20, offset, start);
  for (let i = 0; i < text.length; i++) bytes[start + i] = text.charCodeAt(i);
}

/** Reads the ASCII number in `bytes[start, end)` (spaces allowed around it). */
function readAscii(bytes: Uint8Array, start: number, end: number): number {
  return Number(String.fromCharCode(...bytes.subarray(start, end)));
}
/** The subscriber gives up when nothing has arrived for this long. */
const STALL_MS = 10_000;

/**
 * How many messages a pace sends in all, and how many of them are the warm-up. Throws
 * when its payloads are too small for their stamps.
 */
export function latencyCounts(pace: LatencyPace): { total: number; warmup: number } {
  if (pace.size < STAMP_BYTES) throw new Error(`A latency payload needs ${STAMP_BYTES} bytes`);
  return {
    total: Math.round((pace.rate * (pace.warmupMs + pace.durationMs)) / 1000),
    warmup: Math.round((pace.rate * pace.warmupMs) / 1000),
  };
}

/** Subscribes; its `go` counts and times what arrives until it has every paced message. */
export async function prepareLatencyListener(
  context: RoleContext,
  role: LatencyListenRole,
): Promise<PreparedRole> {
  const { port, deadline } = context;
  const { total, warmup } = latencyCounts(role);
  const listener = await Peer.connect(port, 256 * 1024);
  await listener.write("HELLO latency\nPING\n");
  await listener.untilPong(deadline);
  const latencies = new Float64Array(total - warmup);
  let timedLatencies = 0;
  let received = 0;
  const failures: string[] = [];

  return {
    async go() {
      let lastHeard = Date.now();
      const watchdog = setInterval(() => {
        if (Date.now() - lastHeard > STALL_MS || Date.now() > deadline) listener.close();
      }, 500);
      try {
        while (received < total) {
          const frames = await listener.read();
          const now = context.clock();
          if (frames === null) throw new Error(`the subscriber's connection closed`);
          lastHeard = Date.now();
          for (const frame of frames) {
            if (frame.type === "err") throw new Error(`the subscriber got ERR ${frame.reason}`);
            if (frame.type !== "msg") continue;
            received++;
            const payload = frame.payload;
            if (
              readAscii(payload, 0, SEQUENCE_DIGITS) >= warmup && timedLatencies < latencies.length
            ) {
              latencies[timedLatencies++] = now -
                readAscii(payload, SEQUENCE_DIGITS + 1, STAMP_BYTES);
            }
          }
          if (received % 1000 < frames.length) {
            context.progress(`${received.toLocaleString("en-US")} of ${total} msgs received`);
          }
        }
      } catch (error) {
        failures.push(
          `subscriber at ${received} of ${total}: ${
            error instanceof Error ? error.message : error
          }`,
        );
      } finally {
        clearInterval(watchdog);
      }
      const timed = latencies.subarray(0, timedLatencies).sort();
      if (received !== total) failures.push(`the subscriber got ${received} of ${total} messages`);
      return {
        kind: "latency-listen",
        metrics: {
          received,
          timed: timedLatencies,
          minMs: round(timed.length > 0 ? timed[0] : NaN),
          p50Ms: round(quantile(timed, 0.5)),
          p99Ms: round(quantile(timed, 0.99)),
          p999Ms: round(quantile(timed, 0.999)),
          maxMs: round(timed.length > 0 ? timed[timed.length - 1] : NaN),
        },
        failures,
      };
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
      const startedAt = performance.now();
      let scheduled = 0;
      let pingsScheduled = 0;
      let next = 0;
      while (scheduled < total) {
        checkDeadline(deadline, "the paced run");
        const elapsed = performance.now() - startedAt;
        const dueNow = Math.min(total, Math.floor((elapsed * role.rate) / 1000)) - scheduled;
        const pingsNow = Math.floor((elapsed * role.pingRate) / 1000) - pingsScheduled;
        for (let i = 0; i < dueNow; i++) publishers[next++ % publishers.length].due++;
        for (let i = 0; i < pingsNow; i++) publishers[next++ % publishers.length].pingsDue++;
        scheduled += dueNow;
        pingsScheduled += pingsNow;
        const timed = elapsed >= role.warmupMs;
        for (const publisher of publishers) {
          if (publisher.due > 0 || publisher.pingsDue > 0) flush(publisher, timed);
        }
        if (Math.floor(scheduled / 1000) !== Math.floor((scheduled - dueNow) / 1000)) {
          context.progress(`${scheduled.toLocaleString("en-US")} of ${total} paced msgs`);
        }
        // Pacing: the next tick (a timer by nature).
        await new Promise((resolve) => setTimeout(resolve, 1));
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
      return {
        kind: "latency-publish",
        metrics: {
          publishers: publishers.length,
          sent: scheduled,
          offeredPerSecond: Math.round(scheduled / (sendMs / 1000)),
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
      for (const publisher of publishers) publisher.peer.close();
    },
  };
}
