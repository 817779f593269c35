import assert from "node:assert/strict";
import { BufferPool } from "../net/buffer_pool.ts";
import { Channel } from "../net/channel.ts";
import { tcpPair, TextConn, waitFor } from "../testing.ts";
import {
  closeForShutdown,
  type ConnectionContext,
  createConnectionHandler,
  newConnectionCounters,
} from "./connection.ts";
import { sweepDeadlines } from "./deadline_sweep.ts";
import { Hub } from "./hub.ts";
import { type ReadBatch, ReadBatchPool } from "./read_batch.ts";
import type { Session } from "./session.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The context of every connection task, as the server builds it, with a small channel. */
function context(
  options: { capacity?: number; token?: string; maxFrameBytes?: number } = {},
): ConnectionContext {
  return {
    hub: new Hub(),
    channel: new Channel<ReadBatch>(options.capacity ?? 16),
    maxFrameBytes: options.maxFrameBytes ?? 1024,
    readBuffers: new BufferPool({ minBytes: 4096, maxBytes: 65536, maxFreeBytes: 1 << 20 }),
    readBatches: new ReadBatchPool(),
    admission: {
      token: options.token === undefined ? undefined : encoder.encode(options.token),
      authTimeoutMs: 2_000,
    },
    admitting: new Set(),
    counters: newConnectionCounters(),
  };
}

/** One connection served by a task of `ctx`, with the test as its peer. */
async function serve(ctx: ConnectionContext) {
  const pair = await tcpPair();
  const shutdown = new AbortController();
  const handler = createConnectionHandler(ctx);
  const finished = handler(pair.server, {
    id: 1,
    remoteAddr: pair.server.remoteAddr as Deno.NetAddr,
    signal: shutdown.signal,
    shutdownSignal: shutdown.signal,
  });
  return { peer: new TextConn(pair.client), finished, shutdown, close: pair.close };
}

/**
 * Takes the next read batch from the channel, as the main task does, and describes its
 * frames: a message (a range of the read, a payload of its own, or a line of text) as
 * `msg:<text>`, any other frame by its type.
 */
async function nextBatch(ctx: ConnectionContext): Promise<{ session: Session; frames: string[] }> {
  const batch = await ctx.channel.receive();
  const frames: string[] = [];
  let range = 0;
  for (let i = 0; i < batch.frameCount; i++) {
    const frame = batch.frames[i];
    if (frame.type === "range") {
      const start = batch.ranges[range++];
      const end = batch.ranges[range++];
      frames.push(`msg:${decoder.decode(batch.chunk!.subarray(start, end))}`);
    } else if (frame.type === "msg" || frame.type === "text") {
      frames.push(`msg:${decoder.decode(frame.payload)}`);
    } else if (frame.type === "hello") frames.push(`hello:${frame.name}`);
    else frames.push(frame.type);
  }
  const session = batch.session;
  if (batch.buffer) ctx.readBuffers.give(batch.buffer);
  ctx.readBatches.give(batch);
  return { session, frames };
}

function onlySession(ctx: ConnectionContext): Session {
  const sessions = [...ctx.hub.sessions()];
  assert.equal(sessions.length, 1);
  return sessions[0];
}

Deno.test("createConnectionHandler() admits a client into the hub and hands its frames to the channel", async () => {
  const ctx = context();
  const { peer, finished, close } = await serve(ctx);
  try {
    await peer.write("HELLO ann\nMSG 2\nhi\nPING\nhello there\n");
    const { session, frames } = await nextBatch(ctx);
    assert.deepEqual(frames, ["hello:ann", "msg:hi", "ping", "msg:hello there"]);
    assert.equal(onlySession(ctx), session);
    assert.equal(ctx.counters.connections, 1);
    assert.equal(ctx.admitting.size, 0, "no admission to wait for without a token or TLS");
  } finally {
    close();
    await finished;
  }
  assert.equal(ctx.hub.size, 0, "gone from the hub once the connection ended");
});

