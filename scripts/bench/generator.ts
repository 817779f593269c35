/**
 * The load generator process of `deno task bench`: `deno run --allow-net=127.0.0.1
 * --allow-read scripts/bench/generator.ts`, driven by the bench over stdin and stdout.
 *
 * A process of its own, so that its CPU time (every Worker's) can be read from /proc
 * beside the server's and a reader can tell which side was the bottleneck. This file
 * owns the main thread: it reads the plan (scripts/bench/plan.ts), starts one Worker per
 * role with the shared counters, and relays the phases (`ready`, `go`, `done`, `exit`)
 * between the bench and the Workers as JSON lines. It gives up after the plan's time
 * limit, so it never outlives a run.
 *
 * @module
 */

import type { FromWorker, GeneratorEvent, GeneratorPlan, RoleResult, ToWorker } from "./plan.ts";

const encoder = new TextEncoder();
const PROGRESS_EVERY_MS = 250;

function emit(event: GeneratorEvent): void {
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(event) + "\n"));
}

/** The lines of stdin, one at a time. */
async function* stdinLines(): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    yield* lines;
  }
  if (rest) yield rest;
}

async function expectLine(lines: AsyncGenerator<string>, what: string): Promise<string> {
  const { value, done } = await lines.next();
  if (done) throw new Error(`stdin ended while waiting for ${what}`);
  return value;
}

/** One Worker and the answers it has given. */
class RoleWorker {
  readonly worker: Worker;
  #waiting: { type: FromWorker["type"]; resolve: (m: FromWorker) => void } | null = null;
  #failed: PromiseWithResolvers<never> = Promise.withResolvers();

  constructor(onProgress: (text: string) => void) {
    this.worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    this.#failed.promise.catch(() => {});
    this.worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if (message.type === "progress") return onProgress(message.text);
      if (message.type === "error") return this.#failed.reject(new Error(message.message));
      if (this.#waiting?.type === message.type) {
        const { resolve } = this.#waiting;
        this.#waiting = null;
        resolve(message);
      }
    };
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.#failed.reject(new Error(`a worker failed: ${event.message}`));
    };
  }

  /** Posts `message` and waits for the answer of type `answer` (or the worker's error). */
  ask(message: ToWorker, answer: FromWorker["type"]): Promise<FromWorker> {
    const answered = new Promise<FromWorker>((resolve) =>
      this.#waiting = { type: answer, resolve }
    );
    this.worker.postMessage(message);
    return Promise.race([answered, this.#failed.promise]);
  }
}

async function main(): Promise<void> {
  const lines = stdinLines();
  const plan = JSON.parse(await expectLine(lines, "the plan")) as GeneratorPlan;
  const deadline = Date.now() + plan.timeLimitMs;
  const giveUp = setTimeout(() => {
    emit({ event: "error", message: `the generator ran out of time (${plan.timeLimitMs} ms)` });
    Deno.exit(1);
  }, plan.timeLimitMs + 5_000);
  Deno.unrefTimer(giveUp);
  const subscriberSlots = plan.roles.reduce(
    (n, role) => n + (role.kind === "subscribe" ? role.names.length : 0),
    0,
  );
  const shared = new SharedArrayBuffer(4 * (1 + subscriberSlots));
  const progress = new Map<number, string>();
  let lastProgressAt = 0;
  const workers = plan.roles.map((_, i) =>
    new RoleWorker((text) => {
      progress.set(i, text);
      const now = Date.now();
      if (now - lastProgressAt < PROGRESS_EVERY_MS) return;
      lastProgressAt = now;
      emit({ event: "progress", text: [...progress.values()].join(", ") });
    })
  );
  await Promise.all(
    workers.map((w, i) =>
      w.ask({
        type: "start",
        port: plan.port,
        role: plan.roles[i],
        shared,
        deadline,
        clockOrigin: performance.timeOrigin,
      }, "ready")
    ),
  );
  emit({ event: "ready" });
  const go = await expectLine(lines, "go");
  if (go.trim() !== "go") throw new Error(`expected "go", got ${JSON.stringify(go)}`);
  const startedAt = performance.now();
  const roles = await Promise.all(workers.map(async (w) => {
    const answer = await w.ask({ type: "go" }, "done");
    return (answer as { result: RoleResult }).result;
  }));
  emit({ event: "done", result: { elapsedMs: performance.now() - startedAt, roles } });
  await expectLine(lines, "exit").catch(() => "exit");
  await Promise.all(workers.map((w) => w.ask({ type: "exit" }, "closed")));
  for (const w of workers) w.worker.terminate();
}

try {
  await main();
  Deno.exit(0);
} catch (error) {
  emit({ event: "error", message: error instanceof Error ? error.message : String(error) });
  Deno.exit(1);
}
