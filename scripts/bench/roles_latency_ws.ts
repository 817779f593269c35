/**
 * The timing subscriber of the `latency-ws` row: a WebSocket client of the server's `/ws`
 * (docs/PROTOCOL.md, "WebSocket"), in a Worker of its own, as a browser tab would be.
 *
 * The publishers are the TCP ones of scripts/bench/roles_latency.ts; their payloads are
 * ASCII, so each reaches this client as a text message `{"type":"msg","from":..,"text":..}`
 * whose `text` starts with the stamp (scripts/bench/latency_stamp.ts). One clock reading per
 * message event: the figure is the time from a publisher's write call to the event, the
 * server's stdout write, its WebSocket framing and the client's JSON parse included.
 *
 * @module
 */

import { LatencyRecord, SEQUENCE_DIGITS, STALL_MS, STAMP_BYTES } from "./latency_stamp.ts";
import type { LatencyListenRole } from "./plan.ts";
import type { PreparedRole, RoleContext } from "./role.ts";

const PING = JSON.stringify({ type: "ping" });
const PONG = JSON.stringify({ type: "pong" });

/** Opens the WebSocket (named `latency`), waits for its `pong`; `go` times every message. */
export async function prepareWebSocketLatencyListener(
  context: RoleContext,
  role: LatencyListenRole,
): Promise<PreparedRole> {
  const { deadline } = context;
  const record = new LatencyRecord(role);
  const failures: string[] = [];
  const url = `ws://127.0.0.1:${role.port ?? context.port}/ws?name=latency`;
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  let lastHeard = Date.now();
  let pong: PromiseWithResolvers<void> | null = Promise.withResolvers();
  const all = Promise.withResolvers<void>();
  const opening = Promise.withResolvers<void>();
  socket.onopen = () => opening.resolve();
  socket.onclose = (event) => {
    const why = new Error(`the WebSocket closed (${event.code} ${event.reason || "no reason"})`);
    opening.reject(why);
    pong?.reject(why);
    all.reject(why);
  };
  socket.onmessage = ({ data }: MessageEvent<string | ArrayBuffer>) => {
    const now = context.clock();
    lastHeard = Date.now();
    if (typeof data !== "string") {
      all.reject(new Error("the WebSocket got a binary message (a payload that is not UTF-8)"));
      return;
    }
    const message = JSON.parse(data) as { type: string; text?: string };
    if (message.type === "ping") return socket.send(PONG);
    if (message.type === "pong") return pong?.resolve();
    if (message.type !== "msg" || message.text === undefined) return;
    const text = message.text;
    record.add(
      Number(text.slice(0, SEQUENCE_DIGITS)),
      Number(text.slice(SEQUENCE_DIGITS + 1, STAMP_BYTES)),
      now,
    );
    if (record.received === record.total) all.resolve();
    if (record.received % 1000 === 0) {
      context.progress(`${record.received.toLocaleString("en-US")} of ${record.total} received`);
    }
  };
  // Awaited below; a close before then must not be an unhandled rejection meanwhile.
  for (const waiting of [opening, pong, all]) waiting.promise.catch(() => {});
  const bounded = setTimeout(() => socket.close(), Math.max(0, deadline - Date.now()));
  try {
    await opening.promise;
    socket.send(PING);
    await pong.promise; // Subscribed: the server has taken the session in.
    pong = null;
  } catch (error) {
    clearTimeout(bounded);
    throw error;
  }

  return {
    async go() {
      lastHeard = Date.now();
      const watchdog = setInterval(() => {
        if (Date.now() - lastHeard > STALL_MS || Date.now() > deadline) socket.close();
      }, 500);
      try {
        await all.promise;
      } catch (error) {
        failures.push(record.failure(error));
      } finally {
        clearInterval(watchdog);
      }
      return { kind: "latency-listen", metrics: record.finish(failures), failures };
    },
    close() {
      clearTimeout(bounded);
      socket.onclose = null;
      if (socket.readyState < WebSocket.CLOSING) socket.close();
    },
  };
}
