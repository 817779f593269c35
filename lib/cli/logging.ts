/**
 * Logging for the command-line programs: LogTape to stderr, as text or JSON lines.
 *
 * stdout belongs to the messages (the server) or to the lifecycle lines (the
 * client), so logs always go to stderr. LogTape writes through a stream asynchronously:
 * call {@linkcode closeLogging} before exiting or the last lines are lost.
 *
 * @module
 */

import {
  configure,
  dispose,
  getStreamSink,
  getTextFormatter,
  type LogLevel,
  type LogRecord,
} from "@logtape/logtape";

/** The `--log-level` values. */
export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;
/** A `--log-level` value. */
export type ParrotLogLevel = (typeof LOG_LEVELS)[number];

/** The `--log-format` values. */
export const LOG_FORMATS = ["text", "json"] as const;
/** A `--log-format` value. */
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Parses a `--log-level` value (also accepts `warn`); undefined when unknown. */
export function parseLogLevel(text: string): ParrotLogLevel | undefined {
  const level = text === "warn" ? "warning" : text;
  return LOG_LEVELS.find((known) => known === level);
}

/** Sends the `parrot` loggers to stderr at `level` in `format`. */
export async function setupLogging(level: LogLevel, format: LogFormat): Promise<void> {
  const formatter = format === "json" ? jsonLine : getTextFormatter({
    timestamp: "date-time-tz",
    category: ".",
    value: "bare",
  });
  await configure({
    sinks: { stderr: getStreamSink(Deno.stderr.writable, { formatter, closeStream: false }) },
    loggers: [
      { category: ["parrot"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/**
 * One JSON object per line, with the message rendered bare (`listening on
 * 127.0.0.1:8080`, as in the text format) and the properties beside it.
 */
function jsonLine(record: LogRecord): string {
  const message = record.message.map((part, i) => i % 2 === 1 ? String(part) : part).join("");
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    logger: record.category.join("."),
    message,
    ...record.properties,
  }) + "\n";
}

/** Writes out every pending log line; await it before `Deno.exit`. */
export async function closeLogging(): Promise<void> {
  await dispose();
}
