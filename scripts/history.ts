/**
 * `deno task history <file> [--since 1h] [--from name] [--limit n] [--output text|json]`:
 * prints the messages a server stored with `--history`, the way the server printed them.
 *
 * A thin CLI: the options and the output. The file is opened read-only
 * (`HistoryStore.open`), so the task needs `--allow-read` and nothing else, and a server
 * may go on writing it meanwhile (WAL). The records come from the server's own record
 * formats (lib/parrot/record_format.ts): `<sender>: <payload>` with the payload's bytes
 * as received (control characters escaped on a terminal), or JSON lines with the stored
 * time. Exits 0 when it printed what it selected (also nothing), 1 when the file cannot
 * be read or stdout cannot be written, 2 on a usage mistake.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import {
  parseCount,
  parseDurationOption,
  parseProgramArgs,
  runCli,
  UsageError,
} from "../lib/cli/args.ts";
import { HistoryStore } from "../lib/history/history_store.ts";
import { BatchWriter } from "../lib/net/batch_writer.ts";
import {
  createRecordWriter,
  RECORD_FORMATS,
  type RecordFormat,
  type RecordSender,
} from "../lib/parrot/record_format.ts";

const USAGE =
  `parrot history ${denoJson.version}: prints the messages a server stored with --history.

Usage: deno task history <file> [options]

Prints the stored messages of <file>, oldest first, the way the server printed
them: <sender>: <payload> (control characters escaped on a terminal), or one JSON
object per line with the time the server printed it. Only reads the file: a
server may go on writing it.

Options:
  --since <duration>    only the messages of the last <duration> (90s, 1h, 7d)
  --from <name>         only the messages of this sender
  --limit <n>           only the last n of the messages selected
  --output <format>     text (default) or json
  -h, --help            show this help
  --version             show the version

Exits 0 when it printed what it selected (also nothing), 1 when the file cannot be
read, 2 on a usage mistake.`;

const HINT = "Run `deno task history --help` for usage.";

/** Bytes of records gathered before they are written to stdout. */
const FLUSH_BYTES = 64 * 1024;

async function main(): Promise<number> {
  const parsed = parseProgramArgs(
    Deno.args,
    {
      since: { type: "string" },
      from: { type: "string" },
      limit: { type: "string" },
      output: { type: "string", default: "text" },
    },
    USAGE,
    1,
  );
  if (parsed === undefined) return 0;
  const { values, positionals } = parsed;
  const path = positionals[0];
  if (path === undefined) throw new UsageError("Missing the history file: give its path");
  const output = String(values.output);
  if (!(RECORD_FORMATS as readonly string[]).includes(output)) {
    throw new UsageError(`Cannot use --output ${JSON.stringify(output)}: expected text or json`);
  }
  const since = values.since === undefined
    ? undefined
    : Date.now() - parseDurationOption("since", String(values.since));
  const limit = values.limit === undefined ? undefined : parseCount("limit", String(values.limit));
  const from = values.from === undefined ? undefined : String(values.from);

  const store = HistoryStore.open(path, { readOnly: true });
  try {
    let time = 0;
    const records = createRecordWriter(output as RecordFormat, {
      escapeControls: output === "text" && Deno.stdout.isTerminal(),
      now: () => time,
    });
    const out = new BatchWriter(Deno.stdout);
    const senders = new Map<string, RecordSender>();
    const encoder = new TextEncoder();
    for (const record of store.query({ since, from, limit })) {
      // Another server's message as --print-cluster printed it: <sender>@<origin>.
      const name = record.origin === null ? record.sender : `${record.sender}@${record.origin}`;
      let sender = senders.get(name);
      if (sender === undefined) {
        sender = { name, prefix: encoder.encode(`${name}: `) };
        senders.set(name, sender);
      }
      time = record.time;
      records.write(out, sender, record.payload, 0, record.payload.length);
      if (out.length >= FLUSH_BYTES) await flush(out);
    }
    await flush(out);
  } finally {
    store.close();
  }
  return 0;
}

async function flush(out: BatchWriter): Promise<void> {
  try {
    await out.flush();
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`Cannot write to stdout: ${why.charAt(0).toLowerCase()}${why.slice(1)}`);
  }
}

if (import.meta.main) await runCli(main, HINT);
