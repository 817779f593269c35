/**
 * parrot: a Deno-native TCP messaging server and its clients.
 *
 * Many clients connect over TCP (or TLS), send messages, and the server prints each one
 * to stdout as `<name>: <payload>` in arrival order and relays it to the other clients.
 * A `PING` answered with `PONG` means every message sent before it is on stdout.
 *
 * - The server: {@linkcode startParrotServer} with its {@linkcode ParrotServerOptions};
 *   its {@linkcode ServerStats}; its connected clients, {@linkcode ClientInfo}; WebSocket
 *   clients through `ParrotServer.upgradeWebSocket` ({@linkcode WebSocketUpgradeOptions}).
 * - A client: {@linkcode ParrotClient}; one that reconnects with backoff (moving between
 *   several servers) and re-sends what the server had not confirmed:
 *   {@linkcode ReconnectingClient}. Servers are named by {@linkcode ServerAddress}
 *   (`host:port`, {@linkcode parseServerAddress}).
 * - The protocol's public rules: {@linkcode REASON} (what follows `ERR`),
 *   {@linkcode isValidName} and {@linkcode MAX_NAME_LENGTH}, the default limits.
 *
 * The protocol-free TCP toolkit the server is built on (`serveTcp`, line and frame
 * readers, deadlines, `writeAll`, ...) is the `./net` entry point.
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

export {
  type ClientInfo,
  OutputError,
  type ParrotServer,
  type ParrotServerOptions,
  type RemoteMessages,
  type ServerStats,
  startParrotServer,
  type WebSocketUpgradeOptions,
} from "./lib/parrot/server.ts";
export { RECORD_FORMATS, type RecordFormat } from "./lib/parrot/record_format.ts";
export type { MessageHistory, StoredMessage } from "./lib/parrot/message_history.ts";
export type { HistogramSnapshot } from "./lib/parrot/wait_histogram.ts";
export { type ClientEvent, ParrotClient, type ParrotClientOptions } from "./lib/parrot/client.ts";
export {
  formatServerAddress,
  parseServerAddress,
  type ServerAddress,
} from "./lib/parrot/server_address.ts";
export {
  type ReconnectEvent,
  ReconnectingClient,
  type ReconnectingClientOptions,
} from "./lib/parrot/reconnecting_client.ts";
export { isValidName, type ProtocolReason, REASON } from "./lib/parrot/frame.ts";
export {
  DEFAULT_HOST,
  DEFAULT_MAX_CLIENTS,
  DEFAULT_MAX_FRAME_BYTES,
  MAX_CONTROL_LINE_BYTES,
  MAX_NAME_LENGTH,
} from "./lib/defaults.ts";
export type { ByteWriter } from "./lib/net/write_coalescer.ts";
