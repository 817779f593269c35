/**
 * Where the command-line programs get the shared token: `--token`, `--token-file` or
 * the `PARROT_TOKEN` environment variable, in that order of precedence.
 *
 * The token is a secret: no message here includes it, and the programs never print
 * it. The file and the environment variable are the recommended ways, because a token
 * on the command line is visible to local users in `ps`.
 *
 * @module
 */

import { errorMessage, UsageError } from "./args.ts";

/** The environment variable a token may come from. */
export const TOKEN_ENV = "PARROT_TOKEN";

/** Where a token may come from, as given on the command line. */
export interface TokenSources {
  /** The value of `--token`. */
  token?: string;
  /** The value of `--token-file`. */
  tokenFile?: string;
}

/**
 * Returns the token from `--token`, `--token-file` (its first line) or `PARROT_TOKEN`,
 * or `undefined` when none is set. Throws a {@linkcode UsageError} for both options
 * at once, an unreadable or empty file, or a token with a line break.
 *
 * It fails closed: without `--token` or `--token-file` it must know whether
 * `PARROT_TOKEN` is set, so a program that may not read that variable (run without
 * `--allow-env=PARROT_TOKEN`) gets a {@linkcode UsageError} saying what to add, never
 * "no token". (The permission is queried, so Deno never prompts for it.)
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveToken } from "./token.ts";
 *
 * assert.equal(await resolveToken({ token: "s3cret" }), "s3cret");
 * ```
 */
export async function resolveToken(sources: TokenSources): Promise<string | undefined> {
  if (sources.token !== undefined && sources.tokenFile !== undefined) {
    throw new UsageError("Cannot use both --token and --token-file: give one");
  }
  let token: string | undefined;
  let origin: string;
  if (sources.token !== undefined) {
    token = sources.token;
    origin = "--token";
  } else if (sources.tokenFile !== undefined) {
    token = await readTokenFile(sources.tokenFile);
    origin = `--token-file ${sources.tokenFile}`;
  } else {
    token = environmentToken();
    origin = TOKEN_ENV;
  }
  if (token === undefined) return undefined;
  if (token === "") throw new UsageError(`Cannot use the token from ${origin}: it is empty`);
  if (/[\r\n]/.test(token)) {
    throw new UsageError(`Cannot use the token from ${origin}: it must be one line`);
  }
  return token;
}

async function readTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied
      ? "no permission to read it"
      : errorMessage(error);
    throw new UsageError(`Cannot read --token-file ${path}: ${why}`);
  }
  // The first line is the token, so a file written by `echo` works.
  return text.replace(/\r?\n[\s\S]*$/, "");
}

/** What to do when `PARROT_TOKEN` cannot be read: the command that works. */
const CANNOT_READ_ENV = `Cannot tell whether ${TOKEN_ENV} is set: no permission to read it; ` +
  `add --allow-env=${TOKEN_ENV} to \`deno run\` (the deno tasks have it), or give --token-file`;

function environmentToken(): string | undefined {
  // Unreadable is not "unset": a server that took it so would accept anyone.
  const { state } = Deno.permissions.querySync({ name: "env", variable: TOKEN_ENV });
  if (state !== "granted") throw new UsageError(CANNOT_READ_ENV);
  try {
    return Deno.env.get(TOKEN_ENV);
  } catch (error) {
    throw new UsageError(`${CANNOT_READ_ENV} (${errorMessage(error)})`);
  }
}
