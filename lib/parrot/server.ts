/**
 * The parrot server: the toolkit's `serveTcp` with parrot connection tasks on one
 * side of a bounded channel and the main task on the other.
 *
 * The main task drains the channel in batches. For each batch it copies every message
 * once into the stdout batch (a record, `<from>: <payload>\n` by default; see
 * `record_format.ts`), relays it through the hub, and writes stdout once; only then
 * does it answer the `PING`s and `QUIT`s of that batch, which makes `PONG` a barrier:
 * every message sent before the `PING` is on stdout.
 *
 * A failed stdout write (a closed pipe, a full disk) breaks that promise for good: the
 * server answers no more `PONG`s, tells every client `ERR output failed`, shuts down,
 * and `finished` rejects with an {@linkcode OutputError} that counts the messages not
 * written.
 * When the channel is full, connection tasks wait, stop reading, and the kernel's TCP
 * window slows their senders: nothing is dropped.
 *
 * Before a connection is a client it is admitted (TLS handshake, `AUTH`; see
 * `admission.ts`). A sweep a few times per write timeout cuts off subscribers whose
 * socket has stopped taking bytes.
 *
 * WebSocket clients (`upgradeWebSocket`, served by `websocket_session.ts`) are sessions
 * of the same hub: their messages go through the same channel, they count against the
 * same client limit, and shutdown closes them (1001) after what was sent before.
 *
 * Shutdown: the toolkit stops accepting and each connection is told `QUIT`; when every
 * connection task has finished (or the grace period closed it) the channel closes,
 * the main task drains what is left and flushes stdout, and `finished` settles.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  DEFAULT_AUTH_TIMEOUT_MS,
  DEFAULT_GRACE_MS,
  DEFAULT_HOST,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CLIENTS,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_OUTBOUND_BYTES,
  DEFAULT_QUEUE_CAPACITY,
  DEFAULT_READ_TIMEOUT_MS,
  DEFAULT_STALL_MS,
  DEFAULT_WRITE_TIMEOUT_MS,
  MAX_DRAIN_BATCH,
  READ_BUFFER_BUDGET_BYTES,
} from "../defaults.ts";
import type { BufferPool } from "../net/buffer_pool.ts";
import type { ConnectionSlots } from "../net/connection_slots.ts";
import { Channel } from "../net/channel.ts";
import { delay, settlesWithin } from "../net/delay.ts";
import { serveTcp } from "../net/serve_tcp.ts";
import { PipelinedWriter } from "../net/pipelined_writer.ts";
import { GatheredCommit } from "../net/gathered_commit.ts";
import { stdoutWriter } from "../net/stdout_writer.ts";
import type { ByteWriter } from "../net/write_coalescer.ts";
import { sweepDeadlines, sweepInterval } from "./deadline_sweep.ts";
import {
  closeForShutdown,
  type ConnectionCounters,
  createConnectionHandler,
  newConnectionCounters,
} from "./connection.ts";
import { constantTimeEqual } from "./admission.ts";
import { isValidName, REASON } from "./frame.ts";
import { encodeErr, PONG_LINE } from "./frame_encoder.ts";
import { Hub } from "./hub.ts";
import { type MessageHistory, replayHistory } from "./message_history.ts";
import { type ReadBatch, ReadBatchPool } from "./read_batch.ts";
import { RemoteSenders } from "./remote_senders.ts";
import { createRecordWriter, type RecordFormat, type RecordWriter } from "./record_format.ts";
import { Session } from "./session.ts";
import type { RelayPeers } from "./threads/shard_link.ts";
import { PendingWaits } from "./pending_waits.ts";
import { readBufferPool } from "./read_buffer_size.ts";
import { type HistogramSnapshot, WaitHistogram } from "./wait_histogram.ts";
import { CLOSE, WebSocketConnection, type WebSocketContext } from "./websocket_session.ts";

const log = getLogger(["parrot", "server"]);
const STDOUT_BATCH_BYTES = 1024 * 1024;
/** A stdout write of fewer bytes than this waits up to STDOUT_GATHER_MS for more (see drain). */
const STDOUT_GATHER_BYTES = 64 * 1024;
/**
 * How long a small stdout write waits for the next batches, in ms: at 1,000 msgs/s a
 * write takes up to ten messages where 1 ms made about one write each, and no one
 * reads a terminal faster. A `PONG` never waits for it.
 */
const STDOUT_GATHER_MS = 10;
/**
 * Bytes of free read buffers (256 B to 64 KiB each) kept for reuse: as much as the busy
 * connections share, so a steady load takes them from the pool, not the allocator. A
 * quiet server lets go of them (trimMemory).
 */
const READ_BUFFER_POOL_BYTES = READ_BUFFER_BUDGET_BYTES;

