/**
 * The parrot client: connect (over TCP or TLS), say `AUTH` and `HELLO`, send messages,
 * receive relayed ones.
 *
 * Outbound frames go through a write coalescer, so a burst of `send` calls becomes
 * few writes. One read task decodes what the server sends: it answers the server's
 * `PING` by itself, settles {@linkcode ParrotClient.ping} on `PONG`, and queues relayed
 * messages, `QUIT` and `ERR` as events on a bounded channel. If nobody consumes the
 * events the read task waits, and a server eventually treats the client as a slow
 * consumer: connect with `subscribe: false` when you only send.
 *
 * @module
 */

import { DEFAULT_HOST, DEFAULT_MAX_FRAME_BYTES } from "../defaults.ts";
import { Channel } from "../net/channel.ts";
import { settlesWithin } from "../net/delay.ts";
import { WriteCoalescer } from "../net/write_coalescer.ts";
import { ServerFrameDecoder } from "./frame_decoder.ts";
import { formatServerAddress, type ServerAddress } from "./server_address.ts";
import {
  encodeAuth,
  encodeHello,
  encodeMsg,
  PING_LINE,
  PONG_LINE,
  QUIT_LINE,
  UNSUB_LINE,
} from "./frame_encoder.ts";

/**
 * Options of {@linkcode ParrotClient.connect}. Give the server with `port` (and
 * `hostname`), or several with `servers`: not both.
 */
export interface ParrotClientOptions {
  /** Server address. Default `127.0.0.1`. */
  hostname?: string;
  /** Server port. */
  port?: number;
  /**
   * Several servers, tried in this order until one accepts the connection. A
   * {@linkcode ReconnectingClient} starts with the first and moves to the next one each time
   * a connection is lost or an attempt fails.
   */
  servers?: readonly ServerAddress[];
  /** Name to send with `HELLO`; without it the server uses the peer address. */
  name?: string;
  /**
   * The server's token, sent as `AUTH <token>` before anything else. A server without a
   * token ignores it, so it is always safe to send. Must be non-empty and on one line.
   */
  token?: string;
  /** Connect with TLS instead of plain TCP. Default false; implied by `caCerts`. */
  tls?: boolean;
  /**
   * PEM certificates to trust for TLS instead of the system's roots (for a self-signed
   * server certificate, the certificate itself). Implies `tls`.
   */
  caCerts?: string[];
  /** Receive relayed messages. Default true. */
  subscribe?: boolean;
  /** Largest relayed payload accepted. Default 1048576. */
  maxFrameBytes?: number;
  /** Aborting it closes the client at once. */
  signal?: AbortSignal;
}

/** Something the server said to this client. */
export type ClientEvent =
  | { type: "message"; from: string; payload: Uint8Array }
  | { type: "quit" }
  | { type: "error"; reason: string };

const encoder = new TextEncoder();
const EVENT_QUEUE = 1024;

/**
 * A connection to a parrot server.
 *
 * @example Two clients, one message relayed
 * ```ts
 * import assert from "node:assert/strict";
 * import { ParrotClient } from "./client.ts";
 * import { startParrotServer } from "./server.ts";
 *
 * const server = startParrotServer({ port: 0, output: null });
 * const ann = await ParrotClient.connect({ port: server.addr.port, name: "ann" });
 * const bob = await ParrotClient.connect({ port: server.addr.port, name: "bob" });
 * await bob.ping(); // bob's HELLO is through: he is subscribed
 * ann.send("hello bob");
 * for await (const event of bob) {
 *   assert.equal(event.type, "message");
 *   if (event.type === "message") {
 *     assert.equal(event.from, "ann");
 *     assert.equal(new TextDecoder().decode(event.payload), "hello bob");
 *   }
 *   break;
 * }
 * await ann.close();
 * await bob.close();
 * await server.shutdown();
 * ```
 */
export class ParrotClient implements AsyncIterable<ClientEvent> {
  #conn: Deno.Conn;
  #outbound: WriteCoalescer;
  #events = new Channel<ClientEvent>(EVENT_QUEUE);
  #pongWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #reading: Promise<void>;
  #closing: Promise<void> | undefined;
  #ended: unknown = undefined;
  #readError: unknown = undefined;
  #maxFrameBytes: number;
  #server: Required<ServerAddress>;

  private constructor(conn: Deno.Conn, maxFrameBytes: number, server: Required<ServerAddress>) {
    this.#conn = conn;
    this.#maxFrameBytes = maxFrameBytes;
    this.#server = server;
    this.#outbound = new WriteCoalescer(conn);
    this.#reading = this.#readLoop();
  }

