/**
 * A parrot client that survives a lost connection: it reconnects with exponential
 * backoff (to the next of several servers, when it has several), says `AUTH` and `HELLO`
 * again, and re-sends the messages the server had not confirmed.
 *
 * This module owns the reconnect policy, so the command-line client stays thin:
 *
 * - The connection counts as lost when connecting fails (refused, TLS handshake), when
 *   reading fails (reset), when the server closes without having said `QUIT`, and on any
 *   `ERR` except `ERR unauthorized`. Then it waits {@linkcode Backoff.next} and tries
 *   again, until the attempts run out.
 * - With several servers it starts with the first, and after each lost connection or
 *   failed attempt tries the next one (round robin, wrapping around), with the same
 *   backoff: so a client whose server dies moves to another server.
 * - With a single server it never reconnects after the server's `QUIT` (the server is
 *   shutting down). With several, a `QUIT` moves it to the next server: it confirms what it
 *   had written, says `QUIT`, and keeps what it sends meanwhile for the next connection.
 * - It never reconnects after `ERR unauthorized` (retrying with the same token cannot
 *   help), or after {@linkcode ReconnectingClient.close}.
 * - A connection counts as up only once the server has answered a `PING` sent after
 *   `AUTH`, `HELLO` and the re-sent messages: only then is the backoff reset. A server
 *   that accepts and then drops every connection therefore still exhausts the attempts.
 *
 * A message is kept until the server has confirmed it: after each burst of sends the
 * client sends a `PING` (one at a time), and the server's `PONG` means it has handled
 * every message before it; those are then forgotten. On the next connection every
 * message not yet confirmed is sent again, in order. Delivery is therefore at least
 * once: a message whose confirmation was lost with the connection (the server had it,
 * its `PONG` never came back) is sent again, and after a move to another server it may
 * have reached both. While disconnected, at most `maxUnsent` messages are kept: beyond
 * that the oldest are dropped, and counted.
 *
 * @module
 */

import {
  DEFAULT_CONFIRM_TIMEOUT_MS,
  DEFAULT_MAX_UNSENT,
  DEFAULT_RECONNECT_ATTEMPTS,
  DEFAULT_RECONNECT_INITIAL_MS,
  DEFAULT_RECONNECT_MAX_MS,
} from "../defaults.ts";
import { Backoff } from "../net/backoff.ts";
import { Channel } from "../net/channel.ts";
import { delayUnlessAborted } from "../net/delay.ts";
import { type ClientEvent, ParrotClient, type ParrotClientOptions, serverList } from "./client.ts";
import { ProtocolError, REASON } from "./frame.ts";
import { encodeAuth, encodeHello } from "./frame_encoder.ts";
import { formatServerAddress, type ServerAddress } from "./server_address.ts";

/** Options of {@linkcode ReconnectingClient}: those of a {@linkcode ParrotClient}, and the policy. */
export interface ReconnectingClientOptions extends ParrotClientOptions {
  /** Connection attempts after a loss before giving up. Default 10. */
  maxAttempts?: number;
  /** Upper bound of the first delay before an attempt, in milliseconds. Default 100. */
  initialDelayMs?: number;
  /** Largest upper bound of a delay between attempts, in milliseconds. Default 5000. */
  maxDelayMs?: number;
  /**
   * Messages kept (unconfirmed) while disconnected; beyond it the oldest are dropped.
   * Default 1000.
   */
  maxUnsent?: number;
  /** Random source of the backoff's jitter, in [0, 1). Default `Math.random`. */
  random?: () => number;
  /**
   * Milliseconds a connection may take to be confirmed (TCP and TLS handshake, then the
   * server's `PONG` to the first `PING`); past it the attempt counts as failed, so a
   * server that never answers is given up on like one that refuses. Default 10000.
   */
  confirmTimeoutMs?: number;
}

/**
 * What a {@linkcode ReconnectingClient} reports. After `quit`, `error` (the server
 * refused the client) and `gave-up` no connection is attempted; after `quit`, relayed
 * messages may still come until the server closes.
 */
