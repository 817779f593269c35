/**
 * The wire format of cluster mode: what one parrot server publishes on NATS for the others.
 *
 * It owns the bytes and nothing else (no NATS, no state): a batch encoder that packs many
 * messages of one origin into one frame, and a decoder that checks every length against what
 * is left of the frame and against the limits before it trusts it, so that garbage from a
 * foreign NATS client is refused whole with a {@linkcode ClusterFrameError}, never half
 * delivered. docs/CLUSTER.md describes the layout.
 *
 * @module
 */

import { DEFAULT_MAX_FRAME_BYTES } from "../defaults.ts";

/** The kinds of cluster frame. */
export const FrameKind = {
  /** A batch of messages with consecutive sequence numbers from `seq`. */
  Messages: 1,
  /** The origin's last sequence number (`seq`), sent after a reconnect and while it moves. */
  Head: 2,
  /** "Send me your stream from `seq` on": the target boot id is in `target`. */
  ReplayRequest: 3,
  /** The end of a replay: `seq` is the oldest sequence the origin still had, `head` its last. */
  ReplayEnd: 4,
} as const;
/** One of {@linkcode FrameKind}. */
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

/** Longest origin or sender name in a frame, in UTF-8 bytes. */
export const MAX_FRAME_NAME_BYTES = 255;
const MAGIC_0 = 0x50; // "P"
const MAGIC_1 = 0x43; // "C"
const VERSION = 1;
/** Bytes before the origin name: magic, version, kind, boot id, age, sequence. */
const FIXED_HEADER = 2 + 1 + 1 + 8 + 8 + 8;
/** Bytes a record adds to its name and payload: name length (u8) and payload length (u32). */
export const RECORD_OVERHEAD = 1 + 4;
const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** A frame that is not a valid parrot cluster frame. */
export class ClusterFrameError extends Error {
  override name = "ClusterFrameError";
}

/** Who sends frames: the origin's name, its boot id (16 hex digits) and its age. */
export interface FrameOrigin {
  /** The origin server's name (`--server-name`). */
  name: string;
  /** 16 lowercase hex digits, drawn at random when the origin started. */
  boot: string;
  /**
   * Milliseconds since the origin started, written into every frame: a receiver compares it
   * with its own age (durations, so clocks need not agree) to tell whether it was there when
   * the origin started.
   */
  age(): number;
}