/** Options of {@linkcode startParrotServer}; every one has a default. */
export interface ParrotServerOptions {
  /** Address to bind. Default `127.0.0.1`. */
  hostname?: string;
  /** Port to bind; 0 picks a free one. Default 0. */
  port?: number;
  /** An existing listener to serve instead of binding. */
  listener?: Deno.Listener;
  /** Most clients at once. Default 10000. */
  maxClients?: number;
  /** Listen queue length (capped by the kernel's somaxconn). Default 4096. */
  backlog?: number;
  /** Milliseconds a frame or line may take once its first byte arrived. Default 5000. */
  readTimeoutMs?: number;
  /** Milliseconds of silence before `PING`, and again before the drop; 0 disables. Default 60000. */
  idleTimeoutMs?: number;
  /** Milliseconds clients get to finish after shutdown starts. Default 5000. */
  graceMs?: number;
  /** Largest message payload in bytes. Default 1048576. */
  maxFrameBytes?: number;
  /** Bytes queued for one client before it is a slow consumer. Default 8 MiB. */
  maxOutboundBytes?: number;
  /** Channel capacity, in read batches. Default 32. */
  queueCapacity?: number;
  /** Milliseconds one write to a client may stay in flight before it is a slow consumer. Default 10000. */
  writeTimeoutMs?: number;
  /** The token every client must send with `AUTH` as its first line. Default none. */
  token?: string;
  /** Milliseconds a connection has for its TLS handshake and `AUTH` line. Default 2000. */
  authTimeoutMs?: number;
  /** PEM certificate and key: serve TLS (`Deno.listenTls`) instead of plain TCP. */
  tls?: { cert: string; key: string };
  /** Messages per second (and burst) allowed per client; reads pause beyond it. Default none. */
  rateLimit?: { ratePerSecond: number; burst?: number };
  /** Relay messages to subscribed clients. Default true. */
  broadcast?: boolean;
  /**
   * Where message records go. Default `Deno.stdout`; `null` writes none. When a write
   * to it fails, the server stops (see {@linkcode OutputError}).
   */
  output?: ByteWriter | null;
  /** The records' format: `"text"` (`<from>: <payload>`) or `"json"`. Default `"text"`. */
  records?: RecordFormat;
  /**
   * Show control characters of payloads escaped in `"text"` records, as a terminal
   * needs. Default: when `output` is the default and `Deno.stdout` is a terminal.
   */
  escapeControls?: boolean;
  /** Called for every message in arrival order; `payload` is valid during the call only. */
  onMessage?: (from: string, payload: Uint8Array) => void;
  /**
   * Other servers' messages (cluster mode, `lib/cluster/`): the main task takes them from
   * this inbox between read batches and relays them to the subscribed clients like local
   * ones (same framing and limits, the original sender's name). They are not `onMessage`'s.
   */
  remote?: RemoteMessages;
  /** Also write the records of `remote` messages, as `<from>@<origin>`. Default false. */
  printRemote?: boolean;
  /**
   * Called for every `remote` message, in the order relayed (the live page lists them);
   * `payload` is valid during the call only.
   */
  onRemote?: (origin: string, from: string, payload: Uint8Array) => void;
  /**
   * Records every message printed, in order, and answers `HISTORY <n>` (`--history`;
   * `openHistory()` of `lib/history/`). The caller closes it after `finished`. Default
   * none: `HISTORY` sends nothing.
   */
  history?: MessageHistory;
  /** Aborting it starts the graceful shutdown. */
  signal?: AbortSignal;
}

/**
 * Other servers' messages waiting for the main task: cluster mode's `RemoteInbox`
 * (`lib/cluster/remote_inbox.ts`), or anything that hands messages over the same way.
 */
export interface RemoteMessages {
  /** Messages waiting. */
  readonly size: number;
  /** Sets what to call when a message arrives while none was waiting. */
  notify(onWaiting: () => void): void;
  /**
   * Hands every waiting message to `each`, oldest first; the payloads stay valid until the
   * next call. Returns how many.
   */
  drain(each: (origin: string, from: string, payload: Uint8Array) => void): number;
}

/**
 * What one shard of a server on several threads (`threads/sharded_server.ts`) is wired
 * to besides its {@linkcode ParrotServerOptions}. Internal: not part of the public API.
 */
export interface ShardPlumbing {
  /** The other shards, which get every relay batch that has subscribers there. */
  peers?: RelayPeers;
  /** The client limit shared by all shards, in place of `maxClients`. */
  connectionSlots?: ConnectionSlots;
  /**
   * Called before a warning that is logged once per process (running out of file
   * descriptors); it returns whether this shard is the first, as the shards share one
   * log. Default: this server logs it once.
   */
  claimWarning?: (warning: "out of files") => boolean;
}

