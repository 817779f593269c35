/**
 * From the cluster flags (`--cluster` URLs, `--cluster-token`, `--cluster-creds`,
 * `--cluster-tls`) to the NATS client's connection options.
 *
 * It owns the checks that must fail at start, before any connection is tried (fail closed): a
 * URL that does not parse, credentials given twice, a creds or CA file that cannot be read or
 * parsed. It also sets the reconnect policy: the client's defaults give up after 10 attempts,
 * parrot never does.
 *
 * @module
 */

import { credsAuthenticator } from "@nats-io/transport-node";
import type { NodeConnectionOptions } from "@nats-io/transport-node";
import {
  DEFAULT_CLUSTER_CONNECT_TIMEOUT_MS,
  DEFAULT_CLUSTER_PING_INTERVAL_MS,
  DEFAULT_CLUSTER_RECONNECT_WAIT_MS,
} from "../defaults.ts";

/** A cluster setting that cannot be applied. The message is one line for the user. */
export class ClusterConfigError extends Error {
  override name = "ClusterConfigError";
}

/** The cluster flags, as given. */
export interface ClusterConnectSettings {
  /** `--cluster`: NATS URLs, as a comma list or an array (`nats://[user:pass@|token@]host:port`). */
  servers: string | string[];
  /** `--cluster-token` or `PARROT_CLUSTER_TOKEN`. */
  token?: string;
  /** `--cluster-creds`: a NATS credentials file (user JWT and nkey seed). */
  credsFile?: string;
  /** `--cluster-tls`: a PEM file of the CA that signed the NATS servers' certificates. */
  tlsCaFile?: string;
  /** The connection's name in NATS monitoring (the parrot server's name). */
  name?: string;
  /** Milliseconds between reconnect attempts (a random wait of up to as much is added). */
  reconnectWaitMs?: number;
}

interface ParsedUrl {
  server: string;
  user?: string;
  pass?: string;
  token?: string;
  tls: boolean;
}

function parseUrl(text: string): ParsedUrl {
  const trimmed = text.trim();
  const withScheme = /^[a-z]+:\/\//i.test(trimmed) ? trimmed : `nats://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ClusterConfigError(`Cannot parse --cluster URL "${trimmed}": not a URL`);
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme !== "nats" && scheme !== "tls") {
    throw new ClusterConfigError(
      `Cannot use --cluster URL "${trimmed}": the scheme must be nats:// or tls://`,
    );
  }
  if (!url.hostname) throw new ClusterConfigError(`Cannot use --cluster URL "${trimmed}": no host`);
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  const server = `${url.hostname}:${url.port || "4222"}`;
  if (user && pass) return { server, user, pass, tls: scheme === "tls" };
  if (user) return { server, token: user, tls: scheme === "tls" };
  return { server, tls: scheme === "tls" };
}

function readFile(path: string, flag: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ClusterConfigError(`Cannot read ${flag} file ${path}: ${reason}`);
  }
}

/**
 * Checks the cluster flags and turns them into NATS connection options: the servers without
 * their credentials, one way to authenticate, TLS if asked for, and the reconnect policy
 * (never give up, short jittered waits, pings every few seconds). Throws
 * {@linkcode ClusterConfigError} on anything that cannot be applied.
 *
 * @example
 * ```ts
 * import { natsConnectionOptions } from "./nats_options.ts";
 * const options = natsConnectionOptions({ servers: "nats://alice:secret@127.0.0.1:4222" });
 * if (options.user !== "alice" || options.maxReconnectAttempts !== -1) throw new Error("bad");
 * ```
 */
export function natsConnectionOptions(settings: ClusterConnectSettings): NodeConnectionOptions {
  const list = (Array.isArray(settings.servers) ? settings.servers : [settings.servers])
    .flatMap((item) => item.split(","))
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  if (list.length === 0) throw new ClusterConfigError("--cluster needs at least one NATS URL");
  const urls = list.map(parseUrl);
  const withAuth = urls.filter((u) => u.user !== undefined || u.token !== undefined);
  const first = withAuth[0];
  if (
    first &&
    withAuth.some((u) => u.user !== first.user || u.pass !== first.pass || u.token !== first.token)
  ) {
    throw new ClusterConfigError("The --cluster URLs carry different credentials: give one set");
  }
  const ways = [first, settings.token, settings.credsFile].filter((w) => w !== undefined);
  if (ways.length > 1) {
    throw new ClusterConfigError(
      "Give NATS credentials one way: in the --cluster URL, --cluster-token or --cluster-creds",
    );
  }
  const wait = settings.reconnectWaitMs ?? DEFAULT_CLUSTER_RECONNECT_WAIT_MS;
  const options: NodeConnectionOptions = {
    servers: urls.map((u) => u.server),
    name: settings.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: wait,
    reconnectJitter: wait,
    reconnectJitterTLS: wait,
    pingInterval: DEFAULT_CLUSTER_PING_INTERVAL_MS,
    // An unreachable host should not hold a connect (or a close) for the default 20 s.
    timeout: DEFAULT_CLUSTER_CONNECT_TIMEOUT_MS,
    maxPingOut: 2,
    noEcho: true,
    noRandomize: true,
  };
  if (first?.user !== undefined) {
    options.user = first.user;
    options.pass = first.pass;
  } else if (first?.token !== undefined) {
    options.token = first.token;
  } else if (settings.token !== undefined) {
    if (settings.token === "") throw new ClusterConfigError("The NATS token is empty");
    options.token = settings.token;
  } else if (settings.credsFile !== undefined) {
    const creds = readFile(settings.credsFile, "--cluster-creds");
    const authenticator = credsAuthenticator(creds);
    try {
      // Parses the JWT and signs a nonce with the seed: a bad file fails here, not at connect.
      authenticator("check");
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ClusterConfigError(
        `Cannot use --cluster-creds file ${settings.credsFile}: ${reason}`,
      );
    }
    options.authenticator = authenticator;
  }
  if (settings.tlsCaFile !== undefined) {
    const ca = new TextDecoder().decode(readFile(settings.tlsCaFile, "--cluster-tls"));
    if (!ca.includes("-----BEGIN CERTIFICATE-----")) {
      throw new ClusterConfigError(
        `Cannot use --cluster-tls file ${settings.tlsCaFile}: no PEM certificate in it`,
      );
    }
    options.tls = { ca };
  } else if (urls.some((u) => u.tls)) {
    options.tls = {};
  }
  return options;
}
