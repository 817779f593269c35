/**
 * The one module of test helpers, for the unit tests under `lib/`, the integration
 * tests under `tests/`, and the bench and torture scripts: waiting a turn or for a
 * condition, spying on abort listeners, building byte arrays, a connected TCP pair, a
 * text view of one end of a connection, fake connections and writers that record what
 * they are given; and, from `testing/`, starting the real server and client processes
 * and talking to them over raw sockets (`processes.ts`), throw-away TLS material
 * (`certs.ts`), and real `nats-server` processes and clusters for cluster mode (`nats.ts`).
 *
 * Test support only: nothing here is exported from `mod.ts`.
 *
 * @module
 */

export * from "./testing/certs.ts";
export * from "./testing/http.ts";
export * from "./testing/nats.ts";
export * from "./testing/processes.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Waits until `condition()` is true, checking after every `poll` ms; throws after `timeoutMs`. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  poll = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs}ms waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, poll));
  }
}

/** Lets every pending microtask and the timers due now run. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Whether `promise` has settled (resolved or rejected), checked after the current turn. */
export async function hasSettled(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(() => settled = true, () => settled = true);
  await nextTurn();
  return settled;
}

/**
 * An abort controller whose signal counts its registered abort listeners, to check that
 * code under test removes every listener it adds.
 */
export function countingController(): { controller: AbortController; listeners: () => number } {
  const controller = new AbortController();
  const signal = controller.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  const registered = new Set<unknown>();
  signal.addEventListener = (...args: Parameters<typeof add>) => {
    registered.add(args[1]);
    add(...args);
  };
  signal.removeEventListener = (...args: Parameters<typeof remove>) => {
    registered.delete(args[1]);
    remove(...args);
  };
  return { controller, listeners: () => registered.size };
}

/** The bytes of `parts` one after another: strings as UTF-8, number arrays as bytes. */
export function concatBytes(...parts: (string | Uint8Array | number[])[]): Uint8Array {
  const arrays = parts.map((part) =>
    typeof part === "string"
      ? encoder.encode(part)
      : part instanceof Uint8Array
      ? part
      : Uint8Array.from(part)
  );
  const out = new Uint8Array(arrays.reduce((sum, array) => sum + array.length, 0));
  let offset = 0;
  for (const array of arrays) {
    out.set(array, offset);
    offset += array.length;
  }
  return out;
}

/** Closes `conn`, ignoring one that is closed already. */
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}

/**
 * A connected TCP pair on 127.0.0.1. `close()` closes both ends, ignoring an end the
 * test closed already.
 */
export async function tcpPair(): Promise<
  { client: Deno.Conn; server: Deno.Conn; close: () => void }
> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const [client, server] = await Promise.all([
      Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
      listener.accept(),
    ]);
    return { client, server, close: () => (closeQuietly(client), closeQuietly(server)) };
  } finally {
    listener.close();
  }
}

/** One end of a TCP connection driven by hand as text: the raw peer of a client or server. */
export class TextConn {
  /** The underlying connection. */
  readonly conn: Deno.Conn;
  #received = "";
  #closed = false;

  /** Wraps `conn`, e.g. one accepted from a listener. */
  constructor(conn: Deno.Conn) {
    this.conn = conn;
  }

