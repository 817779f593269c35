/**
 * How a message becomes a record on the server's stdout: the formats of `--output`.
 *
 * - `text` (the default, the classic format): `<sender>: <payload>\n`, the payload's
 *   bytes exactly as received. Fast (three copies into the stdout batch, no
 *   allocation) and binary-safe, but ambiguous: a payload with a line feed can look
 *   like a record of another sender.
 * - `text` on a terminal: the same, with control characters (ESC sequences that would
 *   clear the screen or retitle the window, line feeds, C1 controls) and malformed
 *   UTF-8 shown escaped (`\x1b`, `\n`, `\u009b`, `\xff`, a backslash as `\\`), so that
 *   a payload can neither drive the terminal nor pose as another record.
 * - `json`: one JSON object per line, `{"time", "sender", "size", "encoding",
 *   "payload"}`, with the payload as text (`"encoding":"utf-8"`) or, when it is not
 *   valid UTF-8, as base64 (`"encoding":"base64"`). JSON escapes every line feed and
 *   quote, so no payload can forge a record. For programs that read the records.
 *
 * @module
 */

/** The `--output` formats. */
export const RECORD_FORMATS = ["text", "json"] as const;
/** One of {@linkcode RECORD_FORMATS}. */
export type RecordFormat = (typeof RECORD_FORMATS)[number];

/** Where records are appended: the server's stdout batch (`PipelinedWriter`). */
export interface RecordSink {
  /** Copies `bytes` to the end. */
  append(bytes: Uint8Array): void;
  /** Copies `bytes[start, end)` to the end. */
  appendRange(bytes: Uint8Array, start: number, end: number): void;
  /** Appends one byte. */
  appendByte(byte: number): void;
}

/** The sender of a message as a record needs it (a `Session`). */
export interface RecordSender {
  /** Its name: its `HELLO` name, or its address. */
  readonly name: string;
  /** `"<name>: "` as bytes. */
  readonly prefix: Uint8Array;
}

/** Writes the record of each message in one format. */
export interface RecordWriter {
  /** Appends the record of the message `bytes[start, end)` from `sender` to `out`. */
  write(out: RecordSink, sender: RecordSender, bytes: Uint8Array, start: number, end: number): void;
}

/** Options of {@linkcode createRecordWriter}. */
export interface RecordWriterOptions {
  /** Escape control characters in `text` records (for a terminal). Default false. */
  escapeControls?: boolean;
  /** The clock of `json` records' `time` (ms since the epoch). Default `Date.now`. */
  now?: () => number;
}

const NEWLINE = 0x0a;
const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The writer of `format` records.
 *
 * @example A payload that tries to forge a record stays inside its own in JSON
 * ```ts
 * import assert from "node:assert/strict";
 * import { createRecordWriter } from "./record_format.ts";
 *
 * const parts: Uint8Array[] = [];
 * const out = {
 *   append: (b: Uint8Array) => parts.push(b.slice()),
 *   appendRange: (b: Uint8Array, s: number, e: number) => parts.push(b.slice(s, e)),
 *   appendByte: (b: number) => parts.push(Uint8Array.of(b)),
 * };
 * const payload = new TextEncoder().encode("hi\nalice: I owe you");
 * const mallory = { name: "mallory", prefix: new TextEncoder().encode("mallory: ") };
 * createRecordWriter("json", { now: () => 0 }).write(out, mallory, payload, 0, payload.length);
 * const text = parts.map((p) => new TextDecoder().decode(p)).join("");
 * assert.equal(text.split("\n").length, 2); // one line, then the end of the record
 * assert.equal(JSON.parse(text).payload, "hi\nalice: I owe you");
 * ```
 */
export function createRecordWriter(
  format: RecordFormat,
  options: RecordWriterOptions = {},
): RecordWriter {
  if (format === "json") return new JsonRecords(options.now ?? Date.now);
  return options.escapeControls ? new EscapedTextRecords() : new TextRecords();
}

/** `<sender>: <payload>\n`, the bytes as they came: no allocation per message. */
class TextRecords implements RecordWriter {
  write(out: RecordSink, sender: RecordSender, bytes: Uint8Array, start: number, end: number) {
    out.append(sender.prefix);
    out.appendRange(bytes, start, end);
    out.appendByte(NEWLINE);
  }
}

