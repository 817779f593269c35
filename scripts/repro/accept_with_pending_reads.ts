/**
 * Minimal repro, kept for an upstream report to denoland/deno: how fast a
 * `Deno.listen` server takes a burst of N connections (a) when it holds them
 * without reading, (b) when each accepted connection has one pending `conn.read`,
 * and (c) as (b) plus one pending `setTimeout` per connection (what any server with
 * an idle or read deadline has).
 *
 * For each mode a client, a `deno` child process running this same script with
 * `--client` (its own event loop and its own file-descriptor limit), opens N connections to the server as fast
 * as it can (`--inflight` connects in flight, all N by default) and holds them without
 * reading or writing. The server accepts, arms whatever the mode says, and stops when
 * it has accepted N connections or after `--limit-ms`. It prints, per mode: the time
 * from the first to the N-th accept, how many connections it accepted, how many the
 * client had connected, how many connect attempts were refused (`ECONNREFUSED`) or
 * failed otherwise, and how many connections the client counts as connected that the
 * server has not accepted ("left out").
 *
 * What it shows (Deno 2.9.6, Linux, 2 cores): with no read pending, accepting keeps up
 * with the burst. With a read (and a timer) pending per connection, each accept costs
 * 2 to 3 times more, the accept queue (`tcpBacklog`, 511 by default) overflows, and the
 * kernel drops the client's final ACK (`TcpExtListenOverflows`; with the default
 * `tcp_abort_on_overflow=0` nothing is refused). The client believes it is connected;
 * the server only gets the connection after a SYN-ACK retransmission (1 s, 3 s, 7 s,
 * 15 s, ...), so hundreds arrive many seconds late or not within `--limit-ms`. With
 * `--backlog 4096` (capped by `net.core.somaxconn`) every mode takes all N in under a
 * second.
 *
 * Run:
 *
 *     deno run --allow-net=127.0.0.1 --allow-run=deno scripts/repro/accept_with_pending_reads.ts --count 10000
 *
 * Options: `--count N` (default 10000), `--inflight K` (connects in flight, default N),
 * `--backlog B` (`tcpBacklog`, default Deno's own, 511 in Deno 2.9), `--limit-ms T`
 * (default 15000), `--modes noread,read,read+timer`. Each process needs `ulimit -n` above
N + 100.
 * The process exits 1 when some mode left connections out.
 *
 * @module
 */

interface ClientReport {
  connected: number;
  refused: number;
  failed: number;
  connectMs: number;
}

const MODES = ["noread", "read", "read+timer"] as const;
type Mode = typeof MODES[number];

if (Deno.args.includes("--client")) await runClient(Deno.args);
else await main();

/**
 * The client: connects `--count` times with `--inflight` attempts in flight, prints its
 * report as one JSON line, then holds the connections until its stdin closes.
 */
async function runClient(args: string[]): Promise<void> {
  const { count, inflight } = parseOptions(args);
  const port = Number(args[args.indexOf("--port") + 1]);
  const held: Deno.Conn[] = [];
  const report: ClientReport = { connected: 0, refused: 0, failed: 0, connectMs: 0 };
  const started = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < count) {
      next++;
      try {
        held.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        report.connected++;
      } catch (error) {
        if (error instanceof Deno.errors.ConnectionRefused) report.refused++;
        else report.failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(inflight, count) }, lane));
  report.connectMs = Math.round(performance.now() - started);
  console.log(JSON.stringify(report));
  for await (const _ of Deno.stdin.readable) { /* hold until the parent closes stdin */ }
  for (const conn of held) conn.close();
}

