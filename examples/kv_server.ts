/**
 * A key-value service on parrot's TCP toolkit, one command per line: `SET <key> <value>`,
 * `GET <key>`, `DEL <key>`, `QUIT`. Each reply is one line: `OK`, `VALUE <value>`, `NIL`,
 * `BYE`, or `ERR <reason>`. A line over 4 KiB, a line unfinished after 5 s, or silence for
 * the idle timeout ends a connection; past --max-clients a client is refused; Ctrl+C or
 * SIGTERM tells every client `BYE` and exits 0. Run it with `deno run --allow-net=127.0.0.1
 * examples/kv_server.ts [port] [--max-clients 100] [--idle-timeout 60s]`
 * @module
 */
import { parseArgs } from "node:util";
import {
  isTimeoutError,
  LineTooLongError,
  parseDuration,
  readLines,
  serveTcp,
  writeAll,
} from "../net.ts";

/** The port, client limit and idle timeout from the command line; exits 2 on bad input. */
function settings(): { port: number; maxClients: number; idleTimeoutMs: number } {
  try {
    const { values, positionals } = parseArgs({
      allowPositionals: true,
      options: { "max-clients": { type: "string" }, "idle-timeout": { type: "string" } },
    });
    const [port, maxClients] = [Number(positionals[0] ?? 0), Number(values["max-clients"] ?? 100)];
    if (!(maxClients >= 1 && Number.isInteger(maxClients) && Number.isInteger(port))) {
      throw new Error(`Cannot use ${Deno.args.join(" ")}: expected whole numbers`);
    }
    return { port, maxClients, idleTimeoutMs: parseDuration(values["idle-timeout"] ?? "60s") };
  } catch (error) {
    console.error((error as Error).message);
    Deno.exit(2);
  }
}
const { port, maxClients, idleTimeoutMs } = settings();
const encoder = new TextEncoder(), decoder = new TextDecoder();
const store = new Map<string, string>();

/** Runs one command; returns its reply. */
function execute(line: string): string {
  const [command, key, ...value] = line.split(" ");
  if (command === "SET" && key && value.length > 0) return store.set(key, value.join(" ")), "OK";
  if (command === "GET" && key && value.length === 0) {
    return store.has(key) ? `VALUE ${store.get(key)}` : "NIL";
  }
  if (command === "DEL" && key && value.length === 0) return store.delete(key) ? "OK" : "NIL";
  return "ERR expected SET <key> <value>, GET <key>, DEL <key> or QUIT";
}

const shutdown = new AbortController(), signals = ["SIGINT", "SIGTERM"] as const;
const stop = () => shutdown.abort();
for (const signal of signals) Deno.addSignalListener(signal, stop);
const server = serveTcp({
  port,
  maxConnections: maxClients,
  signal: shutdown.signal,
  onListen: ({ hostname, port }) => console.error(`kv server listening on ${hostname}:${port}`),
  onReject: (conn) => writeAll(conn, encoder.encode("ERR too many clients\n")),
}, async (conn, { signal }) => {
  // Replies have their own deadline: the goodbye goes out after `signal` has aborted.
  const reply = (text: string) =>
    writeAll(conn, encoder.encode(`${text}\n`), { signal: AbortSignal.timeout(5_000) });
  const options = { maxLineBytes: 4096, readTimeoutMs: 5_000, idleTimeoutMs, signal };
  try {
    for await (const line of readLines(conn, options)) {
      const command = decoder.decode(line);
      if (command === "QUIT") return await reply("BYE");
      await reply(execute(command));
    }
  } catch (error) {
    if (signal.aborted) await reply("BYE server shutting down");
    else if (isTimeoutError(error)) await reply("ERR timeout");
    else if (error instanceof LineTooLongError) await reply("ERR line too long");
    else throw error;
  }
});
await server.finished;
for (const signal of signals) Deno.removeSignalListener(signal, stop);