/** A decoded frame. For {@linkcode FrameKind.Messages}, the records are in `names`/`payloads`. */
export interface ClusterFrame {
  kind: FrameKind;
  /** The origin server's name. */
  name: string;
  /** The origin's boot id. */
  boot: string;
  /** The origin's age when it wrote the frame, in milliseconds. */
  age: number;
  /** First sequence (messages), last sequence (head), from (replay request), oldest (replay end). */
  seq: number;
  /** Sender names of the records, in order (messages only; empty otherwise). */
  names: string[];
  /** Payloads of the records, views into the frame's bytes (messages only). */
  payloads: Uint8Array[];
  /** Target boot id of a replay request; the origin's last sequence for a replay end. */
  target: string;
  /** Last sequence of a replay end. */
  head: number;
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** Draws a random boot id: 16 lowercase hex digits. */
export function randomBootId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function writeHeader(
  view: DataView,
  bytes: Uint8Array,
  kind: FrameKind,
  origin: FrameOrigin,
  originName: Uint8Array,
  seq: number,
): number {
  bytes[0] = MAGIC_0;
  bytes[1] = MAGIC_1;
  bytes[2] = VERSION;
  bytes[3] = kind;
  writeBoot(bytes, 4, origin.boot);
  view.setFloat64(12, origin.age());
  writeSeq(view, 20, seq);
  bytes[28] = originName.length;
  bytes.set(originName, 29);
  return 29 + originName.length;
}

function writeBoot(bytes: Uint8Array, at: number, boot: string): void {
  if (!/^[0-9a-f]{16}$/.test(boot)) throw new RangeError(`Invalid boot id "${boot}"`);
  for (let i = 0; i < 8; i++) bytes[at + i] = parseInt(boot.slice(i * 2, i * 2 + 2), 16);
}

function readBoot(bytes: Uint8Array, at: number): string {
  let text = "";
  for (let i = 0; i < 8; i++) text += bytes[at + i].toString(16).padStart(2, "0");
  return text;
}

function writeSeq(view: DataView, at: number, seq: number): void {
  view.setUint32(at, Math.floor(seq / 0x1_0000_0000));
  view.setUint32(at + 4, seq >>> 0);
}

function readSeq(view: DataView, at: number): number {
  const seq = view.getUint32(at) * 0x1_0000_0000 + view.getUint32(at + 4);
  if (seq > MAX_SEQ) throw new ClusterFrameError(`Sequence ${seq} is out of range`);
  return seq;
}

function nameBytes(name: string, what: string): Uint8Array {
  const bytes = encoder.encode(name);
  if (bytes.length === 0 || bytes.length > MAX_FRAME_NAME_BYTES) {
    throw new RangeError(`The ${what} name must have 1 to ${MAX_FRAME_NAME_BYTES} bytes`);
  }
  return bytes;
}

function controlFrame(
  kind: FrameKind,
  origin: FrameOrigin,
  seq: number,
  extra: (view: DataView, bytes: Uint8Array, at: number) => void,
  extraBytes: number,
): Uint8Array {
  const name = nameBytes(origin.name, "origin");
  const bytes = new Uint8Array(FIXED_HEADER + 1 + name.length + extraBytes);
  const view = new DataView(bytes.buffer);
  const at = writeHeader(view, bytes, kind, origin, name, seq);
  extra(view, bytes, at);
  return bytes;
}

/**
 * A head frame: the origin's last sequence number.
 *
 * @example
 * ```ts
 * import { decodeClusterFrame, encodeHead, FrameKind } from "./cluster_frame.ts";
 * const origin = { name: "a", boot: "0123456789abcdef", age: () => 0 };
 * const frame = decodeClusterFrame(encodeHead(origin, 41));
 * if (frame.kind !== FrameKind.Head || frame.seq !== 41) throw new Error("bad head");
 * ```
 */
export function encodeHead(origin: FrameOrigin, lastSeq: number): Uint8Array {
  return controlFrame(FrameKind.Head, origin, lastSeq, () => {}, 0);
}

/**
 * A replay request from `origin` (the requester) for the stream of boot `target` from `from` on.
 *
 * @example
 * ```ts
 * import { decodeClusterFrame, encodeReplayRequest } from "./cluster_frame.ts";
 * const me = { name: "b", boot: "00000000000000bb", age: () => 0 };
 * const frame = decodeClusterFrame(encodeReplayRequest(me, "00000000000000aa", 7));
 * if (frame.target !== "00000000000000aa" || frame.seq !== 7) throw new Error("bad request");
 * ```
 */
export function encodeReplayRequest(origin: FrameOrigin, target: string, from: number): Uint8Array {
  return controlFrame(FrameKind.ReplayRequest, origin, from, (_view, bytes, at) => {
    writeBoot(bytes, at, target);
  }, 8);
}

/**
 * The end of a replay: `oldest` is the oldest sequence the origin still had, `head` its last.
 *
 * @example
 * ```ts
 * import { decodeClusterFrame, encodeReplayEnd } from "./cluster_frame.ts";
 * const origin = { name: "a", boot: "00000000000000aa", age: () => 0 };
 * const frame = decodeClusterFrame(encodeReplayEnd(origin, 3, 9));
 * if (frame.seq !== 3 || frame.head !== 9) throw new Error("bad replay end");
 * ```
 */
export function encodeReplayEnd(origin: FrameOrigin, oldest: number, head: number): Uint8Array {
  return controlFrame(FrameKind.ReplayEnd, origin, oldest, (view, _bytes, at) => {
    writeSeq(view, at, head);
  }, 8);
}

/**
 * Packs messages of one origin into one frame, in order, with consecutive sequence numbers.
 * The buffer grows as needed and is reused from one batch to the next; names already seen
 * are encoded once.
 *
 * @example
 * ```ts
 * import { BatchEncoder, decodeClusterFrame } from "./cluster_frame.ts";
 * const batch = new BatchEncoder({ name: "a", boot: "00000000000000aa", age: () => 0 });
 * batch.add("alice", new TextEncoder().encode("hi"));
 * batch.add("bob", new Uint8Array([0, 255]));
 * const frame = decodeClusterFrame(batch.seal(1));
 * if (frame.names.join() !== "alice,bob" || frame.payloads[1][1] !== 255) throw new Error("bad");
 * ```
 */
export class BatchEncoder {
  readonly #origin: FrameOrigin;
  readonly #originName: Uint8Array;
  #bytes = new Uint8Array(4096);
  #view = new DataView(this.#bytes.buffer);
  #length = 0;
  #count = 0;
  #names = new Map<string, Uint8Array>();

