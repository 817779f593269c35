/**
 * What one read of one connection hands to the main task, and the pool that lets the
 * main task hand it back.
 *
 * A read of 64 KiB may hold a thousand messages: a batch lists them as frames plus
 * two numbers a message (see {@linkcode RangedFrames}). Growing those arrays afresh for
 * every read cost a copy and some garbage per message, and the collector's time with
 * it, so a consumed batch goes back to a {@linkcode ReadBatchPool} and the next read
 * fills its arrays again from the start; only the counts say how much is in use.
 *
 * @module
 */

import type { ClientFrame } from "./frame.ts";
import { PAYLOAD_RANGE, type RangedFrames } from "./frame_decoder.ts";
import type { Session } from "./session.ts";

/**
 * Frames decoded from one read of one connection, in the order they arrived: the
 * first `frameCount` of `frames`. `quit` also stands for the end of the peer's input.
 * A `PAYLOAD_RANGE` is a message whose payload is `chunk[ranges[2i], ranges[2i+1])`,
 * for the i-th range in order.
 */
export interface ReadBatch extends RangedFrames {
  /** The connection they came from. */
  session: Session;
  /** The bytes the ranges point into. */
  chunk?: Uint8Array;
  /**
   * The read buffer the frames point into, if it came from the pool: the consumer gives
   * it back once it is done with the frames.
   */
  buffer?: Uint8Array;
  /**
   * When the read happened (`performance.now()`), for the histogram of how long
   * messages wait before stdout has them; 0 when unknown.
   */
  readAt: number;
}

/**
 * Batches kept for reuse. A batch is in use from its read until the main task has
 * taken it: at most the channel's capacity plus one per connection waiting for room.
 */
export const MAX_SPARE_READ_BATCHES = 256;

/**
 * Read batches, used again once consumed: their arrays keep their size, so a busy
 * connection's reads grow no arrays and leave no garbage per message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReadBatchPool } from "./read_batch.ts";
 * import { Session } from "./session.ts";
 *
 * const pool = new ReadBatchPool();
 * const session = new Session({ write: (p) => Promise.resolve(p.length), close() {} }, 1, "ann");
 * const batch = pool.take(session);
 * batch.frames[batch.frameCount++] = { type: "ping" };
 * pool.give(batch);
 * const again = pool.take(session);
 * assert.equal(again, batch);
 * assert.equal(again.frameCount, 0);
 * ```
 */
export class ReadBatchPool {
  #spare: ReadBatch[] = [];

  /** Batches waiting to be used again. */
  get spare(): number {
    return this.#spare.length;
  }

  /** An empty batch for `session`'s next read. */
  take(session: Session): ReadBatch {
    const batch = this.#spare.pop();
    if (batch === undefined) return emptyBatch(session);
    batch.session = session;
    return batch;
  }

  /** A batch that says `session`'s input has ended: one `quit`. */
  endOfInput(session: Session): ReadBatch {
    const batch = this.take(session);
    batch.frames[0] = QUIT;
    batch.frameCount = 1;
    return batch;
  }

  /**
   * Takes back a batch whose frames are consumed. It lets go of the batch's chunk and
   * buffer, and of every frame but the shared `PAYLOAD_RANGE`, so that a spare batch
   * keeps no payload alive.
   */
  give(batch: ReadBatch): void {
    const frames = batch.frames;
    for (let i = 0; i < batch.frameCount; i++) {
      if (frames[i] !== PAYLOAD_RANGE) frames[i] = PAYLOAD_RANGE;
    }
    batch.frameCount = 0;
    batch.rangeCount = 0;
    batch.chunk = undefined;
    batch.buffer = undefined;
    batch.readAt = 0;
    if (this.#spare.length < MAX_SPARE_READ_BATCHES) this.#spare.push(batch);
  }

  /** Lets go of the spare batches (for a server that has gone quiet). */
  clear(): void {
    this.#spare = [];
  }
}

const QUIT: ClientFrame = Object.freeze({ type: "quit" });

function emptyBatch(session: Session): ReadBatch {
  return { session, frames: [], frameCount: 0, ranges: [], rangeCount: 0, readAt: 0 };
}
