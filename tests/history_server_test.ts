/**
 * Integration tests of `--history` on the real server process: the errors at start,
 * every printed message stored (the same bytes, in the same order as stdout), the
 * retention, and `HISTORY <n>` with no gap and no duplicate against live traffic.
 */

import assert from "node:assert/strict";
import { type HistoryBatch, HistoryStore } from "../lib/history/history_store.ts";
import { ServerFrameDecoder } from "../lib/parrot/frame_decoder.ts";
import {
  httpListeningPort,
  listeningPort,
  msg,
  RawClient,
  runDeno,
  SERVER_ENV,
  SERVER_RUN_ARGS,
  type ServerProcess,
  spawn,
  startServer,
  waitFor,
} from "../lib/testing.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The server task's arguments, also allowed to write in `dir` (a temporary directory). */
function runArgs(dir: string): string[] {
  return ["run", `--allow-write=${dir}`, ...SERVER_RUN_ARGS.slice(1)];
}

function startWithHistory(dir: string, args: string[] = []): Promise<ServerProcess> {
  return startServer(["--history", `${dir}/history.db`, ...args], { runArgs: runArgs(dir) });
}

async function stop(server: ServerProcess): Promise<string> {
  server.kill("SIGTERM");
  const status = await server.status;
  assert.equal(status.code, 0, server.stderr.text());
  return server.stderr.text();
}

