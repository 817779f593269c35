/**
 * The part of `lib/testing.ts` for integration tests, bench and torture: start the real
 * server and client processes, talk to them over raw sockets, and wait for conditions
 * instead of sleeping. Import it through `lib/testing.ts`.
 *
 * @module
 */

import { waitFor } from "../testing.ts";

/** The project's root directory. */
export const ROOT: string = new URL("../../", import.meta.url).pathname;
/** The deno on PATH (the test task may run "deno" only). */
export const DENO = "deno";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

import { runTask } from "../cli/run_flags.ts";

/** Collects a byte stream into memory as it arrives. */
export class Collected {
  #chunks: Uint8Array[] = [];
  #length = 0;
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      try {
        for await (const chunk of stream) {
          this.#chunks.push(chunk);
          this.#length += chunk.length;
        }
      } catch {
        // The process or socket went away; what arrived is kept.
      }
    })();
  }

  get length(): number {
    return this.#length;
  }

  bytes(): Uint8Array {
    const all = new Uint8Array(this.#length);
    let offset = 0;
    for (const chunk of this.#chunks) {
      all.set(chunk, offset);
      offset += chunk.length;
    }
    return all;
  }

  text(): string {
    return decoder.decode(this.bytes());
  }

  /** Waits until the text contains `needle`. */
  async waitForText(needle: string | RegExp, timeoutMs = 10_000): Promise<string> {
    await waitFor(
      () => typeof needle === "string" ? this.text().includes(needle) : needle.test(this.text()),
      `output containing ${needle}`,
      timeoutMs,
    );
    return this.text();
  }
}

/** A running process with its output collected. */
export interface Running {
  child: Deno.ChildProcess;
  stdout: Collected;
  stderr: Collected;
  /** Exit status; resolves after stdout and stderr are fully read. */
  status: Promise<Deno.CommandStatus>;
}

/** Spawns `command args` from the project root with piped output. */
export function spawn(
  command: string,
  args: string[],
  options: { stdin?: "piped" | "null"; env?: Record<string, string> } = {},
): Running {
  const child = new Deno.Command(command, {
    args,
    cwd: ROOT,
    stdin: options.stdin ?? "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...options.env },
  }).spawn();
  const stdout = new Collected(child.stdout);
  const stderr = new Collected(child.stderr);
  const status = Promise.all([child.status, stdout.done, stderr.done]).then(([s]) => s);
  return { child, stdout, stderr, status };
}

