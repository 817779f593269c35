/**
 * The client pid files shared by the launcher (`deno task clients`) and
 * `deno task stop-clients`: where they live, how they are named, written, read and
 * removed.
 *
 * Each launcher keeps the process ids of its clients, one per line, in
 * `.parrot/clients-<launcher pid>.pids` (relative to the working directory, which is
 * all the two tasks may read and write). Both programs go through this module so they
 * cannot disagree on the format, and a file is replaced atomically so a reader never
 * sees half of it.
 *
 * @module
 */

/** The directory of the pid files, relative to the working directory. */
export const PID_DIR = ".parrot";

const PID_FILE_NAME = /^clients-(\d+)\.pids$/;

/** The pid file of the launcher with process id `launcherPid`. */
export function clientPidFilePath(launcherPid: number): string {
  return `${PID_DIR}/clients-${launcherPid}.pids`;
}

/**
 * Parses the text of a pid file: one process id per line, blank lines ignored.
 *
 * Only ids above 1 count: `kill` treats 0, 1 and negative numbers as "my process
 * group", "init" and "every process", none of which a launcher ever started.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parsePidLines } from "./pid_files.ts";
 *
 * assert.deepEqual(parsePidLines("1234\n\n5678\n-1\nabc\n"), {
 *   pids: [1234, 5678],
 *   invalid: ["-1", "abc"],
 * });
 * ```
 */
export function parsePidLines(text: string): { pids: number[]; invalid: string[] } {
  const pids: number[] = [];
  const invalid: string[] = [];
  for (const line of text.split("\n").map((l) => l.trim()).filter((l) => l !== "")) {
    const pid = Number(line);
    if (/^\d+$/.test(line) && Number.isSafeInteger(pid) && pid > 1) pids.push(pid);
    else invalid.push(line);
  }
  return { pids, invalid };
}

/** Writes `pids` to `path`, one per line, replacing the file atomically. */
export async function writePidFile(path: string, pids: readonly number[]): Promise<void> {
  await Deno.mkdir(PID_DIR, { recursive: true });
  const temporary = `${path}.tmp`;
  await Deno.writeTextFile(temporary, pids.map((pid) => `${pid}\n`).join(""));
  await Deno.rename(temporary, path);
}

/** Whether the pid file at `path` exists. */
export async function pidFileExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Removes the pid file at `path`; one that is already gone is fine. */
export async function removePidFile(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/** One launcher's pid file as read by {@linkcode readClientPidFiles}. */
export interface ClientPidFile {
  /** The file's path, e.g. `.parrot/clients-1234.pids`. */
  path: string;
  /** The process id of the launcher that wrote it. */
  launcherPid: number;
  /** The client process ids in it. */
  pids: number[];
  /** Lines that are not a usable process id. */
  invalid: string[];
}

/** Reads every `clients-<pid>.pids` file in {@linkcode PID_DIR}, ordered by launcher pid. */
export async function readClientPidFiles(): Promise<ClientPidFile[]> {
  const files: ClientPidFile[] = [];
  try {
    for await (const entry of Deno.readDir(PID_DIR)) {
      const match = PID_FILE_NAME.exec(entry.name);
      if (!entry.isFile || match === null) continue;
      const path = `${PID_DIR}/${entry.name}`;
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) continue; // Its launcher just finished.
        throw error;
      }
      files.push({ path, launcherPid: Number(match[1]), ...parsePidLines(text) });
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
  return files.sort((a, b) => a.launcherPid - b.launcherPid);
}
