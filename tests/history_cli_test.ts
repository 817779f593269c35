/**
 * Integration tests of `deno task history` (scripts/history.ts), run exactly as the
 * task runs it: what it prints for a history file, its filters, and its errors.
 */

import assert from "node:assert/strict";
import { type HistoryBatch, HistoryStore } from "../lib/history/history_store.ts";
import { runDeno } from "../lib/testing.ts";

const encoder = new TextEncoder();
const ROOT = new URL("../", import.meta.url).pathname;

/** Runs `deno task -q history <args>` in the repository; stdout as bytes. */
async function history(args: string[]) {
  const output = await new Deno.Command("deno", {
    args: ["task", "-q", "history", ...args],
    cwd: ROOT,
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: output.code,
    stdout: output.stdout,
    text: new TextDecoder().decode(output.stdout),
    stderr: new TextDecoder().decode(output.stderr),
  };
}

function batch(firstId: number, messages: [string, Uint8Array, number][]): HistoryBatch {
  const names = [...new Set(messages.map(([name]) => name))];
  const bytes = new Uint8Array(messages.reduce((n, [, p]) => n + p.length, 0));
  const ends = new Uint32Array(messages.length);
  let end = 0;
  messages.forEach(([, payload], i) => {
    bytes.set(payload, end);
    end += payload.length;
    ends[i] = end;
  });
  return {
    firstId,
    count: messages.length,
    times: Float64Array.from(messages.map(([, , time]) => time)),
    senders: Uint16Array.from(messages.map(([name]) => names.indexOf(name))),
    names,
    ends,
    bytes,
  };
}

const BINARY = Uint8Array.of(0x00, 0x0a, 0xff, 0x41);

/** A history of four messages: two hours ago, and now. */
function makeHistory(dir: string): { path: string; store: HistoryStore; now: number } {
  const path = `${dir}/history.db`;
  const store = HistoryStore.open(path);
  const now = Date.now();
  store.append(batch(1, [
    ["alice", encoder.encode("old news"), now - 2 * 3_600_000],
    ["bob", encoder.encode("hi"), now - 1_000],
    ["alice", BINARY, now - 500],
    ["bob", encoder.encode("bye"), now],
  ]));
  return { path, store, now };
}

Deno.test("deno task history prints the stored messages as the server printed them", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "parrot-history-cli-" });
  const { path, store } = makeHistory(dir);
  store.close();
  const { code, stdout, stderr } = await history([path]);
  assert.equal(code, 0, stderr);
  // Text records: the payload's bytes exactly as received (not a terminal: no escaping).
  const expected = new Uint8Array([
    ...encoder.encode("alice: old news\nbob: hi\nalice: "),
    ...BINARY,
    ...encoder.encode("\nbob: bye\n"),
  ]);
  assert.deepEqual(stdout, expected);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deno task history --since --from --limit select, --output json tells the time", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "parrot-history-cli-" });
  const { path, store, now } = makeHistory(dir);
  store.close();
  assert.equal(
    (await history([path, "--since", "1h"])).text,
    "bob: hi\nalice: \0\n\ufffdA\nbob: bye\n", // Decoded here: 0xff shows as U+FFFD.
  );
  assert.equal((await history([path, "--from", "bob"])).text, "bob: hi\nbob: bye\n");
  assert.equal(
    (await history([path, "--from", "alice", "--limit", "1"])).text,
    "alice: \0\n\ufffdA\n",
  );
  assert.equal((await history([path, "--limit", "0"])).text, "");
  const json = await history([path, "--since", "1h", "--output", "json"]);
  assert.equal(json.code, 0, json.stderr);
  const records = json.text.trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(records, [
    {
      time: new Date(now - 1_000).toISOString(),
      sender: "bob",
      size: 2,
      encoding: "utf-8",
      payload: "hi",
    },
    {
      time: new Date(now - 500).toISOString(),
      sender: "alice",
      size: 4,
      encoding: "base64",
      payload: BINARY.toBase64(),
    },
    {
      time: new Date(now).toISOString(),
      sender: "bob",
      size: 3,
      encoding: "utf-8",
      payload: "bye",
    },
  ]);
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deno task history reads a file a server is still writing", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "parrot-history-cli-" });
  const { path, store, now } = makeHistory(dir);
  // Still open, in WAL mode: the rows are in the log, not yet in the file itself.
  store.append(batch(5, [["carol", encoder.encode("still here"), now]]));
  const { code, text, stderr } = await history([path, "--limit", "2"]);
  assert.equal(code, 0, stderr);
  assert.equal(text, "bob: bye\ncarol: still here\n");
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deno task history says clearly when it cannot read the file, exit 1", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "parrot-history-cli-" });
  const cases: [string, string][] = [
    [`${dir}/missing.db`, "no such file"],
    [dir, "it is a directory"],
  ];
  Deno.writeTextFileSync(`${dir}/notes.txt`, "alice: hello\n".repeat(100));
  cases.push([`${dir}/notes.txt`, "file is not a database"]);
  for (const [path, why] of cases) {
    const { code, text, stderr } = await history([path]);
    assert.equal(code, 1, path);
    assert.equal(text, "");
    assert.equal(stderr, `error: Cannot open history file ${JSON.stringify(path)}: ${why}\n`);
  }
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("deno task history refuses usage mistakes with one line, exit 2", async () => {
  const mistakes: [string[], string][] = [
    [[], "Missing the history file: give its path"],
    [
      ["h.db", "--since", "5x"],
      'Cannot use --since "5x": expected a number with an optional ms, s, m, h or d unit',
    ],
    [["h.db", "--limit", "-1"], 'Cannot use --limit "-1": expected a whole number of at least 0'],
    [["h.db", "--output", "xml"], 'Cannot use --output "xml": expected text or json'],
    [["h.db", "other.db"], 'Unexpected argument "other.db"'],
  ];
  for (const [args, message] of mistakes) {
    const { code, stderr } = await history(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(stderr, `error: ${message}\nRun \`deno task history --help\` for usage.\n`);
  }
  const help = await runDeno(["task", "-q", "history", "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: deno task history <file> \[options\]$/m);
});
