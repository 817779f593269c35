/**
 * The bounded memory of one origin's recent cluster frames, by bytes and by message count.
 *
 * It is both the outbound buffer (frames sealed while NATS is away wait here, in order, until
 * they are published) and the store that answers replay requests. Bounded by design: when a
 * new frame does not fit, the oldest frames are evicted (drop-oldest), and the caller learns
 * which ones, so that it can count those never published as dropped. The newest frame is
 * always kept, so the ring may pass its byte bound by one frame (a batch: 64 KiB, or one
 * message).
 *
 * @module
 */

/** One sealed frame in the ring: messages `firstSeq` to `firstSeq + count - 1`. */
export interface RingEntry {
  firstSeq: number;
  count: number;
  bytes: Uint8Array;
}

/** Bounds of a {@linkcode ReplayRing}. */
export interface ReplayRingLimits {
  /** Most bytes of frames kept. */
  maxBytes: number;
  /** Most messages kept. */
  maxMessages: number;
}

/**
 * A FIFO of sealed frames with consecutive sequence numbers, bounded by bytes and messages.
 *
 * @example
 * ```ts
 * import { ReplayRing } from "./replay_ring.ts";
 * const ring = new ReplayRing({ maxBytes: 10, maxMessages: 100 });
 * ring.push({ firstSeq: 1, count: 2, bytes: new Uint8Array(6) });
 * const evicted = ring.push({ firstSeq: 3, count: 1, bytes: new Uint8Array(6) });
 * if (evicted.length !== 1 || ring.oldestSeq !== 3) throw new Error("not evicted");
 * ```
 */
export class ReplayRing {
  readonly #limits: ReplayRingLimits;
  #entries: RingEntry[] = [];
  #head = 0;
  #bytes = 0;
  #messages = 0;
  #nextSeq = 1;

  constructor(limits: ReplayRingLimits) {
    if (!(limits.maxBytes > 0) || !(limits.maxMessages > 0)) {
      throw new RangeError("The ring needs room for at least one byte and one message");
    }
    this.#limits = limits;
  }

  /** Bytes of frames kept. */
  get byteLength(): number {
    return this.#bytes;
  }

  /** Messages kept. */
  get messages(): number {
    return this.#messages;
  }

  /** The oldest sequence still kept; {@linkcode nextSeq} when the ring is empty. */
  get oldestSeq(): number {
    return this.#head < this.#entries.length ? this.#entries[this.#head].firstSeq : this.#nextSeq;
  }

  /** The sequence the next frame must start with. */
  get nextSeq(): number {
    return this.#nextSeq;
  }

  /**
   * Adds a frame at the end and returns the frames evicted (oldest first) to make room. A frame
   * larger than the whole ring evicts everything, itself included.
   */
  push(entry: RingEntry): RingEntry[] {
    if (entry.firstSeq !== this.#nextSeq) {
      throw new RangeError(`Frame starts at ${entry.firstSeq}, expected ${this.#nextSeq}`);
    }
    this.#nextSeq = entry.firstSeq + entry.count;
    this.#entries.push(entry);
    this.#bytes += entry.bytes.length;
    this.#messages += entry.count;
    const evicted: RingEntry[] = [];
    // The newest frame stays, however large: evicting it would drop messages that were
    // never given a chance, even while NATS is there to take them at once.
    while (
      this.#head < this.#entries.length - 1 &&
      (this.#bytes > this.#limits.maxBytes || this.#messages > this.#limits.maxMessages)
    ) {
      const old = this.#entries[this.#head++];
      this.#bytes -= old.bytes.length;
      this.#messages -= old.count;
      evicted.push(old);
    }
    // Compact once the evicted prefix is the larger part of the array.
    if (this.#head > 64 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
    return evicted;
  }

  /**
   * The frames holding sequence `from` or later, oldest first (the first may start before
   * `from`: the receiver drops what it already has).
   */
  *from(from: number): Generator<RingEntry> {
    const entries = this.#entries;
    // Binary search for the first entry whose last sequence is >= from.
    let low = this.#head;
    let high = entries.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const entry = entries[middle];
      if (entry.firstSeq + entry.count - 1 < from) low = middle + 1;
      else high = middle;
    }
    for (let i = low; i < entries.length; i++) yield entries[i];
  }
}
