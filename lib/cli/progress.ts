/**
 * The live progress line of the long-running scripts (`deno task bench`, `deno task
 * torture`): one line redrawn in place on a terminal, an occasional plain line when
 * stderr is a file or a pipe, so a CI log stays readable.
 *
 * @module
 */

const encoder = new TextEncoder();

/** A progress line on stderr: `show` replaces it (at most every 100 ms), `clear` removes it. */
export interface ProgressLine {
  /** Shows `text` as the current progress. */
  show(text: string): void;
  /** Removes the line, before other output. */
  clear(): void;
}

/**
 * Makes the progress line of a script.
 *
 * @example
 * ```ts
 * import { progressLine } from "./progress.ts";
 *
 * const progress = progressLine();
 * progress.show("1/3 scenarios");
 * progress.clear();
 * ```
 */
export function progressLine(): ProgressLine {
  const terminal = Deno.stderr.isTerminal();
  let lastShownAt = 0;
  let shown = false;
  return {
    show(text: string) {
      const now = Date.now();
      if (now - lastShownAt < (terminal ? 100 : 2_000)) return;
      lastShownAt = now;
      shown = terminal;
      Deno.stderr.writeSync(encoder.encode(terminal ? `\r\x1b[K${text}` : `${text}\n`));
    },
    clear() {
      if (shown) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
      shown = false;
      lastShownAt = 0;
    },
  };
}
