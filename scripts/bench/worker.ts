/**
 * The Worker entry of the load generator: runs one role (see scripts/bench/plan.ts).
 *
 * The generator's main thread starts one Worker per role, so a role that needs a core of
 * its own gets one, and the CPU of the whole generator is still one process's, read from
 * /proc by the bench. This file owns only the exchange with the main thread: `start`
 * (set up, answer `ready`), `go` (run, answer `done`), `exit` (close, answer `closed`),
 * and the throttling of progress messages.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import type { FromWorker, Role, ToWorker } from "./plan.ts";
import { type PreparedRole, type RoleContext, sharedClock } from "./role.ts";
import { prepareChurn, prepareIdle } from "./roles_conn.ts";
import { prepareSenders, prepareSubscribers } from "./roles_fan.ts";
import { prepareLatencyListener, prepareLatencyPublishers } from "./roles_latency.ts";
import { prepareWebSocketLatencyListener } from "./roles_latency_ws.ts";

const PROGRESS_EVERY_MS = 500;

function post(message: FromWorker): void {
  self.postMessage(message);
}

function prepare(context: RoleContext, role: Role): Promise<PreparedRole> {
  switch (role.kind) {
    case "send":
      return prepareSenders(context, role);
    case "subscribe":
      return prepareSubscribers(context, role);
    case "idle":
      return prepareIdle(context, role);
    case "churn":
      return prepareChurn(context, role);
    case "latency-publish":
      return prepareLatencyPublishers(context, role);
    case "latency-listen":
      return role.transport === "ws"
        ? prepareWebSocketLatencyListener(context, role)
        : prepareLatencyListener(context, role);
  }
}

let prepared: PreparedRole | null = null;
let lastProgressAt = 0;

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  try {
    switch (message.type) {
      case "start": {
        const context: RoleContext = {
          port: message.port,
          deadline: message.deadline,
          shared: new Int32Array(message.shared),
          clock: sharedClock(message.clockOrigin),
          progress(text) {
            const now = Date.now();
            if (now - lastProgressAt < PROGRESS_EVERY_MS) return;
            lastProgressAt = now;
            post({ type: "progress", text });
          },
        };
        prepared = await prepare(context, message.role);
        post({ type: "ready" });
        break;
      }
      case "go":
        if (!prepared) throw new Error("go before the role was ready");
        post({ type: "done", result: await prepared.go() });
        break;
      case "exit":
        prepared?.close();
        post({ type: "closed" });
        break;
    }
  } catch (error) {
    prepared?.close();
    post({ type: "error", message: describe(error) });
  }
};
