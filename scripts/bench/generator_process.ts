/**
 * The bench's handle on a load generator process (scripts/bench/generator.ts).
 *
 * It owns starting the generator as its own `deno run` process (network on 127.0.0.1
 * only, reading the repository for its modules), speaking the JSON-lines exchange of
 * scripts/bench/plan.ts with it, and stopping it. The bench reads the generator's pid to
 * measure its CPU from outside. Every wait is bounded by the plan's time limit.
 *
 * @module
 */

import { Collected, DENO, ROOT } from "../../lib/testing.ts";
import { within } from "../shared/harness.ts";
import type { GeneratorEvent, GeneratorPlan, GeneratorResult } from "./plan.ts";

const encoder = new TextEncoder();
const GENERATOR = new URL("./generator.ts", import.meta.url).pathname;

/** A running generator process. */
export class GeneratorProcess implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #stderr: Collected;
  readonly #events: AsyncGenerator<GeneratorEvent>;
  readonly #timeLimitMs: number;
  #onProgress: (text: string) => void;
  #exited = false;

  private constructor(plan: GeneratorPlan, onProgress: (text: string) => void) {
    this.child = new Deno.Command(DENO, {
      args: ["run", "--allow-net=127.0.0.1", `--allow-read=${ROOT}`, GENERATOR],
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    this.child.status.then(() => this.#exited = true);
    this.#stdin = this.child.stdin.getWriter();
    this.#stderr = new Collected(this.child.stderr);
    this.#events = events(this.child.stdout);
    this.#timeLimitMs = plan.timeLimitMs;
    this.#onProgress = onProgress;
  }

  /** Starts a generator with `plan` and waits until it is `ready` (connections set up). */
  static async start(
    plan: GeneratorPlan,
    onProgress: (text: string) => void = () => {},
  ): Promise<GeneratorProcess> {
    const generator = new GeneratorProcess(plan, onProgress);
    try {
      await generator.#send(JSON.stringify(plan));
      await generator.#expect("ready");
    } catch (error) {
      await generator[Symbol.asyncDispose]();
      throw error;
    }
    return generator;
  }

  /** The generator's process id (for its CPU time). */
  get pid(): number {
    return this.child.pid;
  }

  /** Starts the load and waits for its result. */
  async run(): Promise<GeneratorResult> {
    await this.#send("go");
    const done = await this.#expect("done");
    return (done as { result: GeneratorResult }).result;
  }

  /** Lets the generator close its connections and exit; returns its exit code. */
  async exit(): Promise<number> {
    await this.#send("exit").catch(() => {});
    await this.#stdin.close().catch(() => {});
    const status = await within(this.child.status, 10_000, null);
    if (status === null) {
      this.child.kill("SIGKILL");
      return (await this.child.status).code;
    }
    return status.code;
  }

  async #send(line: string): Promise<void> {
    await this.#stdin.write(encoder.encode(line + "\n"));
  }

  /** Waits for the event `name`, passing progress on; throws on an error or an early exit. */
  async #expect(name: "ready" | "done"): Promise<GeneratorEvent> {
    const next = async () => {
      for (;;) {
        const { value, done } = await this.#events.next();
        if (done) {
          await this.#stderr.done;
          throw new Error(`The generator exited before "${name}": ${this.#stderr.text().trim()}`);
        }
        if (value.event === "progress") this.#onProgress(value.text);
        else if (value.event === "error") throw new Error(`The generator failed: ${value.message}`);
        else if (value.event === name) return value;
      }
    };
    const event = await within(next(), this.#timeLimitMs + 10_000, null);
    if (event === null) throw new Error(`The generator did not report "${name}" in time`);
    return event;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // Exited meanwhile.
      }
    }
    await this.child.status;
    await this.#stderr.done;
  }
}

async function* events(stream: ReadableStream<Uint8Array>): AsyncGenerator<GeneratorEvent> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) if (line.trim()) yield JSON.parse(line) as GeneratorEvent;
  }
}
