/**
 * `ClusterLink`: one parrot server's membership in a cluster of parrot servers joined through
 * NATS. The one object a server holds for cluster mode.
 *
 * It owns the NATS connection and its life (first connection retried until it works,
 * reconnects forever, a loss logged once and never fatal), the publishing side (messages
 * batched per turn into frames, kept in the {@linkcode ReplayRing} until published, replays
 * served from it) and the receiving side (frames decoded and checked, fed to the
 * {@linkcode OriginTracker} that delivers them in order, replay requests sent and timed).
 * docs/CLUSTER.md gives the design, the delivery contract and the failure table.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { connect, createInbox } from "@nats-io/transport-node";
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import {
  DEFAULT_CLUSTER_BATCH_BYTES,
  DEFAULT_CLUSTER_BUFFER_BYTES,
  DEFAULT_CLUSTER_HEAD_INTERVAL_MS,
  DEFAULT_CLUSTER_RECONNECT_WAIT_MS,
  DEFAULT_CLUSTER_REPLAY_ATTEMPTS,
  DEFAULT_CLUSTER_REPLAY_TIMEOUT_MS,
  DEFAULT_CLUSTER_SUBJECT,
  DEFAULT_MAX_FRAME_BYTES,
  MAX_CLUSTER_RING_MESSAGES,
} from "../defaults.ts";
import {
  BatchEncoder,
  type ClusterFrame,
  ClusterFrameError,
  decodeClusterFrame,
  encodeHead,
  encodeReplayEnd,
  encodeReplayRequest,
  FrameKind,
  type FrameOrigin,
  randomBootId,
} from "./cluster_frame.ts";
import { isValidClusterSubject, isValidServerName } from "./cluster_flags.ts";
import {
  ClusterConfigError,
  type ClusterConnectSettings,
  natsConnectionOptions,
} from "./nats_options.ts";
import { OriginTracker } from "./origin_tracker.ts";
import { ReplayRing, type RingEntry } from "./replay_ring.ts";
import { guardOrphanSocketErrors } from "./socket_error_guard.ts";

const log = getLogger(["parrot", "cluster"]);

/** Settings of a {@linkcode ClusterLink}. */
export interface ClusterLinkOptions extends ClusterConnectSettings {
  /** This server's name (`--server-name`, by default its host:port). */
  serverName: string;
  /** NATS subject prefix (`--cluster-subject`, default {@linkcode DEFAULT_CLUSTER_SUBJECT}). */
  subject?: string;
  /** Bytes of recent messages kept (`--cluster-buffer`, default {@linkcode DEFAULT_CLUSTER_BUFFER_BYTES}). */
  bufferBytes?: number;
  /** Largest payload accepted from the cluster (the server's max frame). */
  maxPayloadBytes?: number;
  /**
   * A message of another server, in that server's order, exactly once. `payload` is a view
   * that is valid during the call only: copy it to keep it.
   */
  onMessage: (origin: string, from: string, payload: Uint8Array) => void;
  /** Called after the messages of one NATS message were all given to `onMessage`. */
  onBatchEnd?: () => void;
  /** Milliseconds between head frames while the sequence moves. */
  headIntervalMs?: number;
  /** Milliseconds a replay request may stay unanswered. */
  replayTimeoutMs?: number;
  /** Replay requests for one gap before it is declared lost. */
  replayAttempts?: number;
}

/** Counters of a {@linkcode ClusterLink}, for `--stats`, `/metrics` and the page. */
export interface ClusterStats {
  /** Messages of this server handed to NATS. */
  published: number;
  /** Messages of other servers delivered. */
  received: number;
  /** Messages of this server accepted and not yet handed to NATS. */
  buffered: number;
  /** Of the received messages, those that came through a replay. */
  replayed: number;
  /** Messages of this server dropped before they reached NATS (buffer full, too large). */
  dropped: number;
  /** Messages of other servers known to be missing for good. */
  lost: number;
  /** NATS messages on the cluster subjects that were not valid cluster frames. */
  invalid: number;
  /** Replay requests this server answered. */
  replaysServed: number;
  /** Whether the link is connected to NATS now. */
  connected: boolean;
}

/**
 * Turns a server name into one NATS subject token: every character outside `A-Za-z0-9_-`
 * becomes `_`.
 *
 * @example
 * ```ts
 * import { subjectToken } from "./cluster_link.ts";
 * if (subjectToken("127.0.0.1:7000") !== "127_0_0_1_7000") throw new Error("bad token");
 * ```
 */