/** Counters of a running server, for stats lines and tests. */
export interface ServerStats {
  /** Clients connected now. */
  clients: number;
  /** Connections served since start (not counting those refused by the client limit). */
  connections: number;
  /** Messages received since start. */
  messages: number;
  /** Payload bytes received since start. */
  bytes: number;
  /** Messages relayed to subscribers since start (one per subscriber). */
  relayed: number;
  /** Bytes relayed to subscribers since start: the `MSG` frames queued for them. */
  relayedBytes: number;
  /** Messages whose records are written to stdout (or taken, when records go nowhere). */
  written: number;
  /** Bytes written to stdout (records, not payloads only). */
  outputBytes: number;
  /** Read batches waiting in the channel. */
  queueDepth: number;
  /** Connections refused by the client limit. */
  rejected: number;
  /** Clients cut off as slow consumers. */
  slowConsumers: number;
  /** Messages queued for slow consumers that they did not receive. */
  slowConsumerDrops: number;
  /** Connections refused for a missing, wrong or late `AUTH`. */
  authFailures: number;
  /** Connections closed because their TLS handshake failed or took too long. */
  tlsFailures: number;
  /** Reads paused by the rate limit. */
  ratePauses: number;
  /** Clients closed by the read timeout. */
  readTimeouts: number;
  /** Clients closed by the idle timeout. */
  idleTimeouts: number;
  /** Clients closed for a protocol error. */
  protocolErrors: number;
  /**
   * `protocolErrors` by reason, the text after `ERR` (`"frame too large"`, ...): only
   * the reasons that occurred. (Empty from a server on several threads.)
   */
  protocolErrorsByReason: Readonly<Record<string, number>>;
  /**
   * How long messages waited between the read that brought them and the end of the
   * stdout write that holds them, in seconds (or until they were taken, when records
   * go nowhere). Empty from a server on several threads.
   */
  outputWait: HistogramSnapshot;
  /** Messages received but not written to the output, which failed (0 while it works). */
  unwrittenMessages: number;
}

/**
 * Why a server's `finished` rejects: a write to its output (stdout) failed, so not every
 * message received was written; the server stopped. `cause` is the write's error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutputError } from "./server.ts";
 *
 * const error = new OutputError(4, 6, new Error("Broken pipe"));
 * assert.equal(error.message, "Cannot write the messages to stdout (Broken pipe): 4 of 6 were not written");
 * ```
 */
export class OutputError extends Error {
  /** Messages received and not written. */
  readonly unwritten: number;
  /** Messages received in all. */
  readonly received: number;

  /** `unwritten` of `received` messages were not written because of `cause`. */
  constructor(unwritten: number, received: number, cause: unknown) {
    super(
      `Cannot write the messages to stdout (${
        cause instanceof Error ? cause.message : String(cause)
      }): ${unwritten} of ${received} were not written`,
      { cause },
    );
    this.name = "OutputError";
    this.unwritten = unwritten;
    this.received = received;
  }
}

/**
 * One connected client, as {@linkcode ParrotServer.clients} lists it.
 *
 * @example List the clients of a server
 * ```ts
 * import assert from "node:assert/strict";
 * import { type ClientInfo, startParrotServer } from "./server.ts";
 *
 * const server = startParrotServer({ port: 0, output: null });
 * const conn = await Deno.connect({ port: server.addr.port });
 * await conn.write(new TextEncoder().encode("HELLO ann\nPING\n"));
 * await conn.read(new Uint8Array(16)); // PONG
 * const [ann]: ClientInfo[] = server.clients();
 * assert.equal(ann.name, "ann");
 * assert.equal(ann.transport, "tcp");
 * conn.close();
 * await server.shutdown();
 * ```
 */
export interface ClientInfo {
  /** A number unique among the server's clients of every transport. */
  id: number;
  /** Its name (`HELLO`), or its address before it gave one. */
  name: string;
  /** How it is connected. */
  transport: "tcp" | "tls" | "websocket";
  /** Its address, `ip:port`. */
  address: string;
  /** Messages the server took from it. */
  messagesIn: number;
  /** Relayed messages queued for it (delivered unless it was cut off). */
  messagesOut: number;
  /** When it connected, in milliseconds since the epoch. */
  connectedAt: number;
}

/** Options of {@linkcode ParrotServer.upgradeWebSocket}. */
export interface WebSocketUpgradeOptions {
  /**
   * The caller (the HTTP side) has checked the server's token (a cookie, a Bearer
   * header): the client need not send an `auth` control. Default false; a request
   * with `Authorization: Bearer <token>` counts as checked too.
   */
  authenticated?: boolean;
}

/** A running parrot server. */
export interface ParrotServer {
  /** The bound address, with the real port. */
  readonly addr: Deno.NetAddr;
  /**
   * Resolves when the server has shut down and stdout is flushed; rejects with an
   * {@linkcode OutputError} when a write to stdout failed (the server stopped then).
   */
  readonly finished: Promise<void>;
  /** A snapshot of the counters. */
  stats(): ServerStats;
  /**
   * The counters as of now: the same as `stats()` for one server; a sharded server
   * asks every shard for its current ones, where `stats()` may be 100 ms old.
   */
  freshStats(): Promise<ServerStats>;
  /** Starts the graceful shutdown and returns `finished`. */
  shutdown(): Promise<void>;
  /**
   * Lets go of the buffers kept for reuse: the free read and relay buffers, and the
   * stdout batches if nothing is being written. For a server that has gone quiet;
   * they are allocated again when traffic returns.
   */
  trimMemory(): void;
  /**
   * Makes a WebSocket client of an HTTP request (from `Deno.serve`), joining the same
   * conversation as the TCP clients under the same limits; the protocol is in
   * docs/PROTOCOL.md ("WebSocket"). The request's query may name the client
   * (`?name=ann`) and say `subscribe=0`. Answers 400 for a request that is not a
   * WebSocket upgrade or has a bad query, 503 once the shutdown has begun, and 501 on a
   * server with several threads (WebSocket clients need one).
   */
  upgradeWebSocket(
    request: Request,
    info: { remoteAddr: Deno.NetAddr },
    options?: WebSocketUpgradeOptions,
  ): Response;
  /**
   * The connected clients of every transport (admitted ones). A server with several
   * threads lists none: its clients live in the shards' Workers.
   */
  clients(): ClientInfo[];
}