  constructor(origin: FrameOrigin) {
    this.#origin = origin;
    this.#originName = nameBytes(origin.name, "origin");
    this.#reset();
  }

  /** Messages in the open batch. */
  get count(): number {
    return this.#count;
  }

  /** Bytes the open batch would have as a frame. */
  get byteLength(): number {
    return this.#length;
  }

  /** Bytes of a frame holding no message (the header). */
  get emptyByteLength(): number {
    return FIXED_HEADER + 1 + this.#originName.length + 4;
  }

  /**
   * Bytes that a message from `from` with `payloadLength` bytes adds to the batch. Throws a
   * RangeError for an empty name or one over {@linkcode MAX_FRAME_NAME_BYTES} bytes.
   */
  recordBytes(from: string, payloadLength: number): number {
    return RECORD_OVERHEAD + this.#nameBytes(from).length + payloadLength;
  }

  /** Appends one message; `payload` is copied. */
  add(from: string, payload: Uint8Array): void {
    const name = this.#nameBytes(from);
    this.#reserve(RECORD_OVERHEAD + name.length + payload.length);
    const bytes = this.#bytes;
    let at = this.#length;
    bytes[at++] = name.length;
    bytes.set(name, at);
    at += name.length;
    this.#view.setUint32(at, payload.length);
    at += 4;
    bytes.set(payload, at);
    this.#length = at + payload.length;
    this.#count++;
  }

  /** The UTF-8 bytes of a sender name, encoded once per name (the names seen last are kept). */
  #nameBytes(from: string): Uint8Array {
    let name = this.#names.get(from);
    if (name === undefined) {
      name = nameBytes(from, "sender");
      if (this.#names.size >= 4096) this.#names.clear();
      this.#names.set(from, name);
    }
    return name;
  }

