/**
 * Integration tests of the server's security options as a user runs them: the token
 * from the environment, a file or the command line (and never in the output), the
 * warning for a non-loopback address, TLS, and SIGHUP.
 */

import assert from "node:assert/strict";
import {
  DENO,
  generateTestCert,
  listeningPort,
  RawClient,
  spawn,
  startServer,
} from "../lib/testing.ts";

const TOKEN = "tok-7f3a9c1e";

async function refusedWith(port: number, first: string): Promise<string> {
  const client = await RawClient.connect(port);
  await client.write(first);
  const text = await client.closedByServer();
  await client.close();
  return text;
}

Deno.test("server takes its token from PARROT_TOKEN, --token-file or --token and never prints it", async () => {
  const dir = await Deno.makeTempDir();
  const tokenFile = `${dir}/token`;
  await Deno.writeTextFile(tokenFile, `${TOKEN}\n`);
  const ways: [string, string[], Record<string, string>][] = [
    ["PARROT_TOKEN", [], { PARROT_TOKEN: TOKEN }],
    ["--token-file", ["--token-file", tokenFile], {}],
    ["--token", ["--token", TOKEN], {}],
  ];
  try {
    for (const [way, args, env] of ways) {
      const server = await startServer([...args, "--log-level", "debug"], { env });
      const ann = await RawClient.connect(server.port);
      await ann.write(`AUTH ${TOKEN}\nHELLO ann\nMSG 2\nhi\n`);
      await ann.ping();
      assert.equal(await refusedWith(server.port, `AUTH ${TOKEN}-wrong\n`), "ERR unauthorized\n");
      assert.equal(await refusedWith(server.port, "HELLO bob\n"), "ERR unauthorized\n");
      await ann.close();
      server.kill("SIGTERM");
      assert.equal((await server.status).code, 0);
      assert.equal(server.stdout.text(), "ann: hi\n", way);
      assert.match(server.stderr.text(), /clients must AUTH/, way);
      assert.match(server.stderr.text(), /Refused 127\.0\.0\.1:\d+: wrong token/, way);
      assert.ok(!server.stderr.text().includes(TOKEN), `${way}: the token is not in the log`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server refuses to start when PARROT_TOKEN may not be read, and the flag it suggests works", async () => {
  const runArgs = ["run", "--allow-net=127.0.0.1", "--allow-read", "server.ts", "0"];
  const refused = spawn(DENO, runArgs, { env: { PARROT_TOKEN: TOKEN } });
  const status = await refused.status;
  const stderr = refused.stderr.text();
  assert.equal(status.code, 2, stderr);
  assert.doesNotMatch(stderr, /listening|without a token/);
  const lines = stderr.trim().split("\n");
  assert.match(
    lines[0],
    /^error: Cannot tell whether PARROT_TOKEN is set: no permission to read it/,
  );
  // Run what the message says to add, as written.
  const flag = lines[0].match(/add (--allow-env=\S+) to `deno run`/)?.[1];
  assert.ok(flag, lines[0]);
  const server = spawn(DENO, [runArgs[0], flag, ...runArgs.slice(1)], {
    env: { PARROT_TOKEN: TOKEN },
  });
  const port = await listeningPort(server);
  assert.match(server.stderr.text(), /clients must AUTH/);
  assert.equal(await refusedWith(port, "HELLO mallory\n"), "ERR unauthorized\n");
  server.child.kill("SIGTERM");
  assert.equal((await server.status).code, 0);
});

Deno.test("server refuses --token with --token-file without showing the token", async () => {
  const server = await startServer(["--token", TOKEN, "--token-file", "/nonexistent"]).catch(
    (error: Error) => error,
  );
  assert.ok(server instanceof Error, "the server refused both options at once");
  assert.match(server.message, /Cannot use both --token and --token-file/);
  assert.ok(!server.message.includes(TOKEN));
});

Deno.test("server on a non-loopback address without a token warns, and with one does not", async () => {
  const envs: Record<string, string>[] = [{}, { PARROT_TOKEN: TOKEN }];
  for (const env of envs) {
    // Binding 0.0.0.0 needs that permission too: what the README tells users to run.
    const server = spawn(DENO, [
      "run",
      "--unstable-net",
      "--allow-net=0.0.0.0,127.0.0.1",
      "--allow-read",
      "--allow-env=PARROT_TOKEN",
      "server.ts",
      "0",
      "--host",
      "0.0.0.0",
    ], { env });
    await listeningPort(server);
    server.child.kill("SIGINT");
    assert.equal((await server.status).code, 0);
    const warned = /Listening on 0\.0\.0\.0 without a token/.test(server.stderr.text());
    assert.equal(warned, !("PARROT_TOKEN" in env), server.stderr.text());
  }
});

Deno.test("server with --tls-cert and --tls-key relays over TLS and refuses plain TCP", async () => {
  const cert = await generateTestCert();
  const server = await startServer(["--tls-cert", cert.certFile, "--tls-key", cert.keyFile]);
  try {
    assert.match(server.stderr.text(), /listening on 127\.0\.0\.1:\d+ \(TLS\)/);
    const caCerts = [await Deno.readTextFile(cert.certFile)];
    const bob = await RawClient.connectTls(server.port, caCerts);
    await bob.write("HELLO bob\n");
    await bob.ping();
    const ann = await RawClient.connectTls(server.port, caCerts);
    await ann.write("HELLO ann\nMSG 5\nhello\n");
    await ann.ping();
    await bob.ping();
    assert.match(bob.received.text(), /MSG ann 5\nhello\n/);

    const plain = await RawClient.connect(server.port);
    await plain.write("HELLO mallory\nMSG 2\nhi\nPING\n");
    assert.doesNotMatch(await plain.closedByServer(), /PONG/);
    await plain.close();
    await ann.close();
    await bob.close();
    server.kill("SIGTERM");
    assert.equal((await server.status).code, 0);
    assert.equal(server.stdout.text(), "ann: hello\n");
  } finally {
    try {
      server.kill("SIGKILL");
    } catch {
      // Exited already.
    }
    await server.status;
    await Deno.remove(cert.dir, { recursive: true });
  }
});

Deno.test("server logs SIGHUP and keeps serving", async () => {
  const server = await startServer();
  const ann = await RawClient.connect(server.port);
  await ann.write("HELLO ann\nMSG 3\none\n");
  await ann.ping();
  server.kill("SIGHUP");
  await server.stderr.waitForText(/received SIGHUP: still serving 1 clients, 1 messages/);
  await ann.write("MSG 3\ntwo\n");
  await ann.ping();
  await ann.close();
  server.kill("SIGTERM");
  assert.equal((await server.status).code, 0);
  assert.equal(server.stdout.text(), "ann: one\nann: two\n");
});
