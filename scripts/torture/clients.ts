/**
 * The torture suite's clients: the well-behaved ones whose messages must all arrive,
 * the offenders whose answer and close are timed, and a reader that counts relayed
 * frames without keeping them.
 *
 * Owned here, apart from the harness, because they speak the parrot protocol: they
 * reuse `RawClient` and `msg` from tests/helpers.ts and the project's own
 * `ServerFrameDecoder` instead of a second parser.
 *
 * @module
 */

import { ServerFrameDecoder } from "../../lib/parrot/frame_decoder.ts";
import { concatBytes, msg, RawClient } from "../../lib/testing.ts";
import { within } from "../shared/harness.ts";

const encoder = new TextEncoder();

/** Messages a healthy client writes between two `PING` barriers. */
const HEALTHY_BATCH = 200;

/**
 * A client that sends numbered messages (`<name>-<i>`) in batches, each batch followed
 * by `PING` and its `PONG`, until stopped or until its count or time runs out. It
 * says `UNSUB` so that it never has to read relayed messages.
 */
export class HealthyClient {
  readonly name: string;
  #client: RawClient;
  /** Messages whose batch was answered by `PONG`: they are on the server's stdout. */
  #confirmed = 0;
  #stopRequested = false;
  #running: Promise<void>;
  #error: unknown;