  /**
   * Connects (with TLS, the handshake is done before this resolves), then sends `AUTH`
   * with `token`, `HELLO` with `name`, and `UNSUB` with `subscribe: false`. With
   * `servers`, tries them in order and uses the first that accepts.
   *
   * @throws {RangeError} Before connecting, if `name` or `token` cannot be sent, or if the
   * options give no server, or both `port` and `servers`.
   * @throws {Deno.errors.ConnectionRefused} If nobody listens; any other connect or TLS
   * handshake error as it comes.
   * @throws {AggregateError} With `servers`, if none accepted: its `errors` are each
   * server's, in order.
   *
   * @example Connect to a server that requires a token
   * ```ts
   * import assert from "node:assert/strict";
   * import { ParrotClient } from "./client.ts";
   * import { startParrotServer } from "./server.ts";
   *
   * const heard: string[] = [];
   * const server = startParrotServer({
   *   port: 0,
   *   output: null,
   *   token: "s3cret",
   *   onMessage: (from, payload) => heard.push(`${from}: ${new TextDecoder().decode(payload)}`),
   * });
   * // With TLS, add `caCerts: [await Deno.readTextFile("cert.pem")]` (or `tls: true`).
   * const client = await ParrotClient.connect({
   *   port: server.addr.port,
   *   name: "polly",
   *   token: "s3cret",
   * });
   * client.send("pieces of eight");
   * await client.ping();
   * assert.deepEqual(heard, ["polly: pieces of eight"]);
   * await client.close();
   * await server.shutdown();
   * ```
   *
   * @example Connect to the first of several servers that accepts
   * ```ts
   * import assert from "node:assert/strict";
   * import { ParrotClient } from "./client.ts";
   * import { startParrotServer } from "./server.ts";
   *
   * // Nobody listens on the first port any more.
   * const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const gone = probe.addr.port;
   * probe.close();
   * const server = startParrotServer({ port: 0, output: null });
   * const client = await ParrotClient.connect({
   *   servers: [{ port: gone }, { hostname: "127.0.0.1", port: server.addr.port }],
   * });
   * assert.equal(client.server.port, server.addr.port);
   * await client.close();
   * await server.shutdown();
   * ```
   */
  static async connect(options: ParrotClientOptions): Promise<ParrotClient> {
    const hello = [
      ...(options.token === undefined ? [] : [encodeAuth(options.token)]),
      ...(options.name === undefined ? [] : [encodeHello(options.name)]),
      ...(options.subscribe === false ? [UNSUB_LINE] : []),
    ];
    const servers = serverList(options);
    options.signal?.throwIfAborted();
    const errors: unknown[] = [];
    let conn: Deno.Conn | undefined;
    let server = servers[0];
    for (const candidate of servers) {
      try {
        conn = await openConnection(options, candidate);
        server = candidate;
        break;
      } catch (error) {
        if (servers.length === 1 || options.signal?.aborted) throw error;
        errors.push(error);
      }
    }
    if (conn === undefined) {
      throw new AggregateError(
        errors,
        `Cannot connect to any of ${servers.map(formatServerAddress).join(", ")}`,
      );
    }
    const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    const client = new ParrotClient(conn, maxFrameBytes, server);
    for (const line of hello) client.#outbound.write(line);
    const signal = options.signal;
    if (signal?.aborted) client.#closeSocket();
    if (signal) {
      const onAbort = () => client.#closeSocket();
      signal.addEventListener("abort", onAbort, { once: true });
      client.#reading.finally(() => signal.removeEventListener("abort", onAbort));
    }
    return client;
  }

  /** The server this client is connected to (with `servers`, the one that accepted). */
  get server(): Required<ServerAddress> {
    return this.#server;
  }

  /** Bytes queued and not yet written. */
  get buffered(): number {
    return this.#outbound.buffered;
  }

  /** Queues one message; returns the payload size in bytes. */
  send(message: Uint8Array | string): number {
    const payload = typeof message === "string" ? encoder.encode(message) : message;
    this.#outbound.write(encodeMsg(payload));
    return payload.length;
  }

  /** Resolves when everything queued has been written to the socket. */
  flush(): Promise<void> {
    return this.#outbound.flush();
  }

