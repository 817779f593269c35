/**
 * The server's cluster flags (`--cluster` and the flags beside it): their help lines, and their
 * checks into a {@linkcode ClusterCommandLine}.
 *
 * Kept apart from `lib/cli/server_flags.ts` so that cluster mode can be reviewed on its own:
 * the server's flag table lists {@linkcode CLUSTER_FLAGS} in a "Cluster" section and calls
 * {@linkcode parseClusterFlags} with every flag's text. No I/O but one: whether
 * `PARROT_CLUSTER_TOKEN` is set, asked only when no other credentials are given.
 *
 * @module
 */

import { parseCount, UsageError } from "../cli/args.ts";
import { DEFAULT_CLUSTER_BUFFER_BYTES, DEFAULT_CLUSTER_SUBJECT } from "../defaults.ts";
import { MAX_FRAME_NAME_BYTES } from "./cluster_frame.ts";

/** The environment variable the NATS token may come from. */
export const CLUSTER_TOKEN_ENV = "PARROT_CLUSTER_TOKEN";

/** What the cluster flags ask for. */
export interface ClusterCommandLine {
  /** `--cluster`: the NATS URLs (repeatable, or a comma list). */
  servers: string[];
  /** `--cluster-token`, else `PARROT_CLUSTER_TOKEN` when no other credentials are given. */
  token?: string;
  /** `--cluster-creds`: a NATS credentials file. */
  credsFile?: string;
  /** `--cluster-tls`: the CA file the NATS servers' certificates are checked against. */
  tlsCaFile?: string;
  /** `--cluster-subject`. */
  subject: string;
  /** `--cluster-buffer`, in bytes. */
  bufferBytes: number;
  /** `--server-name`; undefined: the server uses its host:port once it listens. */
  serverName?: string;
  /** `--print-cluster`: stdout shows the other servers' messages too, tagged with their name. */
  printCluster: boolean;
}

/** One cluster flag, as the help lists it. */
export interface ClusterFlag {
  /** The long name, without the dashes. */
  readonly name: string;
  /** The value's placeholder; a flag without one is a switch. */
  readonly value?: string;
  /** Whether it may be given more than once (values joined by commas). */
  readonly repeatable?: boolean;
  /** Its help: the first line, then continuation lines after `\n`. */
  readonly help: string;
}

/** The cluster flags, in the order the help lists them. */
export const CLUSTER_FLAGS: readonly ClusterFlag[] = [
  {
    name: "cluster",
    value: "<url>",
    repeatable: true,
    help: `join the parrot servers on these NATS servers, each
nats://[user:pass@ or token@]host:port (repeat it, or a comma list)`,
  },
  {
    name: "cluster-token",
    value: "<token>",
    help: `NATS token (visible in ps: prefer ${CLUSTER_TOKEN_ENV})`,
  },
  { name: "cluster-creds", value: "<file>", help: "NATS credentials file (JWT and nkey seed)" },
  { name: "cluster-tls", value: "<ca-file>", help: "check the NATS servers' TLS against this CA" },
  {
    name: "cluster-subject",
    value: "<subject>",
    help: `NATS subject prefix; servers with another one do not hear each
other (default ${DEFAULT_CLUSTER_SUBJECT})`,
  },
  {
    name: "cluster-buffer",
    value: "<bytes>",
    help: `recent messages kept for NATS outages and replays; past it the
oldest are dropped and counted (default ${DEFAULT_CLUSTER_BUFFER_BYTES})`,
  },
  {
    name: "server-name",
    value: "<name>",
    help: "this server's name in the cluster (default host:port)",
  },
  {
    name: "print-cluster",
    help: "stdout shows the other servers' messages too, tagged with their name",
  },
];

/** Checks a NATS subject prefix: dot-separated tokens of letters, digits, `_` and `-`. */
export function isValidClusterSubject(subject: string): boolean {
  return /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(subject);
}

/** Checks a server name: 1 to 255 UTF-8 bytes, no spaces or control characters. */
export function isValidServerName(name: string): boolean {
  const bytes = new TextEncoder().encode(name).length;
  // deno-lint-ignore no-control-regex
  return bytes >= 1 && bytes <= MAX_FRAME_NAME_BYTES && !/[\s\x00-\x1f\x7f]/.test(name);
}

function readTokenEnv(): string | undefined {
  const permission = Deno.permissions.querySync({ name: "env", variable: CLUSTER_TOKEN_ENV });
  if (permission.state !== "granted") {
    throw new UsageError(
      `Cannot tell whether ${CLUSTER_TOKEN_ENV} is set: run with --allow-env=${CLUSTER_TOKEN_ENV}`,
    );
  }
  return Deno.env.get(CLUSTER_TOKEN_ENV);
}

/**
 * Checks the cluster flags (`all` holds every flag's text, a switch as `"true"`, a
 * repeatable flag joined by commas) and returns what they ask for, or undefined without
 * `--cluster`. A cluster flag without `--cluster` is a mistake ({@linkcode UsageError}).
 * `readEnv` gives `PARROT_CLUSTER_TOKEN`; by default it is read from the environment, and
 * failing closed (a {@linkcode UsageError}) when the program may not read it.
 *
 * @example
 * ```ts
 * import { parseClusterFlags } from "./cluster_flags.ts";
 * const line = parseClusterFlags({ cluster: "nats://127.0.0.1:4222", "server-name": "east" }, () => undefined);
 * if (line?.serverName !== "east" || line.servers.length !== 1) throw new Error("bad");
 * ```
 */
export function parseClusterFlags(
  all: Readonly<Record<string, string | undefined>>,
  readEnv: () => string | undefined = readTokenEnv,
): ClusterCommandLine | undefined {
  if (all.cluster === undefined) {
    for (const flag of CLUSTER_FLAGS) {
      if (flag.name !== "cluster" && all[flag.name] !== undefined) {
        throw new UsageError(`Cannot use --${flag.name} without --cluster`);
      }
    }
    return undefined;
  }
  const servers = all.cluster.split(",").map((item) => item.trim()).filter((item) => item);
  if (servers.length === 0) throw new UsageError('Cannot use --cluster "": give a NATS URL');
  const subject = all["cluster-subject"] ?? DEFAULT_CLUSTER_SUBJECT;
  if (!isValidClusterSubject(subject)) {
    throw new UsageError(
      `Cannot use --cluster-subject "${subject}": expected dot-separated words of letters, digits, _ and -`,
    );
  }
  const serverName = all["server-name"];
  if (serverName !== undefined && !isValidServerName(serverName)) {
    throw new UsageError(
      `Cannot use --server-name ${
        JSON.stringify(serverName)
      }: expected 1 to ${MAX_FRAME_NAME_BYTES} bytes without spaces or control characters`,
    );
  }
  const bufferText = all["cluster-buffer"];
  const bufferBytes = bufferText === undefined
    ? DEFAULT_CLUSTER_BUFFER_BYTES
    : parseCount("cluster-buffer", bufferText, 1024);
  let token = all["cluster-token"];
  if (token === "") throw new UsageError('Cannot use --cluster-token "": the token is empty');
  const urlCredentials = servers.some((url) => /^[a-z]+:\/\/[^/]*@/i.test(url));
  if (token === undefined && all["cluster-creds"] === undefined && !urlCredentials) {
    const fromEnv = readEnv();
    if (fromEnv !== undefined && fromEnv !== "") token = fromEnv;
  }
  return {
    servers,
    token,
    credsFile: all["cluster-creds"],
    tlsCaFile: all["cluster-tls"],
    subject,
    bufferBytes,
    serverName,
    printCluster: all["print-cluster"] !== undefined,
  };
}
