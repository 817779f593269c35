/**
 * Integration tests of `deno task compile` (scripts/compile.ts).
 *
 * Online the task builds the single binaries, and the test runs them: the server
 * binary on a free port and a round trip through the client binary. Offline `deno
 * compile` cannot download denort; the test is not skipped then (CI counts skips as
 * failures) but checks that the task failed with exactly one clear line naming denort
 * and DENORT_BIN, and built nothing. Any other failure fails the test.
 *
 * @module
 */

import assert from "node:assert/strict";
import { HistoryStore } from "../lib/history/history_store.ts";
import { DENO, listeningPort, ROOT, runDeno, spawn } from "../lib/testing.ts";

const SERVER_BINARY = `${ROOT}dist/parrot-server`;
const CLIENT_BINARY = `${ROOT}dist/parrot-client`;

/** The binaries are run through `sh`: the test task may run sh but not dist/ files. */
function runBinary(path: string, args: string[]) {
  return spawn("sh", ["-c", 'exec "$0" "$@"', path, ...args]);
}

/** When `path` was last modified, or undefined if it does not exist. */
async function modifiedAt(path: string): Promise<number | undefined> {
  try {
    return (await Deno.stat(path)).mtime?.getTime();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

async function assertBinariesWork(compileOutput: string): Promise<void> {
  assert.match(compileOutput, /^built dist\/parrot-server from server\.ts/m);
  assert.match(compileOutput, /^built dist\/parrot-client from client\.ts/m);

  const help = runBinary(CLIENT_BINARY, ["--help"]);
  assert.equal((await help.status).code, 0, help.stderr.text());
  assert.match(help.stdout.text(), /--interval <time>/);

  // --history runs its Worker, which must be compiled in.
  const history = "dist/compile_test_history.db";
  const server = runBinary(SERVER_BINARY, ["0", "--history", history]);
  try {
    const port = await listeningPort(server);
    const client = runBinary(CLIENT_BINARY, [String(port), "--count", "1", "--message", "hi"]);
    const clientStatus = await client.status;
    assert.equal(clientStatus.code, 0, client.stdout.text() + client.stderr.text());
    await server.stdout.waitForText(/^\d+: hi$/m);
    server.child.kill("SIGINT");
    assert.equal((await server.status).code, 0, server.stderr.text());
    const store = HistoryStore.open(`${ROOT}${history}`, { readOnly: true });
    assert.deepEqual(store.last(10).map((r) => new TextDecoder().decode(r.payload)), ["hi"]);
    store.close();
  } finally {
    for (const suffix of ["", "-wal", "-shm"]) {
      await Deno.remove(`${ROOT}${history}${suffix}`).catch(() => {});
    }
    try {
      server.child.kill("SIGTERM");
    } catch {
      // It has exited already.
    }
    await server.status;
  }

  // The binaries carry the tasks' permissions: any --host works (with a token, so nobody
  // else can use the server while it listens on every interface).
  const everywhere = runBinary(SERVER_BINARY, ["0", "--host", "0.0.0.0", "--token", TOKEN]);
  try {
    const port = await listeningPort(everywhere);
    assert.match(everywhere.stderr.text(), /listening on 0\.0\.0\.0:/);
    const client = runBinary(CLIENT_BINARY, [
      String(port),
      "--host",
      "localhost",
      "--token",
      TOKEN,
      "--count",
      "1",
      "--message",
      "far",
    ]);
    assert.equal((await client.status).code, 0, client.stdout.text() + client.stderr.text());
    await everywhere.stdout.waitForText(/^\d+: far$/m);
  } finally {
    everywhere.child.kill("SIGINT");
    await everywhere.status;
  }
}

const TOKEN = "compile-test-token-0123456789";

Deno.test("compile builds working binaries, or says in one line that denort is missing", async () => {
  const startedAt = Date.now();
  const result = await runDeno(["task", "-q", "compile"]);
  if (result.code === 0) {
    await assertBinariesWork(result.stdout);
    return;
  }

  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${result.stderr}`);
  assert.match(
    lines[0],
    /^error: Cannot build single binaries: deno compile could not download denort \(offline\?\); set DENORT_BIN to a denort binary of Deno \d+\.\d+\.\d+\S*$/,
    "the only accepted failure is a missing denort",
  );
  assert.equal(result.stdout, "");
  for (const binary of [SERVER_BINARY, CLIENT_BINARY]) {
    const modified = await modifiedAt(binary);
    assert.ok(modified === undefined || modified < startedAt, `${binary} was written`);
  }
  console.log(`compile: binaries not run: ${lines[0]}`);
});

Deno.test("compile names a DENORT_BIN that does not exist in one line", async () => {
  const missing = `${await Deno.makeTempDir()}/no-denort-here`;
  try {
    const output = await new Deno.Command(DENO, {
      args: ["task", "-q", "compile"],
      cwd: ROOT,
      stdin: "null",
      env: { NO_COLOR: "1", DENORT_BIN: missing },
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 1, stderr);
    const lines = stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
    const expected = `error: Cannot build server.ts: Could not find denort at '${missing}': `;
    assert.ok(lines[0].startsWith(expected), `expected "${expected}...", got "${lines[0]}"`);
  } finally {
    await Deno.remove(missing.slice(0, missing.lastIndexOf("/")), { recursive: true });
  }
});

Deno.test("compile fails in one line and removes a binary that does not answer as parrot", async () => {
  // The deno binary given as DENORT_BIN builds a copy of deno, which answers as deno.
  const startedAt = Date.now();
  const output = await new Deno.Command(DENO, {
    args: ["task", "-q", "compile"],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1", DENORT_BIN: Deno.execPath() },
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 1, stdout + stderr);
  assert.equal(stdout, "", "a binary was said to be built");
  const lines = stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`);
  assert.match(
    lines[0],
    /^error: Cannot build dist\/parrot-server: the built file answers --version with "deno \d+\.\d+\.\d+[^"]*", not "parrot \d+\.\d+\.\d+" \(is DENORT_BIN a denort binary\? .*\); it was removed$/,
  );
  for (const binary of [SERVER_BINARY, CLIENT_BINARY]) {
    const modified = await modifiedAt(binary);
    assert.ok(modified === undefined || modified < startedAt, `${binary} was left behind`);
  }
});
