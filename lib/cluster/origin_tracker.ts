/**
 * The receiving side's bookkeeping of cluster mode: per origin stream, the next sequence
 * expected, duplicates dropped, frames after a gap held until the gap is filled by a replay
 * or declared lost.
 *
 * Pure logic, no NATS and no timers: the link feeds it decoded frames and timeouts, and it
 * answers through hooks (deliver a message, send a replay request, count a loss). This is what
 * makes the ordering promise of docs/CLUSTER.md hold: a message is delivered only once every
 * message before it in its stream was delivered or counted as lost.
 *
 * @module
 */

import { MAX_CLUSTER_ORIGINS } from "../defaults.ts";
import { type ClusterFrame, lastSeq } from "./cluster_frame.ts";

/** What an {@linkcode OriginTracker} does with what it learns. */
export interface OriginTrackerHooks {
  /** One message of stream `origin`, in stream order, exactly once. */
  deliver(origin: string, from: string, payload: Uint8Array, viaReplay: boolean): void;
  /** Asks origin `origin` (boot `boot`) for its stream from sequence `from` on. */
  requestReplay(origin: string, boot: string, from: number): void;
  /** `count` messages of `origin` are known to be missing for good. */
  lost(origin: string, count: number): void;
}

/** Settings of an {@linkcode OriginTracker}. */
export interface OriginTrackerOptions {
  /**
   * This receiver's age in milliseconds: a stream whose origin is younger (it started while we
   * were there) is taken from sequence 1, an older one from the first message seen.
   */
  age(): number;
  /** Bytes of frames held after a gap per stream; past it the gap is declared lost. */
  maxHeldBytes: number;
  /** Replay requests sent for one gap before it is declared lost. */
  maxReplayAttempts: number;
  /**
   * Most origin streams tracked at once (default {@linkcode MAX_CLUSTER_ORIGINS}); past it
   * the least recently heard one is forgotten (its open gap counted as lost).
   */
  maxOrigins?: number;
}

interface Held {
  frame: ClusterFrame;
  bytes: number;
  viaReplay: boolean;
}

interface Stream {
  name: string;
  boot: string;
  /** The next sequence to deliver. */
  expected: number;
  /** The highest sequence known to exist. */
  knownHead: number;
  held: Held[];
  heldBytes: number;
  replayPending: boolean;
  attempts: number;
  /** A newer run of the same origin name was seen: forget this one once nothing is open. */
  superseded: boolean;
}

/** Counters of an {@linkcode OriginTracker}. */
export interface OriginTrackerStats {
  /** Messages delivered. */
  received: number;
  /** Of those, messages that came through a replay. */
  replayed: number;
  /** Messages known to be missing for good. */
  lost: number;
  /** Messages dropped because they had been delivered already. */
  duplicates: number;
}

/**
 * Per-origin order, duplicate drop and gap recovery.
 *
 * @example
 * ```ts
 * import { BatchEncoder, decodeClusterFrame } from "./cluster_frame.ts";
 * import { OriginTracker } from "./origin_tracker.ts";
 * const origin = { name: "a", boot: "00000000000000aa", age: () => 0 };
 * const got: string[] = [];
 * const tracker = new OriginTracker({ age: () => 0, maxHeldBytes: 1 << 20, maxReplayAttempts: 3 }, {
 *   deliver: (_origin, from) => got.push(from),
 *   requestReplay: () => {},
 *   lost: () => {},
 * });
 * const batch = new BatchEncoder(origin);
 * batch.add("alice", new Uint8Array(0));
 * const frame = batch.seal(1);
 * tracker.onMessages(decodeClusterFrame(frame), frame.length, false);
 * tracker.onMessages(decodeClusterFrame(frame), frame.length, false); // a duplicate
 * if (got.length !== 1 || tracker.stats.duplicates !== 1) throw new Error("duplicate delivered");
 * ```
 */
export class OriginTracker {
  readonly #options: OriginTrackerOptions;
  readonly #hooks: OriginTrackerHooks;
  /** The streams by boot id, least recently heard first. */
  readonly #streams = new Map<string, Stream>();
  /** The boot id of the latest run heard of each origin name. */
  readonly #latest = new Map<string, string>();
  /** Counters since creation. */
  readonly stats: OriginTrackerStats = { received: 0, replayed: 0, lost: 0, duplicates: 0 };