/** `<sender>: <payload>\n` with the payload made safe for a terminal (see the module doc). */
class EscapedTextRecords implements RecordWriter {
  write(out: RecordSink, sender: RecordSender, bytes: Uint8Array, start: number, end: number) {
    out.append(sender.prefix);
    appendEscaped(out, bytes, start, end);
    out.appendByte(NEWLINE);
  }
}

/** One JSON object per line. */
class JsonRecords implements RecordWriter {
  readonly #now: () => number;
  #lastMs = NaN;
  #lastTime = "";

  constructor(now: () => number) {
    this.#now = now;
  }

  write(out: RecordSink, sender: RecordSender, bytes: Uint8Array, start: number, end: number) {
    const view = bytes.subarray(start, end);
    let encoding: "utf-8" | "base64" = "utf-8";
    let payload: string;
    try {
      payload = strictUtf8.decode(view);
    } catch {
      encoding = "base64";
      payload = view.toBase64();
    }
    const record = JSON.stringify({
      time: this.#time(),
      sender: sender.name,
      size: end - start,
      encoding,
      payload,
    });
    out.append(encoder.encode(record));
    out.appendByte(NEWLINE);
  }

  /** The ISO time, made again only when the millisecond changes. */
  #time(): string {
    const ms = this.#now();
    if (ms !== this.#lastMs) {
      this.#lastMs = ms;
      this.#lastTime = new Date(ms).toISOString();
    }
    return this.#lastTime;
  }
}

const HEX = "0123456789abcdef";
const NAMED: Record<number, string> = { 0x0a: "\\n", 0x0d: "\\r", 0x5c: "\\\\" };

function appendAscii(out: RecordSink, text: string): void {
  for (let i = 0; i < text.length; i++) out.appendByte(text.charCodeAt(i));
}

/** `\xNN` for one byte. */
function appendHexByte(out: RecordSink, byte: number): void {
  appendAscii(out, `\\x${HEX[byte >> 4]}${HEX[byte & 15]}`);
}

/**
 * Copies `bytes[start, end)` with what a terminal would act on escaped: C0 controls
 * but tab, DEL, C1 controls (U+0080 to U+009F), and bytes that are not well-formed
 * UTF-8 (a terminal in another mode may read them as controls). A backslash becomes
 * `\\`, so that the escapes are unambiguous.
 */
function appendEscaped(out: RecordSink, bytes: Uint8Array, start: number, end: number): void {
  let i = start;
  while (i < end) {
    const byte = bytes[i];
    if (byte < 0x80) {
      if ((byte < 0x20 && byte !== 0x09) || byte === 0x7f || byte === 0x5c) {
        const named = NAMED[byte];
        if (named) appendAscii(out, named);
        else appendHexByte(out, byte);
      } else {
        out.appendByte(byte);
      }
      i++;
      continue;
    }
    const length = utf8SequenceLength(bytes, i, end);
    if (length === 0) {
      appendHexByte(out, byte);
      i++;
    } else if (length === 2 && byte === 0xc2 && bytes[i + 1] < 0xa0) {
      // U+0080 to U+009F: the C1 controls (U+009B is a one-character CSI).
      appendAscii(out, `\\u00${HEX[bytes[i + 1] >> 4]}${HEX[bytes[i + 1] & 15]}`);
      i += 2;
    } else {
      out.appendRange(bytes, i, i + length);
      i += length;
    }
  }
}

/** The length of the well-formed UTF-8 sequence at `bytes[i]` (a lead byte), or 0. */
function utf8SequenceLength(bytes: Uint8Array, i: number, end: number): number {
  const lead = bytes[i];
  let length: number;
  let min: number;
  let max = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
    min = 0x80;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    // No overlong forms (E0 80..9F) and no surrogates (ED A0..BF).
    min = lead === 0xe0 ? 0xa0 : 0x80;
    if (lead === 0xed) max = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    min = lead === 0xf0 ? 0x90 : 0x80;
    if (lead === 0xf4) max = 0x8f;
  } else {
    return 0;
  }
  if (i + length > end) return 0;
  const second = bytes[i + 1];
  if (second < min || second > max) return 0;
  for (let k = 2; k < length; k++) {
    const next = bytes[i + k];
    if (next < 0x80 || next > 0xbf) return 0;
  }
  return length;
}
