/**
 * How the fan-out roles (scripts/bench/roles_fan.ts) connect and frame a message in either
 * protocol the fan-out rows compare: parrot's, or NATS's text protocol against a
 * `nats-server` (scripts/bench/nats_wire.ts). Both give a {@linkcode CountingPeer}, so the
 * senders' credit window and the subscribers' counting are one code for both, and the rows
 * differ only in the server and its wire.
 *
 * @module
 */

import { CountingPeer } from "./counting_peer.ts";
import { NATS_CONNECT, NATS_SUBJECT, natsMsgFrameBytes, natsPubFrame } from "./nats_wire.ts";
import { msgFrame } from "./peer.ts";
import type { FanProtocol } from "./plan.ts";

/** How a protocol connects and frames a message. */
export interface FanWire {
  /** A publisher named `name` (parrot: HELLO and UNSUB), PONG received. */
  sender(port: number, name: string, deadline: number): Promise<CountingPeer>;
  /** The subscriber `index`, named `name` (NATS: `SUB bench <index + 1>`), PONG received. */
  subscriber(port: number, name: string, index: number, deadline: number): Promise<CountingPeer>;
  /** The frame a publisher repeats: one message of `size` bytes. */
  frame(size: number): Uint8Array;
  /** Bytes of one message as relayed to a subscriber (for the credit window). */
  relayFrameBytes(size: number, longestName: number): number;
}

const PARROT: FanWire = {
  sender: (port, name, deadline) =>
    CountingPeer.connect(port, "parrot", `HELLO ${name}\nUNSUB\n`, deadline, 1024),
  subscriber: (port, name, _index, deadline) =>
    CountingPeer.connect(port, "parrot", `HELLO ${name}\n`, deadline, 64 * 1024),
  frame: msgFrame,
  relayFrameBytes: (size, longestName) =>
    `MSG ${"x".repeat(longestName)} ${size}\n`.length + size + 1,
};

const NATS: FanWire = {
  sender: (port, _name, deadline) => CountingPeer.connect(port, "nats", NATS_CONNECT, deadline),
  subscriber: (port, _name, index, deadline) =>
    CountingPeer.connect(
      port,
      "nats",
      `${NATS_CONNECT}SUB ${NATS_SUBJECT} ${index + 1}\r\n`,
      deadline,
      64 * 1024,
    ),
  frame: (size) => natsPubFrame(size),
  // The longest sid of 1,000 subscribers is 4 digits.
  relayFrameBytes: (size) => natsMsgFrameBytes(size, NATS_SUBJECT, "0000"),
};

/** The wire of `protocol` (parrot's by default). */
export function fanWire(protocol: FanProtocol = "parrot"): FanWire {
  return protocol === "nats" ? NATS : PARROT;
}
