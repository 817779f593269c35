/**
 * One measured run of the load generator against a server, and the types every bench
 * scenario shares.
 *
 * This module owns the measurement window: the generator sets up (connections opened,
 * HELLO answered), then the CPU times of the server and the generator are read, the load
 * runs, and they are read again; an RSS sampler watches the server throughout. From the
 * two CPU figures it names the side that was the bottleneck. The scenarios
 * (scripts/bench/scenario_*.ts) build plans and checks on top of it.
 *
 * @module
 */

import { GeneratorProcess } from "./generator_process.ts";
import type { GeneratorResult, Role } from "./plan.ts";
import { cpuBetween, cpuSnapshots, RssSampler } from "./probes.ts";

/** What a bench scenario gets from whoever runs it. */
export interface BenchContext {
  /** A directory for the servers' stdout files; removed by the runner. */
  workDir: string;
  /** Reports a short progress text (the CLI shows it on one live line). */
  progress: (text: string) => void;
  /** Whether these are the quick sizes. */
  quick: boolean;
  /** Cores of the machine, to tell a saturated machine from a saturated process. */
  cores: number;
  /** Extra flags for every server started (`--threads <n>`). */
  serverFlags?: string[];
}

/** CPU use of both sides over the measured window, in percent of one core. */
export interface CpuUse {
  /** The server process, every thread. */
  serverPercent: number;
  /** The server's busiest thread (its JavaScript thread, under load). */
  serverThreadPercent: number;
  /** The generator process, every thread. */
  generatorPercent: number;
  /** The generator's busiest thread (one of its Workers, under load). */
  generatorThreadPercent: number;
  /** Workers of the generator (each can use one core). */
  generatorWorkers: number;
  /** Which side limited the run: `server`, `generator`, `both` or `neither`. */
  bound: string;
}

/** A scenario's verdict: one row of the table before the runner adds its name and time. */
export interface BenchOutcome {
  /** What was offered, in a few words. */
  load: string;
  /** The headline figure(s), in a few words. */
  figure: string;
  cpu: CpuUse | null;
  /** Highest RSS of the server seen during the load, in bytes. */
  serverPeakRssBytes: number | null;
  /** Every figure, for the JSON. */
  metrics: Record<string, number | string | boolean>;
  /** Failed checks, one line each; empty when every message arrived. */
  failures: string[];
}

/** What {@linkcode drive} measured. */
export interface Driven {
  result: GeneratorResult;
  /** From `go` to `done` as the bench saw it. */
  wallMs: number;
  cpu: CpuUse;
  peakRssBytes: number;
  /** Failed checks of the generator's roles. */
  failures: string[];
  /** Figures of every role, by role kind (the last role of a kind wins). */
  metrics: Record<string, Record<string, number>>;
}

/** Options of {@linkcode drive}. */
export interface DriveOptions {
  timeLimitMs: number;
  /** RSS sampler to use (and leave running); by default one at 100 ms, stopped at the end. */
  sampler?: RssSampler;
  /** Runs once the generator is set up, before `go` (e.g. a baseline RSS). */
  beforeGo?: () => Promise<void>;
  /** Runs after `done` while the generator still holds its connections. */
  whileHeld?: () => Promise<void>;
}

/** Share of its capacity above which a side counts as saturated. */
const SATURATED = 0.85;

/**
 * Names the bottleneck from the CPU use of both sides: a side whose busiest thread is
 * saturated (JavaScript runs on one thread per isolate), or a server using more than a
 * core in all (its JavaScript thread and the threads its file and socket writes run on
 * take turns in one pipeline), or the machine when the two together use every core, or
 * neither (waiting: round trips, pacing).
 */
export function bottleneck(use: Omit<CpuUse, "bound">, cores: number): string {
  const server = use.serverThreadPercent / 100 >= SATURATED || use.serverPercent >= 100;
  const generator = use.generatorThreadPercent / 100 >= SATURATED;
  if (server && generator) return "both";
  if (server) return "server";
  if (generator) return "generator";
  if ((use.serverPercent + use.generatorPercent) / 100 >= SATURATED * cores) return "cores";
  return "neither";
}

/** The process a generator is driven against: a parrot server, or a `nats-server`. */
export interface DrivenServer {
  /** Its process id (for its CPU time and RSS). */
  pid: number;
  /** Its client port on 127.0.0.1. */
  port: number;
}

/** Starts a generator with `roles` against `server`, measures one run of it. */
export async function drive(
  context: BenchContext,
  server: DrivenServer,
  roles: Role[],
  options: DriveOptions,
): Promise<Driven> {
  const ownSampler = !options.sampler;
  const sampler = options.sampler ?? new RssSampler(server.pid, 100);
  try {
    await using generator = await GeneratorProcess.start(
      { port: server.port, timeLimitMs: options.timeLimitMs, roles },
      context.progress,
    );
    await options.beforeGo?.();
    sampler.resetPeak();
    const [server0, generator0] = await cpuSnapshots([server.pid, generator.pid]);
    const startedAt = performance.now();
    const result = await generator.run();
    const wallMs = performance.now() - startedAt;
    const [server1, generator1] = await cpuSnapshots([server.pid, generator.pid]);
    const peakRssBytes = Math.max(sampler.peakBytes, sampler.latestBytes);
    await options.whileHeld?.();
    const exitCode = await generator.exit();
    const failures = result.roles.flatMap((r) => r.failures);
    if (exitCode !== 0) failures.push(`the generator exited ${exitCode}`);
    const percent = (ms: number) => Math.round((ms / wallMs) * 100);
    const serverCpu = cpuBetween(server0, server1);
    const generatorCpu = cpuBetween(generator0, generator1);
    const use = {
      serverPercent: percent(serverCpu.totalMs),
      serverThreadPercent: percent(serverCpu.busiestThreadMs),
      generatorPercent: percent(generatorCpu.totalMs),
      generatorThreadPercent: percent(generatorCpu.busiestThreadMs),
      // One per role, and the latency publishers' pacer (scripts/bench/pacer.ts).
      generatorWorkers: roles.length + roles.filter((r) => r.kind === "latency-publish").length,
    };
    const metrics: Record<string, Record<string, number>> = {};
    for (const role of result.roles) metrics[role.kind] = role.metrics;
    return {
      result,
      wallMs,
      cpu: { ...use, bound: bottleneck(use, context.cores) },
      peakRssBytes,
      failures,
      metrics,
    };
  } finally {
    if (ownSampler) await sampler.stop();
  }
}

/** `1,234,567` */
export function formatCount(value: number): string {
  return Math.round(value).toLocaleString("en-US");
}