  private constructor(client: RawClient, name: string, maxMessages: number, timeLimitMs: number) {
    this.#client = client;
    this.name = name;
    this.#running = this.#run(maxMessages, Date.now() + timeLimitMs).catch((error) => {
      this.#error = error;
    });
  }

  /** Connects and starts sending; at most `maxMessages`, for at most `timeLimitMs`. */
  static async start(
    port: number,
    name: string,
    { maxMessages = 1_000_000, timeLimitMs = 300_000 } = {},
  ): Promise<HealthyClient> {
    const client = await RawClient.connect(port);
    await client.write(`HELLO ${name}\nUNSUB\n`);
    await client.ping(30_000);
    return new HealthyClient(client, name, maxMessages, timeLimitMs);
  }

  /** Messages confirmed on the server's stdout so far. */
  get confirmed(): number {
    return this.#confirmed;
  }

  async #run(maxMessages: number, deadline: number): Promise<void> {
    let sent = 0;
    while (!this.#stopRequested && sent < maxMessages && Date.now() < deadline) {
      const count = Math.min(HEALTHY_BATCH, maxMessages - sent);
      const frames = [];
      for (let i = 0; i < count; i++) frames.push(msg(`${this.name}-${sent + i}`));
      await this.#client.write(concatBytes(...frames));
      sent += count;
      await this.#client.ping(30_000);
      this.#confirmed = sent;
    }
  }

  /** The rate of confirmed messages (per second) from now until `until` settles. */
  async rateUntil(until: Promise<unknown>): Promise<number> {
    const startCount = this.#confirmed;
    const startAt = performance.now();
    await Promise.race([until, this.#running]);
    const seconds = Math.max((performance.now() - startAt) / 1000, 0.001);
    return Math.round((this.#confirmed - startCount) / seconds);
  }

  /** Stops after the batch in flight, closes, and returns the number of messages confirmed. */
  async stop(): Promise<{ sent: number; error?: string }> {
    this.#stopRequested = true;
    await this.#running;
    await this.#client.close();
    const error = this.#error === undefined ? undefined : String(this.#error);
    return { sent: this.#confirmed, error };
  }
}

/** How many of `name`'s messages `<name>-0` .. `<name>-<sent - 1>` are in `stdout`, and repeats. */
export function countPrinted(
  stdout: string,
  name: string,
  sent: number,
): { printed: number; duplicates: number; lost: number } {
  const prefix = `${name}: ${name}-`;
  const seen = new Set<string>();
  let duplicates = 0;
  for (const line of stdout.split("\n")) {
    if (!line.startsWith(prefix)) continue;
    if (seen.has(line)) duplicates++;
    seen.add(line);
  }
  let printed = 0;
  for (let i = 0; i < sent; i++) if (seen.has(`${prefix}${i}`)) printed++;
  return { printed, duplicates, lost: sent - printed };
}

/** What an offender saw: the server's bytes, and whether and when it closed. */
export interface OffenderOutcome {
  /** Everything the server sent, as text. */
  received: string;
  /** Whether the server closed the connection within the time allowed. */
  closed: boolean;
  /** Milliseconds from the end of our writing to the close (or to giving up). */
  closeMs: number;
}

/** How an offender ends its bad input. */
export type Ending = "keep-open" | "close-write";

/**
 * Connects, writes `input` (a write the server cuts short is fine), optionally closes
 * its write side, and waits up to `timeoutMs` for the server to close.
 */
export async function offend(
  port: number,
  input: Uint8Array,
  ending: Ending,
  timeoutMs: number,
): Promise<OffenderOutcome> {
  const client = await RawClient.connect(port);
  try {
    await client.write(input);
    if (ending === "close-write") await client.conn.closeWrite();
  } catch {
    // The server closed on us mid-write: its answer is still in our receive buffer.
  }
  const wroteAt = performance.now();
  const closed = await within(client.received.done.then(() => true), timeoutMs, false);
  const closeMs = Math.round(performance.now() - wroteAt);
  await client.close();
  return { received: client.received.text(), closed, closeMs };
}

/** What a {@linkcode RelayCounter} has read from its connection. */
export interface RelayCount {
  /** Relayed messages by sender name. */
  messages: Map<string, number>;
  /** Payload bytes of the relayed messages. */
  payloadBytes: number;
  /** The reason of an `ERR` line, if one came. */
  error?: string;
  /** Whether the server sent `QUIT`. */
  quit: boolean;
}

/**
 * Reads a connection to its end and counts the relayed frames with the project's
 * client decoder, keeping no payload: a subscriber that reads everything.
 */
export class RelayCounter {
  readonly conn: Deno.Conn;
  readonly count: RelayCount = { messages: new Map(), payloadBytes: 0, quit: false };
  /** Settles when the connection has ended (closed by either side). */
  readonly done: Promise<void>;
  #paused: boolean;
  #resume: () => void = () => {};

  /** Starts reading at once, or only after {@linkcode RelayCounter.startReading} if `paused`. */
  constructor(conn: Deno.Conn, maxFrameBytes: number, { paused = false } = {}) {
    this.conn = conn;
    this.#paused = paused;
    this.done = this.#read(new ServerFrameDecoder({ maxFrameBytes }));
  }

  /** Connects, says `HELLO <name>`, and counts what arrives. */
  static async connect(
    port: number,
    name: string,
    maxFrameBytes: number,
    options: { paused?: boolean } = {},
  ): Promise<RelayCounter> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await writeAll(conn, encoder.encode(`HELLO ${name}\n`));
    return new RelayCounter(conn, maxFrameBytes, options);
  }

  /** Relayed messages from `from` so far. */
  from(from: string): number {
    return this.count.messages.get(from) ?? 0;
  }

  /** Starts reading a counter made with `paused`. */
  startReading(): void {
    this.#paused = false;
    this.#resume();
  }

  async #read(decoder: ServerFrameDecoder): Promise<void> {
    if (this.#paused) await new Promise<void>((resolve) => this.#resume = resolve);
    const buffer = new Uint8Array(256 * 1024);
    try {
      for (;;) {
        const n = await this.conn.read(buffer);
        if (n === null) return;
        const { frames } = decoder.push(buffer.subarray(0, n));
        for (const frame of frames) {
          if (frame.type === "msg") {
            this.count.messages.set(frame.from, this.from(frame.from) + 1);
            this.count.payloadBytes += frame.payload.length;
          } else if (frame.type === "err") {
            this.count.error = frame.reason;
          } else if (frame.type === "quit") {
            this.count.quit = true;
          }
        }
      }
    } catch {
      // Reset by the server: what was counted stays.
    }
  }

  /** Closes the connection and waits for the reader. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Closed already.
    }
    this.startReading();
    await this.done;
  }
}

/** Writes all of `bytes` to `conn`. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
}
