/**
 * WebSocket clients: a browser (or any WebSocket client) in the same conversation as the
 * TCP clients, under the same limits.
 *
 * Two halves, one per direction:
 * - {@linkcode WebSocketTransport} is a session's `Outbound` (`session.ts`) for a
 *   WebSocket. The hub hands every session the same parrot/1 wire bytes (a relay chunk
 *   of `MSG <from> <n>` frames, `PING`, `PONG`, `QUIT`, `ERR`); this one walks the whole
 *   frames of each chunk and sends one WebSocket message per frame (see
 *   docs/PROTOCOL.md, "WebSocket"), so the TCP hot path stays as it is. Its queue is
 *   the socket's own (`bufferedAmount`), which the hub's slow-consumer rule reads.
 * - {@linkcode WebSocketConnection} is the task that reads one socket: admission (the
 *   token, as an `auth` control or checked by the HTTP side), then each WebSocket message
 *   becomes one frame handed to the main task through the same channel as TCP reads, so
 *   stdout, relays, `PONG` and the output-failure rule are the same for both.
 *
 * A WebSocket cannot be paused the way a TCP read can: the runtime reads every message
 * as it comes. So what the channel or the rate limit does not take at once waits in a
 * per-client queue, bounded: a client whose unread input outgrows it is closed
 * (`flood`) instead of making the server hold it.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Channel } from "../net/channel.ts";
import { delayUnlessAborted } from "../net/delay.ts";
import { TokenBucket } from "../net/token_bucket.ts";
import type { ChunkDone } from "../net/write_coalescer.ts";
import { constantTimeEqual } from "./admission.ts";
import { type ConnectionCounters, countProtocolError } from "./connection.ts";
import { type ClientFrame, isValidName, MAX_HISTORY_COUNT, REASON } from "./frame.ts";
import type { Hub } from "./hub.ts";
import type { ReadBatch, ReadBatchPool } from "./read_batch.ts";
import { type Outbound, Session, type SessionTransport } from "./session.ts";

const log = getLogger(["parrot", "websocket"]);
const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The close codes the server uses, by the reason it closes with (the same words as the
 * `ERR` reasons of parrot/1, see `REASON`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { closeCodeFor } from "./websocket_session.ts";
 *
 * assert.equal(closeCodeFor("frame too large"), 1009);
 * assert.equal(closeCodeFor("slow consumer"), 1008);
 * ```
 */
export function closeCodeFor(reason: string): number {
  switch (reason) {
    case REASON.frameTooLarge:
      return CLOSE.messageTooBig;
    case REASON.tooManyClients:
      return CLOSE.tryAgainLater;
    case REASON.outputFailed:
      return CLOSE.internalError;
    case SHUTTING_DOWN:
      return CLOSE.goingAway;
    default:
      return CLOSE.policyViolation;
  }
}

/** WebSocket close codes (RFC 6455, section 7.4.1). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  tryAgainLater: 1013,
} as const;

/** The close reason of a server that shuts down (code 1001). */
export const SHUTTING_DOWN = "server shutting down";
/** The close reason of a client whose unread input outgrew its queue. */
export const FLOOD = "flood";
/** The close reason of a client that left with `quit` (code 1000). */
const BYE = "bye";

/** The byte values the frame walker looks at. */
const LF = 0x0a;
const SPACE = 0x20;

/**
 * A session's outbound for a WebSocket: each parrot/1 frame it is given becomes one
 * WebSocket message. A relayed message is a text frame `{"type":"msg","from","text"}`
 * when its payload is valid UTF-8, else a binary frame: one byte of sender length, the
 * sender, the payload. `PING`/`PONG` become `{"type":"ping"}`/`{"type":"pong"}`, `QUIT`
 * a close (1001, "server shutting down") after what was sent before, and `ERR <reason>`
 * the code and reason the socket closes with.
 *
 * @example Two relayed messages, one text and one binary
 * ```ts
 * import assert from "node:assert/strict";
 * import { WebSocketTransport } from "./websocket_session.ts";
 *
 * const sent: (string | Uint8Array)[] = [];
 * const socket = {
 *   readyState: 1,
 *   bufferedAmount: 0,
 *   send: (data: string | Uint8Array) => void sent.push(data),
 *   close: () => {},
 * };
 * const transport = new WebSocketTransport(socket);
 * const bytes = new Uint8Array([
 *   ...new TextEncoder().encode("MSG ann 2\nhi\nMSG bob 1\n"), 0xff, 0x0a,
 * ]);
 * transport.write(bytes);
 * assert.deepEqual(sent[0], '{"type":"msg","from":"ann","text":"hi"}');
 * assert.deepEqual(sent[1], new Uint8Array([3, 98, 111, 98, 0xff]));
 * ```
 */