/**
 * Starts a parrot server. Throws at once when the address cannot be bound.
 *
 * @example Receive one message
 * ```ts
 * import assert from "node:assert/strict";
 * import { startParrotServer } from "./server.ts";
 *
 * const messages: string[] = [];
 * const server = startParrotServer({
 *   port: 0,
 *   output: null,
 *   onMessage: (from, payload) => messages.push(`${from}: ${new TextDecoder().decode(payload)}`),
 * });
 * const conn = await Deno.connect({ port: server.addr.port });
 * await conn.write(new TextEncoder().encode("HELLO ann\nMSG 2\nhi\nQUIT\n"));
 * await new Response(conn.readable).arrayBuffer(); // the server closes after QUIT
 * await server.shutdown();
 * assert.deepEqual(messages, ["ann: hi"]);
 * ```
 */
export function startParrotServer(options: ParrotServerOptions = {}): ParrotServer {
  return startParrotServerWith(options, {});
}

/**
 * {@linkcode startParrotServer} for one shard of a server on several threads, wired to
 * the other shards by `shard`. Internal: the shards' entry, not part of the public API.
 *
 * @example A server with no other shards, as startParrotServer() runs one
 * ```ts
 * import { startParrotServerWith } from "./server.ts";
 *
 * const server = startParrotServerWith({ port: 0, output: null }, {});
 * await server.shutdown();
 * ```
 */