export function subjectToken(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, "_");
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * A parrot server's link to the others through NATS.
 *
 * @example
 * ```ts ignore
 * import { ClusterLink } from "./cluster_link.ts";
 * const link = ClusterLink.open({
 *   servers: "nats://127.0.0.1:4222",
 *   serverName: "127.0.0.1:7000",
 *   onMessage: (origin, from, payload) => console.log(origin, from, payload.length),
 * });
 * await link.ready();
 * link.publish("alice", new TextEncoder().encode("hello"));
 * await link.close();
 * ```
 */
export class ClusterLink {
  readonly #options: ClusterLinkOptions;
  readonly #natsOptions: ReturnType<typeof natsConnectionOptions>;
  readonly #origin: FrameOrigin;
  readonly #subject: string;
  readonly #replaySubjectPrefix: string;
  readonly #inbox = createInbox();
  readonly #batch: BatchEncoder;
  readonly #ring: ReplayRing;
  readonly #tracker: OriginTracker;
  readonly #closing = new AbortController();
  readonly #replayTimers = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #maxPayloadBytes: number;
  #nc: NatsConnection | undefined;
  #connected = false;
  /** Bumped on every connect and disconnect: a replay wait spanning a change does not count. */
  #epoch = 0;
  #readyResolve!: () => void;
  readonly #ready: Promise<void>;
  #running: Promise<void>;
  #sealScheduled = false;
  /** Sequence of the first message not yet handed to NATS. */
  #publishNext = 1;
  #lastHead = 0;
  /** Messages below this sequence cannot be replayed (dropped as too large for NATS). */
  #unservableBelow = 1;
  #headTimer: ReturnType<typeof setInterval> | undefined;
  /** Largest NATS message the server takes (its max_payload), known once connected. */
  #natsMaxPayload = 1024 * 1024;
  #published = 0;
  #dropped = 0;
  #invalid = 0;
  #replaysServed = 0;
  #handlerErrors = 0;
  #droppedLogged = false;
  #nameClashLogged = false;
  #lostNatsLogged = false;

