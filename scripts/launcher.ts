/**
 * `deno task clients <port> [options]`: starts several parrot clients, like the
 * classic `startClient.sh`. With several servers (`--server host:port`, repeated or a
 * comma list) it spreads the clients over them, round robin.
 *
 * It owns the client processes it starts: it spawns them staggered, passes their
 * output through, records their pids in `.parrot/clients-<launcher pid>.pids` so
 * `deno task stop-clients` can stop them from another terminal, forwards Ctrl+C or
 * SIGTERM to them, and exits with their verdict once all of them are gone. The task
 * grants `--allow-run=deno` and read/write on `.parrot` only, which is all this needs:
 * the clients read the token and CA files themselves (each may read just those), and a
 * `--token` reaches them through their `PARROT_TOKEN` environment variable, never their
 * command line (which `ps` shows to every user).
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import denoJson from "../deno.json" with { type: "json" };
import * as cli from "../lib/cli/args.ts";
import {
  clientPidFilePath,
  pidFileExists,
  removePidFile,
  writePidFile,
} from "../lib/cli/pid_files.ts";
import { parseServers, SERVER_OPTIONS } from "../lib/cli/servers.ts";
import {
  DEFAULT_CLIENT_INTERVAL_MS,
  DEFAULT_CONFIRM_TIMEOUT_MS,
  DEFAULT_HOST,
  DEFAULT_LAUNCH_COUNT,
  DEFAULT_LAUNCH_STAGGER_MS,
  DEFAULT_MAX_UNSENT,
  DEFAULT_RECONNECT_ATTEMPTS,
} from "../lib/defaults.ts";
import { delayUnlessAborted } from "../lib/net/delay.ts";
import { formatDuration } from "../lib/net/duration.ts";
import { formatServerAddress } from "../lib/parrot/server_address.ts";

const USAGE = `parrot launcher ${denoJson.version}: starts several clients, staggered.

Usage: deno task clients <port | host:port> [options]
       deno task clients --server <host:port>[,<host:port>...] [options]

Options:
  --server <host:port>
                      a server to use; repeat it or give a comma list for several (after
                      the positional one, if given). The clients are spread over them round
                      robin: client 1 starts on the first, client 2 on the second, and so
                      on; each client is given the whole list from its own server on, so
                      with --reconnect it moves to the next one when its server goes
  --count <n>         number of client processes to start (default ${DEFAULT_LAUNCH_COUNT})
  --stagger <time>    delay between two client starts (default ${
  formatDuration(DEFAULT_LAUNCH_STAGGER_MS)
})
  -h, --help          show this help
  --version           show the version

Passed to every client:
  --host <address>    server address (default ${DEFAULT_HOST}); also the host of a --server
                      given as a bare port
  --name <name>       name to send with HELLO; clients are named <name>-1, <name>-2, ...
                      (default: each client's process id)
  --interval <time>   time between a client's messages (default ${
  formatDuration(DEFAULT_CLIENT_INTERVAL_MS)
})
  --messages <n>      messages each client sends before it quits; 0 = until stopped
                      (default 0; this is the client's --count)
  --message <text>    the message to send (default: the client's)
  --numbered          each client starts its messages with their number ("1 ...", "2 ...")
  --confirm-timeout <time>
                      how long each client waits for the server to confirm its connection
                      and its last message (default ${formatDuration(DEFAULT_CONFIRM_TIMEOUT_MS)})
  --token <secret>    the server's token; handed to the clients in PARROT_TOKEN, not on
                      their command line (default: the clients read $PARROT_TOKEN)
  --token-file <path> the clients read the token from this file
  --tls               the clients connect with TLS
  --ca <file>         the clients trust this PEM certificate (implies --tls)
  --reconnect         the clients reconnect when the connection is lost
  --reconnect-attempts <n>
                      attempts before a client gives up (default ${DEFAULT_RECONNECT_ATTEMPTS})
  --max-unsent <n>    messages a client keeps while disconnected (default ${DEFAULT_MAX_UNSENT})

With several servers, a line after the start says how many clients each server got.
Client output passes through. The client pids are kept in .parrot/clients-<launcher pid>.pids
while the launcher runs, so \`deno task stop-clients\` stops them from another terminal.
Ctrl+C or SIGTERM stops every client gracefully (each sends QUIT) and exits 0.
Once all clients have exited, the launcher exits 0 if each exited 0 or was stopped by
SIGINT/SIGTERM, otherwise 1 with a line naming the clients that failed.`;

const HINT = "Run `deno task clients --help` for usage.";

const LAUNCHER_OPTIONS = {
  count: { type: "string", default: String(DEFAULT_LAUNCH_COUNT) },
  stagger: { type: "string" },
  ...SERVER_OPTIONS,
  name: { type: "string" },
  interval: { type: "string" },
  messages: { type: "string" },
  message: { type: "string" },
  numbered: { type: "boolean", default: false },
  "confirm-timeout": { type: "string" },
  ...cli.CONNECTION_OPTIONS,
} as const;

const CLIENT_PATH = fileURLToPath(new URL("../client.ts", import.meta.url));
const STOP_SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** What to start, checked before anything is started. */
interface LaunchPlan {
  count: number;
  staggerMs: number;
  /** The `deno` arguments of client number `index` (1-based). */
  clientArgs(index: number): string[];
  /** The servers (`host:port`); client `index` starts on `servers[(index - 1) % length]`. */
  servers: string[];
  /** Environment variables added to each client's (the token, if given). */
  clientEnv: Record<string, string>;
}

