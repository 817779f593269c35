/**
 * `deno task client <port> [options]`: one parrot client on the command line.
 *
 * Says `HELLO` with its process id, sends a message every `--interval`, prints the
 * lifecycle lines of the classic client (`client(<pid>): running...`, `write <n>
 * bytes`, `read <n> bytes`, `received request to quit`, `stopping...`) and answers the
 * server's `PING` by itself. Ctrl+C or SIGTERM sends `QUIT` and exits 0.
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import * as cli from "./lib/cli/args.ts";
import { DEFAULT_CLIENT_INTERVAL_MS, DEFAULT_HOST } from "./lib/defaults.ts";
import { formatDuration } from "./lib/net/duration.ts";
import { type ClientEvent, ParrotClient } from "./lib/parrot/client.ts";
import { isValidName } from "./lib/parrot/frame.ts";

/** The message a client sends when `--message` is not given. */
export const DEFAULT_MESSAGE = `Polly has not gone quiet, she is thinking in binary!
This bird has pipelined her squawks and batched her words.
She waits for no mutex and takes no lock, she queues behind nobody;
every perch is an async task, and every seed reaches the feeder.
Tell the server she was here, then tell it again, exactly once.
`;

const USAGE =
  `parrot client ${denoJson.version}: sends a message every interval, prints what it hears.

Usage: deno task client <port> [options]

Options:
  --host <address>    server address (default ${DEFAULT_HOST})
  --name <name>       name to send with HELLO (default: this process id)
  --interval <time>   time between messages (default ${formatDuration(DEFAULT_CLIENT_INTERVAL_MS)})
  --count <n>         send n messages, then QUIT and exit; 0 = until stopped (default 0)
  --message <text>    the message to send (default: a few lines about a parrot)
  -h, --help          show this help
  --version           show the version

Ctrl+C or SIGTERM sends QUIT and exits 0; so does a QUIT from the server.`;

const HINT = "Run `deno task client --help` for usage.";

/** The client's command-line options. */
export const CLIENT_OPTIONS = {
  host: { type: "string", default: DEFAULT_HOST },
  name: { type: "string" },
  interval: { type: "string" },
  count: { type: "string", default: "0" },
  message: { type: "string" },
} as const;

async function main(): Promise<number> {
  const args = cli.parseProgramArgs(Deno.args, CLIENT_OPTIONS, USAGE, 1);
  if (!args) return 0;
  const { values, positionals } = args;
  const port = cli.parsePort(positionals[0]);
  if (port === 0) throw new cli.UsageError("Cannot connect to port 0: give the server's port");
  const hostname = values.host as string;
  const intervalMs = values.interval === undefined
    ? DEFAULT_CLIENT_INTERVAL_MS
    : cli.parseDurationOption("interval", values.interval as string);
  const count = cli.parseCount("count", values.count as string);
  const message = (values.message as string | undefined) ?? DEFAULT_MESSAGE;
  const pid = Deno.pid;
  const name = (values.name as string | undefined) ?? String(pid);
  if (!isValidName(name)) {
    throw new cli.UsageError(
      `Cannot use --name "${name}": a name is 1 to 64 visible characters without spaces`,
    );
  }
  const say = (line: string) => console.log(`client(${pid}): ${line}`);

  say("running...");
  let client: ParrotClient;
  try {
    client = await ParrotClient.connect({
      hostname,
      port,
      name,
    });
  } catch (error) {
    console.error(`client(${pid}): cannot connect to ${hostname}:${port}: ${reason(error)}`);
    return 1;
  }

  let stopping = false;
  let wake = () => {};
  const stop = () => {
    stopping = true;
    wake();
  };
  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const signal of signals) Deno.addSignalListener(signal, stop);

  const listening = listen(client, say, stop, () => stopping);
  const payload = new TextEncoder().encode(message);
  for (let sent = 0; !stopping && (count === 0 || sent < count);) {
    say(`write ${client.send(payload)} bytes`);
    sent++;
    if (count !== 0 && sent >= count) break;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, intervalMs);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
  stop();
  say("stopping...");
  await client.close();
  const outcome = await listening;
  for (const signal of signals) Deno.removeSignalListener(signal, stop);
  if (outcome.error) {
    console.error(`client(${pid}): ${outcome.error}`);
    return 1;
  }
  return 0;
}

/** Prints relayed messages and the server's QUIT; resolves with any error seen. */
async function listen(
  client: ParrotClient,
  say: (line: string) => void,
  stop: () => void,
  isStopping: () => boolean,
): Promise<{ error?: string }> {
  try {
    for await (const event of client as AsyncIterable<ClientEvent>) {
      if (event.type === "message") {
        say(`read ${event.payload.length} bytes`);
      } else if (event.type === "quit") {
        say("received request to quit");
        stop();
      } else {
        stop();
        return { error: `the server closed the connection: ERR ${event.reason}` };
      }
    }
  } catch (error) {
    stop();
    return { error: `the connection failed: ${reason(error)}` };
  }
  if (isStopping()) return {};
  stop();
  return { error: "the server closed the connection" };
}

function reason(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) {
    return "connection refused (is the server running?)";
  }
  return cli.errorMessage(error);
}

if (import.meta.main) await cli.runCli(main, HINT);