export type ReconnectEvent =
  | { type: "message"; from: string; payload: Uint8Array }
  /**
   * The server is shutting down; the client will not reconnect. (With several servers
   * there is no `quit`: the client leaves that server, and `retrying` says it moves on.)
   */
  | { type: "quit" }
  /** The server refused the client (`ERR unauthorized`); the client will not reconnect. */
  | { type: "error"; reason: string }
  /** The first connection is up, to `server` (`host:port`): it answered a `PING`. */
  | { type: "connected"; server: string }
  /**
   * Connecting failed or the connection was lost; the next attempt, to `server`
   * (`host:port`), comes after `delayMs`. `wasConnected` tells whether any connection had
   * been up before.
   */
  | {
    type: "retrying";
    reason: string;
    delayMs: number;
    attempt: number;
    maxAttempts: number;
    wasConnected: boolean;
    server: string;
  }
  /**
   * A new connection is up, to `server`; the last one was to `previousServer` (the same
   * with a single server, another one after a move). `resent` messages (those not
   * confirmed) went out again, `dropped` were lost while disconnected.
   */
  | {
    type: "reconnected";
    server: string;
    previousServer: string;
    resent: number;
    dropped: number;
  }
  /** Every attempt failed; `reason` is the last failure. */
  | { type: "gave-up"; attempts: number; reason: string };

/** How one connection ended. */
type Ending =
  | { kind: "quit" }
  | { kind: "refused"; reason: string }
  | { kind: "lost"; reason: string };

const encoder = new TextEncoder();
const EVENT_QUEUE = 1024;
/** Why a client with several servers moves on after its server's `QUIT`. */
const SERVER_LEAVING = "the server is shutting down";

/**
 * A client that keeps a connection to a parrot server, reconnecting when it is lost.
 * It starts connecting as soon as it is created; iterate it for what happens.
 *
 * @example Send, then close
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReconnectingClient } from "./reconnecting_client.ts";
 * import { startParrotServer } from "./server.ts";
 *
 * const heard: string[] = [];
 * const server = startParrotServer({
 *   port: 0,
 *   output: null,
 *   onMessage: (from, payload) => heard.push(`${from}: ${new TextDecoder().decode(payload)}`),
 * });
 * const client = new ReconnectingClient({ port: server.addr.port, name: "polly" });
 * client.send("pieces of eight");
 * for await (const event of client) {
 *   if (event.type === "connected") break; // the server answered a PING sent after it
 * }
 * assert.deepEqual(heard, ["polly: pieces of eight"]);
 * await client.close();
 * await server.shutdown();
 * ```
 *
 * @example Messages sent while disconnected go out after the reconnect
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReconnectingClient } from "./reconnecting_client.ts";
 * import { startParrotServer } from "./server.ts";
 *
 * // Find a free port, and start the client before any server listens on it.
 * const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = probe.addr.port;
 * probe.close();
 * const client = new ReconnectingClient({ port, name: "polly", initialDelayMs: 20 });
 * client.send("one");
 * client.send("two");
 * const events = client[Symbol.asyncIterator]();
 * assert.equal((await events.next()).value?.type, "retrying");
 *
 * const heard: string[] = [];
 * const server = startParrotServer({
 *   port,
 *   output: null,
 *   onMessage: (_from, payload) => heard.push(new TextDecoder().decode(payload)),
 * });
 * for (;;) {
 *   const event = (await events.next()).value;
 *   if (event?.type === "connected") break;
 * }
 * assert.deepEqual(heard, ["one", "two"]);
 * await client.close();
 * await server.shutdown();
 * ```
 *
 * @example Several servers: the client moves to the next when one is gone
 * ```ts
 * import assert from "node:assert/strict";
 * import { ReconnectingClient } from "./reconnecting_client.ts";
 * import { startParrotServer } from "./server.ts";
 *
 * // Nobody listens on the first server's port any more.
 * const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const gone = probe.addr.port;
 * probe.close();
 * const server = startParrotServer({ port: 0, output: null });
 * const client = new ReconnectingClient({
 *   servers: [{ port: gone }, { port: server.addr.port }],
 *   initialDelayMs: 20,
 * });
 * const seen: string[] = [];
 * for await (const event of client) {
 *   if (event.type === "retrying") seen.push(`retrying ${event.server}`);
 *   if (event.type === "connected") seen.push(`connected ${event.server}`);
 *   if (event.type === "connected") break;
 * }
 * assert.deepEqual(seen, [
 *   `retrying 127.0.0.1:${server.addr.port}`,
 *   `connected 127.0.0.1:${server.addr.port}`,
 * ]);
 * await client.close();
 * await server.shutdown();
 * ```
 */