/** A started client. */
interface LaunchedClient {
  pid: number;
  child: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
}

async function main(): Promise<number> {
  const args = cli.parseProgramArgs(Deno.args, LAUNCHER_OPTIONS, USAGE, 1);
  if (!args) return 0;
  const { values, positionals } = args;
  const plan = planLaunch(values, positionals);
  const launcherPid = Deno.pid;
  const say = (line: string) => console.log(`launcher(${launcherPid}): ${line}`);
  const pidFile = clientPidFilePath(launcherPid);
  const clients: LaunchedClient[] = [];

  const stopping = new AbortController();
  const stopClients = () => {
    if (!stopping.signal.aborted) say("stopping the clients...");
    stopping.abort();
    for (const client of clients) terminate(client);
  };
  for (const signal of STOP_SIGNALS) Deno.addSignalListener(signal, stopClients);

  let statuses: Deno.CommandStatus[];
  try {
    for (let index = 1; index <= plan.count; index++) {
      if (index > 1) {
        await delayUnlessAborted(plan.staggerMs, stopping.signal);
        if (stopping.signal.aborted) break;
        if (!await pidFileExists(pidFile)) {
          say(`${pidFile} was removed (stop-clients?): starting no more clients`);
          break;
        }
      }
      clients.push(startClient(plan.clientArgs(index), plan.clientEnv, index, plan.count));
      await writePidFile(pidFile, clients.map((client) => client.pid));
    }
    if (!stopping.signal.aborted) {
      say(
        `started ${plural(clients.length, "client")} (pids in ${pidFile}); ` +
          "stop them with Ctrl+C or `deno task stop-clients`",
      );
    }
    if (plan.servers.length > 1 && clients.length > 0) {
      say(`clients per server: ${spread(plan.servers, clients.length)}`);
    }
    statuses = await Promise.all(clients.map((client) => client.status));
  } catch (error) {
    stopClients();
    await Promise.allSettled(clients.map((client) => client.status));
    throw error;
  } finally {
    for (const signal of STOP_SIGNALS) Deno.removeSignalListener(signal, stopClients);
    await removePidFile(pidFile);
  }

  const failures = clients
    .map((client, i) => ({ pid: client.pid, status: statuses[i] }))
    .filter(({ status }) => !status.success && !stoppedOnRequest(status))
    .map(({ pid, status }) => `client ${pid} ${describeExit(status)}`);
  if (failures.length > 0) {
    const which = clients.length === 1
      ? "the client failed"
      : `${failures.length} of ${clients.length} clients failed`;
    console.error(`error: ${which}: ${failures.join(", ")}`);
    return 1;
  }
  say(clients.length === 1 ? "the client exited" : `all ${clients.length} clients exited`);
  return 0;
}