export class WebSocketTransport implements SessionTransport, Outbound {
  readonly transport = "websocket" as const;
  readonly #socket: WebSocketLike;
  #closeCode: number = CLOSE.normal;
  #closeReason = BYE;
  /** When the socket's buffer last stopped shrinking with bytes in it, or 0. */
  #stalledSince = 0;
  #lastBuffered = 0;

  /** Sends through `socket`. */
  constructor(socket: WebSocketLike) {
    this.#socket = socket;
  }

  /** This object: a WebSocket's queue is the socket's own. */
  get outbound(): Outbound {
    return this;
  }

  /** Bytes sent and not yet taken by the network (`bufferedAmount`). */
  get buffered(): number {
    return this.#socket.bufferedAmount;
  }

  /**
   * Since when the socket's buffer has held bytes without shrinking (ms since the
   * epoch), or 0: the write timeout of a tab that stopped reading counts from it.
   */
  get writeStartedAt(): number {
    const buffered = this.#socket.bufferedAmount;
    if (buffered === 0) this.#stalledSince = 0;
    else if (buffered < this.#lastBuffered || this.#stalledSince === 0) {
      this.#stalledSince = Date.now();
    }
    this.#lastBuffered = buffered;
    return this.#stalledSince;
  }

  /** The close code and reason the socket will close with. */
  get closing(): { code: number; reason: string } {
    return { code: this.#closeCode, reason: this.#closeReason };
  }

  /** Sends each whole frame of `bytes` as one WebSocket message. */
  write(bytes: Uint8Array, done?: ChunkDone): void {
    try {
      if (this.#socket.readyState === OPEN) this.#sendFrames(bytes);
    } finally {
      done?.();
    }
  }

  /** Nothing is queued here: what was sent is in the socket's buffer and goes out. */
  discardQueued(): number {
    return 0;
  }

  /** Resolves once the socket's buffer is empty, or the socket closed. */
  flush(): Promise<void> {
    if (this.#drained()) return Promise.resolve();
    return new Promise((resolve) => {
      const poll = setInterval(() => {
        if (!this.#drained()) return;
        clearInterval(poll);
        resolve();
      }, FLUSH_POLL_MS);
    });
  }

  /** The server shuts down: a close from now on says so (1001), unless a reason is set. */
  shuttingDown(): void {
    if (this.#closeReason === BYE) this.#setClose(SHUTTING_DOWN);
  }

  /** Closes the socket with the code and reason set by the frames sent (1000 by default). */
  close(): void {
    try {
      this.#socket.close(this.#closeCode, this.#closeReason);
    } catch {
      // Closed already.
    }
  }

  #drained(): boolean {
    return this.#socket.bufferedAmount === 0 || this.#socket.readyState >= CLOSING;
  }

  #setClose(reason: string): void {
    this.#closeCode = closeCodeFor(reason);
    // A close reason is at most 123 bytes; ours are ASCII.
    this.#closeReason = reason.slice(0, 123);
  }

  /** Walks the whole frames of `bytes`; the server encoded them, so they are well formed. */
  #sendFrames(bytes: Uint8Array): void {
    const socket = this.#socket;
    let at = 0;
    while (at < bytes.length) {
      const lineEnd = bytes.indexOf(LF, at);
      if (lineEnd < 0) return;
      if (bytes[at] === 0x4d /* M */ && bytes[at + 3] === SPACE) {
        // MSG <from> <n>\n<payload>\n
        const fromEnd = bytes.indexOf(SPACE, at + 4);
        let length = 0;
        for (let i = fromEnd + 1; i < lineEnd; i++) length = length * 10 + bytes[i] - 0x30;
        const payload = bytes.subarray(lineEnd + 1, lineEnd + 1 + length);
        const from = bytes.subarray(at + 4, fromEnd);
        socket.send(messageFor(from, payload));
        at = lineEnd + 1 + length + 1;
        continue;
      }
      const line = String.fromCharCode(...bytes.subarray(at, lineEnd));
      at = lineEnd + 1;
      if (line === "PING") socket.send(PING_TEXT);
      else if (line === "PONG") socket.send(PONG_TEXT);
      else if (line === "QUIT") {
        this.#setClose(SHUTTING_DOWN);
        this.close();
      } else if (line.startsWith("ERR ")) this.#setClose(line.slice(4));
    }
  }
}

/** What {@linkcode WebSocketTransport} uses of a `WebSocket`. */
export interface WebSocketLike {
  /** `WebSocket.readyState`. */
  readonly readyState: number;
  /** `WebSocket.bufferedAmount`. */
  readonly bufferedAmount: number;
  /** `WebSocket.send`. */
  send(data: string | Uint8Array): void;
  /** `WebSocket.close`. */
  close(code?: number, reason?: string): void;
}

const OPEN = 1;
const CLOSING = 2;
/** How often flush() looks at the socket's buffer. */
const FLUSH_POLL_MS = 10;
const PING_TEXT = '{"type":"ping"}';
const PONG_TEXT = '{"type":"pong"}';

/** The WebSocket message of one relayed message (see {@linkcode WebSocketTransport}). */
function messageFor(from: Uint8Array, payload: Uint8Array): string | Uint8Array {
  const sender = String.fromCharCode(...from);
  let text: string | undefined;
  try {
    text = utf8.decode(payload);
  } catch {
    text = undefined;
  }
  if (text !== undefined) return JSON.stringify({ type: "msg", from: sender, text });
  const framed = new Uint8Array(1 + from.length + payload.length);
  framed[0] = from.length;
  framed.set(from, 1);
  framed.set(payload, 1 + from.length);
  return framed;
}

/** What every WebSocket connection shares with the server. */
export interface WebSocketContext {
  /** Connected clients and the relay. */
  hub: Hub;
  /** Where frames go, as TCP reads do. */
  channel: Channel<ReadBatch>;
  /** Where read batches come from; the main task gives them back. */
  readBatches: ReadBatchPool;
  /** Largest message payload accepted. */
  maxFrameBytes: number;
  /** Bytes of messages a client may have waiting for the channel or the rate limit. */
  maxInboundBytes: number;
  /** The token the client must give (its `auth` control), unless the HTTP side checked it. */
  token?: Uint8Array;
  /** Milliseconds a client has to give the token. */
  authTimeoutMs: number;
  /** Messages per second and burst allowed per client; unlimited without it. */
  rateLimit?: { ratePerSecond: number; burst: number };
  /** Connections still being admitted (not yet in the hub). */
  admitting: Set<Session>;
  /** Counters, shared with the TCP connections. */
  counters: ConnectionCounters;
  /** Aborted when the server shuts down: rate-limit pauses end. */
  shutdownSignal: AbortSignal;
}

/** How one WebSocket client connects (from the upgrade request). */
export interface WebSocketClientOptions {
  /** A number unique among the server's clients. */
  id: number;
  /** Its address, `ip:port`. */
  address: string;
  /** Its name from the request (`?name=`), already checked with `isValidName`. */
  name?: string;
  /** Whether it starts subscribed (`?subscribe=0` says no). Default true. */
  subscribe?: boolean;
  /** The HTTP side (or its `Authorization` header) proved it knows the token. */
  authenticated?: boolean;
}

/** A message or control waiting for the channel, with the bytes it holds. */
interface Pending {
  frame: ClientFrame;
  bytes: number;
}

/**
 * Serves one WebSocket: admission, then each message as a frame through the channel.
 * `done` settles once the client has left the hub and the socket is closed.
 *
 * @example A client that sends one message
 * ```ts
 * import assert from "node:assert/strict";
 * import { Channel } from "../net/channel.ts";
 * import { newConnectionCounters } from "./connection.ts";
 * import { Hub } from "./hub.ts";
 * import { type ReadBatch, ReadBatchPool } from "./read_batch.ts";
 * import { WebSocketConnection } from "./websocket_session.ts";
 *
 * const channel = new Channel<ReadBatch>(4);
 * const socket = new EventTarget() as unknown as WebSocket;
 * Object.assign(socket, { readyState: 1, bufferedAmount: 0, send() {}, close() {} });
 * const connection = new WebSocketConnection(socket, { id: 1, address: "127.0.0.1:5000", name: "ann" }, {
 *   hub: new Hub(),
 *   channel,
 *   readBatches: new ReadBatchPool(),
 *   maxFrameBytes: 1024,
 *   maxInboundBytes: 4096,
 *   authTimeoutMs: 2000,
 *   admitting: new Set(),
 *   counters: newConnectionCounters(),
 *   shutdownSignal: new AbortController().signal,
 * });
 * socket.dispatchEvent(new Event("open"));
 * socket.dispatchEvent(new MessageEvent("message", { data: '{"type":"msg","text":"hi"}' }));
 * const batch = await channel.receive();
 * assert.equal(batch.session.name, "ann");
 * assert.deepEqual(batch.frames[0], { type: "msg", payload: new TextEncoder().encode("hi") });
 * connection.session.close();
 * ```
 */
export class WebSocketConnection {
  /** The client as the hub sees it. */
  readonly session: Session;
  readonly #transport: WebSocketTransport;
  readonly #context: WebSocketContext;
  readonly #subscribe: boolean;
  #admitted: boolean;
  #authTimer: ReturnType<typeof setTimeout> | undefined;
  #bucket: TokenBucket | undefined;
  #queue: Pending[] = [];
  #queuedBytes = 0;
  #pumping = false;
  /** A `quit` (the client's, or the end of its input) is queued: nothing more is read. */
  #quitting = false;
  #ended = false;
  readonly #done = Promise.withResolvers<void>();

  /** Starts serving `socket` (from `Deno.upgradeWebSocket`, not yet open). */
  constructor(socket: WebSocket, client: WebSocketClientOptions, context: WebSocketContext) {
    this.#context = context;
    this.#transport = new WebSocketTransport(socket);
    this.session = new Session(this.#transport, client.id, client.address);
    if (client.name) this.session.setName(client.name);
    this.#subscribe = client.subscribe ?? true;
    this.#admitted = context.token === undefined || client.authenticated === true;
    socket.binaryType = "arraybuffer";
    context.counters.connections++;
    if (!this.#admitted) {
      context.admitting.add(this.session);
      this.#authTimer = setTimeout(() => this.#refuse(REASON.authTimeout), context.authTimeoutMs);
    }
    socket.addEventListener("open", () => this.#open());
    socket.addEventListener("message", (event) => this.#onMessage(event));
    socket.addEventListener("error", (event) => this.#onError(event));
    socket.addEventListener("close", () => this.#onClose());
    // Closed by the server (an error, a slow consumer, a quit answered): the client has
    // left, even if its socket never completes the close handshake (a tab that stopped
    // reading cannot take the close frame).
    this.session.done.then(() => {
      if (!this.#pumping) this.#end();
    });
    if (context.shutdownSignal.aborted) this.shuttingDown();
  }

  /** Settles once the client has left and the socket is closed. */
  get done(): Promise<void> {
    return this.#done.promise;
  }

  /** The server shuts down: close with 1001 after what was sent (see `closeForShutdown`). */
  shuttingDown(): void {
    this.#transport.shuttingDown();
  }

  #open(): void {
    if (this.#admitted) this.#join();
  }

  /**
   * Ends the connection at once (the grace period of a shutdown is over), whatever the
   * socket does.
   */
  end(): void {
    this.session.close();
    this.#end();
  }

  #join(): void {
    const session = this.session;
    this.#context.admitting.delete(session);
    if (session.closed) return;
    if (this.#context.shutdownSignal.aborted) {
      // Opened after the shutdown began: nobody will tell it QUIT.
      this.shuttingDown();
      session.finish();
      return;
    }
    session.setSubscribed(this.#subscribe);
    this.#context.hub.add(session);
    if (this.#context.rateLimit) this.#bucket = new TokenBucket(this.#context.rateLimit);
    session.heardFrom(Date.now(), 0);
    log.debug("WebSocket client {name} connected", { name: session.label });
  }

  #onMessage(event: MessageEvent): void {
    const session = this.session;
    if (session.closed || this.#quitting || this.#ended) return;
    const frame = this.#parse(event.data);
    if (frame === undefined) return; // Refused: the socket is closing.
    if (!this.#admitted) {
      if (frame.type === "auth" && constantTimeEqual(frame.token, this.#context.token!)) {
        clearTimeout(this.#authTimer);
        this.#admitted = true;
        this.#join();
      } else {
        this.#refuse(REASON.unauthorized);
      }
      return;
    }
    if (frame.type === "auth") return; // Admitted already: nothing to do, as on TCP.
    session.heardFrom(Date.now(), 0);
    // A control counts too: a flood of pings must not queue without bound.
    const bytes = PENDING_OVERHEAD_BYTES + (frame.type === "msg" ? frame.payload.length : 0);
    if (this.#queuedBytes + bytes > this.#context.maxInboundBytes && this.#queue.length > 0) {
      countProtocolError(this.#context.counters, "flood");
      log.info("Closing {name}: more than {max} bytes of its messages wait to be taken", {
        name: session.label,
        max: this.#context.maxInboundBytes,
      });
      this.#queue = [];
      this.#queuedBytes = 0;
      session.fail(FLOOD);
      return;
    }
    if (frame.type === "quit") this.#quitting = true;
    this.#queue.push({ frame, bytes });
    this.#queuedBytes += bytes;
    if (!this.#pumping) this.#pump();
  }

  /** One WebSocket message as a frame, or undefined when it was refused (and the socket closes). */
  #parse(data: unknown): ClientFrame | undefined {
    const max = this.#context.maxFrameBytes;
    if (data instanceof ArrayBuffer) {
      if (data.byteLength > max) return this.#badInput(REASON.frameTooLarge, data.byteLength);
      return { type: "msg", payload: new Uint8Array(data) };
    }
    if (typeof data !== "string") return this.#badInput(REASON.malformedFrame);
    // A JSON string takes at most 6 characters a byte (\u0000); bound the parse first.
    if (data.length > 6 * max + CONTROL_OVERHEAD) {
      return this.#badInput(REASON.frameTooLarge, data.length);
    }
    let control: unknown;
    try {
      control = JSON.parse(data);
    } catch {
      return this.#badInput(NOT_A_CONTROL);
    }
    if (typeof control !== "object" || control === null || Array.isArray(control)) {
      return this.#badInput(NOT_A_CONTROL);
    }
    const { type, text, name, token, n } = control as Record<string, unknown>;
    switch (type) {
      case "msg": {
        if (typeof text !== "string") {
          return this.#badInput('malformed frame: "text" must be a string');
        }
        const payload = encoder.encode(text);
        if (payload.length > max) return this.#badInput(REASON.frameTooLarge, payload.length);
        return { type: "msg", payload };
      }
      case "hello":
        if (typeof name !== "string" || !isValidName(name)) {
          return this.#badInput(REASON.invalidName);
        }
        return { type: "hello", name };
      case "auth":
        if (typeof token !== "string") return this.#badInput(REASON.unauthorized);
        return { type: "auth", token: encoder.encode(token) };
      case "history":
        if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
          return this.#badInput('malformed frame: "n" must be a whole number, 0 or more');
        }
        return { type: "history", count: Math.min(n, MAX_HISTORY_COUNT) };
      case "ping":
      case "pong":
      case "sub":
      case "unsub":
      case "quit":
        return { type };
      default:
        return this.#badInput(
          typeof type === "string"
            ? `malformed frame: unknown type ${JSON.stringify(type).slice(0, 40)}`
            : NOT_A_CONTROL,
        );
    }
  }

  /** Closes for bad input with `reason`; counted as a protocol error (or an auth failure). */
  #badInput(reason: string, size?: number): undefined {
    if (!this.#admitted) {
      this.#refuse(REASON.unauthorized);
      return undefined;
    }
    countProtocolError(this.#context.counters, reason);
    log.info("Closing {name}: {reason}", {
      name: this.session.label,
      reason: size === undefined ? reason : `${reason} (${size} > ${this.#context.maxFrameBytes})`,
    });
    this.session.fail(reason);
    return undefined;
  }

  /** Refuses a client that did not give the token in time. */
  #refuse(reason: string): void {
    if (this.#admitted || this.session.closed) return;
    clearTimeout(this.#authTimer);
    this.#context.counters.authFailures++;
    log.info("Refused WebSocket client {name}: {reason}", { name: this.session.label, reason });
    this.#context.admitting.delete(this.session);
    this.session.fail(reason);
  }

  /**
   * Hands the queued frames to the main task, one batch at a time, waiting for room in
   * the channel and for the rate limit. Time waited is the server's: the client is held
   * (no idle deadline runs).
   */
  async #pump(): Promise<void> {
    this.#pumping = true;
    const { channel, readBatches, counters, shutdownSignal } = this.#context;
    const session = this.session;
    try {
      while (this.#queue.length > 0 && !session.closed) {
        const queue = this.#queue;
        this.#queue = [];
        this.#queuedBytes = 0;
        const batch = readBatches.take(session);
        batch.readAt = performance.now();
        let messages = 0;
        let quit = false;
        for (const { frame } of queue) {
          batch.frames[batch.frameCount++] = frame;
          if (frame.type === "msg") messages++;
          if (frame.type === "quit") quit = true;
        }
        session.hold();
        if (!channel.trySend(batch)) await channel.send(batch);
        if (quit) {
          // Answered by the main task once what came before is out; then it closes.
          await session.done;
          break;
        }
        if (this.#bucket && !shutdownSignal.aborted) {
          const pauseMs = this.#bucket.take(messages);
          if (pauseMs > 0) {
            counters.ratePauses++;
            await delayUnlessAborted(pauseMs, shutdownSignal);
          }
        }
        session.heardFrom(Date.now(), 0);
      }
    } catch (error) {
      // The channel closed: the server is finishing.
      log.debug("WebSocket client {name} stopped: {error}", {
        name: session.label,
        error: String(error),
      });
      session.close();
    } finally {
      this.#pumping = false;
    }
    if (this.#quitting || session.closed) this.#end();
  }

  #onError(event: Event): void {
    const message = (event as ErrorEvent).message ?? "";
    if (/utf-8/i.test(message)) {
      // The runtime drops such a connection itself (no close frame).
      countProtocolError(this.#context.counters, "invalid utf-8");
      log.info("Closing {name}: invalid UTF-8 in a text message", { name: this.session.label });
    } else {
      log.debug("WebSocket of {name} failed: {error}", {
        name: this.session.label,
        error: message,
      });
    }
  }

  /** The socket closed (either side): what the client sent is still taken, then it ends. */
  #onClose(): void {
    clearTimeout(this.#authTimer);
    const session = this.session;
    if (this.#admitted && !this.#quitting && !session.closed && !this.#ended) {
      // An implicit quit: finish what was sent and answer it, as for a TCP end of input.
      this.#quitting = true;
      this.#queue.push({ frame: QUIT, bytes: 0 });
      if (!this.#pumping) this.#pump();
      return;
    }
    if (!this.#pumping) this.#end();
  }

  /** Leaves the hub, closes and settles. Idempotent. */
  #end(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#authTimer);
    const session = this.session;
    this.#context.admitting.delete(session);
    this.#context.hub.remove(session);
    // A close after what is queued, bounded (CLOSE_FLUSH_TIMEOUT_MS): a tab that stopped
    // reading never takes its buffer.
    session.finish().then(() => this.#done.resolve());
    log.debug("WebSocket client {name} disconnected", { name: session.label });
  }
}

const QUIT: ClientFrame = Object.freeze({ type: "quit" });
/** What one waiting message or control counts for besides its payload. */
const PENDING_OVERHEAD_BYTES = 64;
/** Room for the JSON around a message's text in a control. */
const CONTROL_OVERHEAD = 1024;
const NOT_A_CONTROL = 'malformed frame: a text message is a JSON object with a "type"';