export class ReconnectingClient implements AsyncIterable<ReconnectEvent> {
  #options: ParrotClientOptions;
  /** The servers, in order; `#serverIndex` is the one the next attempt goes to. */
  #servers: Required<ServerAddress>[];
  #serverIndex = 0;
  #backoff: Backoff;
  #maxUnsent: number;
  #events = new Channel<ReconnectEvent>(EVENT_QUEUE);
  /** Messages not yet confirmed by a `PONG`, oldest first, each with its sequence number. */
  #pending: { seq: number; payload: Uint8Array }[] = [];
  #nextSeq = 1;
  #dropped = 0;
  #droppedTotal = 0;
  #current: ParrotClient | undefined;
  #confirmScheduled = false;
  /** The connection whose confirming `PING` is in flight (one at a time). */
  #confirming: ParrotClient | undefined;
  /** Aborted by close(): wakes a backoff delay and drops events nobody takes. */
  #stop = new AbortController();
  /** Aborted by the caller's signal: closes sockets at once. */
  #hardStop = new AbortController();
  #closeTimeoutMs = 5_000;
  #confirmTimeoutMs: number;
  #running: Promise<void>;

  /**
   * Starts connecting (in the background).
   *
   * @throws {RangeError} If `name` or `token` cannot be sent, if the options give no
   * server or both `port` and `servers`, or if a policy option is out of range.
   */
  constructor(options: ReconnectingClientOptions) {
    this.#servers = serverList(options);
    if (options.name !== undefined) encodeHello(options.name);
    if (options.token !== undefined) encodeAuth(options.token);
    const maxUnsent = options.maxUnsent ?? DEFAULT_MAX_UNSENT;
    if (!Number.isSafeInteger(maxUnsent) || maxUnsent < 0) {
      throw new RangeError(`Cannot use maxUnsent ${maxUnsent}: expected a whole number >= 0`);
    }
    this.#maxUnsent = maxUnsent;
    this.#confirmTimeoutMs = options.confirmTimeoutMs ?? DEFAULT_CONFIRM_TIMEOUT_MS;
    this.#backoff = new Backoff({
      initialMs: options.initialDelayMs ?? DEFAULT_RECONNECT_INITIAL_MS,
      maxMs: Math.max(
        options.maxDelayMs ?? DEFAULT_RECONNECT_MAX_MS,
        options.initialDelayMs ?? DEFAULT_RECONNECT_INITIAL_MS,
      ),
      maxAttempts: options.maxAttempts ?? DEFAULT_RECONNECT_ATTEMPTS,
      random: options.random,
    });
    const signal = options.signal;
    this.#options = {
      ...options,
      hostname: undefined,
      port: undefined,
      servers: undefined,
      signal: this.#hardStop.signal,
    };
    const onAbort = () => this.#abortNow();
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#running = this.#run().finally(() => signal?.removeEventListener("abort", onAbort));
  }

  /** Whether a connection is open now (it may not be confirmed by the server yet). */
  get connected(): boolean {
    return this.#current !== undefined;
  }

  /**
   * Messages not yet confirmed by the server: those waiting for a connection, and those
   * sent whose `PONG` has not come yet.
   */
  get unsent(): number {
    return this.#pending.length;
  }

  /**
   * The server of the current connection, or of the next attempt while disconnected
   * (`host:port`).
   */
  get server(): string {
    return formatServerAddress(this.#servers[this.#serverIndex]);
  }

  /** Messages dropped in all, because more than `maxUnsent` waited for a connection. */
  get dropped(): number {
    return this.#droppedTotal;
  }

  /**
   * Sends one message, or keeps it until the next connection; returns the payload size
   * in bytes. Never throws for a lost connection. After {@linkcode ReconnectingClient.close}
   * (or a final event) the message is kept but never sent.
   */
  send(message: Uint8Array | string): number {
    const payload = typeof message === "string" ? encoder.encode(message) : message;
    this.#pending.push({ seq: this.#nextSeq++, payload });
    const client = this.#current;
    if (client) {
      client.send(payload);
      this.#scheduleConfirm(client);
    } else {
      this.#trimUnsent();
    }
    return payload.length;
  }

  /**
   * Sends `PING` on the current connection and resolves on its `PONG`: every message
   * written on that connection has been handled by the server (and is no longer kept
   * for a re-send). Rejects when there is no
   * connection now (messages waiting for one are not through), when the connection ends
   * first, or with `signal`'s reason when it is aborted first.
   *
   * @example Confirm the last message before closing
   * ```ts
   * import { ReconnectingClient } from "./reconnecting_client.ts";
   * import { startParrotServer } from "./server.ts";
   *
   * const server = startParrotServer({ port: 0, output: null });
   * const client = new ReconnectingClient({ port: server.addr.port });
   * for await (const event of client) if (event.type === "connected") break;
   * client.send("squawk");
   * await client.ping({ signal: AbortSignal.timeout(5_000) });
   * await client.close();
   * await server.shutdown();
   * ```
   */
  ping(options: { signal?: AbortSignal } = {}): Promise<void> {
    const client = this.#current;
    if (client === undefined) {
      return Promise.reject(new Error("Cannot confirm the messages: not connected"));
    }
    const upTo = this.#nextSeq - 1;
    return client.ping(options).then(() => this.#forgetUpTo(upTo));
  }

  /** Relayed messages and what happens to the connection, until the client is done. */
  [Symbol.asyncIterator](): AsyncIterator<ReconnectEvent> {
    return this.#events[Symbol.asyncIterator]();
  }

  /** Settles when the client is done: closed, quit, refused, or out of attempts. */
  get finished(): Promise<void> {
    return this.#running;
  }

  /**
   * Stops reconnecting. With a connection open, says `QUIT` after the messages in flight
   * and waits for the server to close (at most `timeoutMs`); without one, the messages
   * still waiting are not sent (see {@linkcode ReconnectingClient.unsent}). Idempotent.
   */
  close(timeoutMs = 5_000): Promise<void> {
    if (!this.#stop.signal.aborted) {
      this.#closeTimeoutMs = timeoutMs;
      this.#stop.abort();
      // Connected: QUIT after what is in flight. Connecting: give up that attempt now.
      if (this.#current) void this.#current.close(timeoutMs);
      else this.#hardStop.abort();
    }
    return this.#running;
  }

  #abortNow(): void {
    this.#stop.abort();
    this.#hardStop.abort();
  }

  async #run(): Promise<void> {
    /** The server of the last confirmed connection, if any. */
    let lastServer: string | undefined;
    try {
      while (!this.#stop.signal.aborted) {
        const server = this.#servers[this.#serverIndex];
        const { confirmed, ending } = await this.#connectOnce(server, lastServer);
        if (confirmed) lastServer = formatServerAddress(server);
        const wasConnected = lastServer !== undefined;
        if (this.#stop.signal.aborted || ending.kind === "quit") break;
        if (ending.kind === "refused") {
          await this.#emit({ type: "error", reason: ending.reason });
          break;
        }
        this.#trimUnsent();
        this.#serverIndex = (this.#serverIndex + 1) % this.#servers.length;
        const delayMs = this.#backoff.next();
        if (delayMs === undefined) {
          const attempts = this.#backoff.attempt;
          await this.#emit({ type: "gave-up", attempts, reason: ending.reason });
          break;
        }
        await this.#emit({
          type: "retrying",
          reason: ending.reason,
          delayMs,
          attempt: this.#backoff.attempt,
          maxAttempts: this.#backoff.maxAttempts,
          wasConnected,
          server: this.server,
        });
        await delayUnlessAborted(delayMs, this.#stop.signal);
      }
    } finally {
      this.#stop.abort();
      this.#events.close();
    }
  }

  /**
   * Connects once and serves the connection until it ends. Until the server confirms
   * it, the connection is closed at once when `confirmTimeoutMs` runs out.
   */
  async #connectOnce(
    server: Required<ServerAddress>,
    lastServer: string | undefined,
  ): Promise<{ confirmed: boolean; ending: Ending }> {
    const attempt = new AbortController();
    const abort = () => attempt.abort();
    const hardStop = this.#hardStop.signal;
    if (hardStop.aborted) abort();
    hardStop.addEventListener("abort", abort, { once: true });
    const deadline = setTimeout(abort, this.#confirmTimeoutMs);
    try {
      let client: ParrotClient;
      try {
        client = await ParrotClient.connect({
          ...this.#options,
          ...server,
          signal: attempt.signal,
        });
      } catch (error) {
        const timedOut = attempt.signal.aborted && !hardStop.aborted;
        const reason = timedOut ? this.#unconfirmed() : describeError(error);
        return { confirmed: false, ending: { kind: "lost", reason } };
      }
      const served = this.#serve(client, lastServer, () => clearTimeout(deadline));
      const { confirmed, ending } = await served;
      if (!confirmed && attempt.signal.aborted && !hardStop.aborted) {
        return { confirmed, ending: { kind: "lost", reason: this.#unconfirmed() } };
      }
      return { confirmed, ending };
    } finally {
      clearTimeout(deadline);
      hardStop.removeEventListener("abort", abort);
    }
  }

  /**
   * Uses a new connection: sends what is pending, confirms it with a PING (then calls
   * `onConfirmed`), and pumps its events until it ends. Returns whether the server
   * confirmed it, and how it ended. `lastServer` is the server of the last confirmed
   * connection, if there was one.
   */
  async #serve(
    client: ParrotClient,
    lastServer: string | undefined,
    onConfirmed: () => void,
  ): Promise<{ confirmed: boolean; ending: Ending }> {
    this.#current = client;
    const ending = this.#pump(client);
    const resent = this.#pending.length;
    for (const { payload } of this.#pending) client.send(payload);
    if (this.#stop.signal.aborted) void client.close(this.#closeTimeoutMs);
    // The first PING confirms the connection and everything re-sent on it.
    const upTo = this.#nextSeq - 1;
    this.#confirming = client;
    const confirmed = await client.ping().then(() => true, () => false);
    if (this.#confirming === client) this.#confirming = undefined;
    if (confirmed) {
      onConfirmed();
      this.#forgetUpTo(upTo);
      this.#scheduleConfirm(client);
    }
    if (confirmed && this.#current === client) {
      this.#backoff.reset();
      const dropped = this.#dropped;
      this.#dropped = 0;
      const server = formatServerAddress(client.server);
      await this.#emit(
        lastServer === undefined
          ? { type: "connected", server }
          : { type: "reconnected", server, previousServer: lastServer, resent, dropped },
      );
    }
    return { confirmed, ending: await ending };
  }

  #unconfirmed(): string {
    return `the server did not confirm the connection within ${this.#confirmTimeoutMs}ms`;
  }

  /**
   * Leaves a server that said `QUIT` while others are left to move to: keeps new messages
   * for the next connection, confirms those already written (the server still handles
   * them), then says `QUIT` and waits for the server to close.
   */
  async #leave(client: ParrotClient): Promise<void> {
    if (this.#current === client) this.#current = undefined;
    const upTo = this.#nextSeq - 1;
    try {
      await client.ping({ signal: AbortSignal.timeout(this.#confirmTimeoutMs) });
      this.#forgetUpTo(upTo);
    } catch {
      // Not confirmed: those messages go to the next server again.
    }
    await client.close(this.#closeTimeoutMs);
  }

  /** Forwards one connection's events; resolves with how the connection ended. */
  async #pump(client: ParrotClient): Promise<Ending> {
    let ending: Ending | undefined;
    for await (const event of client as AsyncIterable<ClientEvent>) {
      if (event.type === "message") {
        await this.#emit(event);
      } else if (event.type === "quit" && this.#servers.length > 1) {
        ending ??= { kind: "lost", reason: SERVER_LEAVING };
        void this.#leave(client);
      } else if (event.type === "quit") {
        ending ??= { kind: "quit" };
        await this.#emit(event);
      } else if (event.type === "error") {
        ending ??= event.reason === REASON.unauthorized
          ? { kind: "refused", reason: event.reason }
          : { kind: "lost", reason: `ERR ${event.reason}` };
      }
    }
    await client.finished;
    if (this.#current === client) this.#current = undefined;
    if (ending) return ending;
    const failure = client.readError;
    return {
      kind: "lost",
      reason: failure === undefined ? "the server closed the connection" : describeError(failure),
    };
  }

  /**
   * Confirms the messages sent on `client` with a `PING` once this turn of sends is
   * over, and forgets them on its `PONG`. One `PING` at a time: what is sent meanwhile
   * is confirmed by the next, sent when the answer comes.
   */
  #scheduleConfirm(client: ParrotClient): void {
    if (this.#confirmScheduled || this.#confirming === client) return;
    this.#confirmScheduled = true;
    queueMicrotask(() => {
      this.#confirmScheduled = false;
      if (this.#current !== client || this.#confirming === client) return;
      const upTo = this.#nextSeq - 1;
      if (this.#pending.length === 0) return;
      this.#confirming = client;
      client.ping().then(
        () => {
          this.#forgetUpTo(upTo);
          if (this.#confirming === client) this.#confirming = undefined;
          if (this.#pending.length > 0) this.#scheduleConfirm(client);
        },
        () => {
          if (this.#confirming === client) this.#confirming = undefined;
        },
      );
    });
  }

  #forgetUpTo(seq: number): void {
    let written = 0;
    while (written < this.#pending.length && this.#pending[written].seq <= seq) written++;
    if (written > 0) this.#pending.splice(0, written);
  }

  /** Drops the oldest waiting messages beyond `maxUnsent`, counting them. */
  #trimUnsent(): void {
    const excess = this.#pending.length - this.#maxUnsent;
    if (excess <= 0) return;
    this.#pending.splice(0, excess);
    this.#dropped += excess;
    this.#droppedTotal += excess;
  }

  /** Queues an event; once the client is closing, one nobody takes is dropped. */
  async #emit(event: ReconnectEvent): Promise<void> {
    try {
      await this.#events.send(event, { signal: this.#stop.signal });
    } catch {
      // Closed, or closing with a full queue: nobody is listening.
    }
  }
}

/**
 * A short reason for a failed connect or read, for a log line: the kind of a network
 * error, the wire reason of a {@linkcode ProtocolError} (what the server sent could not
 * be decoded), or the message of any other error without its OS error number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeError } from "./reconnecting_client.ts";
 *
 * assert.equal(describeError(new Deno.errors.ConnectionRefused("Connection refused (os error 111)")), "connection refused");
 * assert.equal(describeError(new Error("invalid peer certificate: UnknownIssuer")), "invalid peer certificate: UnknownIssuer");
 * ```
 */
export function describeError(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (error instanceof Deno.errors.ConnectionAborted) return "connection aborted";
  if (error instanceof Deno.errors.BrokenPipe) return "broken pipe";
  if (error instanceof Deno.errors.TimedOut) return "timed out";
  if (error instanceof ProtocolError) return error.reason;
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/ \(os error \d+\)$/, "");
}
