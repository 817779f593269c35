/**
 * `deno task client <port> [options]`: one parrot client on the command line.
 *
 * Says `HELLO` with its process id, sends a message every `--interval`, prints the
 * lifecycle lines of the classic client (`client(<pid>): running...`, `write <n>
 * bytes`, `read <n> bytes`, `received request to quit`, `stopping...`) and answers the
 * server's `PING` by itself. Ctrl+C or SIGTERM sends `QUIT` and exits 0.
 *
 * It also turns the command line into connection options: the token (`--token`,
 * `--token-file` or `PARROT_TOKEN`, never printed), TLS (`--tls`, `--ca`), and with
 * `--reconnect` hands the connection to a {@linkcode ReconnectingClient}, printing
 * what it reports. The policy itself lives in `lib/`.
 *
 * @module
 */

import denoJson from "./deno.json" with { type: "json" };
import * as cli from "./lib/cli/args.ts";
import { resolveToken, TOKEN_ENV } from "./lib/cli/token.ts";
import {
  DEFAULT_CLIENT_INTERVAL_MS,
  DEFAULT_HOST,
  DEFAULT_MAX_UNSENT,
  DEFAULT_RECONNECT_ATTEMPTS,
} from "./lib/defaults.ts";
import { formatDuration } from "./lib/net/duration.ts";
import { type ClientEvent, ParrotClient, type ParrotClientOptions } from "./lib/parrot/client.ts";
import { isValidName } from "./lib/parrot/frame.ts";
import { describeError, ReconnectingClient } from "./lib/parrot/reconnecting_client.ts";

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
  --host <address>          server address (default ${DEFAULT_HOST})
  --name <name>             name to send with HELLO (default: this process id)
  --interval <time>         time between messages (default ${
    formatDuration(DEFAULT_CLIENT_INTERVAL_MS)
  })
  --count <n>               send n messages, then QUIT and exit; 0 = until stopped (default 0)
  --message <text>          the message to send (default: a few lines about a parrot)
  --token <secret>          the server's token, sent with AUTH (default: $${TOKEN_ENV} if set)
  --token-file <path>       read the token from the first line of this file
  --tls                     connect with TLS, trusting the system's certificate authorities
  --ca <file>               trust the PEM certificate(s) in this file instead (implies --tls)
  --reconnect               when the connection is lost, reconnect with backoff and re-send
                            the messages not yet written
  --reconnect-attempts <n>  attempts before giving up (default ${DEFAULT_RECONNECT_ATTEMPTS})
  --max-unsent <n>          messages kept while disconnected; beyond it the oldest are
                            dropped (default ${DEFAULT_MAX_UNSENT})
  -h, --help                show this help
  --version                 show the version

