/**
 * A line-echo service on the parrot TCP toolkit: each complete line comes back to its
 * sender. At most 100 clients (one more is told so and closed); 30s of silence or a line
 * over 64 KiB closes a connection; Ctrl+C or SIGTERM shuts down gracefully.
 * Run: `deno run --allow-net=127.0.0.1 examples/echo_server.ts [port]`
 * @module
 */

import { isTimeoutError, readWithDeadline, serveTcp } from "../mod.ts";

const writeAll = async (conn: Deno.Conn, bytes: Uint8Array) => {
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
};
const shutdown = new AbortController();
const server = serveTcp({
  port: Number(Deno.args[0] ?? 0),
  maxConnections: 100,
  onReject: (conn) => writeAll(conn, new TextEncoder().encode("too many clients, try later\n")),
  signal: shutdown.signal,
}, async (conn, { signal }) => {
  const buffer = new Uint8Array(16 * 1024);
  let partialLine = new Uint8Array(0);
  while (partialLine.length <= 64 * 1024) {
    // Idle past the deadline, or shutting down: hang up (as at end of stream).
    const n = await readWithDeadline(conn, buffer, 30_000, signal)
      .catch((error) => isTimeoutError(error) || signal.aborted ? null : Promise.reject(error));
    if (n === null) return;
    const data = new Uint8Array(partialLine.length + n);
    data.set(partialLine);
    data.set(buffer.subarray(0, n), partialLine.length);
    const end = data.lastIndexOf(10) + 1; // Just after the last complete line.
    await writeAll(conn, data.subarray(0, end));
    partialLine = data.slice(end);
  }
});
const stop = () => shutdown.abort();
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, stop);
console.error(`echo server listening on ${server.addr.hostname}:${server.addr.port}`);
await server.finished;
for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(signal, stop);