  /** Returns the open batch as a frame whose first message has sequence `firstSeq`; opens a new one. */
  seal(firstSeq: number): Uint8Array {
    writeSeq(this.#view, 20, firstSeq);
    this.#view.setUint32(FIXED_HEADER + 1 + this.#originName.length, this.#count);
    const frame = this.#bytes.slice(0, this.#length);
    this.#reset();
    return frame;
  }

  #reset(): void {
    const at = writeHeader(
      this.#view,
      this.#bytes,
      FrameKind.Messages,
      this.#origin,
      this.#originName,
      0,
    );
    this.#length = at + 4;
    this.#count = 0;
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#bytes.length) return;
    let size = this.#bytes.length * 2;
    while (size < needed) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#bytes.subarray(0, this.#length));
    this.#bytes = grown;
    this.#view = new DataView(grown.buffer);
  }
}

/** Limits a decoded frame must respect. */
export interface DecodeLimits {
  /** Largest payload of one message (default {@linkcode DEFAULT_MAX_FRAME_BYTES}). */
  maxPayloadBytes?: number;
}

function readName(bytes: Uint8Array, at: number, what: string): [string, number] {
  if (at >= bytes.length) throw new ClusterFrameError(`The frame ends before the ${what} name`);
  const length = bytes[at];
  if (length === 0) throw new ClusterFrameError(`The ${what} name is empty`);
  const end = at + 1 + length;
  if (end > bytes.length) throw new ClusterFrameError(`The frame ends inside the ${what} name`);
  let name: string;
  try {
    name = strictDecoder.decode(bytes.subarray(at + 1, end));
  } catch {
    throw new ClusterFrameError(`The ${what} name is not valid UTF-8`);
  }
  return [name, end];
}

/** Whether the length-prefixed names at `a` and `b` are the same bytes (`a` was checked). */
function sameName(bytes: Uint8Array, a: number, b: number): boolean {
  const length = bytes[a];
  if (b >= bytes.length || bytes[b] !== length || b + 1 + length > bytes.length) return false;
  for (let i = 1; i <= length; i++) if (bytes[a + i] !== bytes[b + i]) return false;
  return true;
}

/**
 * Decodes and checks one cluster frame; throws {@linkcode ClusterFrameError} if it is not a
 * valid one. Payloads are views into `bytes`.
 *
 * @example
 * ```ts
 * import { ClusterFrameError, decodeClusterFrame } from "./cluster_frame.ts";
 * try {
 *   decodeClusterFrame(new TextEncoder().encode("hello"));
 *   throw new Error("garbage accepted");
 * } catch (error) {
 *   if (!(error instanceof ClusterFrameError)) throw error;
 * }
 * ```
 */
export function decodeClusterFrame(input: Uint8Array, limits: DecodeLimits = {}): ClusterFrame {
  // A plain view: the payloads handed on are Uint8Arrays even when NATS gives a Buffer.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const maxPayload = limits.maxPayloadBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (bytes.length < FIXED_HEADER + 2) throw new ClusterFrameError("The frame is too short");
  if (bytes[0] !== MAGIC_0 || bytes[1] !== MAGIC_1) {
    throw new ClusterFrameError("The frame does not start with the cluster magic");
  }
  if (bytes[2] !== VERSION) throw new ClusterFrameError(`Unknown frame version ${bytes[2]}`);
  const kind = bytes[3] as FrameKind;
  if (kind < FrameKind.Messages || kind > FrameKind.ReplayEnd) {
    throw new ClusterFrameError(`Unknown frame kind ${kind}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const boot = readBoot(bytes, 4);
  const age = view.getFloat64(12);
  if (!(age >= 0 && age < Infinity)) {
    throw new ClusterFrameError("The origin's age is not a duration");
  }
  const seq = readSeq(view, 20);
  let at: number;
  let name: string;
  [name, at] = readName(bytes, 28, "origin");
  const frame: ClusterFrame = {
    kind,
    name,
    boot,
    age,
    seq,
    names: [],
    payloads: [],
    target: "",
    head: 0,
  };
  switch (kind) {
    case FrameKind.Head:
      break;
    case FrameKind.ReplayRequest:
      if (at + 8 > bytes.length) throw new ClusterFrameError("The replay request is truncated");
      frame.target = readBoot(bytes, at);
      at += 8;
      break;
    case FrameKind.ReplayEnd:
      if (at + 8 > bytes.length) throw new ClusterFrameError("The replay end is truncated");
      frame.head = readSeq(view, at);
      at += 8;
      break;
    case FrameKind.Messages: {
      if (at + 4 > bytes.length) throw new ClusterFrameError("The frame ends before its count");
      const count = view.getUint32(at);
      at += 4;
      // Each record takes at least 6 bytes: a count beyond that cannot be true.
      if (count * (RECORD_OVERHEAD + 1) > bytes.length - at) {
        throw new ClusterFrameError(`The frame is too short for ${count} messages`);
      }
      if (count === 0) throw new ClusterFrameError("The frame holds no message");
      if (seq < 1 || seq + count - 1 > MAX_SEQ) {
        throw new ClusterFrameError(`Sequence ${seq} is out of range`);
      }
      // Consecutive messages often share a sender: decode its name once.
      let lastFrom = "";
      let lastNameAt = -1;
      for (let i = 0; i < count; i++) {
        let from: string;
        if (lastNameAt >= 0 && sameName(bytes, lastNameAt, at)) {
          from = lastFrom;
          at += 1 + bytes[at];
        } else {
          lastNameAt = at;
          [from, at] = readName(bytes, at, "sender");
          lastFrom = from;
        }
        if (at + 4 > bytes.length) throw new ClusterFrameError("The frame ends inside a length");
        const length = view.getUint32(at);
        at += 4;
        if (length > maxPayload) {
          throw new ClusterFrameError(
            `A payload of ${length} bytes is over the ${maxPayload} limit`,
          );
        }
        if (at + length > bytes.length) {
          throw new ClusterFrameError("The frame ends inside a payload");
        }
        frame.names.push(from);
        frame.payloads.push(bytes.subarray(at, at + length));
        at += length;
      }
      break;
    }
  }
  if (at !== bytes.length) {
    throw new ClusterFrameError(`The frame has ${bytes.length - at} bytes past its end`);
  }
  return frame;
}

/** The last sequence number of a messages frame. */
export function lastSeq(frame: ClusterFrame): number {
  return frame.seq + frame.names.length - 1;
}