The token is never printed. Prefer --token-file or $${TOKEN_ENV}: other users can see --token
in the process list.
Ctrl+C or SIGTERM sends QUIT and exits 0; so does a QUIT from the server. With --reconnect,
a client that gives up, or whose token the server refuses, exits 1.`;

const HINT = "Run `deno task client --help` for usage.";

/** The client's command-line options. */
export const CLIENT_OPTIONS = {
  host: { type: "string", default: DEFAULT_HOST },
  name: { type: "string" },
  interval: { type: "string" },
  count: { type: "string", default: "0" },
  message: { type: "string" },
  ...cli.CONNECTION_OPTIONS,
} as const;

/** A connection as the send loop sees it, plain or reconnecting. */
interface Session {
  /** Sends (or keeps) one message; returns the line to print. */
  send(payload: Uint8Array): string;
  /** Says QUIT and waits for the server, or gives up reconnecting. */
  close(): Promise<void>;
  /** Settles when the connection is over, with the error to report, if any. */
  outcome: Promise<{ error?: string }>;
  /** Settles once the first connection attempt has succeeded or failed. */
  ready: Promise<unknown>;
}

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
  const reconnect = reconnectOptions(values);
  const token = await resolveToken({
    token: values.token as string | undefined,
    tokenFile: values["token-file"] as string | undefined,
  });
  const ca = values.ca as string | undefined;
  const connection: ParrotClientOptions = {
    hostname,
    port,
    name,
    ...(token === undefined ? {} : { token }),
    ...(values.tls || ca !== undefined ? { tls: true } : {}),
    ...(ca === undefined ? {} : { caCerts: [await readCaFile(ca)] }),
  };
  const say = (line: string) => console.log(`client(${pid}): ${line}`);
  const complain = (line: string) => console.error(`client(${pid}): ${line}`);

  let stopping = false;
  let wake = () => {};
  let stopRequested = () => {};
  const stopped = new Promise<void>((resolve) => stopRequested = resolve);
  const stop = () => {
    stopping = true;
    stopRequested();
    wake();
  };

  say("running...");
  let session: Session;
  if (reconnect) {
    session = startReconnecting({ ...connection, ...reconnect }, say, stop);
  } else {
    try {
      session = startPlain(await ParrotClient.connect(connection), say, stop, () => stopping);
    } catch (error) {
      complain(`cannot connect to ${hostname}:${port}: ${reason(error)}`);
      return 1;
    }
  }

  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  await Promise.race([session.ready, session.outcome, stopped]);
  const payload = new TextEncoder().encode(message);
  for (let sent = 0; !stopping && (count === 0 || sent < count);) {
    say(session.send(payload));
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
  await session.close();
  const outcome = await session.outcome;
  for (const signal of signals) Deno.removeSignalListener(signal, stop);
  if (outcome.error) {
    complain(outcome.error);
    return 1;
  }
  return 0;
}

/** `--reconnect` and its options, or undefined without it. */
function reconnectOptions(
  values: Record<string, string | boolean | undefined>,
): { maxAttempts: number; maxUnsent: number } | undefined {
  const attempts = values["reconnect-attempts"] as string | undefined;
  const maxUnsent = values["max-unsent"] as string | undefined;
  if (!values.reconnect) {
    const stray = attempts !== undefined ? "--reconnect-attempts" : "--max-unsent";
    if (attempts !== undefined || maxUnsent !== undefined) {
      throw new cli.UsageError(`Cannot use ${stray} without --reconnect`);
    }
    return undefined;
  }
  return {
    maxAttempts: attempts === undefined
      ? DEFAULT_RECONNECT_ATTEMPTS
      : cli.parseCount("reconnect-attempts", attempts, 1),
    maxUnsent: maxUnsent === undefined
      ? DEFAULT_MAX_UNSENT
      : cli.parseCount("max-unsent", maxUnsent, 1),
  };
}

/** The PEM text of `--ca <file>`. */
async function readCaFile(path: string): Promise<string> {
  let pem: string;
  try {
    pem = await Deno.readTextFile(path);
  } catch (error) {
    throw new cli.UsageError(`Cannot read --ca "${path}": ${fileProblem(error)}`);
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new cli.UsageError(`Cannot use --ca "${path}": it holds no PEM certificate`);
  }
  return pem;
}

function fileProblem(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.IsADirectory) return "it is a directory";
  if (error instanceof Deno.errors.NotCapable) return "reading files is not allowed (--allow-read)";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  return describeError(error);
}

/** A single connection: any loss ends the client. */
function startPlain(
  client: ParrotClient,
  say: (line: string) => void,
  stop: () => void,
  isStopping: () => boolean,
): Session {
  return {
    send: (payload) => `write ${client.send(payload)} bytes`,
    close: () => client.close(),
    outcome: listen(client, say, stop, isStopping),
    ready: Promise.resolve(),
  };
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
        return { error: serverError(event.reason) };
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

/** A connection that is re-established when lost, printing what happens. */
function startReconnecting(
  options: ConstructorParameters<typeof ReconnectingClient>[0],
  say: (line: string) => void,
  stop: () => void,
): Session {
  const client = new ReconnectingClient(options);
  let everConnected = false;
  let attempted = () => {};
  const ready = new Promise<void>((resolve) => attempted = resolve);
  const outcome = (async (): Promise<{ error?: string }> => {
    for await (const event of client) {
      attempted();
      switch (event.type) {
        case "message":
          say(`read ${event.payload.length} bytes`);
          break;
        case "quit":
          say("received request to quit");
          stop();
          break;
        case "connected":
          everConnected = true;
          break;
        case "retrying": {
          const what = event.wasConnected
            ? `connection lost (${event.reason}); reconnecting`
            : `cannot connect (${event.reason}); retrying`;
          say(`${what} in ${event.delayMs}ms (attempt ${event.attempt} of ${event.maxAttempts})`);
          break;
        }
        case "reconnected":
          say(
            `reconnected; resent ${
              plural(event.resent, "unsent message")
            }, dropped ${event.dropped}`,
          );
          break;
        case "gave-up":
          stop();
          return { error: `giving up after ${plural(event.attempts, "attempt")}: ${event.reason}` };
        case "error":
          stop();
          return { error: serverError(event.reason) };
      }
    }
    return {};
  })();
  return {
    send: (payload) => {
      const connected = client.connected;
      const size = client.send(payload);
      if (connected) return `write ${size} bytes`;
      return `keep ${size} bytes until ${everConnected ? "reconnected" : "connected"}`;
    },
    close: async () => {
      await client.close();
      if (client.unsent > 0) say(`${plural(client.unsent, "unsent message")} not delivered`);
    },
    outcome,
    ready,
  };
}

/** The line for the server's `ERR`, with a hint for a refused token. */
function serverError(reason: string): string {
  if (reason === "unauthorized") {
    return "the server refused the token (check --token, --token-file or " +
      `${TOKEN_ENV}): ERR unauthorized`;
  }
  return `the server closed the connection: ERR ${reason}`;
}

function reason(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) {
    return "connection refused (is the server running?)";
  }
  return cli.errorMessage(error);
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

if (import.meta.main) await cli.runCli(main, HINT);
