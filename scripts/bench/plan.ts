/**
 * The contract between the bench and its load generator process: what a generator is
 * asked to do (a {@linkcode GeneratorPlan}: roles, one Worker each) and what it reports
 * back (JSON lines on its stdout).
 *
 * Owned here, with no code of either side, so that the bench (scripts/bench/generator_process.ts),
 * the generator's main thread (scripts/bench/generator.ts) and its workers
 * (scripts/bench/worker.ts) agree on one set of types.
 *
 * The exchange, one line each way at a time: the bench writes the plan as one JSON line
 * on the generator's stdin; the generator sets up (connects, says HELLO, gets PONG) and
 * prints `{"event":"ready"}`; the bench reads the CPU times, writes `go`; the generator
 * runs the load and prints `{"event":"done",...}`; it keeps its connections open until
 * the bench writes `exit`. `{"event":"progress"}` lines may come at any time.
 *
 * @module
 */

/** Pipelined `MSG` frames from connections that are not subscribed (fan-in). */
export interface SendRole {
  kind: "send";
  /** One connection per name; the name is sent with HELLO. */
  names: string[];
  messages: number;
  size: number;
  batchBytes: number;
  /**
   * With subscribers in the plan: the most relayed bytes the publishers may be ahead
   * of the slowest subscriber (a credit window, so no subscriber becomes a slow
   * consumer). 0 = no window.
   */
  windowBytes: number;
  /** parrot's protocol (the default), or NATS's against a `nats-server` (`PUB bench <n>`). */
  protocol?: FanProtocol;
}

/** The protocol the fan-out roles speak: parrot's, or NATS's text protocol. */
export type FanProtocol = "parrot" | "nats";

/** Subscribed connections that count the relayed messages (fan-out). */
export interface SubscribeRole {
  kind: "subscribe";
  names: string[];
  /** Messages each subscriber must receive. */
  expected: number;
  /** Index of the first subscriber's slot in the shared counters. */
  firstSlot: number;
  /** The port of the server to subscribe on, when it is not the plan's (cluster mode). */
  port?: number;
  /** parrot's protocol (the default), or NATS's against a `nats-server` (`SUB bench <sid>`). */
  protocol?: FanProtocol;
}

/** Many connections that say HELLO and PING, get PONG and stay idle. */
export interface IdleRole {
  kind: "idle";
  count: number;
  concurrency: number;
}

/** One connection at a time: connect, HELLO, PING/PONG, close. */
export interface ChurnRole {
  kind: "churn";
  count: number;
  timeMs: number;
}

/** The pace of the latency scenario, which both of its halves must agree on. */
export interface LatencyPace {
  /** Messages per second, all publishers together. */
  rate: number;
  durationMs: number;
  warmupMs: number;
  size: number;
}

/** Paced, timestamped messages from many publishers, and PING/PONG times. */
export interface LatencyPublishRole extends LatencyPace {
  kind: "latency-publish";
  publishers: number;
  /** PINGs per second, all publishers together. */
  pingRate: number;
}

/** The one subscriber that times the paced messages, in a Worker of its own. */
export interface LatencyListenRole extends LatencyPace {
  kind: "latency-listen";
  /** A TCP client (the default), or a WebSocket client of `/ws` on the HTTP side. */
  transport?: "tcp" | "ws";
  /**
   * The port to subscribe on, when it is not the plan's: the HTTP port for a WebSocket,
   * or another server's port (cluster mode).
   */
  port?: number;
}

/** What one Worker of the generator does. */
export type Role =
  | SendRole
  | SubscribeRole
  | IdleRole
  | ChurnRole
  | LatencyPublishRole
  | LatencyListenRole;

/** Everything a generator process is asked to do. */
export interface GeneratorPlan {
  port: number;
  /** The generator gives up (and exits 1) after this long. */
  timeLimitMs: number;
  /** One Worker per role. */
  roles: Role[];
}

/** Figures and failed checks of one role (one Worker). */
export interface RoleResult {
  kind: Role["kind"];
  metrics: Record<string, number>;
  failures: string[];
}

/** The `done` report of a generator. */
export interface GeneratorResult {
  /** From `go` to the last role done, as the generator's clock saw it. */
  elapsedMs: number;
  roles: RoleResult[];
}

/** A line a generator prints on stdout. */
export type GeneratorEvent =
  | { event: "ready" }
  | { event: "progress"; text: string }
  | { event: "done"; result: GeneratorResult }
  | { event: "error"; message: string };

/** Messages between the generator's main thread and a worker. */
export type ToWorker =
  | {
    type: "start";
    port: number;
    role: Role;
    shared: SharedArrayBuffer;
    deadline: number;
    /** The generator main thread's `performance.timeOrigin`: the zero of the shared clock. */
    clockOrigin: number;
  }
  | { type: "go" }
  | { type: "exit" };

/** Messages from a worker to the generator's main thread. */
export type FromWorker =
  | { type: "ready" }
  | { type: "progress"; text: string }
  | { type: "done"; result: RoleResult }
  | { type: "error"; message: string }
  | { type: "closed" };

/** Slots of the shared counters: slot 0 changes whenever a subscriber's count does. */
export const SHARED_GENERATION_SLOT = 0;
