/**
 * The README's "History" commands work as written: a server with `--history`, a client
 * that sends, `HISTORY 10` through `nc`, and `deno task history` with its filters. The
 * commands are taken from the README itself; only the port (0, then the one the server
 * took) and the file's name (a unique one in the project directory, removed afterwards)
 * are put in.
 */

import assert from "node:assert/strict";
import { listeningPort, ROOT, spawn } from "../lib/testing.ts";

/** The command lines of the first `sh` block of the README's "History" section. */
async function historyCommands(): Promise<string[]> {
  const readme = await Deno.readTextFile(`${ROOT}README.md`);
  const start = readme.indexOf("\n## History\n");
  assert.ok(start >= 0, 'the README has no "## History" section');
  const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
  const block = section.match(/^```sh\n([\s\S]*?)^```$/m);
  assert.ok(block, "the History section has a sh block");
  return block[1].split("\n")
    .map((line) => line.replace(/\s+#.*$/, "").trim())
    .filter((line) => line.length > 0);
}

Deno.test("README History: the server stores, HISTORY replays, deno task history prints", async () => {
  const commands = await historyCommands();
  assert.equal(commands.length, 4, commands.join("\n"));
  const [serverLine, clientLine, ncLine, historyLine] = commands;
  assert.match(serverLine, /^deno task server 8080 --history parrot\.db$/);
  assert.match(historyLine, /^deno task history parrot\.db /);
  const file = `readme-history-test-${crypto.randomUUID().slice(0, 8)}.db`;
  const put = (line: string, port: number) =>
    line.replaceAll("8080", String(port)).replaceAll("parrot.db", file);
  const words = (line: string) => line.split(/\s+/);

  const [, ...serverArgs] = words(put(serverLine, 0));
  const server = spawn("deno", serverArgs);
  try {
    const port = await listeningPort(server);
    const [, ...clientArgs] = words(put(clientLine, port));
    const client = spawn("deno", clientArgs);
    assert.equal((await client.status).code, 0, client.stderr.text());

    const nc = spawn("sh", ["-c", put(ncLine, port)]);
    assert.equal((await nc.status).code, 0, nc.stderr.text());
    assert.equal(nc.stdout.text(), "MSG alice 5\nhello\n".repeat(3));

    const [, ...historyArgs] = words(put(historyLine, port));
    const history = spawn("deno", historyArgs);
    assert.equal((await history.status).code, 0, history.stderr.text());
    assert.equal(history.stdout.text(), "alice: hello\n".repeat(3));

    server.child.kill("SIGINT");
    assert.equal((await server.status).code, 0, server.stderr.text());
    assert.match(server.stderr.text(), /History stopped: 3 messages stored/);
  } finally {
    try {
      server.child.kill("SIGKILL");
    } catch {
      // It has exited already.
    }
    await server.status;
    for (const suffix of ["", "-wal", "-shm"]) {
      await Deno.remove(`${ROOT}${file}${suffix}`).catch(() => {});
    }
  }
});