  /** Connects to `port` on 127.0.0.1. */
  static async connect(port: number): Promise<TextConn> {
    return new TextConn(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** The local port of the connection. */
  get localPort(): number {
    return (this.conn.localAddr as Deno.NetAddr).port;
  }

  /** Writes all of `data`, a string as UTF-8. */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    let offset = 0;
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  /**
   * Reads until `needle` arrived; returns what came up to and including it and keeps
   * the rest for the next call. Throws at the end of the stream before `needle`.
   */
  async until(needle: string): Promise<string> {
    const buffer = new Uint8Array(1024);
    while (!this.#received.includes(needle)) {
      const n = await this.conn.read(buffer);
      if (n === null) {
        throw new Error(`End of stream before ${JSON.stringify(needle)}: ${this.#received}`);
      }
      this.#received += decoder.decode(buffer.subarray(0, n));
    }
    const end = this.#received.indexOf(needle) + needle.length;
    const taken = this.#received.slice(0, end);
    this.#received = this.#received.slice(end);
    return taken;
  }

  /** Reads to the end of the stream (a reset counts as the end); returns the rest. */
  async rest(): Promise<string> {
    const buffer = new Uint8Array(1024);
    try {
      for (;;) {
        const n = await this.conn.read(buffer);
        if (n === null) break;
        this.#received += decoder.decode(buffer.subarray(0, n));
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
    }
    const rest = this.#received;
    this.#received = "";
    return rest;
  }

  /** Closes the connection; a second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close();
  }
}

/**
 * A fake connection that records its writes and closes in order. Writes complete at
 * once unless `blocked`, in which case they wait for {@linkcode FakeConn.release}.
 */
export class FakeConn {
  /** The exact objects passed to `write()`, blocked writes included. */
  chunks: Uint8Array[] = [];
  /** Every `write "<text>"` and `close` in the order they were called. */
  log: string[] = [];
  /** The text of every completed write, in the order they completed. */
  writes: string[] = [];
  /** How often `close()` was called. */
  closes = 0;
  #blocked: boolean;
  #pending: (() => void)[] = [];
  #writeWaiters: (() => void)[] = [];

  /** A connection whose writes complete at once, or wait for `release()` if `blocked`. */
  constructor(options: { blocked?: boolean } = {}) {
    this.#blocked = options.blocked ?? false;
  }

  /**
   * The text of each chunk passed to `write()`, decoded when it was passed: like a
   * socket, the fake is done with the bytes once the write completes, and their owner
   * may reuse them.
   */
  texts: string[] = [];

  /** Records `p`; resolves with its length at once, or on `release()` while blocked. */
  write(p: Uint8Array): Promise<number> {
    this.chunks.push(p);
    this.texts.push(decoder.decode(p));
    this.log.push(`write ${JSON.stringify(decoder.decode(p))}`);
    for (const waiter of this.#writeWaiters.splice(0)) waiter();
    const complete = (): number => {
      this.writes.push(decoder.decode(p));
      return p.length;
    };
    if (!this.#blocked) return Promise.resolve(complete());
    return new Promise((resolve) => this.#pending.push(() => resolve(complete())));
  }

  /** Counts and logs the close. */
  close(): void {
    this.closes++;
    this.log.push("close");
  }

  /** Resolves once a write has been made (at once if one was). */
  wrote(): Promise<void> {
    if (this.chunks.length > 0) return Promise.resolve();
    return new Promise((resolve) => this.#writeWaiters.push(resolve));
  }

  /** Completes the blocked writes and every later write at once. */
  release(): void {
    this.#blocked = false;
    for (const finish of this.#pending.splice(0)) finish();
  }
}

/**
 * A writer (a `ByteWriter` of the write coalescer, or a server output) that writes
 * everything at once and records what it was given.
 */
export class RecordingWriter {
  /** The exact objects passed to `write()`. */
  chunks: Uint8Array[] = [];
  /** The text of each write, decoded when it was made. */
  writes: string[] = [];
  #copies: Uint8Array[] = [];

  /** Records `p` (and a copy, since writers may reuse their buffer) and resolves at once. */
  write(p: Uint8Array): Promise<number> {
    this.chunks.push(p);
    this.#copies.push(p.slice());
    this.writes.push(decoder.decode(p));
    return Promise.resolve(p.length);
  }

  /** Every byte written so far, as it was at the time of each write. */
  bytes(): Uint8Array {
    return concatBytes(...this.#copies);
  }

  /** {@linkcode RecordingWriter.bytes} as text. */
  text(): string {
    return decoder.decode(this.bytes());
  }
}
