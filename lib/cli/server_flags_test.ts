import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { UsageError } from "./args.ts";
import {
  parseServerCommandLine,
  SERVER_FLAGS,
  serverParseOptions,
  serverUsage,
} from "./server_flags.ts";
import {
  DEFAULT_HISTORY_AGE_MS,
  DEFAULT_HISTORY_MAX,
  DEFAULT_HISTORY_REPLAY_MAX,
  DEFAULT_HOST,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CLIENTS,
  DEFAULT_THREADS,
} from "../defaults.ts";

const RUNTIME = { cores: 4, unstableNet: true };

function parse(args: string[], runtime = RUNTIME) {
  const { values, positionals } = parseArgs({
    args,
    options: serverParseOptions(),
    strict: true,
    allowPositionals: true,
  });
  return parseServerCommandLine(values, positionals, runtime);
}

Deno.test("serverUsage() lists every flag of the table once, in its section", () => {
  const usage = serverUsage("9.9.9");
  assert.match(usage, /^parrot server 9\.9\.9: /);
  for (const flag of SERVER_FLAGS) {
    const own = usage.split("\n").filter((line) =>
      new RegExp(`^  (-\\w, )?--${flag.name}( <[^>]+>)? +\\S`).test(line)
    );
    assert.equal(own.length, 1, `--${flag.name} has one help line`);
    const section = usage.lastIndexOf("\n\n", usage.indexOf(own[0]));
    assert.ok(
      usage.startsWith(`${flag.section}:`, section + 2),
      `--${flag.name} in ${flag.section}`,
    );
  }
  // Continuation lines line up with the help column.
  for (const line of usage.split("\n").filter((line) => /^ {3,}\S/.test(line))) {
    assert.match(line, /^ {26}\S/, line);
  }
});

Deno.test("serverParseOptions() declares every flag but --help and --version, strings for values", () => {
  const options = serverParseOptions();
  assert.equal(options["max-clients"].type, "string");
  assert.equal(options["no-broadcast"].type, "boolean");
  assert.equal(options.help, undefined);
  assert.equal(Object.keys(options).length, SERVER_FLAGS.length - 2);
});

Deno.test("parseServerCommandLine() gives the defaults, and maps each flag into the options", () => {
  const defaults = parse(["8080"]);
  assert.equal(defaults.port, 8080);
  assert.equal(defaults.options.hostname, DEFAULT_HOST);
  assert.equal(defaults.options.maxClients, DEFAULT_MAX_CLIENTS);
  assert.equal(defaults.options.idleTimeoutMs, DEFAULT_IDLE_TIMEOUT_MS);
  assert.equal(defaults.options.broadcast, true);
  assert.equal(defaults.options.records, "text");
  assert.equal(defaults.options.rateLimit, undefined);
  assert.equal(defaults.threads, DEFAULT_THREADS);
  assert.equal(defaults.logLevel, "info");
  assert.deepEqual(defaults.token, {});
  const given = parse([
    "0",
    "--host=0.0.0.0",
    "--max-clients=7",
    "--idle-timeout=0",
    "--no-broadcast",
    "--rate=10",
    "--output=json",
    "--threads=4",
    "--token-file=t",
    "--tls-cert=c",
    "--tls-key=k",
    "--stats=1s",
    "--log-level=warn",
    "--log-format=json",
  ]);
  assert.equal(given.options.hostname, "0.0.0.0");
  assert.equal(given.options.maxClients, 7);
  assert.equal(given.options.idleTimeoutMs, 0);
  assert.equal(given.options.broadcast, false);
  assert.deepEqual(given.options.rateLimit, { ratePerSecond: 10, burst: 10 });
  assert.equal(given.options.records, "json");
  assert.equal(given.threads, 4);
  assert.deepEqual(given.token, { tokenFile: "t" });
  assert.deepEqual(given.tlsFiles, { cert: "c", key: "k" });
  assert.equal(given.statsMs, 1000);
  assert.equal(given.logLevel, "warning");
  assert.equal(given.logFormat, "json");
});

