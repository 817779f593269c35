/**
 * Integration tests of what the server writes on stdout, as a user who pipes it meets
 * it: a pipe that closes stops the server with exit code 1 (no PONG for messages not
 * printed), `--output json` cannot be forged, text to a pipe keeps the exact bytes,
 * and the log lines around them say what happened.
 */

import assert from "node:assert/strict";
import {
  Collected,
  DENO,
  hasCommand,
  listeningPort,
  msg,
  RawClient,
  ROOT,
  SERVER_ENV,
  SERVER_RUN_ARGS,
  spawn,
  startServer,
  waitFor,
} from "../lib/testing.ts";

const decoder = new TextDecoder();

for (const threads of [1, 2]) {
  Deno.test(`server on ${threads} thread(s) whose stdout pipe closes answers no more PONG, tells clients ERR output failed, exits 1`, async () => {
    const child = new Deno.Command(DENO, {
      args: [...SERVER_RUN_ARGS, "0", "--threads", String(threads)],
      cwd: ROOT,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...SERVER_ENV },
    }).spawn();
    const stderr = new Collected(child.stderr);
    const status = Promise.all([child.status, stderr.done]).then(([s]) => s);
    const port = await listeningPort({ child, stdout: stderr, stderr, status });
    const ann = await RawClient.connect(port);
    await ann.write("HELLO ann\nMSG 5\nfirst\n");
    await ann.ping();
    // Read the first record, then close the pipe, as `| head -n 1` does.
    const reader = child.stdout.getReader();
    let printed = "";
    while (!printed.includes("\n")) {
      const { value } = await reader.read();
      printed += decoder.decode(value);
    }
    assert.equal(printed, "ann: first\n");
    await reader.cancel();

    await ann.write("MSG 6\nsecond\nPING\n");
    const received = await ann.closedByServer();
    await ann.close();
    assert.equal(received, "PONG\nERR output failed\n", "no PONG for the message not printed");
    const { code } = await status;
    const log = stderr.text();
    assert.equal(code, 1, log);
    assert.match(log, /Cannot write messages to stdout: .*telling every client ERR output failed/);
    assert.match(log, /1 of 2 messages were not written to stdout/);
    const last = log.trim().split("\n").at(-1)!;
    assert.match(
      last,
      /^error: Cannot write the messages to stdout \(.+\): 1 of 2 were not written$/,
    );
  });
}

Deno.test("server --output json writes one object per line that a payload cannot forge", async () => {
  const server = await startServer(["--output", "json"]);
  const mallory = await RawClient.connect(server.port);
  const binary = Uint8Array.of(0xff, 0x00, 0x1b, 0x0a);
  await mallory.write("HELLO mallory\n");
  await mallory.write(msg("hi\nalice: I owe you"));
  await mallory.write(msg(binary));
  await mallory.ping();
  await mallory.close();
  server.kill("SIGTERM");
  assert.equal((await server.status).code, 0);
  const lines = server.stdout.text().split("\n");
  assert.equal(lines.pop(), "", "every record ends with a line feed");
  assert.equal(lines.length, 2, server.stdout.text());
  const [text, bytes] = lines.map((line) => JSON.parse(line));
  assert.equal(text.sender, "mallory");
  assert.equal(text.encoding, "utf-8");
  assert.equal(text.payload, "hi\nalice: I owe you");
  assert.equal(text.size, 19);
  assert.ok(!Number.isNaN(Date.parse(text.time)), text.time);
  assert.equal(bytes.encoding, "base64");
  assert.deepEqual(Uint8Array.fromBase64(bytes.payload), binary);
  assert.equal(bytes.size, binary.length);
});

Deno.test("server --output text to a pipe keeps the payload's bytes exact, control characters too", async () => {
  const server = await startServer();
  const ann = await RawClient.connect(server.port);
  const payload = Uint8Array.of(0x1b, 0x5b, 0x32, 0x4a, 0x5c, 0xff, 0x0a, 0x07);
  await ann.write("HELLO ann\n");
  await ann.write(msg(payload));
  await ann.ping();
  await ann.close();
  server.kill("SIGTERM");
  assert.equal((await server.status).code, 0);
  const prefix = new TextEncoder().encode("ann: ");
  assert.deepEqual(server.stdout.bytes(), Uint8Array.of(...prefix, ...payload, 0x0a));
});

Deno.test("server logs real values in JSON, names a client by its name and address, says 1 message", async () => {
  const server = await startServer(["--log-format", "json", "--read-timeout", "100ms"]);
  const ann = await RawClient.connect(server.port);
  await ann.write("HELLO ann\nMSG 2\nhi\nMSG 50\nunfinished");
  assert.equal(await ann.closedByServer(), "ERR read timeout\n");
  await ann.close();
  await waitFor(
    () => /Closing ann \(127\.0\.0\.1:\d+\): read timeout/.test(server.stderr.text()),
    "the eviction logged",
  );
  server.kill("SIGTERM");
  assert.equal((await server.status).code, 0);
  const records = server.stderr.text().trim().split("\n").map((line) => JSON.parse(line));
  const listening = records[0];
  assert.match(listening.message, /^parrot \S+ listening on 127\.0\.0\.1:\d+$/);
  assert.equal(listening.threads, 1);
  assert.equal(listening.tls, false);
  assert.equal(listening.auth, false);
  for (const record of records) {
    for (const [key, value] of Object.entries(record)) {
      assert.notEqual(value, "", `${key} is empty in ${JSON.stringify(record)}`);
    }
  }
  const eviction = records.find((record) => /Closing ann/.test(record.message));
  assert.equal(eviction.level, "info");
  assert.match(records.at(-1).message, /^Server stopped: 1 message received in all$/);
});

Deno.test({
  name: "server on a terminal shows control characters of payloads escaped",
  ignore: !(await hasCommand("script")),
  async fn() {
    // `script` gives the server a terminal (a pty) as stdout and stderr.
    const command = [DENO, ...SERVER_RUN_ARGS, "0"].join(" ");
    const running = spawn("sh", ["-c", 'exec script -qec "$1" /dev/null', "sh", command], {
      env: SERVER_ENV,
    });
    const port = await listeningPort({ ...running, stderr: running.stdout });
    const ann = await RawClient.connect(port);
    await ann.write("HELLO ann\n");
    await ann.write(msg("\x1b[2J\x1b]0;pwned\x07\nbob: hi"));
    await ann.ping();
    await ann.close();
    await running.stdout.waitForText("ann: \\x1b[2J");
    running.child.kill("SIGTERM");
    await running.status;
    const shown = running.stdout.text();
    assert.ok(shown.includes("ann: \\x1b[2J\\x1b]0;pwned\\x07\\nbob: hi\r\n"), shown);
    assert.ok(!shown.includes("\x1b[2J"), "the ESC sequence reached the terminal");
  },
});