  private constructor(options: ClusterLinkOptions) {
    if (!isValidServerName(options.serverName)) {
      throw new ClusterConfigError(
        `Cannot use the server name ${
          JSON.stringify(options.serverName)
        }: expected 1 to 255 bytes without spaces or control characters`,
      );
    }
    this.#options = options;
    this.#natsOptions = natsConnectionOptions({ ...options, name: options.serverName });
    guardOrphanSocketErrors();
    const startedAt = performance.now();
    const age = () => performance.now() - startedAt;
    this.#origin = { name: options.serverName, boot: randomBootId(), age };
    const prefix = options.subject ?? DEFAULT_CLUSTER_SUBJECT;
    if (!isValidClusterSubject(prefix)) {
      throw new ClusterConfigError(
        `Cannot use the cluster subject "${prefix}": expected dot-separated words of letters, digits, _ and -`,
      );
    }
    this.#subject = prefix;
    this.#replaySubjectPrefix = `${prefix}.replay.`;
    this.#batch = new BatchEncoder(this.#origin);
    const bufferBytes = options.bufferBytes ?? DEFAULT_CLUSTER_BUFFER_BYTES;
    this.#ring = new ReplayRing({ maxBytes: bufferBytes, maxMessages: MAX_CLUSTER_RING_MESSAGES });
    this.#maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.#tracker = new OriginTracker({
      age,
      maxHeldBytes: bufferBytes,
      maxReplayAttempts: options.replayAttempts ?? DEFAULT_CLUSTER_REPLAY_ATTEMPTS,
    }, {
      deliver: (origin, from, payload) => {
        try {
          options.onMessage(origin, from, payload);
        } catch (error) {
          // The receiving side's bookkeeping must go on: one bad delivery is not a reason
          // to stop the subscription or to lose the order of what follows.
          this.#handlerErrors++;
          if (this.#handlerErrors <= 3) {
            log.error("The cluster message handler failed: {reason}", { reason: describe(error) });
          }
        }
      },
      requestReplay: (origin, boot, from) => this.#requestReplay(origin, boot, from),
      lost: (origin, count) =>
        log.warn("Lost {count} messages of server {origin}: no longer kept there", {
          count,
          origin,
        }),
    });
    this.#ready = new Promise((resolve) => this.#readyResolve = resolve);
    this.#running = this.#run();
  }

  /**
   * Checks the settings (throws {@linkcode ClusterConfigError} for one that cannot be applied:
   * a bad URL, server name or subject, credentials given twice, an unreadable creds or CA
   * file) and starts connecting in the background: local service never waits for NATS.
   */
  static open(options: ClusterLinkOptions): ClusterLink {
    return new ClusterLink(options);
  }

  /** This server's name in the cluster. */
  get serverName(): string {
    return this.#origin.name;
  }

  /** This run's boot id (16 hex digits). */
  get bootId(): string {
    return this.#origin.boot;
  }

  /** Resolves once the link is connected for the first time; rejects if `signal` aborts first. */
  ready(signal?: AbortSignal): Promise<void> {
    if (!signal) return this.#ready;
    signal.throwIfAborted();
    return new Promise((resolve, reject) => {
      const abort = () => reject(signal.reason);
      signal.addEventListener("abort", abort, { once: true });
      this.#ready.then(() => {
        signal.removeEventListener("abort", abort);
        resolve();
      });
    });
  }

  /** The counters now. */
  stats(): ClusterStats {
    const tracker = this.#tracker.stats;
    return {
      published: this.#published,
      received: tracker.received,
      buffered: this.#ring.nextSeq - this.#publishNext + this.#batch.count,
      replayed: tracker.replayed,
      dropped: this.#dropped,
      lost: tracker.lost,
      invalid: this.#invalid,
      replaysServed: this.#replaysServed,
      connected: this.#connected,
    };
  }

  /**
   * Sends one message of this server's clients to the others. Cheap: it is copied into the
   * current batch, sealed and published at the end of the turn (or when the batch is full).
   */
  publish(from: string, payload: Uint8Array): void {
    if (this.#closing.signal.aborted) return;
    let record: number;
    try {
      record = this.#batch.recordBytes(from, payload.length);
    } catch (error) {
      this.#drop(1, describe(error));
      return;
    }
    if (this.#batch.emptyByteLength + record > this.#natsMaxPayload) {
      this.#drop(1, "larger than the NATS server's max_payload");
      return;
    }
    const limit = Math.min(DEFAULT_CLUSTER_BATCH_BYTES, this.#natsMaxPayload);
    if (this.#batch.count > 0 && this.#batch.byteLength + record > limit) this.#seal();
    this.#batch.add(from, payload);
    if (!this.#sealScheduled) {
      this.#sealScheduled = true;
      queueMicrotask(() => {
        this.#sealScheduled = false;
        this.#seal();
      });
    }
  }

  /**
   * Publishes what is held (when connected), drains the NATS connection and stops. If
   * `signal` aborts first, the connection is closed at once.
   */
  async close(signal?: AbortSignal): Promise<void> {
    if (this.#closing.signal.aborted) return this.#stopped(signal);
    this.#seal();
    this.#closing.abort();
    clearInterval(this.#headTimer);
    for (const timer of this.#replayTimers.values()) clearTimeout(timer);
    this.#replayTimers.clear();
    const nc = this.#nc;
    if (nc && this.#connected) {
      this.#publishPending();
      this.#publishHead(true);
      const drained = nc.drain().catch(() => {});
      if (signal) {
        const abort = () => nc.close().catch(() => {});
        if (signal.aborted) abort();
        else signal.addEventListener("abort", abort, { once: true });
        await drained;
        signal.removeEventListener("abort", abort);
      } else {
        await drained;
      }
    } else if (nc) {
      await nc.close().catch(() => {});
    }
    const unpublished = this.stats().buffered;
    if (unpublished > 0) {
      log.warn("{count} messages were not published to the cluster before the close", {
        count: unpublished,
      });
    }
    await this.#stopped(signal);
  }

  /** Waits for the connection loop to end, or for `signal` (a connect in flight may linger). */
  #stopped(signal?: AbortSignal): Promise<void> {
    if (!signal) return this.#running;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        signal.removeEventListener("abort", done);
        resolve();
      };
      signal.addEventListener("abort", done, { once: true });
      this.#running.then(done);
    });
  }

  async #run(): Promise<void> {
    const signal = this.#closing.signal;
    let lastError = "";
    while (!signal.aborted) {
      let nc: NatsConnection;
      try {
        nc = await connect(this.#natsOptions);
      } catch (error) {
        const reason = describe(error);
        if (reason !== lastError) {
          log.warn("Cannot connect to NATS ({servers}): {reason}; still trying", {
            servers: [this.#natsOptions.servers ?? []].flat().join(","),
            reason,
          });
          lastError = reason;
        }
        const wait = DEFAULT_CLUSTER_RECONNECT_WAIT_MS * (1 + Math.random());
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, wait);
          function done() {
            clearTimeout(timer);
            signal.removeEventListener("abort", done);
            resolve();
          }
          signal.addEventListener("abort", done, { once: true });
        });
        continue;
      }
      if (signal.aborted) {
        await nc.close().catch(() => {});
        return;
      }
      this.#nc = nc;
      this.#subscribe(nc);
      log.info("Connected to NATS at {server} as {name}", {
        server: nc.getServer(),
        name: this.#origin.name,
      });
      this.#onConnected(nc);
      // Ready means subscribed: the server has our subscriptions once it answered a ping.
      nc.flush().then(this.#readyResolve, () => {});
      const headEvery = this.#options.headIntervalMs ?? DEFAULT_CLUSTER_HEAD_INTERVAL_MS;
      this.#headTimer = setInterval(() => this.#publishHead(false), headEvery);
      await this.#watch(nc);
      clearInterval(this.#headTimer);
      this.#connected = false;
      this.#epoch++;
      if (!signal.aborted) {
        // The client gave up (an authorization error twice in a row): start over.
        log.warn("The NATS connection closed; connecting again");
      }
    }
  }

  #subscribe(nc: NatsConnection): void {
    nc.subscribe(`${this.#subject}.*`, {
      callback: (_error, msg) => this.#onFrame(msg, false),
    });
    nc.subscribe(this.#inbox, { callback: (_error, msg) => this.#onFrame(msg, true) });
    nc.subscribe(`${this.#replaySubjectPrefix}${subjectToken(this.#origin.name)}`, {
      callback: (_error, msg) => this.#serveReplay(msg),
    });
  }

  /** Follows the connection's status until it closes. */
  async #watch(nc: NatsConnection): Promise<void> {
    const closed = nc.closed();
    const statuses = (async () => {
      for await (const status of nc.status()) {
        if (status.type === "disconnect") {
          this.#connected = false;
          this.#epoch++;
          if (!this.#lostNatsLogged) {
            log.warn("Lost NATS ({server}); serving local clients, reconnecting", {
              server: status.server,
            });
            this.#lostNatsLogged = true;
          }
        } else if (status.type === "reconnect") {
          log.info("Reconnected to NATS at {server}", { server: status.server });
          this.#lostNatsLogged = false;
          this.#onConnected(nc);
        }
      }
    })();
    await closed;
    await statuses.catch(() => {});
  }

  #onConnected(nc: NatsConnection): void {
    this.#connected = true;
    this.#epoch++;
    this.#natsMaxPayload = nc.info?.max_payload ?? this.#natsMaxPayload;
    this.#publishPending();
    this.#publishHead(true);
    this.#tracker.reconnected();
  }

  #seal(): void {
    const count = this.#batch.count;
    if (count === 0) return;
    const firstSeq = this.#ring.nextSeq;
    const entry: RingEntry = { firstSeq, count, bytes: this.#batch.seal(firstSeq) };
    for (const old of this.#ring.push(entry)) {
      if (old.firstSeq >= this.#publishNext) {
        this.#publishNext = old.firstSeq + old.count;
        this.#drop(old.count, "the cluster buffer is full");
      }
    }
    if (this.#connected) this.#publishPending();
  }

  #drop(count: number, reason: string): void {
    this.#dropped += count;
    if (!this.#droppedLogged) {
      log.warn("Dropping messages for the cluster: {reason} (logged once)", { reason });
      this.#droppedLogged = true;
    }
  }

  /** Hands the frames not yet published to NATS, in order. */
  #publishPending(): void {
    const nc = this.#nc;
    if (!nc) return;
    const subject = `${this.#subject}.${subjectToken(this.#origin.name)}`;
    for (const entry of this.#ring.from(this.#publishNext)) {
      if (entry.firstSeq < this.#publishNext) continue;
      if (entry.bytes.length > this.#natsMaxPayload) {
        // Sealed before we knew the server's max_payload: NATS would refuse it.
        this.#publishNext = entry.firstSeq + entry.count;
        this.#unservableBelow = this.#publishNext;
        this.#drop(entry.count, "a batch larger than the NATS server's max_payload");
        continue;
      }
      try {
        nc.publish(subject, entry.bytes);
      } catch (error) {
        log.warn("Cannot publish to NATS: {reason}", { reason: describe(error) });
        return;
      }
      this.#publishNext = entry.firstSeq + entry.count;
      this.#published += entry.count;
    }
  }

  /** Tells the others our last sequence: after a connect, and while it moves. */
  #publishHead(always: boolean): void {
    const last = this.#ring.nextSeq - 1;
    if (!this.#nc || !this.#connected || last === 0 || (!always && last === this.#lastHead)) {
      return;
    }
    try {
      this.#nc.publish(
        `${this.#subject}.${subjectToken(this.#origin.name)}`,
        encodeHead(this.#origin, last),
      );
      this.#lastHead = last;
    } catch {
      // The connection is going; the next connect sends a head.
    }
  }

  #onFrame(msg: Msg, viaReplay: boolean): void {
    // NATS answers a request nobody listens to (the origin is away) with an empty status
    // message ("503 no responders"): no frame, and no garbage either; the timeout retries.
    if (viaReplay && msg.data.length === 0 && msg.headers !== undefined) return;
    let frame: ClusterFrame;
    try {
      frame = decodeClusterFrame(msg.data, { maxPayloadBytes: this.#maxPayloadBytes });
    } catch (error) {
      this.#countInvalid(msg.subject, error);
      return;
    }
    if (frame.boot === this.#origin.boot) return; // our own (NATS noEcho filters these too)
    if (frame.name === this.#origin.name && !this.#nameClashLogged) {
      log.warn("Another server uses the name {name}: give each a --server-name", {
        name: frame.name,
      });
      this.#nameClashLogged = true;
    }
    switch (frame.kind) {
      case FrameKind.Messages:
        this.#tracker.onMessages(frame, msg.data.length, viaReplay);
        this.#options.onBatchEnd?.();
        break;
      case FrameKind.Head:
        this.#tracker.onHead(frame);
        break;
      case FrameKind.ReplayEnd:
        if (!viaReplay) return this.#countInvalid(msg.subject, "a replay end outside a replay");
        this.#clearReplayTimer(frame.boot);
        this.#tracker.onReplayEnd(frame);
        this.#options.onBatchEnd?.();
        break;
      default:
        this.#countInvalid(msg.subject, `a frame of kind ${frame.kind} on a message subject`);
    }
  }

  #countInvalid(subject: string, why: unknown): void {
    this.#invalid++;
    const reason = why instanceof ClusterFrameError ? why.message : describe(why);
    // The first few are worth a warning; a flood of garbage only counts.
    if (this.#invalid <= 3) {
      log.warn("Dropped an invalid cluster message on {subject}: {reason}", { subject, reason });
    }
  }

  #requestReplay(origin: string, boot: string, from: number): void {
    const nc = this.#nc;
    if (!nc) return;
    try {
      nc.publish(
        `${this.#replaySubjectPrefix}${subjectToken(origin)}`,
        encodeReplayRequest(this.#origin, boot, from),
        { reply: this.#inbox },
      );
    } catch {
      // Not sent: the timeout below treats it like a request without answer.
    }
    this.#clearReplayTimer(boot);
    const epoch = this.#epoch;
    const timer = setTimeout(() => {
      this.#replayTimers.delete(boot);
      // A wait that spanned a disconnect says nothing about the origin: ask again on reconnect.
      const countAttempt = this.#connected && epoch === this.#epoch;
      this.#tracker.replayTimedOut(boot, countAttempt);
    }, this.#options.replayTimeoutMs ?? DEFAULT_CLUSTER_REPLAY_TIMEOUT_MS);
    this.#replayTimers.set(boot, timer);
  }

  #clearReplayTimer(boot: string): void {
    const timer = this.#replayTimers.get(boot);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.#replayTimers.delete(boot);
    }
  }

  /** Answers a replay request from the ring: the frames from the asked sequence, then an end. */
  #serveReplay(msg: Msg): void {
    let frame: ClusterFrame;
    try {
      frame = decodeClusterFrame(msg.data, { maxPayloadBytes: this.#maxPayloadBytes });
    } catch (error) {
      return this.#countInvalid(msg.subject, error);
    }
    if (frame.kind !== FrameKind.ReplayRequest || !msg.reply) {
      return this.#countInvalid(msg.subject, "not a replay request with a reply subject");
    }
    // A request for an earlier run of this server (or a namesake) gets no answer: the asker
    // times out and counts its gap as lost.
    if (frame.target !== this.#origin.boot) return;
    this.#seal();
    const nc = this.#nc;
    if (!nc) return;
    try {
      const from = Math.max(frame.seq, this.#unservableBelow);
      for (const entry of this.#ring.from(from)) {
        if (entry.firstSeq >= this.#publishNext) break; // not yet published: it follows live
        nc.publish(msg.reply, entry.bytes);
      }
      const oldest = Math.max(this.#ring.oldestSeq, this.#unservableBelow);
      nc.publish(msg.reply, encodeReplayEnd(this.#origin, oldest, this.#publishNext - 1));
      this.#replaysServed++;
    } catch (error) {
      log.debug("Cannot answer a replay request: {reason}", { reason: describe(error) });
    }
  }
}
