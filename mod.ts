/**
 * parrot: a Deno-native TCP messaging toolkit.
 *
 * Two layers, arrows one way:
 *
 * - The TCP toolkit, protocol-free: {@linkcode serveTcp} (accept loop, registry,
 *   connection limit, accept backoff, graceful shutdown), read deadlines
 *   ({@linkcode TimedReader}, {@linkcode abortable}, {@linkcode deadlineSignal}), the
 *   bounded {@linkcode Channel}, the {@linkcode WriteCoalescer}, durations.
 * - The parrot protocol on top: the frame decoders and encoders, the parrot server
 *   ({@linkcode startParrotServer}) and client ({@linkcode ParrotClient}).
 *
 * @example A server and a client in one program
 * ```ts
 * import assert from "node:assert/strict";
 * import { ParrotClient, startParrotServer } from "./mod.ts";
 *
 * const heard: string[] = [];
 * const server = startParrotServer({
 *   port: 0,
 *   output: null,
 *   onMessage: (from, payload) => heard.push(`${from}: ${new TextDecoder().decode(payload)}`),
 * });
 * const client = await ParrotClient.connect({ port: server.addr.port, name: "polly" });
 * client.send("pieces of eight");
 * await client.ping(); // PONG: the message is through
 * assert.deepEqual(heard, ["polly: pieces of eight"]);
 * await client.close();
 * await server.shutdown();
 * ```
 *
 * @module
 */

export * from "./lib/defaults.ts";
export {
  type ConnInfo,
  serveTcp,
  type ServeTcpOptions,
  type TcpHandler,
  type TcpServer,
} from "./lib/net/serve_tcp.ts";
export { abortable, deadlineSignal, isTimeoutError, readWithDeadline } from "./lib/net/deadline.ts";
export { type ByteReader, TimedReader } from "./lib/net/timed_reader.ts";
export { Channel, ChannelClosedError, type ChannelTryReceiveResult } from "./lib/net/channel.ts";
export {
  type ByteWriter,
  type ChunkDone,
  WriteCoalescer,
  type WriteCoalescerOptions,
} from "./lib/net/write_coalescer.ts";
export { delay, settlesWithin } from "./lib/net/delay.ts";
export { formatDuration, parseDuration } from "./lib/net/duration.ts";
export { TokenBucket, type TokenBucketOptions } from "./lib/net/token_bucket.ts";
export { Backoff, type BackoffOptions } from "./lib/net/backoff.ts";
export { BatchWriter } from "./lib/net/batch_writer.ts";
export { BufferPool } from "./lib/net/buffer_pool.ts";
export { type ConnectionSlots, SharedConnectionSlots } from "./lib/net/connection_slots.ts";
export { ExclusiveWriter } from "./lib/net/exclusive_writer.ts";
export * from "./lib/parrot/frame.ts";
export * from "./lib/parrot/frame_decoder.ts";
export * from "./lib/parrot/frame_encoder.ts";
export { Hub, type HubOptions, type SlowConsumer } from "./lib/parrot/hub.ts";
export {
  type Admission,
  type AdmissionPolicy,
  admit,
  constantTimeEqual,
} from "./lib/parrot/admission.ts";
export { Session } from "./lib/parrot/session.ts";
export {
  OutputError,
  type ParrotServer,
  type ParrotServerOptions,
  type ServerStats,
  startParrotServer,
} from "./lib/parrot/server.ts";
export { RECORD_FORMATS, type RecordFormat } from "./lib/parrot/record_format.ts";
export {
  type ForwardedDelivery,
  type RelayPeers,
  ShardLink,
  type ShardLinkOptions,
  shardPorts,
} from "./lib/parrot/shard_link.ts";
export { type ClientEvent, ParrotClient, type ParrotClientOptions } from "./lib/parrot/client.ts";
export {
  type ReconnectEvent,
  ReconnectingClient,
  type ReconnectingClientOptions,
} from "./lib/parrot/reconnecting_client.ts";