export function startParrotServerWith(
  options: ParrotServerOptions,
  shard: ShardPlumbing,
): ParrotServer {
  const channel = new Channel<ReadBatch>(options.queueCapacity ?? DEFAULT_QUEUE_CAPACITY);
  const counters: ConnectionCounters & DrainCounters & { rejected: number } = {
    messages: 0,
    written: 0,
    outputBytes: 0,
    bytes: 0,
    relayed: 0,
    rejected: 0,
    ...newConnectionCounters(),
  };
  const outputWait = new WaitHistogram();
  const maxOutboundBytes = options.maxOutboundBytes ?? DEFAULT_MAX_OUTBOUND_BYTES;
  const writeTimeoutMs = options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS;
  const hub = new Hub({
    maxOutboundBytes,
    onSlowConsumer: ({ session, cause, dropped }) =>
      log.warn("Cut off slow consumer {name}: {why}; {dropped} messages not delivered", {
        name: session.label,
        why: cause === "max outbound"
          ? `more than ${maxOutboundBytes} bytes queued`
          : `a write stalled for more than ${writeTimeoutMs}ms`,
        dropped,
      }),
    peers: shard.peers,
    // With a history, when each subscriber's live relays began: HISTORY replays up to it.
    onSubscribe: options.history && ((session) => liveSince.set(session, options.history!.lastId)),
  });
  const liveSince = new WeakMap<Session, number>();
  shard.peers?.onForwarded((bytes, messages, done) => {
    counters.relayed += hub.deliverForwarded(bytes, messages, done);
  });
  const rate = options.rateLimit;
  const readBatches = new ReadBatchPool();
  const readBuffers = readBufferPool(READ_BUFFER_POOL_BYTES);
  const admitting = new Set<Session>();
  let lastClientId = 0;
  const nextClientId = () => ++lastClientId;
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const token = options.token ? new TextEncoder().encode(options.token) : undefined;
  const authTimeoutMs = options.authTimeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS;
  const rateLimit = rate &&
    { ratePerSecond: rate.ratePerSecond, burst: rate.burst ?? rate.ratePerSecond };
  // One client limit for every transport: TCP connections and WebSockets take a slot.
  const slots = shard.connectionSlots ?? countedSlots(options.maxClients ?? DEFAULT_MAX_CLIENTS);
  const stopping = new AbortController();
  const webSockets = new Set<WebSocketConnection>();
  const handler = createConnectionHandler({
    hub,
    channel,
    readBuffers,
    readBatches,
    admitting,
    maxFrameBytes,
    admission: { token, authTimeoutMs },
    rateLimit,
    counters,
    nextClientId,
  });
  const webSocketContext: WebSocketContext = {
    hub,
    channel,
    readBatches,
    maxFrameBytes,
    // As much unread input as a client may have queued the other way.
    maxInboundBytes: Math.max(maxOutboundBytes, maxFrameBytes),
    token,
    authTimeoutMs,
    rateLimit,
    admitting,
    counters,
    shutdownSignal: stopping.signal,
  };
  let warnedAboutFiles = false;
  const claimWarning = shard.claimWarning ?? (() => {
    const first = !warnedAboutFiles;
    warnedAboutFiles = true;
    return first;
  });
  const tcp = serveTcp({
    hostname: options.hostname ?? DEFAULT_HOST,
    port: options.port ?? 0,
    listener: options.listener,
    // admission.ts does the handshake, under the auth deadline, and counts its failures.
    tls: options.tls && !options.listener
      ? { ...options.tls, handshakeByHandler: true }
      : undefined,
    maxConnections: Infinity,
    connectionSlots: slots,
    backlog: options.backlog,
    // Each connection's task ends by closing its session (connection.ts).
    handlerCloses: true,
    onShutdown: () => {
      stopping.abort();
      for (const webSocket of webSockets) webSocket.shuttingDown();
      closeForShutdown({ hub, admitting });
    },
    gracePeriodMs: options.graceMs ?? DEFAULT_GRACE_MS,
    signal: options.signal,
    onReject: async (conn) => {
      counters.rejected++;
      await conn.write(TOO_MANY_CLIENTS);
      // Closing with unread input would reset the connection and lose the ERR line:
      // say we are done writing, then read (and drop) until the peer closes too.
      await conn.closeWrite();
      await settlesWithin(conn.readable.pipeTo(new WritableStream()), REJECT_LINGER_MS);
    },
    onAcceptError: (error, held) => {
      if (isOutOfFiles(error)) {
        if (claimWarning("out of files")) {
          log.error(
            "Cannot accept more connections: out of file descriptors while holding {held}; raise the limit with `ulimit -n`",
            { held },
          );
        }
      } else {
        log.warn("Cannot accept a connection: {error}", { error: String(error) });
      }
    },
    onHandlerError: (error, info) =>
      log.error("Connection {id} failed: {error}", { id: info.id, error: String(error) }),
  }, handler);

  // A quiet moment's small writes to a file or /dev/null are synchronous (stdout_writer.ts).
  const output = options.output === undefined ? stdoutWriter() : options.output;
  // A batch relays at most half of what a subscriber may have queued, so a subscriber
  // that keeps up is never taken for a slow one because of one big batch.
  const batchBudget = Math.min(STDOUT_BATCH_BYTES, Math.floor(maxOutboundBytes / 2));
  let outputFailure: { error: unknown } | undefined;
  // stdout is written behind the drain: relays and the next messages need not wait for
  // a file write. PONG and QUIT wait for the bytes before them (afterWritten).
  // Counted per write (a batch of records), not per message.
  const countedOutput: ByteWriter | null = output && {
    write: (p) =>
      output.write(p).then((n) => {
        counters.outputBytes += n;
        return n;
      }),
  };
  const stdout = countedOutput
    ? new PipelinedWriter(countedOutput, {
      initialBytes: STDOUT_BATCH_BYTES,
      onError: (error) => {
        // The PONG promise cannot be kept any more: stop, and say so to everyone.
        outputFailure = { error };
        log.error(
          "Cannot write messages to stdout: {error}; telling every client ERR {reason} and stopping",
          { error: String(error), reason: REASON.outputFailed },
        );
        for (const session of admitting) session.close();
        for (const session of hub.sessions()) session.fail(REASON.outputFailed);
        tcp.shutdown();
      },
    })
    : null;
  const records = createRecordWriter(options.records ?? "text", {
    escapeControls: options.escapeControls ??
      (options.output === undefined && Deno.stdout.isTerminal()),
  });
  // Other servers' messages wake the main task with an empty read batch.
  const wakeSession = new Session({ write: (p) => Promise.resolve(p.length), close() {} }, 0, "");
  options.remote?.notify(() => {
    const wake = readBatches.take(wakeSession);
    if (!channel.trySend(wake)) readBatches.give(wake); // busy: it drains the inbox anyway
  });
  const draining = drain({
    remote: options.remote,
    printRemote: options.printRemote ?? false,
    onRemote: options.onRemote,
    channel,
    hub,
    counters,
    stdout,
    records,
    batchBudget,
    broadcast: options.broadcast ?? true,
    onMessage: options.onMessage,
    history: options.history && {
      store: options.history,
      liveSince,
      maxReplayBytes: Math.max(1, Math.floor(maxOutboundBytes / 2)),
    },
    readBuffers,
    readBatches,
    outputWait,
  });
  // One sweep enforces the read and idle deadlines of every client and cuts off
  // subscribers whose socket stopped taking bytes, a few times per shortest deadline.
  const deadlines = {
    readTimeoutMs: options.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
  };
  const sweep = setInterval(() => {
    const now = Date.now();
    sweepDeadlines(hub.sessions(), now, deadlines, counters);
    hub.cutOffStalled(now - writeTimeoutMs);
  }, sweepInterval(deadlines.readTimeoutMs, deadlines.idleTimeoutMs, writeTimeoutMs));
  const finished = (async () => {
    await tcp.finished;
    // WebSocket clients were told QUIT with the TCP ones; whoever is left after the
    // grace period is closed.
    const webSocketsDone = () => Promise.all([...webSockets].map((webSocket) => webSocket.done));
    if (!await settlesWithin(webSocketsDone(), options.graceMs ?? DEFAULT_GRACE_MS)) {
      for (const webSocket of webSockets) webSocket.end();
    }
    await webSocketsDone();
    clearInterval(sweep);
    channel.close();
    await draining;
    if (outputFailure) {
      const unwritten = counters.messages - counters.written;
      log.error("{unwritten} of {messages} messages were not written to stdout", {
        unwritten,
        messages: counters.messages,
      });
      throw new OutputError(unwritten, counters.messages, outputFailure.error);
    }
  })();
  // Rejects for whoever awaits it; the failure is logged either way, so a caller that
  // never looks at `finished` does not crash on an unhandled rejection.
  finished.catch(() => {});

  const stats = (): ServerStats => ({
    connections: counters.connections,
    messages: counters.messages,
    bytes: counters.bytes,
    relayed: counters.relayed,
    relayedBytes: hub.relayedBytes,
    written: counters.written,
    outputBytes: counters.outputBytes,
    rejected: counters.rejected,
    authFailures: counters.authFailures,
    tlsFailures: counters.tlsFailures,
    ratePauses: counters.ratePauses,
    readTimeouts: counters.readTimeouts,
    idleTimeouts: counters.idleTimeouts,
    protocolErrors: counters.protocolErrors,
    protocolErrorsByReason: { ...counters.protocolErrorsByReason },
    outputWait: outputWait.snapshot(),
    unwrittenMessages: stdout?.broken ? counters.messages - counters.written : 0,
    clients: hub.size,
    queueDepth: channel.size,
    slowConsumers: hub.slowConsumers,
    slowConsumerDrops: hub.slowConsumerDrops,
  });
  function upgradeWebSocket(
    request: Request,
    info: { remoteAddr: Deno.NetAddr },
    upgrade: WebSocketUpgradeOptions = {},
  ): Response {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return plainText(
        400,
        "Cannot serve this request: it is not a WebSocket upgrade (no Upgrade: websocket header)",
      );
    }
    if (stopping.signal.aborted) {
      return plainText(503, "Cannot accept a WebSocket client: the server is shutting down");
    }
    const query = new URL(request.url).searchParams;
    const name = query.get("name") ?? undefined;
    if (name !== undefined && !isValidName(name)) {
      return plainText(
        400,
        `Cannot use the name ${
          JSON.stringify(name.slice(0, 80))
        }: a name is 1 to 64 visible ASCII characters without spaces`,
      );
    }
    const subscribeParam = query.get("subscribe");
    if (subscribeParam !== null && subscribeParam !== "0" && subscribeParam !== "1") {
      return plainText(
        400,
        `Cannot use subscribe=${JSON.stringify(subscribeParam.slice(0, 20))}: it is 0 or 1`,
      );
    }
    // Read before the upgrade: Deno's request and its info are gone once it is upgraded.
    const { hostname, port } = info.remoteAddr;
    const authenticated = upgrade.authenticated === true || bearerMatches(request, token);
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = Deno.upgradeWebSocket(request);
    } catch (error) {
      return plainText(
        400,
        `Cannot upgrade to a WebSocket: ${error instanceof Error ? error.message : error}`,
      );
    }
    const { socket, response } = upgraded;
    if (!slots.tryTake()) {
      counters.rejected++;
      socket.addEventListener(
        "open",
        () => socket.close(CLOSE.tryAgainLater, REASON.tooManyClients),
      );
      return response;
    }
    const connection = new WebSocketConnection(socket, {
      id: nextClientId(),
      address: `${hostname}:${port}`,
      name,
      subscribe: subscribeParam !== "0",
      authenticated,
    }, webSocketContext);
    webSockets.add(connection);
    connection.done.then(() => {
      webSockets.delete(connection);
      slots.give();
    });
    return response;
  }

  return {
    addr: tcp.addr,
    finished,
    stats,
    upgradeWebSocket,
    clients: () =>
      Array.from(hub.sessions(), (session) => ({
        id: session.id,
        name: session.name,
        transport: session.transport,
        address: session.address,
        messagesIn: session.messagesIn,
        messagesOut: session.messagesOut,
        connectedAt: session.connectedAt,
      })),
    freshStats: () => Promise.resolve(stats()),
    trimMemory() {
      readBuffers.clear();
      readBatches.clear();
      hub.trim();
      stdout?.release();
    },
    shutdown() {
      tcp.shutdown();
      return finished;
    },
  };
}