Deno.test("createConnectionHandler() stamps each read batch with the time of its read", async () => {
  const ctx = context();
  const { peer, finished, close } = await serve(ctx);
  try {
    const before = performance.now();
    await peer.write("MSG 2\nhi\n");
    const batch = await ctx.channel.receive();
    const after = performance.now();
    assert.ok(
      batch.readAt >= before && batch.readAt <= after,
      `${batch.readAt} in the test's span`,
    );
    ctx.readBatches.give(batch);
    assert.equal(batch.readAt, 0, "a batch given back forgets it");
  } finally {
    close();
    await finished;
  }
});

Deno.test("createConnectionHandler() notes when an unfinished frame began, and clears it once complete", async () => {
  const ctx = context();
  const { peer, finished, close } = await serve(ctx);
  try {
    await peer.write("PING\n");
    const { session } = await nextBatch(ctx);
    await waitFor(() => !session.held, "the task to be heard from after the send");
    assert.equal(session.frameStartedAt, 0);
    await peer.write("MSG 5\nab");
    await waitFor(() => session.frameStartedAt !== 0, "the unfinished frame to be noted");
    assert.equal(session.closed, false);
    await peer.write("cde\n");
    assert.deepEqual((await nextBatch(ctx)).frames, ["msg:abcde"]);
    await waitFor(() => session.frameStartedAt === 0, "the completed frame to be cleared");
  } finally {
    close();
    await finished;
  }
});

Deno.test("createConnectionHandler() holds a connection while the channel is full: no deadline runs", async () => {
  const ctx = context({ capacity: 1 });
  const { peer, finished, close } = await serve(ctx);
  try {
    await peer.write("PING\n");
    await waitFor(() => ctx.channel.size === 1, "the first batch in the channel");
    const session = onlySession(ctx);
    await waitFor(() => !session.held, "the first send to complete");
    await peer.write("PONG\n");
    await waitFor(() => session.held, "the task to wait for room in the channel");
    assert.deepEqual((await nextBatch(ctx)).frames, ["ping"]);
    assert.deepEqual((await nextBatch(ctx)).frames, ["pong"]);
    await waitFor(() => !session.held, "the hold to end once there was room");
  } finally {
    close();
    await finished;
  }
});

Deno.test("createConnectionHandler() does not count the wait for the channel against an unfinished frame", async () => {
  const ctx = context({ capacity: 1 });
  const { peer, finished, close } = await serve(ctx);
  try {
    await peer.write("PING\n");
    await waitFor(() => ctx.channel.size === 1, "the first batch in the channel");
    const session = onlySession(ctx);
    await waitFor(() => !session.held, "the first send to complete");
    // The read ends mid-frame, and its complete frame waits for room in the channel.
    await peer.write("MSG 2\nm3\nMSG 2\nm");
    await waitFor(() => session.held, "the task to wait for room in the channel");
    const deadlines = { readTimeoutMs: 100, idleTimeoutMs: 100 };
    const counters = { readTimeouts: 0, idleTimeouts: 0 };
    sweepDeadlines(ctx.hub.sessions(), Date.now() + 60_000, deadlines, counters);
    assert.equal(session.closed, false, "the server's wait is not the client's time");
    assert.deepEqual(counters, { readTimeouts: 0, idleTimeouts: 0 });
    assert.deepEqual((await nextBatch(ctx)).frames, ["ping"]);
    assert.deepEqual((await nextBatch(ctx)).frames, ["msg:m3"]);
    await waitFor(() => !session.held, "the hold to end");
    const heldUntil = session.lastHeardAt;
    assert.equal(session.frameStartedAt, heldUntil, "the read deadline counts from the hold's end");
    await peer.write("4\n");
    assert.deepEqual((await nextBatch(ctx)).frames, ["msg:m4"]);
  } finally {
    close();
    await finished;
  }
});

Deno.test("createConnectionHandler() sends ERR for a protocol error, counts it and ends the connection", async () => {
  const ctx = context({ maxFrameBytes: 4 });
  const { peer, finished, close } = await serve(ctx);
  try {
    await peer.write("PING\nMSG 5\n");
    assert.deepEqual((await nextBatch(ctx)).frames, ["ping"], "frames before the error go on");
    assert.equal(await peer.rest(), "ERR frame too large\n");
    await finished;
    assert.equal(ctx.counters.protocolErrors, 1);
    assert.deepEqual(ctx.counters.protocolErrorsByReason, { "frame too large": 1 });
    assert.equal(ctx.hub.size, 0);
  } finally {
    close();
  }
});

