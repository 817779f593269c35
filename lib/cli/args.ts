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
import denoJson from "../../deno.json" with { type: "json" };
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
      args: attachDashValues(args, options ?? {}),
      options,
      strict: true,
      allowPositionals: true,
    });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (error) {
    // node:util's messages add advice on '--' after the first sentence; keep the fact.
    throw new UsageError(errorMessage(error).split("\n")[0].split(/\. /)[0].replace(/\.$/, ""));
  }
}

/**
 * Joins a string option and a value that starts with a dash (`--read-timeout -1`) into
 * `--read-timeout=-1`, so the value reaches the option's own check, which says what is
 * wrong with it; `node:util` would only call it ambiguous. A following word that is itself
 * an option (`--interval --count 3`) is not taken as a value: that option has none.
 */
function attachDashValues(args: string[], options: NonNullable<ParseArgsConfig["options"]>) {
  const known = new Set<string>();
  for (const [name, option] of Object.entries(options)) {
    known.add(`--${name}`);
    if (option.short !== undefined) known.add(`-${option.short}`);
  }
  const attached: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      attached.push(...args.slice(i));
      break;
    }
    const option = arg.startsWith("--") ? options[arg.slice(2)] : undefined;
    const next = args[i + 1];
    if (option?.type !== "string" || next === undefined || !next.startsWith("-")) {
      attached.push(arg);
    } else if (known.has(next) || next.startsWith("--") && known.has(next.split("=")[0])) {
      throw new UsageError(`Missing the value of ${arg} (before ${next})`);
    } else {
      attached.push(`${arg}=${next}`);
      i++;
    }
  }
  return attached;
}

/**
 * The options every program that connects to a server takes (the client, and the
 * launcher, which passes them on): the token, TLS, and reconnecting.
 */
export const CONNECTION_OPTIONS = {
  token: { type: "string" },
  "token-file": { type: "string" },
  tls: { type: "boolean", default: false },
  ca: { type: "string" },
  reconnect: { type: "boolean", default: false },
  "reconnect-attempts": { type: "string" },
  "max-unsent": { type: "string" },
} as const;

/** The parsed command line of a program, see {@linkcode parseProgramArgs}. */
export interface ProgramArgs {
  /** Option values by name. */
  values: Record<string, string | boolean | undefined>;
  /** Arguments that are not options. */
  positionals: string[];
}

/**
 * Parses a program's command line with `-h/--help` and `--version` added to `options`.
 * Prints `usage` or the version and returns `undefined` when either is asked for;
 * refuses more than `maxPositionals` positional arguments.
 */
export function parseProgramArgs(
  args: string[],
  options: ParseArgsConfig["options"],
  usage: string,
  maxPositionals: number,
): ProgramArgs | undefined {
  const parsed = parseCommandLine(args, {
    ...options,
    help: { type: "boolean", short: "h", default: false },
    version: { type: "boolean", default: false },
  });
  if (parsed.values.help) {
    console.log(usage);
    return undefined;
  }
  if (parsed.values.version) {
    console.log(`parrot ${denoJson.version}`);
    return undefined;
  }
  if (parsed.positionals.length > maxPositionals) {
    throw new UsageError(`Unexpected argument "${parsed.positionals[maxPositionals]}"`);
  }
  return parsed;
}

/** The message of an error, or the thrown value as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
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

/**
 * Parses a duration option such as `--read-timeout 5s`; a bad one is refused in one
 * sentence, `Cannot use --read-timeout "5x": expected a number with ...`.
 */
export function parseDurationOption(name: string, text: string): number {
  try {
    return parseDuration(text);
  } catch (error) {
    // parseDuration says `Cannot parse duration "<text>": <why>`; keep the why.
    const why = errorMessage(error).replace(/^Cannot parse duration "(?:[^"\\]|\\.)*": /, "");
    throw new UsageError(`Cannot use --${name} ${JSON.stringify(text)}: ${why}`);
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
      console.error(`error: ${errorMessage(error)}`);
      code = 1;
    }
  }
  Deno.exit(code);
}
