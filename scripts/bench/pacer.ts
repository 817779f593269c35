/**
 * The clock that paces the latency scenarios' publishers: ticks at a fixed period, due at
 * `startAt + k * periodMs`, from a Worker of its own (scripts/bench/pacer_worker.ts), and
 * how late the publishing thread was to serve each one.
 *
 * Owned apart from the publishers so that the lateness is measured in one place and the
 * same way for every latency row: for each tick, the time from when it was due to when the
 * publishing thread woke for it (a thread that was busy or starved for 5 ms serves the
 * ticks of those 5 ms late, each counted). A generator whose thread is starved (the two
 * cores busy with the server) shows here, beside the latencies it measured, as latgen's
 * `send_late` does in the yardstick.
 *
 * After the shared buffer is handed over, the two threads speak through it only: the
 * publishing thread blocks for the clock exchange, and a message it posted before blocking
 * was seen arriving only after (hundreds of milliseconds late, on a busy machine).
 *
 * @module
 */

/** Int32 slot: the number of the latest tick. */
export const TICK_SLOT = 0;
/** Int32 slot: set to stop the pacer early. */
export const STOP_SLOT = 1;
/** Int32 slot: the turn of the clock exchange (see {@linkcode CLOCK_ROUNDS}). */
export const TURN_SLOT = 2;
/** Int32 slot: set when the plan (the Float64 slots) is written. */
export const GO_SLOT = 3;
/** Float64 slots after the 4 Int32 ones: the exchange's time, then the plan. */
export const TIME_SLOT = 0;
export const START_AT_SLOT = 1;
export const PERIOD_SLOT = 2;
export const TICKS_SLOT = 3;
/** Bytes of the shared buffer: 4 Int32 slots, then 4 Float64 ones. */
export const SHARED_BYTES = 16 + 32;
/**
 * Rounds of the clock exchange: the pacer blocks, the publishing thread writes its
 * `performance.now()` and wakes it, the pacer reads its own at once; the largest difference
 * seen (the round with the shortest wake-up) maps the pacer's clock onto the publisher's,
 * to a few microseconds, measured rather than assumed from `performance.timeOrigin`.
 */
export const CLOCK_ROUNDS = 20;
/** The shortest period: 10,000 ticks a second, about what one thread can serve. */
export const MIN_PERIOD_MS = 0.1;
/** How long the Worker may take to start. */
const START_TIMEOUT_MS = 10_000;

/** A pacer's Worker, started ahead; {@linkcode Pacer.begin} starts the ticks. */
export class Pacer {
  startAt = NaN;
  periodMs = NaN;
  ticks = 0;
  readonly #worker: Worker;
  readonly #slots: Int32Array;
  readonly #floats: Float64Array;
  /** Lateness of each served tick, in milliseconds. */
  #late = new Float64Array(0);
  #served = 0;

  private constructor(worker: Worker, shared: SharedArrayBuffer) {
    this.#worker = worker;
    this.#slots = new Int32Array(shared, 0, 4);
    this.#floats = new Float64Array(shared, 16, 4);
  }

  /**
   * Starts the pacer's Worker and exchanges clocks with it, so that its start-up (a module
   * load, slow on a busy machine) is not counted as lateness of the first ticks. Blocks
   * this thread for the exchange (a Worker may: well under a millisecond).
   */
  static async start(): Promise<Pacer> {
    const shared = new SharedArrayBuffer(SHARED_BYTES);
    const worker = new Worker(new URL("./pacer_worker.ts", import.meta.url), { type: "module" });
    const pacer = new Pacer(worker, shared);
    const failed = Promise.withResolvers<never>();
    failed.promise.catch(() => {});
    worker.onerror = (event) => {
      event.preventDefault();
      failed.reject(new Error(`the pacer failed: ${event.message}`));
    };
    worker.postMessage(shared);
    try {
      const slots = pacer.#slots;
      const ready = Atomics.waitAsync(slots, TURN_SLOT, 0, START_TIMEOUT_MS);
      if (ready.async) await Promise.race([ready.value, failed.promise]);
      for (let round = 0; round < CLOCK_ROUNDS; round++) {
        Atomics.wait(slots, TURN_SLOT, 2 * round, 1_000); // Until the pacer waits.
        if (Atomics.load(slots, TURN_SLOT) !== 2 * round + 1) {
          throw new Error("the pacer did not take part in the clock exchange");
        }
        pacer.#floats[TIME_SLOT] = performance.now();
        Atomics.store(slots, TURN_SLOT, 2 * round + 2);
        Atomics.notify(slots, TURN_SLOT);
      }
    } catch (error) {
      worker.terminate();
      throw error;
    }
    return pacer;
  }

  /** Starts `ticks` ticks every `periodMs` (at least {@linkcode MIN_PERIOD_MS}), from now. */
  begin(periodMs: number, ticks: number): void {
    this.periodMs = Math.max(MIN_PERIOD_MS, periodMs);
    this.ticks = ticks;
    this.#late = new Float64Array(ticks);
    this.startAt = performance.now() + 1;
    this.#floats[START_AT_SLOT] = this.startAt;
    this.#floats[PERIOD_SLOT] = this.periodMs;
    this.#floats[TICKS_SLOT] = ticks;
    Atomics.store(this.#slots, GO_SLOT, 1);
    Atomics.notify(this.#slots, GO_SLOT);
  }

  /** Ticks served so far. */
  get served(): number {
    return this.#served;
  }

  /**
   * Waits for the next tick (at most `timeoutMs`), records how late each tick since the
   * last call was served, and returns how many ticks have come in all.
   */
  async next(timeoutMs = 100): Promise<number> {
    const wait = Atomics.waitAsync(this.#slots, TICK_SLOT, this.#served, timeoutMs);
    if (wait.async) await wait.value;
    const now = performance.now();
    const tick = Math.min(this.ticks, Atomics.load(this.#slots, TICK_SLOT));
    for (let k = this.#served + 1; k <= tick; k++) {
      this.#late[k - 1] = Math.max(0, now - (this.startAt + k * this.periodMs));
    }
    this.#served = Math.max(this.#served, tick);
    return this.#served;
  }

  /** Lateness of the served ticks due at `fromMs` after the start or later, in ms, sorted. */
  lateness(fromMs = 0): Float64Array {
    const first = Math.min(this.#served, Math.ceil(fromMs / this.periodMs));
    return this.#late.slice(first, this.#served).sort();
  }

  /** Stops the pacer's Worker. */
  stop(): void {
    Atomics.store(this.#slots, STOP_SLOT, 1);
    Atomics.notify(this.#slots, GO_SLOT);
    this.#worker.terminate();
  }
}
