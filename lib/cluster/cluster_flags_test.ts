import assert from "node:assert/strict";
import { UsageError } from "../cli/args.ts";
import { DEFAULT_CLUSTER_BUFFER_BYTES, DEFAULT_CLUSTER_SUBJECT } from "../defaults.ts";
import { CLUSTER_FLAGS, isValidServerName, parseClusterFlags } from "./cluster_flags.ts";

const noEnv = () => undefined;

Deno.test("parseClusterFlags() is undefined without --cluster, and refuses its flags alone", () => {
  assert.equal(parseClusterFlags({}, noEnv), undefined);
  for (const flag of CLUSTER_FLAGS.filter((f) => f.name !== "cluster")) {
    assert.throws(
      () => parseClusterFlags({ [flag.name]: flag.value ? "x" : "true" }, noEnv),
      (e) => e instanceof UsageError && e.message === `Cannot use --${flag.name} without --cluster`,
    );
  }
});

Deno.test("parseClusterFlags() gives the defaults and takes a comma list", () => {
  const line = parseClusterFlags({ cluster: "nats://a:4222, nats://b:4222" }, noEnv);
  assert.deepEqual(line, {
    servers: ["nats://a:4222", "nats://b:4222"],
    token: undefined,
    credsFile: undefined,
    tlsCaFile: undefined,
    subject: DEFAULT_CLUSTER_SUBJECT,
    bufferBytes: DEFAULT_CLUSTER_BUFFER_BYTES,
    serverName: undefined,
    printCluster: false,
  });
});

Deno.test("parseClusterFlags() takes every flag", () => {
  const line = parseClusterFlags({
    cluster: "nats://127.0.0.1:4222",
    "cluster-token": "t",
    "cluster-tls": "ca.pem",
    "cluster-subject": "team.parrot",
    "cluster-buffer": "65536",
    "server-name": "east-1",
    "print-cluster": "true",
  }, noEnv);
  assert.equal(line?.token, "t");
  assert.equal(line?.tlsCaFile, "ca.pem");
  assert.equal(line?.subject, "team.parrot");
  assert.equal(line?.bufferBytes, 65536);
  assert.equal(line?.serverName, "east-1");
  assert.equal(line?.printCluster, true);
});

Deno.test("parseClusterFlags() takes PARROT_CLUSTER_TOKEN only when no credentials are given", () => {
  const env = () => "from-env";
  assert.equal(parseClusterFlags({ cluster: "127.0.0.1" }, env)?.token, "from-env");
  assert.equal(
    parseClusterFlags({ cluster: "127.0.0.1", "cluster-token": "flag" }, env)?.token,
    "flag",
  );
  assert.equal(parseClusterFlags({ cluster: "nats://u:p@127.0.0.1" }, env)?.token, undefined);
  assert.equal(
    parseClusterFlags({ cluster: "127.0.0.1", "cluster-creds": "x.creds" }, env)?.token,
    undefined,
  );
  assert.equal(parseClusterFlags({ cluster: "127.0.0.1" }, () => "")?.token, undefined);
});

Deno.test("parseClusterFlags() refuses bad values in one line", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ cluster: " , " }, /Cannot use --cluster "": give a NATS URL/],
    [{ cluster: "x", "cluster-subject": "a..b" }, /Cannot use --cluster-subject "a\.\.b"/],
    [{ cluster: "x", "cluster-subject": "a.*" }, /Cannot use --cluster-subject/],
    [
      { cluster: "x", "cluster-buffer": "10" },
      /--cluster-buffer "10": expected a whole number of at least 1024/,
    ],
    [{ cluster: "x", "server-name": "two words" }, /Cannot use --server-name "two words"/],
    [{ cluster: "x", "cluster-token": "" }, /the token is empty/],
  ];
  for (const [flags, message] of cases) {
    assert.throws(
      () => parseClusterFlags(flags, noEnv),
      (e) => e instanceof UsageError && message.test(e.message),
    );
  }
});

Deno.test("parseClusterFlags() fails closed when it may not read PARROT_CLUSTER_TOKEN", async () => {
  const output = await new Deno.Command("deno", {
    args: [
      "run",
      "--no-prompt",
      new URL("./testdata/token_env_child.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(
    new TextDecoder().decode(output.stdout).trim(),
    "Cannot tell whether PARROT_CLUSTER_TOKEN is set: run with --allow-env=PARROT_CLUSTER_TOKEN",
  );
});

Deno.test("isValidServerName() takes host:port and names, refuses spaces, controls and long ones", () => {
  assert.ok(isValidServerName("127.0.0.1:7000"));
  assert.ok(isValidServerName("east-1"));
  assert.ok(isValidServerName("é".repeat(127)));
  assert.ok(!isValidServerName("é".repeat(128)));
  assert.ok(!isValidServerName(""));
  assert.ok(!isValidServerName("a\tb"));
  assert.ok(!isValidServerName("a\x1bb"));
});