Deno.test("parseServerCommandLine() refuses mistakes with one line each", () => {
  const mistakes: [string[], RegExp, typeof RUNTIME?][] = [
    [["0", "--burst=3"], /^Cannot use --burst without --rate$/],
    [["0", "--tls-key=k"], /^Cannot serve TLS: give both --tls-cert and --tls-key$/],
    [["0", "--read-timeout=0"], /^Cannot use --read-timeout 0: it must be positive$/],
    [["0", "--output=xml"], /^Cannot use --output "xml": expected text or json$/],
    [["0", "--log-level=loud"], /^Cannot use --log-level "loud"/],
    [["0", "--threads=5"], /^Cannot use --threads 5: .*4 CPU cores.*give at most 4$/],
    [["0", "--threads=2"], /needs `deno run --unstable-net`/, { cores: 4, unstableNet: false }],
    [
      ["0", "--http=8081", "--threads=2"],
      /^Cannot use --http with --threads 2: .*give --threads 1$/,
    ],
    [["0", "--http=99999"], /^Cannot use port "99999"/],
    [
      ["0", "--cluster=nats://127.0.0.1:4222", "--threads=2"],
      /^Cannot use --cluster with --threads 2: .*give --threads 1$/,
    ],
    [["0", "--print-cluster"], /^Cannot use --print-cluster without --cluster$/],
    [["0", "--cluster-token=t"], /^Cannot use --cluster-token without --cluster$/],
    [["0", "--cluster=a", "--cluster-subject=a b"], /^Cannot use --cluster-subject "a b"/],
    [["0", "--history-max=5"], /^Cannot use --history-max without --history$/],
    [["0", "--history-age=1d"], /^Cannot use --history-age without --history$/],
    [["0", "--history-replay-max=5"], /^Cannot use --history-replay-max without --history$/],
    [["0", "--history=h.db", "--history-age=soon"], /^Cannot use --history-age "soon"/],
    [["0", "--history=h.db", "--history-max=-1"], /--history-max/],
    [["0", "--history="], /^Cannot use --history "": give a file's path$/],
    [
      ["0", "--history=h.db", "--threads=2"],
      /^Cannot use --history with --threads 2: .*give --threads 1$/,
    ],
    [["0", "--http-host=::1"], /^Cannot use --http-host without --http$/],
    [["0", "--http-allow-host=a"], /^Cannot use --http-allow-host without --http$/],
    [["0", "--http-allow-origin=http://a"], /^Cannot use --http-allow-origin without --http$/],
    [
      ["0", "--http=0", "--http-allow-origin=dash.example"],
      /^Cannot use --http-allow-origin "dash\.example": expected an origin such as http:\/\/name:8081$/,
    ],
    [
      ["0", "--http=0", "--http-allow-host=a.lan:80"],
      /^Cannot use --http-allow-host "a\.lan:80": expected a host name or address, without a port$/,
    ],
  ];
  for (const [args, message, runtime] of mistakes) {
    assert.throws(() => parse(args, runtime), (error: Error) => {
      assert.ok(error instanceof UsageError, args.join(" "));
      assert.match(error.message, message);
      return true;
    });
  }
  assert.equal(parse(["0", "--threads=4"]).threads, 4, "as many threads as cores is fine");
});

Deno.test("parseServerCommandLine() takes --http, its host (default --host) and repeated or comma lists", () => {
  assert.equal(parse(["0"]).http, undefined, "no HTTP side unless asked");
  assert.deepEqual(parse(["0", "--http", "8081"]).http, {
    port: 8081,
    hostname: DEFAULT_HOST,
    allowOrigins: [],
    allowHosts: [],
  });
  assert.equal(parse(["0", "--host=0.0.0.0", "--http=0"]).http?.hostname, "0.0.0.0");
  const given = parse([
    "0",
    "--host=0.0.0.0",
    "--http=0",
    "--http-host=::1",
    "--http-allow-origin=http://a.example:8081,https://b.example",
    "--http-allow-origin",
    "http://c.example",
    "--http-allow-host=a.lan, b.lan",
    "--http-allow-host=::1",
  ]);
  assert.deepEqual(given.http, {
    port: 0,
    hostname: "::1",
    allowOrigins: ["http://a.example:8081", "https://b.example", "http://c.example"],
    allowHosts: ["a.lan", "b.lan", "::1"],
  });
});

Deno.test("parseServerCommandLine() takes the cluster flags into line.cluster", () => {
  assert.equal(parse(["0"]).cluster, undefined);
  const line = parse([
    "0",
    "--cluster=nats://127.0.0.1:4222,nats://127.0.0.1:4223",
    "--cluster",
    "nats://127.0.0.1:4224",
    "--cluster-token=secret",
    "--cluster-subject=team.chat",
    "--cluster-buffer=65536",
    "--server-name=east",
    "--print-cluster",
  ]);
  assert.deepEqual(line.cluster, {
    servers: ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223", "nats://127.0.0.1:4224"],
    token: "secret",
    credsFile: undefined,
    tlsCaFile: undefined,
    subject: "team.chat",
    bufferBytes: 65536,
    serverName: "east",
    printCluster: true,
  });
  assert.match(serverUsage("1"), /\nCluster:\n {2}--cluster <url> +join the parrot servers/);
});

Deno.test("parseServerCommandLine() takes --history and its limits, with their defaults", () => {
  assert.equal(parse(["0"]).history, undefined);
  assert.deepEqual(parse(["0", "--history", "h.db"]).history, {
    path: "h.db",
    maxMessages: DEFAULT_HISTORY_MAX,
    maxAgeMs: DEFAULT_HISTORY_AGE_MS,
    replayMax: DEFAULT_HISTORY_REPLAY_MAX,
  });
  const line = parse([
    "0",
    "--history=h.db",
    "--history-max=0",
    "--history-age=7d",
    "--history-replay-max=50",
  ]);
  assert.deepEqual(line.history, {
    path: "h.db",
    maxMessages: 0,
    maxAgeMs: 7 * 24 * 3_600_000,
    replayMax: 50,
  });
  assert.match(serverUsage("1"), /^History:\n {2}--history <file> +store every message printed/m);
});