const TOO_MANY_CLIENTS = encodeErr(REASON.tooManyClients);
/** A plain-text HTTP answer: one line saying what failed and why. */
function plainText(status: number, text: string): Response {
  return new Response(`${text}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/** Whether `request` carries `Authorization: Bearer <token>` with the server's token. */
function bearerMatches(request: Request, token: Uint8Array | undefined): boolean {
  if (token === undefined) return false;
  const header = request.headers.get("authorization");
  if (header === null || !/^bearer /i.test(header)) return false;
  return constantTimeEqual(new TextEncoder().encode(header.slice(7).trim()), token);
}

/** At most `limit` clients at once, in this thread. */
function countedSlots(limit: number): ConnectionSlots {
  let taken = 0;
  return {
    tryTake: () => taken < limit && ++taken > 0,
    give: () => void taken--,
  };
}
/** How long a refused connection may take to close its side after our ERR line. */
const REJECT_LINGER_MS = 1_000;

/** What the main task counts. */
interface DrainCounters {
  /** Messages received. */
  messages: number;
  /** Payload bytes received. */
  bytes: number;
  /** Relay deliveries. */
  relayed: number;
  /** Messages whose records are known to be written to stdout (or to go nowhere). */
  written: number;
  /** Bytes written to stdout. */
  outputBytes: number;
}

/** What the main task works with; see {@linkcode drain}. */
interface DrainContext {
  /** Where the connection tasks put their frames. */
  channel: Channel<ReadBatch>;
  /** The relay, and the sessions PONG and QUIT go to. */
  hub: Hub;
  counters: DrainCounters;
  /** The stdout batches, or null when records go nowhere. */
  stdout: PipelinedWriter | null;
  /** How a message becomes a record. */
  records: RecordWriter;
  /** Payload bytes one drain batch takes at most (it takes one read batch at least). */
  batchBudget: number;
  /** Relay messages to subscribers. */
  broadcast: boolean;
  onMessage?: (from: string, payload: Uint8Array) => void;
  /**
   * Where every message is recorded; `liveSince` has, for each subscriber, the last id
   * recorded when it subscribed (its live relays hold every later one).
   */
  history?: {
    store: MessageHistory;
    liveSince: WeakMap<Session, number>;
    maxReplayBytes: number;
  };
  /** Where read buffers go back once their frames are consumed. */
  readBuffers: BufferPool;
  /** Where read batches go back. */
  readBatches: ReadBatchPool;
  /** Where the wait of each read batch's messages goes once they are written. */
  outputWait: WaitHistogram;
  /** Other servers' messages, taken once per drain batch. */
  remote?: RemoteMessages;
  /** Write records of the remote messages too. */
  printRemote: boolean;
  /** Called for every remote message, in order. */
  onRemote?: (origin: string, from: string, payload: Uint8Array) => void;
}

/** The main task: drains the channel until it is closed and empty, then flushes stdout. */
async function drain(context: DrainContext): Promise<void> {
  const { channel, hub, counters, stdout, records, batchBudget, broadcast, onMessage } = context;
  const { readBuffers, readBatches, outputWait, remote: remoteInbox, printRemote, onRemote } =
    context;
  const remoteSenders = new RemoteSenders();
  const history = context.history?.store;
  /** When the drain batch began: the time the history records (one clock read a batch). */
  let batchTime = 0;
  /** The read times of the messages that stdout has yet to write, a group per drain batch. */
  const waits = new PendingWaits();
  const pongs: Session[] = [];
  const quits: Session[] = [];
  const consumed: Uint8Array[] = [];

  const sendPong = (session: Session) => session.send(PONG_LINE);
  /** When stdout's small writes go: together, at most STDOUT_GATHER_MS apart. */
  const stdoutCommit = stdout
    ? new GatheredCommit(stdout, { gatherMs: STDOUT_GATHER_MS })
    : undefined;
  const finishNow = (session: Session) => session.finish();

  /**
   * One message: `bytes[start, end)` is its payload. Copied once, into the stdout batch.
   * The caller records it in the history (one range at a time, or a read's at once).
   */
  function message(session: Session, bytes: Uint8Array, start: number, end: number): void {
    counters.messages++;
    counters.bytes += end - start;
    session.messagesIn++;
    if (stdout) records.write(stdout, session, bytes, start, end);
    // A view only for whoever needs one.
    if (onMessage) onMessage(session.name, bytes.subarray(start, end));
    if (broadcast) hub.queueRelay(session, bytes, start, end);
  }

  /**
   * One message of another server (cluster mode), checked there (size, name): relayed to
   * every subscriber here with its sender's name, and printed only with `printRemote`.
   * `payload` stays valid until the next inbox drain, after this batch's relays.
   */
  function remote(origin: string, from: string, payload: Uint8Array): void {
    if (printRemote && stdout) {
      records.write(stdout, remoteSenders.record(origin, from), payload, 0, payload.length);
    }
    if (history) history.recordRange(from, payload, 0, payload.length, batchTime, origin);
    if (onRemote) onRemote(origin, from, payload);
    if (broadcast) hub.queueRelay(remoteSenders.session(from), payload, 0, payload.length);
  }

  /** Records the messages of `ranges[first, last)` in the history, at once if it can. */
  function recordRun(
    session: Session,
    chunk: Uint8Array,
    ranges: number[],
    first: number,
    last: number,
  ): void {
    if (history!.recordRanges) {
      history!.recordRanges(session.name, chunk, ranges, first, last, batchTime);
      return;
    }
    for (let i = first; i < last; i += 2) {
      history!.recordRange(session.name, chunk, ranges[i], ranges[i + 1], batchTime);
    }
  }

  function take(batch: ReadBatch): void {
    const session = batch.session;
    const messagesBefore = counters.messages;
    if (batch.buffer) consumed.push(batch.buffer);
    const { frames, frameCount, ranges, chunk } = batch;
    let range = 0;
    /** Where the run of ranges not yet recorded in the history begins (in `ranges`). */
    let unrecorded = 0;
    for (let i = 0; i < frameCount; i++) {
      const frame = frames[i];
      if (frame.type === "range") {
        message(session, chunk!, ranges[range], ranges[range + 1]);
        range += 2;
        continue;
      }
      // The history takes a run of ranges at once, in order with the other frames.
      if (history && unrecorded < range) {
        recordRun(session, chunk!, ranges, unrecorded, range);
        unrecorded = range;
      }
      switch (frame.type) {
        case "msg":
        case "text":
          message(session, frame.payload, 0, frame.payload.length);
          if (history) {
            history.recordRange(session.name, frame.payload, 0, frame.payload.length, batchTime);
          }
          break;
        case "hello":
          session.setName(frame.name);
          break;
        case "ping":
          pongs.push(session);
          break;
        case "sub":
          // Relays queued so far go out first: the new subscriber's live relays, and so
          // its HISTORY, begin after the messages recorded until now.
          if (history && !session.subscribed) counters.relayed += hub.flushRelays();
          hub.subscribe(session, true);
          break;
        case "history":
          if (history) {
            // A subscriber has had every message since it subscribed live: replay up to
            // there (no gap, no duplicate); for others, up to now. Ahead of the relays
            // of this batch, which flushRelays() sends after.
            const { liveSince, maxReplayBytes } = context.history!;
            const upTo = session.subscribed
              ? liveSince.get(session) ?? history.lastId
              : history.lastId;
            session.messagesOut += replayHistory(
              history,
              session,
              frame.count,
              upTo,
              maxReplayBytes,
            );
          }
          break;
        case "unsub":
          hub.subscribe(session, false);
          break;
        case "quit":
          quits.push(session);
          break;
        case "pong":
        case "auth": // Already admitted (or no token required): nothing to do.
          break;
      }
    }
    if (history && unrecorded < range) recordRun(session, chunk!, ranges, unrecorded, range);
    const messages = counters.messages - messagesBefore;
    if (messages > 0 && batch.readAt > 0) {
      waits.add(batch.readAt, messages);
    }
    readBatches.give(batch);
  }

  for (;;) {
    let first: ReadBatch;
    try {
      first = await channel.receive();
    } catch {
      break; // Closed and drained.
    }
    const bytesBefore = counters.bytes;
    if (history) batchTime = Date.now();
    take(first);
    for (let taken = 1; taken < MAX_DRAIN_BATCH; taken++) {
      if (counters.bytes - bytesBefore >= batchBudget) break;
      const next = channel.tryReceive();
      if (!next.ok) break;
      take(next.value);
    }
    if (remoteInbox !== undefined && remoteInbox.size > 0) remoteInbox.drain(remote);
    // The batch's messages go to the subscribers encoded in one buffer. Both stdout and
    // the relays have copied every payload now: the read buffers can be used again.
    counters.relayed += hub.flushRelays();
    for (const buffer of consumed) readBuffers.give(buffer);
    consumed.length = 0;
    // Subscribers here or on other shards fell behind: take no more input for a
    // moment, so that they can catch up before the slow-consumer rule applies.
    // (Awaited only when there is something to wait for: an await costs garbage.)
    if (hub.fallingBehind) await hub.whenCaughtUp(DEFAULT_STALL_MS);
    // The history's database is behind: wait, as for stdout, rather than skip messages.
    if (history?.congested) await history.whenRoom?.();
    // With a history, PONG also promises that the messages before it are stored (they
    // survive kill -9), and QUIT's close waits as its PONG does.
    const stored = history?.flush && (pongs.length > 0 || quits.length > 0)
      ? history.flush()
      : undefined;
    const pong = stored
      ? (session: Session) => void stored.then(() => sendPong(session))
      : sendPong;
    const finish = stored
      ? (session: Session) => void stored.then(() => finishNow(session))
      : finishNow;
    if (stdout) {
      // PONG promises that the messages before it are on stdout: no PONG when they
      // are not (the output failed; the clients get ERR output failed instead).
      for (const session of pongs) {
        stdout.afterWritten((written) => written && pong(session));
      }
      for (const session of quits) {
        stdout.afterWritten((written) => written && finish(session));
      }
      const upTo = counters.messages;
      const group = waits.closeGroup();
      stdout.afterWritten((written) => {
        if (written) {
          counters.written = upTo;
          waits.record(group, outputWait, performance.now());
        } else {
          waits.discard(group);
        }
      });
      // A PONG or a close waits for this write, and a full batch goes at once; otherwise
      // the write waits up to STDOUT_GATHER_MS for the next batches (gathered_commit.ts).
      // At a quiet moment a drain batch is a message or two, and a stdout write each cost
      // more than the message; relays never wait for it (they are out already).
      if (pongs.length > 0 || quits.length > 0 || stdout.length >= STDOUT_GATHER_BYTES) {
        stdoutCommit!.now();
      } else {
        stdoutCommit!.gather();
      }
      // Ahead of the writer by a whole batch: wait for it, so memory stays bounded.
      if (stdout.length >= batchBudget) await stdout.room(batchBudget);
    } else {
      for (const session of pongs) pong(session);
      for (const session of quits) finish(session);
      counters.written = counters.messages;
      waits.record(waits.closeGroup(), outputWait, performance.now());
      // No stdout write to wait for: still let the subscribers' writes run between batches.
      if (channel.size > 0) await delay(0);
    }
    pongs.length = 0;
    quits.length = 0;
  }
  stdoutCommit?.dispose();
  await stdout?.idle();
}

function isOutOfFiles(error: unknown): boolean {
  return error instanceof Error && /too many open files|os error 24|EMFILE/i.test(error.message);
}