  constructor(options: OriginTrackerOptions, hooks: OriginTrackerHooks) {
    this.#options = options;
    this.#hooks = hooks;
  }

  /** Origins known, each with its boot id and next expected sequence (for stats and tests). */
  origins(): { name: string; boot: string; expected: number; held: number }[] {
    return Array.from(this.#streams.values(), (s) => ({
      name: s.name,
      boot: s.boot,
      expected: s.expected,
      held: s.held.length,
    }));
  }

  /** Whether a replay request for the stream of boot `boot` is waiting for its answer. */
  replayPending(boot: string): boolean {
    return this.#streams.get(boot)?.replayPending ?? false;
  }

  /** A messages frame arrived (live, or as part of a replay). `bytes` is its size. */
  onMessages(frame: ClusterFrame, bytes: number, viaReplay: boolean): void {
    const stream = this.#streamFor(frame, frame.seq, viaReplay);
    if (!stream) return;
    const last = lastSeq(frame);
    if (last > stream.knownHead) stream.knownHead = last;
    if (last < stream.expected) {
      this.stats.duplicates += frame.names.length;
      return;
    }
    if (frame.seq <= stream.expected) {
      this.#deliver(stream, frame, viaReplay);
      this.#drain(stream);
    } else {
      this.#hold(stream, { frame, bytes, viaReplay });
    }
    this.#requestIfGap(stream);
  }

  /** A head frame arrived: the origin's last sequence is `frame.seq`. */
  onHead(frame: ClusterFrame): void {
    const stream = this.#streamFor(frame, frame.seq + 1, false);
    if (!stream) return;
    if (frame.seq > stream.knownHead) stream.knownHead = frame.seq;
    this.#requestIfGap(stream);
  }

  /** A replay end arrived: the origin had its stream from `frame.seq` to `frame.head`. */
  onReplayEnd(frame: ClusterFrame): void {
    const stream = this.#streams.get(frame.boot);
    if (!stream || !stream.replayPending) return;
    stream.replayPending = false;
    if (frame.head > stream.knownHead) stream.knownHead = frame.head;
    // What the origin no longer had is lost; what it had came before this end frame.
    if (frame.seq > stream.expected) this.#skipTo(stream, frame.seq);
    if (this.#hasGap(stream)) {
      stream.attempts++;
      if (stream.attempts >= this.#options.maxReplayAttempts) this.#giveUp(stream);
    }
    this.#requestIfGap(stream);
    this.#forgetIfDone(stream);
  }

  /**
   * The replay request for the stream of boot `boot` got no answer in time. With `countAttempt`
   * false (this side was disconnected, so the request may never have left), it is sent again
   * on reconnect without counting.
   */
  replayTimedOut(boot: string, countAttempt: boolean): void {
    const stream = this.#streams.get(boot);
    if (!stream || !stream.replayPending) return;
    stream.replayPending = false;
    if (!countAttempt) return;
    stream.attempts++;
    if (stream.attempts >= this.#options.maxReplayAttempts) this.#giveUp(stream);
    this.#requestIfGap(stream);
    this.#forgetIfDone(stream);
  }

  /** This side reconnected: ask every known origin for what came after what we have. */
  reconnected(): void {
    for (const stream of [...this.#streams.values()]) {
      if (stream.replayPending) continue;
      // An earlier run of a restarted origin: nobody will answer for it.
      if (stream.superseded && !this.#hasGap(stream)) {
        this.#forget(stream);
        continue;
      }
      stream.replayPending = true;
      this.#hooks.requestReplay(stream.name, stream.boot, stream.expected);
    }
  }

  #streamFor(frame: ClusterFrame, firstSeen: number, viaReplay: boolean): Stream | undefined {
    let stream = this.#streams.get(frame.boot);
    if (stream) {
      // Most recently heard last: the first is the one to forget when there are too many.
      this.#streams.delete(frame.boot);
      this.#streams.set(frame.boot, stream);
      if (stream.superseded && this.#latest.get(stream.name) === stream.boot) {
        stream.superseded = false;
      }
      return stream;
    }
    // A replay only answers a request for a stream we know.
    if (viaReplay) return undefined;
    const earlier = this.#streams.get(this.#latest.get(frame.name) ?? "");
    if (earlier) {
      // The origin restarted (or two servers share a name): streams are told apart by boot
      // id, so nothing mixes; the earlier one is forgotten once nothing is open in it.
      earlier.superseded = true;
      this.#forgetIfDone(earlier);
    }
    if (this.#streams.size >= (this.#options.maxOrigins ?? MAX_CLUSTER_ORIGINS)) {
      this.#forget(this.#streams.values().next().value!);
    }
    // A stream that started after we joined is wanted whole: we were there.
    const expected = frame.age <= this.#options.age() ? 1 : firstSeen;
    stream = {
      name: frame.name,
      boot: frame.boot,
      expected,
      knownHead: expected - 1,
      held: [],
      heldBytes: 0,
      replayPending: false,
      attempts: 0,
      superseded: false,
    };
    this.#streams.set(frame.boot, stream);
    this.#latest.set(frame.name, frame.boot);
    return stream;
  }

  #forgetIfDone(stream: Stream): void {
    if (stream.superseded && !stream.replayPending && !this.#hasGap(stream)) this.#forget(stream);
  }

  /** Stops tracking a stream; what it still missed is counted as lost. */
  #forget(stream: Stream): void {
    const highest = Math.max(
      stream.knownHead,
      ...stream.held.map((h) => lastSeq(h.frame)),
    );
    stream.held = [];
    stream.heldBytes = 0;
    if (highest >= stream.expected) this.#lose(stream, highest - stream.expected + 1);
    this.#streams.delete(stream.boot);
    if (this.#latest.get(stream.name) === stream.boot) this.#latest.delete(stream.name);
  }

  #deliver(stream: Stream, frame: ClusterFrame, viaReplay: boolean): void {
    const skip = stream.expected - frame.seq;
    if (skip > 0) this.stats.duplicates += skip;
    const { names, payloads } = frame;
    for (let i = skip; i < names.length; i++) {
      this.#hooks.deliver(stream.name, names[i], payloads[i], viaReplay);
    }
    const delivered = names.length - skip;
    this.stats.received += delivered;
    if (viaReplay) this.stats.replayed += delivered;
    stream.expected = lastSeq(frame) + 1;
    stream.attempts = 0;
  }

  /** Delivers the held frames that now follow on. */
  #drain(stream: Stream): void {
    const held = stream.held;
    while (held.length > 0 && held[0].frame.seq <= stream.expected) {
      const next = held.shift()!;
      stream.heldBytes -= next.bytes;
      if (lastSeq(next.frame) < stream.expected) {
        this.stats.duplicates += next.frame.names.length;
      } else {
        this.#deliver(stream, next.frame, next.viaReplay);
      }
    }
  }

  #hold(stream: Stream, held: Held): void {
    const list = stream.held;
    let at = list.length;
    while (at > 0 && list[at - 1].frame.seq > held.frame.seq) at--;
    list.splice(at, 0, held);
    stream.heldBytes += held.bytes;
    if (stream.heldBytes > this.#options.maxHeldBytes) this.#giveUp(stream);
  }

  #hasGap(stream: Stream): boolean {
    return stream.held.length > 0 || stream.knownHead >= stream.expected;
  }

  #requestIfGap(stream: Stream): void {
    if (stream.replayPending || !this.#hasGap(stream)) return;
    stream.replayPending = true;
    this.#hooks.requestReplay(stream.name, stream.boot, stream.expected);
  }

  /** Declares the current gap lost: on to the first held frame, or past the known head. */
  #giveUp(stream: Stream): void {
    const target = stream.held.length > 0 ? stream.held[0].frame.seq : stream.knownHead + 1;
    this.#skipTo(stream, target);
    stream.attempts = 0;
  }

  /** Counts as lost what is missing below `target` and delivers what is held up to there. */
  #skipTo(stream: Stream, target: number): void {
    while (stream.expected < target) {
      const first = stream.held[0];
      if (first && first.frame.seq <= stream.expected) {
        this.#drain(stream);
        continue;
      }
      const until = first && first.frame.seq < target ? first.frame.seq : target;
      this.#lose(stream, until - stream.expected);
      stream.expected = until;
    }
    this.#drain(stream);
  }

  #lose(stream: Stream, count: number): void {
    this.stats.lost += count;
    this.#hooks.lost(stream.name, count);
  }
}
