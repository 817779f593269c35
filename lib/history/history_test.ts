import assert from "node:assert/strict";
import { openHistory } from "./history.ts";
import { HistoryStore } from "./history_store.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CHILD = new URL("./testdata/record_until_killed.ts", import.meta.url).pathname;

Deno.test("openHistory() stores through its thread and replays", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "parrot-history-" });
  const path = `${dir}/history.db`;
  const history = await openHistory(path);
  for (let i = 0; i < 10_000; i++) history.record(`c${i % 5}`, encoder.encode(`m${i}`));
  assert.equal(history.last(2).map((r) => decoder.decode(r.payload)).join(), "m9998,m9999");
  await history.close();
  assert.deepEqual(history.stats, { stored: 10_000, skipped: 0, pending: 0, lastError: null });
  const store = HistoryStore.open(path, { readOnly: true });
  const all = [...store.query()];
  assert.equal(all.length, 10_000);
  all.forEach((r, i) => {
    assert.equal(r.id, i + 1);
    assert.equal(r.sender, `c${i % 5}`);
    assert.equal(decoder.decode(r.payload), `m${i}`);
  });
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("openHistory() applies the retention to what the file holds", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "parrot-history-" });
  const path = `${dir}/history.db`;
  const first = await openHistory(path, { maxMessages: 0 });
  // Five batches of ten: the retention deletes whole batches.
  for (let i = 0; i < 50; i++) {
    first.record("a", encoder.encode(`m${i}`), Date.now());
    if (i % 10 === 9) await first.flush();
  }
  await first.close();
  const second = await openHistory(path, { maxMessages: 10 });
  second.record("a", encoder.encode("new"));
  await second.close();
  const store = HistoryStore.open(path, { readOnly: true });
  // Pruned at open (the four oldest batches: 50 -> 10), then one more.
  assert.deepEqual([...store.query()].map((r) => r.id), [
    41,
    42,
    43,
    44,
    45,
    46,
    47,
    48,
    49,
    50,
    51,
  ]);
  store.close();
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("openHistory() refuses a file that is not a history with one clear line", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "parrot-history-" });
  const path = `${dir}/notes.txt`;
  Deno.writeTextFileSync(path, "not a database\n".repeat(100));
  await assert.rejects(openHistory(path), {
    name: "HistoryOpenError",
    message: `Cannot open history file ${JSON.stringify(path)}: file is not a database`,
  });
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("openHistory() keeps what it flushed when the process is killed with SIGKILL", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "parrot-history-" });
  const path = `${dir}/history.db`;
  const child = new Deno.Command("deno", {
    args: ["run", "--allow-read", `--allow-write=${path}`, CHILD, path],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let flushed = 0;
  let buffered = "";
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const readLines = async (until: () => boolean) => {
    while (!until()) {
      const { value, done } = await reader.read();
      if (done) return;
      buffered += value;
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) flushed = Math.max(flushed, Number(line.split(" ")[1]));
    }
  };
  await readLines(() => flushed >= 20_000);
  child.kill("SIGKILL");
  await readLines(() => false); // What it printed before it died.
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL");
  // The killed writer left its log (path-wal); a reader replays it.
  const store = HistoryStore.open(path, { readOnly: true });
  const stored = [...store.query()];
  store.close();
  // A prefix of what was recorded: ids from 1 with no gap, each message exact.
  stored.forEach((r, i) => {
    assert.equal(r.id, i + 1);
    assert.equal(r.sender, `c${i % 7}`);
    assert.equal(decoder.decode(r.payload), `m${i}`);
  });
  // Everything reported flushed is there; beyond it, at most the batch that was on its
  // way (500 records) when the child was killed.
  assert.ok(stored.length >= flushed, `${stored.length} stored, ${flushed} flushed`);
  assert.ok(stored.length <= flushed + 500, `${stored.length} stored, ${flushed} flushed`);
  Deno.removeSync(dir, { recursive: true });
});