/** Checks the command line and works out each client's arguments. */
function planLaunch(
  values: Record<string, string | boolean | undefined>,
  positionals: string[],
): LaunchPlan {
  const servers = parseServers(values, positionals[0]).map(formatServerAddress);
  const option = (name: string) => values[name] as string | undefined;
  const count = cli.parseCount("count", option("count")!, 1);
  const stagger = option("stagger");
  const staggerMs = stagger === undefined
    ? DEFAULT_LAUNCH_STAGGER_MS
    : cli.parseDurationOption("stagger", stagger);
  const interval = option("interval");
  if (interval !== undefined) cli.parseDurationOption("interval", interval);
  const messages = option("messages");
  if (messages !== undefined) cli.parseCount("messages", messages);
  const name = option("name");
  const message = option("message");
  const confirmTimeout = option("confirm-timeout");
  if (confirmTimeout !== undefined) cli.parseDurationOption("confirm-timeout", confirmTimeout);
  const token = option("token");
  const tokenFile = option("token-file");
  if (token !== undefined && tokenFile !== undefined) {
    throw new cli.UsageError("Cannot use both --token and --token-file: give one");
  }
  if (token !== undefined && (token.length === 0 || /[\r\n]/.test(token))) {
    throw new cli.UsageError("Cannot use --token: the token must be one non-empty line");
  }
  const ca = option("ca");
  const reconnect = values.reconnect === true;
  const attempts = option("reconnect-attempts");
  const maxUnsent = option("max-unsent");
  for (const [flag, value] of [["reconnect-attempts", attempts], ["max-unsent", maxUnsent]]) {
    if (value === undefined) continue;
    if (!reconnect) throw new cli.UsageError(`Cannot use --${flag} without --reconnect`);
    cli.parseCount(flag!, value, 1);
  }
  const readable = [tokenFile, ca].filter((path) => path !== undefined);
  for (const path of readable) {
    if (path.includes(",")) {
      throw new cli.UsageError(`Cannot use the path "${path}": it must not contain a comma`);
    }
  }

  const shared = [
    ...(interval === undefined ? [] : ["--interval", interval]),
    ...(messages === undefined ? [] : ["--count", messages]),
    ...(message === undefined ? [] : ["--message", message]),
    ...(values.numbered ? ["--numbered"] : []),
    ...(confirmTimeout === undefined ? [] : ["--confirm-timeout", confirmTimeout]),
    ...(tokenFile === undefined ? [] : ["--token-file", tokenFile]),
    ...(values.tls ? ["--tls"] : []),
    ...(ca === undefined ? [] : ["--ca", ca]),
    ...(reconnect ? ["--reconnect"] : []),
    ...(attempts === undefined ? [] : ["--reconnect-attempts", attempts]),
    ...(maxUnsent === undefined ? [] : ["--max-unsent", maxUnsent]),
  ];
  return {
    count,
    staggerMs,
    servers,
    clientEnv: token === undefined ? {} : { PARROT_TOKEN: token },
    clientArgs: (index) => [
      "run",
      `--allow-net=${servers.join(",")}`,
      ...(readable.length === 0 ? [] : [`--allow-read=${readable.join(",")}`]),
      "--allow-env=PARROT_TOKEN",
      CLIENT_PATH,
      "--server",
      rotated(servers, (index - 1) % servers.length).join(","),
      ...(name === undefined ? [] : ["--name", count === 1 ? name : `${name}-${index}`]),
      ...shared,
    ],
  };
}

/** Spawns one client with the launcher's stdout and stderr, and `env` added to its environment. */
function startClient(
  args: string[],
  env: Record<string, string>,
  index: number,
  count: number,
): LaunchedClient {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("deno", {
      args,
      env,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
  } catch (error) {
    throw new Error(`Cannot start client ${index} of ${count}: ${cli.errorMessage(error)}`);
  }
  return { pid: child.pid, child, status: child.status };
}

/** Asks a client to stop (it sends QUIT and exits 0); one that has exited is left alone. */
function terminate(client: LaunchedClient): void {
  try {
    client.child.kill("SIGTERM");
  } catch {
    // It has exited already.
  }
}

/** Whether a client was ended by Ctrl+C or SIGTERM before it could handle it. */
function stoppedOnRequest(status: Deno.CommandStatus): boolean {
  return status.signal === "SIGINT" || status.signal === "SIGTERM";
}

function describeExit(status: Deno.CommandStatus): string {
  return status.signal === null
    ? `exited with code ${status.code}`
    : `was killed by ${status.signal}`;
}

/** `list` starting at `start`, wrapping around. */
function rotated<T>(list: T[], start: number): T[] {
  return [...list.slice(start), ...list.slice(0, start)];
}

/** How `count` clients spread round robin over `servers`: `2 on a:1, 1 on b:2`. */
function spread(servers: string[], count: number): string {
  return servers
    .map((server, i) =>
      `${Math.floor(count / servers.length) + (i < count % servers.length ? 1 : 0)} on ${server}`
    )
    .join(", ");
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

if (import.meta.main) await cli.runCli(main, HINT);
