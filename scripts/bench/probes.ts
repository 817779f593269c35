/**
 * Process and machine probes of the benchmark, all read from outside through `sh`.
 *
 * This module owns what the bench learns about processes it does not control from the
 * inside: the CPU time (user + system) of the server and of the load generator, from
 * `/proc/<pid>/stat`, a sampler of the server's RSS (peak and latest) from
 * `/proc/<pid>/status`, and the facts of the machine a result belongs to (cores, CPU
 * model, Deno version, git commit). Reading /proc from Deno itself would need
 * --allow-all, so a `sh` subprocess reads it; the bench needs `--allow-run=sh,git` only.
 * RSS of a single moment comes from {@linkcode probeProcess} in the torture harness.
 *
 * @module
 */

import { shell } from "../shared/harness.ts";

export { probeProcess, shell } from "../shared/harness.ts";

const decoder = new TextDecoder();
let clockTicks: Promise<number> | null = null;

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`, 100 when unknown). */
export function clockTicksPerSecond(): Promise<number> {
  clockTicks ??= shell("getconf CLK_TCK").then((text) => Number(text.trim()) || 100);
  return clockTicks;
}

/** CPU time of a process at one moment: in all, and per thread (by thread id). */
export interface CpuSnapshot {
  /** User + system time of every thread, in milliseconds; NaN when the process is gone. */
  totalMs: number;
  threads: Map<number, number>;
}

/** User + system time in milliseconds of one /proc stat line, and its pid or tid. */
function parseStat(line: string, ticks: number): { id: number; ms: number } {
  // Fields after the command name (which may hold spaces): state is field 3,
  // utime field 14 and stime field 15.
  const fields = line.slice(line.lastIndexOf(")") + 2).split(" ");
  return {
    id: Number(line.slice(0, line.indexOf(" "))),
    ms: ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks,
  };
}

/**
 * CPU time of each of `pids`, in all and per thread, read in one `sh` so that the
 * readings are taken at nearly the same moment.
 */
export async function cpuSnapshots(pids: readonly number[]): Promise<CpuSnapshot[]> {
  const ticks = await clockTicksPerSecond();
  const script = 'for pid in "$@"; do echo "P $pid"; cat /proc/"$pid"/stat ' +
    '/proc/"$pid"/task/*/stat 2>/dev/null; done';
  const snapshots = new Map<number, CpuSnapshot>();
  let current: CpuSnapshot | null = null;
  for (const line of (await shell(script, ...pids.map(String))).split("\n")) {
    if (line.startsWith("P ")) {
      current = { totalMs: NaN, threads: new Map() };
      snapshots.set(Number(line.slice(2)), current);
    } else if (current && line.includes(")")) {
      const { id, ms } = parseStat(line, ticks);
      // The first line is the process (every thread summed); the rest are its threads.
      if (Number.isNaN(current.totalMs)) current.totalMs = ms;
      else current.threads.set(id, ms);
    }
  }
  return pids.map((pid) => snapshots.get(pid) ?? { totalMs: NaN, threads: new Map() });
}

/** CPU used between two snapshots, in all and by the busiest thread, in milliseconds. */
export function cpuBetween(before: CpuSnapshot, after: CpuSnapshot): {
  totalMs: number;
  busiestThreadMs: number;
} {
  let busiest = 0;
  for (const [tid, ms] of after.threads) {
    busiest = Math.max(busiest, ms - (before.threads.get(tid) ?? 0));
  }
  return { totalMs: after.totalMs - before.totalMs, busiestThreadMs: busiest };
}

/** Samples one process's RSS every `intervalMs` from a single `sh` loop until stopped. */
export class RssSampler {
  #child: Deno.ChildProcess;
  #done: Promise<void>;
  /** Highest RSS seen, in bytes (0 before the first sample). */
  peakBytes = 0;
  /** Latest RSS seen, in bytes. */
  latestBytes = 0;
  /** Samples taken. */
  samples = 0;

  /** Starts sampling process `pid`. */
  constructor(pid: number, intervalMs: number) {
    const seconds = (intervalMs / 1000).toFixed(3);
    this.#child = new Deno.Command("sh", {
      args: [
        "-c",
        'while [ -r /proc/"$1"/status ]; do grep VmRSS /proc/"$1"/status; sleep "$2"; done',
        "sh",
        String(pid),
        seconds,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#done = this.#read(this.#child.stdout);
  }

  async #read(stream: ReadableStream<Uint8Array>): Promise<void> {
    let rest = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) {
          const match = line.match(/VmRSS:\s+(\d+)\s+kB/);
          if (!match) continue;
          const bytes = Number(match[1]) * 1024;
          this.latestBytes = bytes;
          this.peakBytes = Math.max(this.peakBytes, bytes);
          this.samples++;
        }
      }
    } catch {
      // The sampler was stopped: what it read is kept.
    }
  }

  /** Resets the peak to the latest sample, so a phase's peak can be read on its own. */
  resetPeak(): void {
    this.peakBytes = this.latestBytes;
  }

  /** Stops the sampler (the `sh` loop started here) and waits for its output. */
  async stop(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Exited already (the process it watched is gone).
    }
    await this.#child.status;
    await this.#done;
  }
}

/** The machine and build a result belongs to. */
export interface MachineInfo {
  cores: number;
  cpuModel: string;
  deno: string;
  v8: string;
  commit: string;
}

/** Cores and CPU model (from /proc/cpuinfo), the Deno version and the git commit. */
export async function machineInfo(): Promise<MachineInfo> {
  const cpuinfo = await shell("cat /proc/cpuinfo");
  const processors = cpuinfo.match(/^processor\s*:/gm)?.length ?? navigator.hardwareConcurrency;
  const model = cpuinfo.match(/^model name\s*:\s*(.+)$/m)?.[1]?.trim() ?? "unknown";
  let commit = "unknown";
  try {
    const { stdout, success } = await new Deno.Command("git", {
      args: ["rev-parse", "--short", "HEAD"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).output();
    if (success) commit = decoder.decode(stdout).trim();
  } catch {
    // No git: the commit stays unknown.
  }
  return {
    cores: processors,
    cpuModel: model,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    commit,
  };
}