/** `deno task history <args>` as a user runs it; stdout as bytes. */
async function historyTask(args: string[]): Promise<Uint8Array> {
  const output = await new Deno.Command("deno", {
    args: ["task", "-q", "history", ...args],
    cwd: new URL("../", import.meta.url).pathname,
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  return output.stdout;
}

function assertOneLineError(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split("\n");
  const errors = lines.filter((line) => line.startsWith("error: "));
  assert.equal(errors.length, 1, stderr);
  assert.match(errors[0], pattern);
  assert.doesNotMatch(stderr, /^\s+at /m, "a stack trace was printed");
  assert.doesNotMatch(stderr, /listening on/, "the server listened");
}

Deno.test("server --history refuses a corrupt, unreachable or forbidden file with one line, exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/corrupt.db`, "not a database at all\n".repeat(100));
    const cases: [string[], string, RegExp][] = [
      [runArgs(dir), `${dir}/corrupt.db`, /file is not a database/],
      [runArgs(dir), `${dir}/missing/history.db`, /no such directory/],
      [runArgs(dir), dir, /it is a directory/],
      // The server task itself may write in the project directory only.
      [SERVER_RUN_ARGS, `${dir}/history.db`, /no permission to write it .*give a path inside it/],
    ];
    for (const [args, path, why] of cases) {
      const { code, stderr } = await runDeno([...args, "0", "--history", path]);
      assert.equal(code, 1, stderr);
      assertOneLineError(
        stderr,
        new RegExp(`^error: Cannot open history file "${path}": ${why.source}`),
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server --history stores every message it prints: same bytes, same order", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const server = await startWithHistory(dir);
    const clients = await Promise.all(
      Array.from({ length: 8 }, () => RawClient.connect(server.port)),
    );
    await Promise.all(clients.map(async (client, k) => {
      await client.write(`HELLO c${k}\n`);
      for (let i = 0; i < 50; i++) {
        // Text lines and binary frames (LF, NUL, invalid UTF-8) alike.
        await client.write(i % 2 ? `c${k} says ${i}\n` : msg(Uint8Array.of(k, i, 0, 10, 0xff)));
      }
      await client.ping();
    }));
    await Promise.all(clients.map((client) => client.close()));
    const log = await stop(server);
    assert.match(log, /History stopped: 400 messages stored/);
    const printed = server.stdout.bytes();
    assert.ok(printed.length > 0);
    assert.deepEqual(await historyTask([`${dir}/history.db`]), printed);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

function batch(firstId: number, count: number, time: number): HistoryBatch {
  const bytes = encoder.encode("x".repeat(count));
  return {
    firstId,
    count,
    times: new Float64Array(count).fill(time),
    senders: new Uint16Array(count),
    names: ["old"],
    ends: Uint32Array.from({ length: count }, (_, i) => i + 1),
    bytes,
  };
}

Deno.test("server --history-max and --history-age drop the oldest messages of the file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/history.db`;
  try {
    const hour = 3_600_000;
    const store = HistoryStore.open(path);
    store.append(batch(1, 30, Date.now() - 3 * hour));
    // Batches of 10: the retention deletes whole batches.
    for (let first = 31; first <= 51; first += 10) store.append(batch(first, 10, Date.now()));
    store.close();
    // By age: the 30 of three hours ago go, the 30 of now stay.
    let server = await startWithHistory(dir, ["--history-age", "1h"]);
    await stop(server);
    let kept = HistoryStore.open(path, { readOnly: true });
    assert.deepEqual(kept.last(100).map((r) => r.id), Array.from({ length: 30 }, (_, i) => 31 + i));
    kept.close();
    // By count: the newest 10 stay, and what comes next is stored after them.
    server = await startWithHistory(dir, ["--history-max", "10"]);
    const client = await RawClient.connect(server.port);
    await client.write("HELLO new\nfresh\nPING\n");
    await waitFor(() => client.received.text().includes("PONG"), "PONG");
    await client.close();
    await stop(server);
    kept = HistoryStore.open(path, { readOnly: true });
    const records = kept.last(100);
    kept.close();
    assert.deepEqual(records.map((r) => r.id), [
      ...Array.from({ length: 10 }, (_, i) => 51 + i),
      61,
    ]);
    assert.equal(records.at(-1)!.sender, "new");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The relayed messages in `bytes`, as `<from> <payload>` strings. */
function relayed(bytes: Uint8Array): string[] {
  const { frames, error } = new ServerFrameDecoder().push(bytes);
  assert.equal(error, undefined);
  return frames.flatMap((frame) =>
    frame.type === "msg" ? [`${frame.from} ${decoder.decode(frame.payload)}`] : []
  );
}

Deno.test("HISTORY <n> replays, then live messages follow with no gap and no duplicate, under concurrent senders", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const server = await startWithHistory(dir, ["--history-replay-max", "100000"]);
    const SENDERS = 4;
    const senders = await Promise.all(
      Array.from({ length: SENDERS }, () => RawClient.connect(server.port)),
    );
    let next = 0;
    /** Each sender sends `count` more messages, then PING: they are printed and relayed. */
    const send = (count: number) => {
      const from = next;
      next += count;
      return Promise.all(senders.map(async (sender) => {
        for (let i = from; i < from + count; i += 10) {
          let lines = "";
          for (let j = i; j < i + 10; j++) lines += `m${j}\n`;
          await sender.write(lines);
        }
        await sender.ping();
      }));
    };
    await Promise.all(senders.map((sender, k) => sender.write(`HELLO s${k}\nUNSUB\n`)));
    await send(150);
    // Watchers join, and have live messages before they ask: their replay must not
    // repeat those, nor miss what comes while they ask.
    const everything = await RawClient.connect(server.port);
    const recent = await RawClient.connect(server.port);
    // Their PONG: they are admitted, so subscribed.
    await Promise.all([everything.ping(), recent.ping()]);
    await send(50);
    await waitFor(
      () =>
        relayed(everything.received.bytes()).length === 200 &&
        relayed(recent.received.bytes()).length === 200,
      "the live messages",
    );
    await Promise.all([
      send(100),
      everything.write("HISTORY 100000\n"),
      recent.write("HISTORY 25\n"),
    ]);
    await everything.ping();
    await recent.ping();
    const printed = server.stdout.text().trimEnd().split("\n").map((line) =>
      line.replace(": ", " ")
    );
    assert.equal(printed.length, SENDERS * next);
    // The first watcher has every message printed, each once.
    const all = relayed(everything.received.bytes());
    assert.deepEqual([...all].sort(), [...printed].sort());
    // The second has the last 25 before it joined and every one since: a suffix.
    const some = relayed(recent.received.bytes());
    assert.equal(some.length, 25 + SENDERS * 150);
    assert.deepEqual([...some].sort(), printed.slice(printed.length - some.length).sort());
    for (const client of [...senders, everything, recent]) await client.close();
    await stop(server);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("HISTORY with a bad count gets ERR malformed frame; without --history it sends nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const server = await startWithHistory(dir, ["--history-replay-max", "2"]);
    const ann = await RawClient.connect(server.port);
    await ann.write("HELLO ann\none\ntwo\nthree\nPING\n");
    await waitFor(() => ann.received.text().includes("PONG"), "PONG");
    // Capped by --history-replay-max.
    const bob = await RawClient.connect(server.port);
    await bob.write("HISTORY 10\n");
    await bob.ping();
    assert.deepEqual(relayed(bob.received.bytes()), ["ann two", "ann three"]);
    const eve = await RawClient.connect(server.port);
    await eve.write("HISTORY ten\n");
    assert.equal(await eve.closedByServer(), "ERR malformed frame\n");
    for (const client of [ann, bob]) await client.close();
    const log = await stop(server);
    assert.match(log, /Cannot parse HISTORY count "ten": not a number/);

    const plain = await startServer();
    const joe = await RawClient.connect(plain.port);
    await joe.write("HELLO joe\nhi\nHISTORY 10\n");
    await joe.ping();
    assert.equal(joe.received.text(), "PONG\n");
    await joe.close();
    await stop(plain);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A client that sends `<name> <i>` lines ten at a time, each ten followed by `PING`,
 * until the connection fails; returns how many it sent and how many a `PONG` confirmed.
 */
async function sendUntilKilled(
  port: number,
  name: string,
  progress: { confirmed: number },
): Promise<{ sent: number; confirmed: number }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const buffer = new Uint8Array(256);
  let sent = 0;
  try {
    // Unsubscribed: what comes back is PONGs only (and relays sent before UNSUB was read).
    await conn.write(encoder.encode(`HELLO ${name}\nUNSUB\n`));
    for (;;) {
      let lines = "";
      for (let i = sent; i < sent + 10; i++) lines += `${name} ${i}\n`;
      const frames = encoder.encode(`${lines}PING\n`);
      for (let offset = 0; offset < frames.length;) {
        offset += await conn.write(frames.subarray(offset));
      }
      sent += 10;
      let text = "";
      while (!text.includes("PONG\n")) {
        const n = await conn.read(buffer);
        if (n === null) throw new Error("closed");
        text += decoder.decode(buffer.subarray(0, n));
      }
      progress.confirmed = sent;
    }
  } catch {
    // The server was killed.
  } finally {
    try {
      conn.close();
    } catch { /* Closed already. */ }
  }
  return { sent, confirmed: progress.confirmed };
}

Deno.test("kill -9 while 50 clients send: the history holds each client's PONG-confirmed messages, in order, with no gap", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/history.db`;
  try {
    const server = await startWithHistory(dir);
    const progress = Array.from({ length: 50 }, () => ({ confirmed: 0 }));
    const clients = progress.map((p, k) => sendUntilKilled(server.port, `c${k}`, p));
    await waitFor(() => progress.every((p) => p.confirmed >= 30), "30 confirmed messages each");
    server.kill("SIGKILL");
    await server.status;
    const results = await Promise.all(clients);
    // The server starts again on the file (SQLite recovers its log), and stops.
    const again = await startWithHistory(dir);
    assert.match(again.stderr.text(), /History in .*: messages from id \d+ on/);
    await stop(again);
    const store = HistoryStore.open(path, { readOnly: true });
    const bySender = new Map<string, string[]>();
    for (const record of store.query()) {
      const list = bySender.get(record.sender) ?? [];
      list.push(decoder.decode(record.payload));
      bySender.set(record.sender, list);
    }
    store.close();
    results.forEach(({ sent, confirmed }, k) => {
      const stored = bySender.get(`c${k}`) ?? [];
      // Every confirmed message is stored; what is stored is a prefix of what was sent.
      assert.ok(stored.length >= confirmed, `c${k}: ${stored.length} stored < ${confirmed}`);
      assert.ok(stored.length <= sent);
      assert.deepEqual(stored, Array.from({ length: stored.length }, (_, i) => `c${k} ${i}`));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a disk that takes no more during a run: the history pauses with one warning, the server keeps serving", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/history.db`;
  try {
    // The server may write files of at most 2048 blocks (the shell's ulimit -f); a
    // larger write fails as on a full disk. SIGXFSZ is ignored, so the write fails
    // rather than killing the process.
    const denoArgs = [...runArgs(dir), "0", "--history", path].map((a) => `'${a}'`).join(" ");
    const running = spawn("sh", ["-c", `trap '' XFSZ; ulimit -f 2048; exec deno ${denoArgs}`], {
      env: SERVER_ENV,
    });
    const port = await listeningPort(running);
    const client = await RawClient.connect(port);
    await client.write("HELLO ann\nUNSUB\n");
    const payload = "p".repeat(200);
    const total = 20_000;
    for (let i = 0; i < total; i += 1_000) {
      let lines = "";
      for (let j = i; j < i + 1_000; j++) lines += `${j} ${payload}\n`;
      await client.write(lines);
      await client.ping();
    }
    await waitFor(() => /History paused: /.test(running.stderr.text()), "the pause");
    // Printed, relayed and confirmed all along: the server kept serving.
    const printed = running.stdout.text().trimEnd().split("\n");
    assert.equal(printed.length, total);
    assert.equal(printed.at(-1), `ann: ${total - 1} ${payload}`);
    await client.close();
    running.child.kill("SIGTERM");
    const status = await running.status;
    const log = running.stderr.text();
    assert.equal(status.code, 0, log);
    assert.equal(log.match(/History paused: /g)?.length, 1, log);
    assert.match(log, /History paused: .*; retrying every 5000ms/);
    const stopped = log.match(/History stopped: (\d+) messages stored, (\d+) not stored/);
    assert.ok(stopped, log);
    const [stored, skipped] = [Number(stopped[1]), Number(stopped[2])];
    assert.equal(stored + skipped, total);
    assert.ok(stored > 0 && skipped > 0, log);
    // What was stored is usable, and it is the first messages, in order.
    const store = HistoryStore.open(path, { readOnly: true });
    const records = [...store.query()];
    store.close();
    assert.equal(records.length, stored);
    records.forEach((record, i) => assert.equal(decoder.decode(record.payload), `${i} ${payload}`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server --history --http: the live page's feed starts with the recent stored messages", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const server = await startWithHistory(dir, ["--http", "0"]);
    const httpPort = await httpListeningPort(server);
    const ann = await RawClient.connect(server.port);
    await ann.write("HELLO ann\nfirst\nsecond\nPING\n");
    await waitFor(() => ann.received.text().includes("PONG"), "PONG");
    const response = await fetch(`http://127.0.0.1:${httpPort}/live`);
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/event: history\ndata: .*\n\n/.test(text)) text += (await reader.read()).value;
    await reader.cancel();
    const event = JSON.parse(text.match(/event: history\ndata: (.*)\n\n/)![1]);
    assert.deepEqual(
      event.messages.map((m: { from: string; preview: string }) => `${m.from}: ${m.preview}`),
      ["ann: first", "ann: second"],
    );
    await ann.close();
    await stop(server);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
