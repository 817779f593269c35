/**
 * `deno task client <port> [options]`: one parrot client on the command line.
 * `deno task client --server host:port,host:port [options]`: the same, with several servers
 * to choose from (the first that accepts; with `--reconnect`, the next one after a loss).
 *
 * Says `HELLO` with its process id, sends a message every `--interval`, prints the
 * lifecycle lines of the classic client (`client(<pid>): running...`, `write <n>
 * bytes`, `read <n> bytes`, `received request to quit`, `stopping...`) and answers the
 * server's `PING` by itself. Ctrl+C or SIGTERM sends `QUIT` and exits 0.
 *
 * Exit 0 means the server took every message: a plain client sends `PING` after `AUTH`
 * and `HELLO` and starts writing only once the `PONG` is back (so a refused token is
 * never preceded by a `write` line), and sends another after its last message; the
 * server answers a `PING` only once every earlier message is on its stdout. An answer
 * that does not come within `--confirm-timeout` is an error (exit 1), with a hint when
 * nothing at all came back (a plain client talking to a TLS server, say).
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
import { parseServers, SERVER_OPTIONS } from "./lib/cli/servers.ts";
import { resolveToken, TOKEN_ENV } from "./lib/cli/token.ts";
import { explainConnectError } from "./lib/cli/connect_errors.ts";
import {
  DEFAULT_CLIENT_INTERVAL_MS,
  DEFAULT_CONFIRM_TIMEOUT_MS,
  DEFAULT_HOST,
  DEFAULT_MAX_UNSENT,
  DEFAULT_RECONNECT_ATTEMPTS,
} from "./lib/defaults.ts";
import { formatDuration } from "./lib/net/duration.ts";
import { type ClientEvent, ParrotClient, type ParrotClientOptions } from "./lib/parrot/client.ts";
import { isValidName } from "./lib/parrot/frame.ts";
import { describeError, ReconnectingClient } from "./lib/parrot/reconnecting_client.ts";
import { formatServerAddress, type ServerAddress } from "./lib/parrot/server_address.ts";

/** The message a client sends when `--message` is not given. */
export const DEFAULT_MESSAGE = `Polly has not gone quiet, she is thinking in binary!
This bird has pipelined her squawks and batched her words.
She waits for no mutex and takes no lock, she queues behind nobody;
every perch is an async task, and every seed reaches the feeder.
Tell the server she was here, then tell it again, exactly once.
`;

const USAGE =
  `parrot client ${denoJson.version}: sends a message every interval, prints what it hears.

Usage: deno task client <port | host:port> [options]
       deno task client --server <host:port>[,<host:port>...] [options]

Options:
  --host <address>          server address (default ${DEFAULT_HOST}); also the host of a
                            --server given as a bare port
  --server <host:port>      a server to use; repeat it or give a comma list for several (after
                            the positional one, if given). The client connects to the first that
                            accepts, in the order given; with --reconnect, a lost connection
                            moves it to the next one (round robin)
  --name <name>             name to send with HELLO (default: this process id)
  --interval <time>         time between messages (default ${
    formatDuration(DEFAULT_CLIENT_INTERVAL_MS)
  })
  --count <n>               send n messages, wait until the server confirms them, then QUIT
                            and exit; 0 = until stopped (default 0)
  --confirm-timeout <time>  how long to wait for the server's TLS handshake, and for it to
                            confirm the connection and the last message, before giving up
                            with exit 1 (default ${formatDuration(DEFAULT_CONFIRM_TIMEOUT_MS)})
  --message <text>          the message to send (default: a few lines about a parrot)
  --numbered                start each message with its number and a space ("1 ...", "2 ...")
  --token <secret>          the server's token, sent with AUTH (default: $${TOKEN_ENV} if set)
  --token-file <path>       read the token from the first line of this file
  --tls                     connect with TLS, trusting the system's certificate authorities
  --ca <file>               trust the PEM certificate(s) in this file instead (implies --tls)
  --reconnect               when the connection is lost, reconnect with backoff (to the next
                            server, with several: also when the server shuts down) and re-send
                            the messages the server had not confirmed: at least once, so one
                            whose confirmation was lost may arrive twice (on both servers,
                            after a move)
  --reconnect-attempts <n>  attempts before giving up (default ${DEFAULT_RECONNECT_ATTEMPTS})
  --max-unsent <n>          unconfirmed messages kept while disconnected; beyond it the
                            oldest are dropped (default ${DEFAULT_MAX_UNSENT})
  -h, --help                show this help
  --version                 show the version

The token is never printed. Prefer --token-file or $${TOKEN_ENV}: other users can see --token
in the process list.
Exit 0 means the server confirmed every message sent (a PONG after the last one). Ctrl+C or
SIGTERM sends QUIT and exits 0 once the messages sent are confirmed; a QUIT from the server
exits 0 (with --reconnect and several servers, the client moves to the next server instead).
A client whose token is refused, whose server does not answer within --confirm-timeout, or
which gives up reconnecting, exits 1.`;

