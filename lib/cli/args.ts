/**
 * Argument helpers shared by the command-line programs: strict `parseArgs` with
 * errors a user can act on, and the checks for ports and counts.
 *
 * A user mistake is a {@linkcode UsageError}: the program prints one line and the
 * usage hint, exits with code 2, and never shows a stack trace.
 *
 * @module
 */

import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseDuration } from "../net/duration.ts";

/** A mistake in the command line. */
export class UsageError extends Error {
  /** Creates the error; `message` is shown to the user as is. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** `node:util` `parseArgs` in strict mode, with its errors turned into {@linkcode UsageError}s. */
export function parseCommandLine<T extends ParseArgsConfig["options"]>(
  args: string[],
  options: T,
): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals: true,
    });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(message.split("\n")[0].replace(/\.$/, ""));
  }
}

/** Parses a TCP port (0 to 65535). */
export function parsePort(text: string | undefined): number {
  if (text === undefined) throw new UsageError("Missing the port: give a number from 0 to 65535");
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) {
    throw new UsageError(`Cannot use port "${text}": expected a number from 0 to 65535`);
  }
  return port;
}

/** Parses a non-negative integer option such as `--count`. */
export function parseCount(name: string, text: string, min = 0): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
    throw new UsageError(
      `Cannot use --${name} "${text}": expected a whole number of at least ${min}`,
    );
  }
  return value;
}

/** Parses a duration option such as `--read-timeout 5s`. */
export function parseDurationOption(name: string, text: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    throw new UsageError(`Cannot use --${name}: ${(error as Error).message}`);
  }
}

/**
 * Runs a CLI's `main` and exits with its code. A {@linkcode UsageError} prints
 * `error: <message>` and `hint` on stderr and exits 2; any other error prints one line
 * and exits 1.
 */
export async function runCli(main: () => Promise<number>, hint: string): Promise<never> {
  let code: number;
  try {
    code = await main();
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`error: ${error.message}\n${hint}`);
      code = 2;
    } else {
      console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
      code = 1;
    }
  }
  Deno.exit(code);
}