/** Runs `deno <args>` to completion and returns its output. */
export async function runDeno(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(DENO, {
    args,
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** A server process and the port it listens on. */
export interface ServerProcess extends Running {
  port: number;
  /** Sends a signal to the process. */
  kill(signal?: Deno.Signal): void;
}

const serverTask = runTask("server");
const clientTask = runTask("client");

/**
 * The environment the `server` task sets (read from deno.json): glibc's allocator maps
 * 64 KiB and larger blocks on their own (a fixed threshold, instead of one that grows
 * with the largest block freed), so that memory goes back to the system when it is freed.
 */
export const SERVER_ENV: Record<string, string> = serverTask.env;

/** `deno` arguments running `server.ts` as the `server` task does (read from deno.json). */
export const SERVER_RUN_ARGS: string[] = ["run", ...serverTask.flags, serverTask.script];

/** `deno` arguments running `client.ts` as the `client` task does (read from deno.json). */
export const CLIENT_RUN_ARGS: string[] = ["run", ...clientTask.flags, clientTask.script];

/**
 * Starts `server.ts` on port 0 with `args` and waits for its "listening on" line.
 * With `viaTask`, starts it as users do: `deno task server 0 ...`.
 */
export async function startServer(
  args: string[] = [],
  options: {
    viaTask?: boolean;
    stdoutFile?: string;
    env?: Record<string, string>;
    /** In place of {@linkcode SERVER_RUN_ARGS}. */
    runArgs?: string[];
  } = {},
): Promise<ServerProcess> {
  const denoArgs = options.viaTask ? ["task", "-q", "server", "0", ...args] : [
    ...options.runArgs ?? SERVER_RUN_ARGS,
    "0",
    ...args,
  ];
  // With stdoutFile, the shell redirects stdout the way `server > messages.log` does.
  const running = options.stdoutFile
    ? spawn("sh", [
      "-c",
      'out="$1"; shift; exec "$@" > "$out"',
      "sh",
      options.stdoutFile,
      DENO,
      ...denoArgs,
    ], { env: { ...SERVER_ENV, ...options.env } })
    : spawn(DENO, denoArgs, { env: { ...SERVER_ENV, ...options.env } });
  const port = await listeningPort(running);
  return { ...running, port, kill: (signal = "SIGTERM") => running.child.kill(signal) };
}

/** Waits for the "listening on host:port" log line of a server and returns the port. */
export async function listeningPort(running: Running): Promise<number> {
  const exited = running.status.then((s) => s);
  let early: Deno.CommandStatus | undefined;
  exited.then((s) => early = s);
  await waitFor(
    () => /listening on [^\s"]+:\d+/.test(running.stderr.text()) || early !== undefined,
    "the server's listening line",
    20_000,
  );
  const match = running.stderr.text().match(/listening on [^\s"]+:(\d+)/);
  if (!match) throw new Error(`The server exited early:\n${running.stderr.text()}`);
  return Number(match[1]);
}

/** A raw TCP client for protocol-level tests. */
export class RawClient {
  readonly conn: Deno.Conn;
  readonly received: Collected;

  private constructor(conn: Deno.Conn) {
    this.conn = conn;
    this.received = new Collected(conn.readable);
  }

  static async connect(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Connects over TLS, trusting the PEM certificates `caCerts`. */
  static async connectTls(port: number, caCerts: string[]): Promise<RawClient> {
    return new RawClient(await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts }));
  }

  /** Writes all of `data`. */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    let offset = 0;
    while (offset < bytes.length) offset += await this.conn.write(bytes.subarray(offset));
  }

  /** Writes `PING` and waits for a `PONG` beyond those already received. */
  async ping(timeoutMs = 10_000): Promise<void> {
    const before = countLines(this.received.text(), "PONG");
    await this.write("PING\n");
    await waitFor(
      () => countLines(this.received.text(), "PONG") > before,
      "PONG",
      timeoutMs,
    );
  }

  /** Resolves when the server has closed the connection; throws after `timeoutMs`. */
  async closedByServer(timeoutMs = 10_000): Promise<string> {
    let closed = false;
    this.received.done.then(() => closed = true);
    await waitFor(() => closed, "the server to close the connection", timeoutMs);
    return this.received.text();
  }

  /** Closes the socket (ignoring an already closed one) and waits for the reader. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // Closed already.
    }
    await this.received.done;
  }
}

function countLines(text: string, line: string): number {
  return text.split("\n").filter((l) => l === line).length;
}

/** Whether `command` can be run (for tests that need an external tool). */
export async function hasCommand(command: string): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("sh", {
      args: ["-c", `command -v ${command}`],
      stdout: "null",
      stderr: "null",
    }).output();
    return success;
  } catch {
    return false;
  }
}

/** `MSG <n>\n<payload>\n` for a raw client. */
export function msg(payload: string | Uint8Array): Uint8Array {
  const body = typeof payload === "string" ? encoder.encode(payload) : payload;
  const header = encoder.encode(`MSG ${body.length}\n`);
  const frame = new Uint8Array(header.length + body.length + 1);
  frame.set(header);
  frame.set(body, header.length);
  frame[frame.length - 1] = 10;
  return frame;
}

/**
 * Kills whatever still runs (after a failed assertion) and waits for every exit.
 *
 * @example
 * ```ts ignore
 * await stopAll(server, client);
 * ```
 */
export async function stopAll(...processes: (Running | undefined)[]): Promise<void> {
  for (const running of processes) {
    try {
      running?.child.kill("SIGKILL");
    } catch {
      // It has exited already.
    }
  }
  await Promise.all(processes.map((running) => running?.status));
}