const HINT = "Run `deno task client --help` for usage.";
/** Why a connection attempt was abandoned after --confirm-timeout. */
const HANDSHAKE_TIMEOUT = new Error("The handshake took too long");

/** The client's command-line options. */
export const CLIENT_OPTIONS = {
  ...SERVER_OPTIONS,
  name: { type: "string" },
  interval: { type: "string" },
  count: { type: "string", default: "0" },
  "confirm-timeout": { type: "string" },
  message: { type: "string" },
  numbered: { type: "boolean", default: false },
  ...cli.CONNECTION_OPTIONS,
} as const;

/** A connection as the send loop sees it, plain or reconnecting. */
interface Session {
  /**
   * Settles once the first connection attempt has succeeded or failed; with the error to
   * report when the server did not confirm the connection (then nothing is sent).
   */
  ready: Promise<string | undefined>;
  /** Sends (or keeps) one message; returns the line to print. */
  send(payload: Uint8Array): string;
  /**
   * Waits until the server has confirmed every message sent; resolves with the error to
   * report when it did not.
   */
  confirm(): Promise<string | undefined>;
  /**
   * Says QUIT and waits for the server (at once, without waiting, when `wait` is false),
   * or gives up reconnecting; the error to report, if any.
   */
  close(wait: boolean): Promise<string | undefined>;
  /** Settles when the connection is over, with the error to report, if any. */
  outcome: Promise<{ error?: string }>;
}