  /**
   * Sends `PING` and resolves on its `PONG`: everything sent before is through (a
   * parrot server answers only once it has handled, and printed, every earlier message).
   * Rejects when the connection ends first, or with `signal`'s reason when it is aborted
   * first (the `PONG`, if it comes later, is then ignored).
   *
   * @example Wait for the server's answer at most 5 seconds
   * ```ts
   * import { ParrotClient } from "./client.ts";
   * import { startParrotServer } from "./server.ts";
   *
   * const server = startParrotServer({ port: 0, output: null });
   * const client = await ParrotClient.connect({ port: server.addr.port });
   * client.send("squawk");
   * await client.ping({ signal: AbortSignal.timeout(5_000) });
   * await client.close();
   * await server.shutdown();
   * ```
   */
  ping(options: { signal?: AbortSignal } = {}): Promise<void> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#ended !== undefined) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => {
      const onAbort = () => waiter.reject(signal!.reason);
      const settle = () => signal?.removeEventListener("abort", onAbort);
      // The waiter stays queued after an abort, so that its PONG is not taken for the next one's.
      const waiter = {
        resolve: () => {
          settle();
          resolve();
        },
        reject: (error: unknown) => {
          settle();
          reject(error);
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#pongWaiters.push(waiter);
      this.#outbound.write(PING_LINE);
    });
  }

  /** Relayed messages, `QUIT` and `ERR` from the server, until the connection ends. */
  [Symbol.asyncIterator](): AsyncIterator<ClientEvent> {
    return this.#events[Symbol.asyncIterator]();
  }

  /**
   * Says `QUIT`, waits until the server has taken everything and closed (at most
   * `timeoutMs`), then closes. Idempotent.
   */
  close(timeoutMs = 5_000): Promise<void> {
    this.#closing ??= (async () => {
      this.#outbound.write(QUIT_LINE);
      await settlesWithin(this.#outbound.flush().then(() => this.#reading), timeoutMs);
      this.#closeSocket();
      await this.#reading;
    })();
    return this.#closing;
  }

  /** Settles when the server has closed the connection (or it failed); never rejects. */
  get finished(): Promise<void> {
    return this.#reading;
  }

  /**
   * Why reading ended, once {@linkcode ParrotClient.finished} has settled: the read or
   * decode error, or `undefined` when the server closed the connection cleanly (or it
   * has not ended yet).
   */
  get readError(): unknown {
    return this.#readError;
  }

  #closeSocket(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  async #readLoop(): Promise<void> {
    const decoder = new ServerFrameDecoder({ maxFrameBytes: this.#maxFrameBytes });
    let failure: unknown = undefined;
    try {
      for (;;) {
        const buffer = new Uint8Array(64 * 1024);
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        const { frames, error } = decoder.push(buffer.subarray(0, n));
        for (const frame of frames) {
          switch (frame.type) {
            case "msg":
              await this.#events.send({
                type: "message",
                from: frame.from,
                payload: frame.payload,
              });
              break;
            case "ping":
              this.#outbound.write(PONG_LINE);
              break;
            case "pong":
              this.#pongWaiters.shift()?.resolve();
              break;
            case "quit":
              await this.#events.send({ type: "quit" });
              break;
            case "err":
              await this.#events.send({ type: "error", reason: frame.reason });
              break;
          }
        }
        if (error) {
          failure = error;
          break;
        }
      }
    } catch (error) {
      failure = error;
    } finally {
      this.#readError = failure;
      const gone = failure ?? new Error("Connection closed before the answer arrived");
      this.#ended = gone;
      for (const waiter of this.#pongWaiters.splice(0)) waiter.reject(gone);
      this.#events.close();
      this.#closeSocket();
    }
  }
}

/**
 * The servers the options name, each with its hostname filled in.
 *
 * @throws {RangeError} If they name none, or give both `port` and `servers`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serverList } from "./client.ts";
 *
 * assert.deepEqual(serverList({ port: 8080 }), [{ hostname: "127.0.0.1", port: 8080 }]);
 * assert.deepEqual(serverList({ servers: [{ port: 8080 }, { hostname: "::1", port: 8081 }] }), [
 *   { hostname: "127.0.0.1", port: 8080 },
 *   { hostname: "::1", port: 8081 },
 * ]);
 * ```
 */
export function serverList(
  options: Pick<ParrotClientOptions, "hostname" | "port" | "servers">,
): Required<ServerAddress>[] {
  if (options.servers !== undefined) {
    if (options.port !== undefined) {
      throw new RangeError("Cannot use both port and servers: give one");
    }
    if (options.servers.length === 0) throw new RangeError("Cannot use an empty servers list");
    return options.servers.map(({ hostname, port }) => ({
      hostname: hostname ?? DEFAULT_HOST,
      port,
    }));
  }
  if (options.port === undefined) throw new RangeError("Cannot connect: give port or servers");
  return [{ hostname: options.hostname ?? DEFAULT_HOST, port: options.port }];
}

/** Opens the TCP or TLS connection; a TLS connection is returned after its handshake. */
async function openConnection(
  options: ParrotClientOptions,
  server: Required<ServerAddress>,
): Promise<Deno.Conn> {
  const { hostname, port } = server;
  if (!options.tls && options.caCerts === undefined) {
    const conn = await Deno.connect({ hostname, port });
    // Its writes are already coalesced: send them at once, not after a delayed ACK.
    conn.setNoDelay(true);
    return conn;
  }
  const conn = await Deno.connectTls({ hostname, port, caCerts: options.caCerts });
  const close = () => {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  };
  // A server that never answers the handshake must not hold up an abort.
  options.signal?.addEventListener("abort", close, { once: true });
  try {
    if (options.signal?.aborted) throw options.signal.reason;
    await conn.handshake();
  } catch (error) {
    close();
    throw options.signal?.aborted ? options.signal.reason : error;
  } finally {
    options.signal?.removeEventListener("abort", close);
  }
  return conn;
}
