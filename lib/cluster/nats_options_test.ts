import assert from "node:assert/strict";
import { ClusterConfigError, natsConnectionOptions } from "./nats_options.ts";

Deno.test("natsConnectionOptions() takes a comma list and bare host:port, never gives up", () => {
  const options = natsConnectionOptions({
    servers: "nats://127.0.0.1:4222, 127.0.0.1:4223,nats://example.test",
  });
  assert.deepEqual(options.servers, ["127.0.0.1:4222", "127.0.0.1:4223", "example.test:4222"]);
  assert.equal(options.maxReconnectAttempts, -1);
  assert.ok((options.reconnectTimeWait ?? Infinity) <= 1_000);
  assert.ok((options.reconnectJitter ?? 0) > 0);
  assert.equal(options.noEcho, true);
  assert.equal(options.user, undefined);
  assert.equal(options.token, undefined);
  assert.equal(options.tls, undefined);
});

Deno.test("natsConnectionOptions() moves URL credentials out of the URL", () => {
  const userPass = natsConnectionOptions({
    servers: ["nats://alice:s%40cret@127.0.0.1:4222", "nats://alice:s%40cret@127.0.0.1:4223"],
  });
  assert.equal(userPass.user, "alice");
  assert.equal(userPass.pass, "s@cret");
  assert.deepEqual(userPass.servers, ["127.0.0.1:4222", "127.0.0.1:4223"]);
  const token = natsConnectionOptions({ servers: "nats://t0ken@127.0.0.1:4222" });
  assert.equal(token.token, "t0ken");
  assert.equal(token.user, undefined);
});

Deno.test("natsConnectionOptions() takes the token flag", () => {
  assert.equal(natsConnectionOptions({ servers: "127.0.0.1", token: "abc" }).token, "abc");
  assert.throws(
    () => natsConnectionOptions({ servers: "127.0.0.1", token: "" }),
    /The NATS token is empty/,
  );
});

Deno.test("natsConnectionOptions() refuses credentials given two ways or differing per URL", () => {
  assert.throws(
    () => natsConnectionOptions({ servers: "nats://a:b@127.0.0.1", token: "t" }),
    (e) => e instanceof ClusterConfigError && /one way/.test(e.message),
  );
  assert.throws(
    () => natsConnectionOptions({ servers: "nats://a:b@127.0.0.1,nats://a:c@127.0.0.2" }),
    /different credentials/,
  );
});

Deno.test("natsConnectionOptions() refuses a bad URL, a bad scheme and an empty list", () => {
  assert.throws(
    () => natsConnectionOptions({ servers: "nats://[bad" }),
    /Cannot parse --cluster URL "nats:\/\/\[bad": not a URL/,
  );
  assert.throws(
    () => natsConnectionOptions({ servers: "http://127.0.0.1:4222" }),
    /scheme must be nats:\/\/ or tls:\/\//,
  );
  assert.throws(() => natsConnectionOptions({ servers: " , " }), /at least one NATS URL/);
});

Deno.test("natsConnectionOptions() reads the TLS CA file and fails closed on a bad one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const ca = `${dir}/ca.pem`;
    await Deno.writeTextFile(ca, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    const options = natsConnectionOptions({ servers: "127.0.0.1", tlsCaFile: ca });
    assert.match(String(options.tls?.ca), /BEGIN CERTIFICATE/);
    assert.throws(
      () => natsConnectionOptions({ servers: "127.0.0.1", tlsCaFile: `${dir}/missing.pem` }),
      /Cannot read --cluster-tls file .*missing\.pem/,
    );
    const notPem = `${dir}/not.pem`;
    await Deno.writeTextFile(notPem, "hello");
    assert.throws(
      () => natsConnectionOptions({ servers: "127.0.0.1", tlsCaFile: notPem }),
      /no PEM certificate in it/,
    );
    assert.deepEqual(natsConnectionOptions({ servers: "tls://127.0.0.1" }).tls, {});
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("natsConnectionOptions() fails closed on a missing or unparsable creds file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.throws(
      () => natsConnectionOptions({ servers: "127.0.0.1", credsFile: `${dir}/missing.creds` }),
      /Cannot read --cluster-creds file/,
    );
    const bad = `${dir}/bad.creds`;
    await Deno.writeTextFile(bad, "not a creds file");
    assert.throws(
      () => natsConnectionOptions({ servers: "127.0.0.1", credsFile: bad }),
      /Cannot use --cluster-creds file .*bad\.creds: /,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