async function main(): Promise<number> {
  const args = cli.parseProgramArgs(Deno.args, CLIENT_OPTIONS, USAGE, 1);
  if (!args) return 0;
  const { values, positionals } = args;
  const servers = parseServers(values, positionals[0]);
  const several = servers.length > 1;
  const intervalMs = values.interval === undefined
    ? DEFAULT_CLIENT_INTERVAL_MS
    : cli.parseDurationOption("interval", values.interval as string);
  const count = cli.parseCount("count", values.count as string);
  const confirmMs = values["confirm-timeout"] === undefined
    ? DEFAULT_CONFIRM_TIMEOUT_MS
    : cli.parseDurationOption("confirm-timeout", values["confirm-timeout"] as string);
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
  const tls = values.tls === true || ca !== undefined;
  // Aborted to drop the connection at once (a server that does not answer gets no grace).
  const dropped = new AbortController();
  const connection: Omit<ParrotClientOptions, "port"> = {
    name,
    ...(token === undefined ? {} : { token }),
    ...(tls ? { tls: true } : {}),
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
    session = startReconnecting(
      { ...connection, servers, ...reconnect, confirmTimeoutMs: confirmMs },
      { say, stop, confirmMs, several },
    );
  } else {
    const failures: string[] = [];
    let client: ParrotClient | undefined;
    for (const server of servers) {
      const why = await connectPlain(server, connection, confirmMs, dropped.signal);
      if (why instanceof ParrotClient) {
        client = why;
        break;
      }
      failures.push(`${formatServerAddress(server)}: ${why}`);
    }
    if (client === undefined) {
      complain(`cannot connect to ${failures.join("; nor to ")}`);
      return 1;
    }
    if (several) say(`connected to ${formatServerAddress(client.server)}`);
    session = startPlain(client, { say, stop, isStopping: () => stopping, confirmMs, tls });
  }

  const signals = ["SIGINT", "SIGTERM"] as const;
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  const unconfirmed = await Promise.race([
    session.ready,
    session.outcome.then(() => undefined),
    stopped.then(() => undefined),
  ]);
  if (unconfirmed !== undefined) {
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
    dropped.abort();
    await session.outcome;
    complain(unconfirmed);
    return 1;
  }
  const encoder = new TextEncoder();
  const payload = encoder.encode(message);
  const numbered = values.numbered === true;
  let sent = 0;
  while (!stopping && (count === 0 || sent < count)) {
    say(session.send(numbered ? encoder.encode(`${sent + 1} ${message}`) : payload));
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
  const notConfirmed = sent > 0 ? await session.confirm() : undefined;
  if (notConfirmed !== undefined) dropped.abort();
  const notClosed = await session.close(notConfirmed === undefined);
  const outcome = await session.outcome;
  for (const signal of signals) Deno.removeSignalListener(signal, stop);
  const error = outcome.error ?? notConfirmed ?? notClosed;
  if (error !== undefined) {
    complain(error);
    return 1;
  }
  return 0;
}

/**
 * One plain connection attempt to `server`: the client, or why it failed. A TLS server
 * that never answers the handshake gets `confirmMs`.
 */
async function connectPlain(
  server: Required<ServerAddress>,
  connection: Omit<ParrotClientOptions, "port">,
  confirmMs: number,
  dropped: AbortSignal,
): Promise<ParrotClient | string> {
  const attempt = new AbortController();
  const abort = () => attempt.abort(dropped.reason);
  dropped.addEventListener("abort", abort, { once: true });
  const handshakeTimer = setTimeout(() => attempt.abort(HANDSHAKE_TIMEOUT), confirmMs);
  let connected = false;
  try {
    const client = await ParrotClient.connect({ ...connection, ...server, signal: attempt.signal });
    connected = true; // From now on, aborting `dropped` closes it.
    return client;
  } catch (error) {
    const tls = connection.tls === true;
    return attempt.signal.reason === HANDSHAKE_TIMEOUT
      ? `the server did not complete the TLS handshake within ${
        formatDuration(confirmMs)
      } (does it speak TLS? if not, drop --tls and --ca)`
      : explainConnectError(error, { hostname: server.hostname, tls });
  } finally {
    clearTimeout(handshakeTimer);
    if (!connected) dropped.removeEventListener("abort", abort);
  }
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

/** What a plain connection needs from the command line. */
interface PlainOptions {
  say: (line: string) => void;
  stop: () => void;
  isStopping: () => boolean;
  /** How long to wait for a PONG. */
  confirmMs: number;
  /** Whether the client speaks TLS (no hint to try --tls then). */
  tls: boolean;
}

/**
 * A single connection: any loss ends the client. It is confirmed with a PING before the
 * first message (the server has accepted the token and the name), and `confirm()` sends
 * another after the last.
 */
function startPlain(client: ParrotClient, options: PlainOptions): Session {
  const { say, stop, isStopping, confirmMs, tls } = options;
  /** Whether anything parrot came back: a frame, or the first PONG. */
  let heard = false;
  /** Whether the connection is over, or the server said QUIT: nothing more to confirm. */
  let over = false;
  const noAnswer = (what: string) =>
    heard || tls ? what : `${what} (does the server speak TLS? try --tls)`;

  const outcome = (async (): Promise<{ error?: string }> => {
    try {
      for await (const event of client as AsyncIterable<ClientEvent>) {
        heard = true;
        if (event.type === "message") {
          say(`read ${event.payload.length} bytes`);
        } else if (event.type === "quit") {
          over = true;
          say("received request to quit");
          stop();
        } else {
          over = true;
          stop();
          return { error: serverError(event.reason) };
        }
      }
    } catch (error) {
      stop();
      return { error: noAnswer(`the connection failed: ${reason(error)}`) };
    } finally {
      over = true;
    }
    if (isStopping()) return {};
    stop();
    const failure = client.readError;
    return {
      error: noAnswer(
        failure === undefined
          ? "the server closed the connection"
          : `the connection failed: ${describeError(failure)}`,
      ),
    };
  })();

  /** Waits for a PONG; the error to report if none came. */
  const pong = async (what: string): Promise<string | undefined> => {
    try {
      await client.ping({ signal: AbortSignal.timeout(confirmMs) });
      heard = true;
      return undefined;
    } catch (error) {
      if (error instanceof DOMException && error.name === "TimeoutError") {
        return noAnswer(`the server did not confirm ${what} within ${formatDuration(confirmMs)}`);
      }
      // The connection ended first: the outcome says why (an ERR, a close, a failure).
      return (await outcome).error ?? `the connection ended before the server confirmed ${what}`;
    }
  };

  return {
    ready: pong("the connection"),
    send: (payload) => `write ${client.send(payload)} bytes`,
    confirm: () => over ? Promise.resolve(undefined) : pong("the messages"),
    close: () => client.close().then(() => undefined),
    outcome,
  };
}

/** What a reconnecting connection needs from the command line. */
interface ReconnectingOptions {
  say: (line: string) => void;
  stop: () => void;
  /** How long to wait for a PONG. */
  confirmMs: number;
  /** Whether several servers were given (then the log lines name them). */
  several: boolean;
}

/** A connection that is re-established when lost, printing what happens. */
function startReconnecting(
  options: ConstructorParameters<typeof ReconnectingClient>[0],
  { say, stop, confirmMs, several }: ReconnectingOptions,
): Session {
  const client = new ReconnectingClient(options);
  let everConnected = false;
  /** Whether the server said QUIT, or the client is done: nothing more to confirm. */
  let over = false;
  let attempted = () => {};
  const ready = new Promise<undefined>((resolve) => attempted = () => resolve(undefined));
  let connectedAgain = Promise.withResolvers<void>();
  /** Settles at the next `connected` or `reconnected` event. */
  const nextConnection = () => connectedAgain.promise;
  const connectionUp = () => {
    connectedAgain.resolve();
    connectedAgain = Promise.withResolvers<void>();
  };
  const outcome = (async (): Promise<{ error?: string }> => {
    for await (const event of client) {
      attempted();
      switch (event.type) {
        case "message":
          say(`read ${event.payload.length} bytes`);
          break;
        case "quit":
          over = true;
          say("received request to quit");
          stop();
          break;
        case "connected":
          everConnected = true;
          connectionUp();
          if (several) say(`connected to ${event.server}`);
          break;
        case "retrying": {
          const what = event.wasConnected
            ? `connection lost (${event.reason}); reconnecting`
            : `cannot connect (${event.reason}); retrying`;
          const where = several ? ` to ${event.server}` : "";
          say(
            `${what}${where} in ${event.delayMs}ms (attempt ${event.attempt} of ${event.maxAttempts})`,
          );
          break;
        }
        case "reconnected": {
          connectionUp();
          const moved = event.server === event.previousServer
            ? ""
            : ` (moved from ${event.previousServer})`;
          const where = several ? ` to ${event.server}${moved}` : "";
          say(
            `reconnected${where}; resent ${
              plural(event.resent, "unconfirmed message")
            }, dropped ${event.dropped}`,
          );
          break;
        }
        case "gave-up": {
          stop();
          const silent = !everConnected && !options.tls && /did not confirm/.test(event.reason);
          const hint = silent ? " (does the server speak TLS? try --tls)" : "";
          return {
            error: `giving up after ${plural(event.attempts, "attempt")}: ${event.reason}${hint}`,
          };
        }
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
    confirm: async () => {
      // Waits for a connection (the client re-sends what is unsent when it reconnects)
      // and its PONG, all within confirmMs.
      const deadline = AbortSignal.timeout(confirmMs);
      const timedOut = new Promise<void>((resolve) =>
        deadline.addEventListener("abort", () => resolve(), { once: true })
      );
      while (!over && !deadline.aborted) {
        if (client.connected) {
          try {
            await client.ping({ signal: deadline });
            return undefined;
          } catch {
            continue; // Timed out, or the connection was lost: wait for the next one.
          }
        }
        const done = await Promise.race([
          nextConnection().then(() => false),
          client.finished.then(() => true),
          timedOut.then(() => false),
        ]);
        if (done) break;
      }
      if (over) return undefined;
      const unsent = client.unsent === 0
        ? ""
        : ` (${plural(client.unsent, "unconfirmed message")})`;
      if (deadline.aborted) {
        return `the server did not confirm the messages within ${
          formatDuration(confirmMs)
        }${unsent}`;
      }
      return `the server did not confirm the messages: not connected${unsent}`;
    },
    close: async (wait) => {
      await client.close(wait ? undefined : 0);
      if (client.unsent > 0) {
        say(`${plural(client.unsent, "message")} not confirmed by the server`);
      }
      return undefined;
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
