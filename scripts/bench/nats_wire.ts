/**
 * The little of NATS's text protocol the bench's fan-out rows speak to a real `nats-server`,
 * so that the same generator, messages and checks measure parrot and NATS side by side.
 *
 * Owned here: the frames a client sends (`CONNECT {"verbose":false,"pedantic":false}`,
 * `SUB <subject> <sid>`, `PUB <subject> <n>\r\n<payload>\r\n`) and the size of what the
 * server relays. What the server sends is counted by scripts/bench/relay_counter.ts.
 *
 * @module
 */

const encoder = new TextEncoder();

/** The subject the fan-out rows publish on and subscribe to. */
export const NATS_SUBJECT = "bench";
/** The client's first line: no `+OK` after every frame. */
export const NATS_CONNECT = `CONNECT {"verbose":false,"pedantic":false}\r\n`;

/** `PUB <subject> <n>\r\n` + `size` bytes of `x` + `\r\n`, the frame a publisher repeats. */
export function natsPubFrame(size: number, subject = NATS_SUBJECT): Uint8Array {
  return encoder.encode(`PUB ${subject} ${size}\r\n${"x".repeat(size)}\r\n`);
}

/** Bytes of one relayed `MSG <subject> <sid> <n>\r\n<payload>\r\n` frame. */
export function natsMsgFrameBytes(size: number, subject = NATS_SUBJECT, sid = "1"): number {
  return `MSG ${subject} ${sid} ${size}\r\n`.length + size + 2;
}
