/**
 * Line echo on parrot's TCP toolkit (100 clients at most; 30 s idle or a 64 KiB line closes a
 * connection; Ctrl+C shuts down): `deno run --allow-net=127.0.0.1 examples/echo_server.ts [port]`
 * @module
 */
import { isTimeoutError, readLines, serveTcp, writeAll } from "../net.ts";

const shutdown = new AbortController(), signals = ["SIGINT", "SIGTERM"] as const;
const stop = () => shutdown.abort();
for (const signal of signals) Deno.addSignalListener(signal, stop);
await serveTcp({
  port: Number(Deno.args[0] ?? 0),
  maxConnections: 100,
  signal: shutdown.signal,
  onListen: ({ hostname, port }) => console.error(`echo server listening on ${hostname}:${port}`),
  onReject: (conn) => writeAll(conn, new TextEncoder().encode("too many clients, try later\n")),
}, async (conn, { signal }) => {
  const lines = readLines(conn, { maxLineBytes: 64 * 1024, idleTimeoutMs: 30_000, signal });
  try {
    for await (const line of lines) await writeAll(conn, new Uint8Array([...line, 10]), { signal });
  } catch (error) {
    if (!signal.aborted && !isTimeoutError(error)) throw error; // Else: shut down, or idle.
  }
}).finished;
for (const signal of signals) Deno.removeSignalListener(signal, stop);
