/**
 * The timestamped payloads of the latency scenarios, and the record of what the timing
 * subscriber saw, whatever transport it reads them on (TCP in scripts/bench/roles_latency.ts,
 * WebSocket in scripts/bench/roles_latency_ws.ts).
 *
 * A payload starts with its sequence number (10 digits), a space and its send time (16
 * characters), in ASCII: the server prints payloads one record a line, and relays a UTF-8
 * payload to a WebSocket as JSON text, so a stamp in ASCII reads the same on every side.
 * The send time is on the generator's shared clock (`sharedClock()` in
 * scripts/bench/role.ts), so a subscriber in another Worker can subtract it from its own
 * reading.
 *
 * @module
 */

import type { LatencyPace } from "./plan.ts";
import { quantile, round } from "./role.ts";

/** Characters of the sequence number at the start of a payload. */
export const SEQUENCE_DIGITS = 10;
/** Characters of the send time after the sequence number and a space. */
export const TIME_CHARS = 16;
/** Bytes of the stamp at the start of every payload. */
export const STAMP_BYTES = SEQUENCE_DIGITS + 1 + TIME_CHARS;
/** The subscriber gives up when nothing has arrived for this long. */
export const STALL_MS = 10_000;

/** Writes `text`, padded on the left with spaces to `width`, at `offset` (ASCII only). */
export function writeAscii(bytes: Uint8Array, offset: number, width: number, text: string): void {
  const start = offset + width - text.length;
  bytes.fill(0x20, offset, start);
  for (let i = 0; i < text.length; i++) bytes[start + i] = text.charCodeAt(i);
}

/** Reads the ASCII number in `bytes[start, end)` (spaces allowed around it). */
export function readAscii(bytes: Uint8Array, start: number, end: number): number {
  return Number(String.fromCharCode(...bytes.subarray(start, end)));
}

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

/** `p50Ms`..`maxMs` and `p50Us`..`maxUs` of sorted millisecond figures (`prefix` before each). */
export function percentiles(sorted: ArrayLike<number>, prefix = ""): Record<string, number> {
  const figures: Record<string, number> = {};
  const points: [string, number][] = [["p50", 0.5], ["p99", 0.99], ["p999", 0.999], ["max", 1]];
  for (const [name, q] of points) {
    const ms = quantile(sorted, q);
    const key = prefix ? `${prefix}${name[0].toUpperCase()}${name.slice(1)}` : name;
    figures[`${key}Ms`] = round(ms);
    figures[`${key}Us`] = Math.round(ms * 1000);
  }
  return figures;
}

/** What the timing subscriber received: counts and the latency of every timed message. */
export class LatencyRecord {
  readonly total: number;
  readonly warmup: number;
  received = 0;
  readonly #latencies: Float64Array;
  #timed = 0;

  constructor(pace: LatencyPace) {
    const { total, warmup } = latencyCounts(pace);
    this.total = total;
    this.warmup = warmup;
    this.#latencies = new Float64Array(total - warmup);
  }

  /** Counts one message, and times it (`now` minus its send time) unless it is warm-up. */
  add(sequence: number, sentAt: number, now: number): void {
    this.received++;
    if (sequence >= this.warmup && this.#timed < this.#latencies.length) {
      this.#latencies[this.#timed++] = now - sentAt;
    }
  }

  /** Says why the subscriber stopped early, with how far it got. */
  failure(error: unknown): string {
    return `subscriber at ${this.received} of ${this.total}: ${
      error instanceof Error ? error.message : error
    }`;
  }

  /** Counts and percentiles (the role's metrics), and a failure when a message is missing. */
  finish(failures: string[]): Record<string, number> {
    const timed = this.#latencies.subarray(0, this.#timed).sort();
    if (this.received !== this.total) {
      failures.push(`the subscriber got ${this.received} of ${this.total} messages`);
    }
    return {
      received: this.received,
      timed: this.#timed,
      minMs: round(timed.length > 0 ? timed[0] : NaN),
      ...percentiles(timed),
    };
  }
}