Deno.test("createConnectionHandler() ends a connection that stops in the middle of a frame with ERR truncated frame", async () => {
  const ctx = context();
  const { peer, finished, close } = await serve(ctx);
  try {
    await peer.write("MSG 5\nab");
    await waitFor(() => ctx.hub.size === 1 && onlySession(ctx).frameStartedAt !== 0, "the read");
    await peer.conn.closeWrite();
    assert.equal(await peer.rest(), "ERR truncated frame\n");
    await finished;
    assert.equal(ctx.counters.protocolErrors, 1);
    assert.deepEqual(ctx.counters.protocolErrorsByReason, { "truncated frame": 1 });
  } finally {
    close();
  }
});

Deno.test("createConnectionHandler() passes QUIT and drops what follows it; the task ends once the session finished", async () => {
  const ctx = context();
  const { peer, finished, close } = await serve(ctx);
  try {
    await peer.write("MSG 1\na\nQUIT\nMSG 1\nb\n");
    const { session, frames } = await nextBatch(ctx);
    assert.deepEqual(frames, ["msg:a", "quit"]);
    let ended = false;
    finished.then(() => ended = true);
    await peer.write("PING\n");
    assert.equal(ctx.channel.size, 0, "nothing read after QUIT");
    assert.equal(ended, false, "waits for the main task to finish the session");
    await session.finish(); // As the main task does once stdout has the messages.
    await finished;
    assert.equal(await peer.rest(), "");
  } finally {
    close();
  }
});

Deno.test("createConnectionHandler() turns the end of input into a QUIT for the main task", async () => {
  const ctx = context();
  const { peer, finished, close } = await serve(ctx);
  try {
    await peer.write("MSG 1\na\n");
    assert.deepEqual((await nextBatch(ctx)).frames, ["msg:a"]);
    await peer.conn.closeWrite();
    const { session, frames } = await nextBatch(ctx);
    assert.deepEqual(frames, ["quit"]);
    session.finish();
    await finished;
    assert.equal(ctx.counters.protocolErrors, 0);
  } finally {
    close();
  }
});

Deno.test("createConnectionHandler() with a token refuses a wrong AUTH and counts it; the right one is admitted with what followed it", async () => {
  const ctx = context({ token: "s3cret" });
  const wrong = await serve(ctx);
  try {
    await waitFor(() => ctx.admitting.size === 1, "the connection to be admitting");
    await wrong.peer.write("AUTH guess\nMSG 1\nx\n");
    assert.equal(await wrong.peer.rest(), "ERR unauthorized\n");
    await wrong.finished;
    assert.equal(ctx.counters.authFailures, 1);
    assert.equal(ctx.hub.size, 0, "never in the hub");
  } finally {
    wrong.close();
  }
  const right = await serve(ctx);
  try {
    await right.peer.write("AUTH s3cret\nHELLO ann\n");
    assert.deepEqual((await nextBatch(ctx)).frames, ["hello:ann"]);
    assert.equal(ctx.admitting.size, 0);
  } finally {
    right.close();
    await right.finished;
  }
});

Deno.test("closeForShutdown() tells every client QUIT and closes the connections still being admitted", async () => {
  const ctx = context({ token: "s3cret" });
  const client = await serve(ctx);
  const admitting = await serve(ctx);
  try {
    await client.peer.write("AUTH s3cret\nPING\n");
    await nextBatch(ctx);
    await waitFor(() => ctx.admitting.size === 1, "the second connection to be admitting");
    closeForShutdown(ctx);
    assert.equal(await client.peer.until("QUIT\n"), "QUIT\n");
    assert.equal(await admitting.peer.rest(), "", "closed without a word");
    await admitting.finished;
    assert.equal(ctx.hub.size, 1, "the client stays until it leaves");
  } finally {
    client.close();
    admitting.close();
    await client.finished;
  }
});
