/**
 * One connection of the fan-out roles (scripts/bench/roles_fan.ts), in either protocol the
 * fan-out rows compare: parrot's (through {@linkcode Peer}) or NATS's (through
 * {@linkcode NatsPeer}), so that the senders' credit window and the subscribers' counting
 * are one code for both, and the rows differ only in the server and its wire.
 *
 * @module
 */

import { NATS_SUBJECT, natsMsgFrameBytes, NatsPeer, natsPubFrame } from "./nats_wire.ts";
import { msgFrame, Peer } from "./peer.ts";
import type { FanProtocol } from "./plan.ts";

/** A publisher or subscriber connection, set up and ready. */
export interface FanPeer {
  /** Writes all of `data`. */
  write(data: Uint8Array): Promise<void>;
  /**
   * Reads once: the messages it completed, or null when the server closed the
   * connection. A server's error is passed to `onError` (parrot) or thrown (NATS).
   */
  readMessages(onError: (reason: string) => void): Promise<number | null>;
  /** The barrier: PING, then wait for PONG (everything sent before it was taken). */
  barrier(deadline: number): Promise<void>;
  close(): void;
}

/** How a protocol connects and frames a message. */
export interface FanWire {
  /** A publisher named `name` (parrot: HELLO and UNSUB), PONG received. */
  sender(port: number, name: string, deadline: number): Promise<FanPeer>;
  /** A subscriber named `name` (NATS: `SUB bench <n>`), PONG received. */
  subscriber(port: number, name: string, index: number, deadline: number): Promise<FanPeer>;
  /** The frame a publisher repeats: one message of `size` bytes. */
  frame(size: number): Uint8Array;
  /** Bytes of one message as relayed to a subscriber (for the credit window). */
  relayFrameBytes(size: number, longestName: number): number;
}

function parrotPeer(peer: Peer): FanPeer {
  return {
    write: (data) => peer.write(data),
    async readMessages(onError) {
      const frames = await peer.read();
      if (frames === null) return null;
      let messages = 0;
      for (const frame of frames) {
        if (frame.type === "msg") messages++;
        else if (frame.type === "err") onError(`ERR ${frame.reason}`);
      }
      return messages;
    },
    async barrier(deadline) {
      await peer.write("PING\n");
      await peer.untilPong(deadline);
    },
    close: () => peer.close(),
  };
}

function natsPeer(peer: NatsPeer): FanPeer {
  return {
    write: (data) => peer.write(data),
    readMessages: () => peer.read(),
    async barrier(deadline) {
      await peer.write("PING\r\n");
      await peer.untilPong(deadline);
    },
    close: () => peer.close(),
  };
}

const PARROT: FanWire = {
  async sender(port, name, deadline) {
    const peer = await Peer.connect(port, 1024);
    await peer.write(`HELLO ${name}\nUNSUB\nPING\n`);
    await peer.untilPong(deadline);
    return parrotPeer(peer);
  },
  async subscriber(port, name, _index, deadline) {
    const peer = await Peer.connect(port, 64 * 1024);
    await peer.write(`HELLO ${name}\nPING\n`);
    await peer.untilPong(deadline);
    return parrotPeer(peer);
  },
  frame: msgFrame,
  relayFrameBytes: (size, longestName) =>
    `MSG ${"x".repeat(longestName)} ${size}\n`.length + size + 1,
};

const NATS: FanWire = {
  async sender(port, _name, deadline) {
    return natsPeer(await NatsPeer.connect(port, deadline, { readBufferBytes: 1024 }));
  },
  async subscriber(port, _name, index, deadline) {
    return natsPeer(
      await NatsPeer.connect(port, deadline, {
        readBufferBytes: 64 * 1024,
        subscribe: { subject: NATS_SUBJECT, sid: String(index + 1) },
      }),
    );
  },
  frame: (size) => natsPubFrame(size),
  // The longest sid of 1,000 subscribers is 4 digits.
  relayFrameBytes: (size) => natsMsgFrameBytes(size, NATS_SUBJECT, "0000"),
};

/** The wire of `protocol` (parrot's by default). */
export function fanWire(protocol: FanProtocol = "parrot"): FanWire {
  return protocol === "nats" ? NATS : PARROT;
}
