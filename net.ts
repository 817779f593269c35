/**
 * The protocol-free TCP toolkit under parrot: what every TCP service in Deno writes by
 * hand, done once.
 *
 * - Serving: {@linkcode serveTcp} (accept loop, connection limit, accept backoff, TLS,
 *   `reusePort`, a signal per connection, graceful shutdown, `await using`), and
 *   {@linkcode listenTcp} to bind first and serve later.
 * - Reading framed input: {@linkcode readLines} and {@linkcode readLengthPrefixed}, with
 *   idle and read deadlines and a signal, on the push parsers {@linkcode LineParser} and
 *   {@linkcode LengthPrefixedParser} (sizes capped before they are trusted).
 * - Writing: {@linkcode writeAll}, and the {@linkcode WriteCoalescer} that turns many
 *   small writes into few.
 * - Deadlines and waiting: {@linkcode deadlineSignal}, {@linkcode abortable},
 *   {@linkcode readWithDeadline}, {@linkcode TimedReader}, {@linkcode delay},
 *   {@linkcode delayUnlessAborted}, {@linkcode settlesWithin}; durations as text
 *   ({@linkcode parseDuration}).
 * - Flow: the bounded {@linkcode Channel}, the {@linkcode TokenBucket} rate limiter, the
 *   {@linkcode Backoff} retry policy.
 *
 * @example A line service: each line comes back upper-cased
 * ```ts
 * import assert from "node:assert/strict";
 * import { readLines, serveTcp, writeAll } from "./net.ts";
 *
 * await using server = serveTcp({ port: 0, maxConnections: 100 }, async (conn, { signal }) => {
 *   const lines = readLines(conn, { maxLineBytes: 1024, idleTimeoutMs: 30_000, signal });
 *   for await (const line of lines) {
 *     const reply = new TextDecoder().decode(line).toUpperCase() + "\n";
 *     await writeAll(conn, new TextEncoder().encode(reply), { signal });
 *   }
 * });
 *
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
 * await writeAll(conn, new TextEncoder().encode("hello\nworld\n"));
 * await conn.closeWrite(); // the server's reader ends, its handler returns and closes
 * assert.equal(await new Response(conn.readable).text(), "HELLO\nWORLD\n");
 * ```
 *
 * @module
 */

export {
  type ConnInfo,
  serveTcp,
  type ServeTcpOptions,
  type ServeTlsOptions,
  type TcpHandler,
  type TcpServer,
} from "./lib/net/serve_tcp.ts";
export { listenTcp, type ListenTcpOptions, type TlsCertificate } from "./lib/net/listen_tcp.ts";
export type { ConnectionSlots } from "./lib/net/connection_slots.ts";
export {
  type ByteSource,
  type PushParser,
  readFramed,
  type ReadFramedOptions,
  readLengthPrefixed,
  readLines,
} from "./lib/net/read_framed.ts";
export { LineParser, type LineParserOptions, LineTooLongError } from "./lib/net/line_parser.ts";
export {
  encodeLengthPrefixed,
  FrameTooLargeError,
  LengthPrefixedParser,
  type LengthPrefixedParserOptions,
} from "./lib/net/length_prefixed_parser.ts";
export { writeAll, type WriteAllOptions } from "./lib/net/write_all.ts";
export {
  type ByteWriter,
  type ChunkDone,
  WriteCoalescer,
  type WriteCoalescerOptions,
} from "./lib/net/write_coalescer.ts";
export { abortable, deadlineSignal, isTimeoutError, readWithDeadline } from "./lib/net/deadline.ts";
export { type ByteReader, TimedReader } from "./lib/net/timed_reader.ts";
export { delay, type DelayOptions, delayUnlessAborted, settlesWithin } from "./lib/net/delay.ts";
export { formatDuration, parseDuration } from "./lib/net/duration.ts";
export { Channel, ChannelClosedError, type ChannelTryReceiveResult } from "./lib/net/channel.ts";
export { TokenBucket, type TokenBucketOptions } from "./lib/net/token_bucket.ts";
export { Backoff, type BackoffOptions } from "./lib/net/backoff.ts";
