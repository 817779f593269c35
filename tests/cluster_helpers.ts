/**
 * What the cluster integration tests share: parrot server processes joined through real
 * nats-server processes, raw clients, and a parser of the `MSG` frames a client received.
 */

import { RawClient, type ServerProcess, startServer, waitFor } from "../lib/testing.ts";

const decoder = new TextDecoder();

/** One relayed message as a client received it. */
export interface Relayed {
  from: string;
  payload: Uint8Array;
}

/**
 * The `MSG <from> <n>` frames in what a client received, in order (other lines, `PONG`,
 * `PING`, `QUIT`, `ERR ...`, are skipped). A frame cut short at the end is left out.
 */
export function relayedFrames(bytes: Uint8Array): Relayed[] {
  const out: Relayed[] = [];
  let at = 0;
  while (at < bytes.length) {
    const end = bytes.indexOf(10, at);
    if (end < 0) break;
    const line = decoder.decode(bytes.subarray(at, end));
    at = end + 1;
    const match = line.match(/^MSG (\S+) (\d+)$/);
    if (!match) continue;
    const size = Number(match[2]);
    if (at + size + 1 > bytes.length) break;
    out.push({ from: match[1], payload: bytes.slice(at, at + size) });
    at += size + 1;
  }
  return out;
}

/** The text payloads `client` received from `from`, in order. */
export function textsFrom(client: RawClient, from: string): string[] {
  return relayedFrames(client.received.bytes()).filter((r) => r.from === from).map((r) =>
    decoder.decode(r.payload)
  );
}

/**
 * Starts a parrot server process in cluster mode on `urls` (a comma list) and waits until it
 * has connected to NATS (unless `connected` is false).
 */
export async function startClusterServer(
  urls: string,
  name: string,
  extra: string[] = [],
  options: { connected?: boolean; env?: Record<string, string>; runArgs?: string[] } = {},
): Promise<ServerProcess> {
  const server = await startServer(
    ["--cluster", urls, "--server-name", name, ...extra],
    { env: options.env, runArgs: options.runArgs },
  );
  if (options.connected !== false) {
    await server.stderr.waitForText(/Connected to NATS at/, 15_000);
  }
  return server;
}

/** Connects a raw client, names it, and waits until the server has taken its `HELLO`. */
export async function namedClient(port: number, name: string): Promise<RawClient> {
  const client = await RawClient.connect(port);
  await client.write(`HELLO ${name}\n`);
  await client.ping();
  return client;
}

/** The last `--stats` line's `key=value` figures of a server's stderr. */
export function lastStats(server: ServerProcess): Record<string, string> {
  const lines = server.stderr.text().split("\n").filter((line) => line.includes(" stats: "));
  const last = lines.at(-1) ?? "";
  return Object.fromEntries(
    [...last.matchAll(/(\w+)=(\S+)/g)].map((match) => [match[1], match[2]]),
  );
}

/** Waits until the server's latest `--stats` line satisfies `check`. */
export async function waitForStats(
  server: ServerProcess,
  check: (figures: Record<string, string>) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<Record<string, string>> {
  await waitFor(() => check(lastStats(server)), what, timeoutMs);
  return lastStats(server);
}

/** SIGINT, then the exit code. */
export async function stopServer(server: ServerProcess): Promise<number> {
  server.kill("SIGINT");
  return (await server.status).code;
}
