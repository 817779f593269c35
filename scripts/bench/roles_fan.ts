/**
 * The throughput roles of the load generator: senders (fan-in, and the publishers of
 * fan-out) and subscribers (fan-out).
 *
 * Senders write pipelined `MSG <n>\n<payload>\n` frames in large batches (128 KiB
 * writes), then end with `PING` and wait for `PONG`: the server's barrier, after which
 * every message is on stdout and queued for every subscriber. Subscribers say
 * `HELLO sub\nPING\n`, wait for `PONG`, then count the relayed frames until they have all
 * of them, with a counter that skips payloads and allocates nothing per message
 * (scripts/bench/relay_counter.ts; the project's decoder made the generator the bound of
 * the fan-out to many, and would cost it more than the NATS rows' reading).
 *
 * With subscribers, the senders keep a credit window: they are never more than
 * `windowBytes` of relayed frames ahead of the slowest subscriber, whose count they read
 * from counters shared between Workers. The server cuts off a subscriber whose queue
 * grows past `--max-outbound` (a slow consumer); the window keeps the benchmark on the
 * side of that rule that measures throughput, not the rule itself.
 *
 * The same roles speak NATS's text protocol to a `nats-server` when the role says so
 * (scripts/bench/fan_peer.ts): `PUB bench <n>` batches, `SUB bench <sid>` subscribers
 * counting `MSG` frames, PING/PONG as the barrier, the same window.
 *
 * @module
 */

import { mapConcurrent } from "../shared/harness.ts";
import type { CountingPeer } from "./counting_peer.ts";
import { fanWire } from "./fan_peer.ts";
import { checkDeadline, frameBatch } from "./peer.ts";
import { type SendRole, SHARED_GENERATION_SLOT, type SubscribeRole } from "./plan.ts";
import type { PreparedRole, RoleContext } from "./role.ts";

const CONNECT_CONCURRENCY = 64;
/** A subscriber that has received nothing for this long is given up on. */
const STALL_MS = 15_000;

/** Connects the senders (HELLO, UNSUB, PING/PONG each) and returns them ready to send. */
export async function prepareSenders(
  context: RoleContext,
  role: SendRole,
): Promise<PreparedRole> {
  const { port, deadline, shared } = context;
  const wire = fanWire(role.protocol);
  const peers = await mapConcurrent(
    role.names,
    CONNECT_CONCURRENCY,
    (name) => wire.sender(port, name, deadline),
  );
  const { batch, perBatch } = frameBatch(wire.frame(role.size), role.batchBytes);
  const subscriberSlots = shared.length - 1;
  const longestName = Math.max(...role.names.map((name) => name.length));
  const relayFrameBytes = wire.relayFrameBytes(role.size, longestName);
  const windowMessages = role.windowBytes > 0 && subscriberSlots > 0
    ? Math.max(perBatch, Math.floor(role.windowBytes / relayFrameBytes))
    : Infinity;
  let reserved = 0;
  let windowWaits = 0;

  /** Waits until `count` more messages fit in the window ahead of the slowest subscriber. */
  async function credit(count: number): Promise<void> {
    for (;;) {
      const generation = Atomics.load(shared, SHARED_GENERATION_SLOT);
      let slowest = Infinity;
      for (let slot = 1; slot <= subscriberSlots; slot++) {
        slowest = Math.min(slowest, Atomics.load(shared, slot));
      }
      if (reserved + count - slowest <= windowMessages) {
        reserved += count;
        return;
      }
      checkDeadline(deadline, "waiting for the subscribers to catch up");
      windowWaits++;
      const wait = Atomics.waitAsync(shared, SHARED_GENERATION_SLOT, generation, 1_000);
      if (wait.async) await wait.value;
    }
  }

  return {
    async go() {
      let sent = 0;
      await Promise.all(peers.map(async (peer) => {
        for (let done = 0; done < role.messages;) {
          checkDeadline(deadline, "sending");
          const count = Math.min(perBatch, role.messages - done);
          if (windowMessages !== Infinity) await credit(count);
          await peer.write(batch.subarray(0, count * (batch.length / perBatch)));
          done += count;
          sent += count;
          context.progress(`sent ${sent.toLocaleString("en-US")} msgs`);
        }
        await peer.barrier(deadline);
      }));
      return {
        kind: "send",
        metrics: { connections: peers.length, sent, windowWaits },
        failures: [],
      };
    },
    close() {
      for (const peer of peers) peer.close();
    },
  };
}

/** Connects the subscribers (HELLO, PING/PONG each) and returns them ready to count. */
export async function prepareSubscribers(
  context: RoleContext,
  role: SubscribeRole,
): Promise<PreparedRole> {
  const { deadline, shared } = context;
  const port = role.port ?? context.port;
  const wire = fanWire(role.protocol);
  const peers = await mapConcurrent(
    role.names,
    CONNECT_CONCURRENCY,
    (name, i) => wire.subscriber(port, name, i, deadline),
  );
  const counts = new Array<number>(peers.length).fill(0);
  const failures: string[] = [];

  async function count(peer: CountingPeer, index: number, lastHeard: number[]): Promise<void> {
    const slot = role.firstSlot + index;
    try {
      while (counts[index] < role.expected) {
        checkDeadline(deadline, "counting relayed messages");
        const messages = await peer.read();
        if (messages === null) {
          failures.push(`${role.names[index]}: the connection closed`);
          return;
        }
        counts[index] += messages;
        lastHeard[index] = Date.now();
        Atomics.store(shared, slot, counts[index]);
        Atomics.add(shared, SHARED_GENERATION_SLOT, 1);
        Atomics.notify(shared, SHARED_GENERATION_SLOT);
      }
    } catch (error) {
      failures.push(`${role.names[index]}: ${error instanceof Error ? error.message : error}`);
    }
  }

  return {
    async go() {
      const startedAt = Date.now();
      const lastHeard = new Array<number>(peers.length).fill(startedAt);
      // Bounds the reads, which have no timeout of their own: a subscriber that stalls
      // (or outlives the deadline) is closed, which ends its pending read.
      const watchdog = setInterval(() => {
        const now = Date.now();
        peers.forEach((peer, i) => {
          if (counts[i] < role.expected && (now - lastHeard[i] > STALL_MS || now > deadline)) {
            failures.push(`${role.names[i]}: stalled at ${counts[i]} of ${role.expected}`);
            peer.close();
          }
        });
        const total = counts.reduce((a, b) => a + b, 0);
        context.progress(`delivered ${total.toLocaleString("en-US")} msgs`);
      }, 500);
      try {
        await Promise.all(peers.map((peer, i) => count(peer, i, lastHeard)));
      } finally {
        clearInterval(watchdog);
      }
      const short = counts.filter((c) => c !== role.expected).length;
      if (short > 0) {
        failures.push(
          `${short} of ${peers.length} subscribers did not get exactly ${role.expected} messages ` +
            `(fewest ${Math.min(...counts)}, most ${Math.max(...counts)})`,
        );
      }
      return {
        kind: "subscribe",
        metrics: {
          subscribers: peers.length,
          delivered: counts.reduce((a, b) => a + b, 0),
          expectedEach: role.expected,
          fewest: Math.min(...counts),
        },
        failures,
      };
    },
    close() {
      for (const peer of peers) peer.close();
    },
  };
}