async function main(): Promise<void> {
  const options = parseOptions(Deno.args);
  console.log(
    `Deno ${Deno.version.deno}, ${options.count} connections, ${options.inflight} in flight, ` +
      `backlog ${options.backlog ?? "default"}`,
  );
  let leftOutAnywhere = false;
  for (const mode of options.modes) {
    const result = await runMode(mode, options);
    const leftOut = result.client.connected - result.accepted;
    if (leftOut > 0) leftOutAnywhere = true;
    console.log(
      [
        `${mode.padEnd(10)}`,
        `accepted ${result.accepted}/${options.count}`,
        result.acceptMs === undefined
          ? `not all within ${options.limitMs} ms`
          : `in ${result.acceptMs} ms (${(result.acceptMs / options.count).toFixed(3)} ms each)`,
        `client connected ${result.client.connected} in ${result.client.connectMs} ms`,
        `refused ${result.client.refused}`,
        `other errors ${result.client.failed}`,
        `left out ${Math.max(leftOut, 0)}`,
      ].join(", "),
    );
  }
  Deno.exit(leftOutAnywhere ? 1 : 0);
}

async function runMode(
  mode: Mode,
  options: Options,
): Promise<{ accepted: number; acceptMs?: number; client: ClientReport }> {
  const listener = Deno.listen({
    hostname: "127.0.0.1",
    port: 0,
    ...(options.backlog === undefined ? {} : { tcpBacklog: options.backlog }),
  });
  const conns: Deno.Conn[] = [];
  const timers: ReturnType<typeof setTimeout>[] = [];
  let firstAt = 0;
  let acceptMs: number | undefined;
  const allAccepted = Promise.withResolvers<void>();
  const accepting = (async () => {
    for await (const conn of listener) {
      if (conns.length === 0) firstAt = performance.now();
      conns.push(conn);
      if (mode !== "noread") {
        // One pending read per connection, with its own small buffer; it settles at close.
        conn.read(new Uint8Array(16)).catch(() => {});
      }
      if (mode === "read+timer") timers.push(setTimeout(() => {}, 60_000));
      if (conns.length === options.count) {
        acceptMs = Math.round(performance.now() - firstAt);
        allAccepted.resolve();
      }
    }
  })();

  const child = new Deno.Command("deno", {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      new URL(import.meta.url).pathname,
      "--client",
      "--port",
      String(listener.addr.port),
      "--count",
      String(options.count),
      "--inflight",
      String(options.inflight),
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).values();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await lines.next();
    if (done) throw new Error("the client exited without a report");
    text += value;
  }
  const client = JSON.parse(text) as ClientReport;

  let limitTimer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    allAccepted.promise,
    new Promise<void>((resolve) => limitTimer = setTimeout(resolve, options.limitMs)),
  ]);
  clearTimeout(limitTimer);
  const accepted = conns.length;

  listener.close();
  await accepting.catch(() => {});
  for (const timer of timers) clearTimeout(timer);
  for (const conn of conns) conn.close();
  await stdin.close();
  await lines.return?.();
  await child.status;
  return { accepted, acceptMs, client };
}

interface Options {
  count: number;
  inflight: number;
  backlog?: number;
  limitMs: number;
  modes: Mode[];
}

function parseOptions(args: string[]): Options {
  const value = (name: string): string | undefined => {
    const at = args.indexOf(`--${name}`);
    return at >= 0 ? args[at + 1] : undefined;
  };
  const count = Number(value("count") ?? 10_000);
  const inflight = Number(value("inflight") ?? count);
  const backlog = value("backlog");
  const limitMs = Number(value("limit-ms") ?? 15_000);
  const modes = (value("modes") ?? MODES.join(",")).split(",") as Mode[];
  const bad = modes.find((mode) => !MODES.includes(mode));
  if (!(count > 0) || !(inflight > 0) || !(limitMs > 0) || bad !== undefined) {
    console.error(
      "usage: accept_with_pending_reads.ts [--count N] [--inflight K] [--backlog B] " +
        "[--limit-ms T] [--modes noread,read,read+timer]",
    );
    Deno.exit(2);
  }
  return {
    count,
    inflight,
    backlog: backlog === undefined ? undefined : Number(backlog),
    limitMs,
    modes,
  };
}
