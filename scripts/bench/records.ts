/**
 * Counting what the server printed: the records of its stdout file, per sender.
 *
 * The fan-in check owns this: every connection named `<prefix><n>` must have exactly as
 * many `<prefix><n>: <payload>` records on the server's stdout as it sent messages. The
 * file can hold hundreds of megabytes, so it is read in 1 MiB pieces and scanned as
 * bytes (the senders' payloads hold no LF, so one record is one line), never as text.
 *
 * @module
 */

const COLON = 0x3a;
const LF = 0x0a;
const DIGIT_0 = 0x30;

/** Records per sender of a server's stdout file. */
export interface RecordCounts {
  /** `perSender[n]` is the number of records from `<prefix><n>`. */
  perSender: number[];
  /** Lines that are not a record of one of the senders. */
  other: number;
  lines: number;
}

/** Counts the records of senders `<prefix>0` to `<prefix><senders - 1>` in the file at `path`. */
export async function countRecords(
  path: string,
  prefix: string,
  senders: number,
): Promise<RecordCounts> {
  const perSender = new Array<number>(senders).fill(0);
  const prefixBytes = new TextEncoder().encode(prefix);
  let other = 0;
  let lines = 0;
  // Scanner state, carried across reads: in the name (head) or past it (body).
  let inBody = false;
  let headLength = 0;
  let index = 0;
  let valid = true;
  using file = await Deno.open(path);
  const buffer = new Uint8Array(1 << 20);
  for (;;) {
    const n = await file.read(buffer);
    if (n === null) break;
    let i = 0;
    while (i < n) {
      if (inBody) {
        const lf = buffer.indexOf(LF, i);
        if (lf === -1 || lf >= n) break;
        i = lf + 1;
        inBody = false;
        headLength = 0;
        index = 0;
        valid = true;
        lines++;
        continue;
      }
      const byte = buffer[i++];
      if (byte === COLON) {
        if (valid && headLength > prefixBytes.length && index < senders) perSender[index]++;
        else other++;
        inBody = true;
      } else if (byte === LF) {
        other++; // A line with no sender.
        lines++;
        headLength = 0;
        index = 0;
        valid = true;
      } else {
        if (headLength < prefixBytes.length) valid &&= byte === prefixBytes[headLength];
        else if (byte >= DIGIT_0 && byte <= DIGIT_0 + 9) index = index * 10 + (byte - DIGIT_0);
        else valid = false;
        headLength++;
      }
    }
  }
  return { perSender, other, lines };
}
