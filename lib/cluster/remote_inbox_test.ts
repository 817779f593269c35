import assert from "node:assert/strict";
import { hasSettled } from "../testing.ts";
import { RemoteInbox } from "./remote_inbox.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (payload: Uint8Array) => new TextDecoder().decode(payload);

function drained(inbox: RemoteInbox): string[] {
  const seen: string[] = [];
  inbox.drain((origin, from, payload) => seen.push(`${origin}/${from}/${text(payload)}`));
  return seen;
}

Deno.test("RemoteInbox.drain() hands every message in order, copied, then is empty", () => {
  const inbox = new RemoteInbox();
  const payload = bytes("one");
  inbox.push("a", "alice", payload);
  payload[0] = 0x58; // the inbox has its own copy
  inbox.push("b", "bob", bytes("two"));
  inbox.push("a", "alice", new Uint8Array(0));
  assert.equal(inbox.size, 3);
  assert.deepEqual(drained(inbox), ["a/alice/one", "b/bob/two", "a/alice/"]);
  assert.equal(inbox.size, 0);
  assert.equal(inbox.byteLength, 0);
  assert.deepEqual(drained(inbox), []);
});

Deno.test("RemoteInbox.drain() views stay valid until the next drain, whatever is pushed", () => {
  const inbox = new RemoteInbox();
  inbox.push("a", "alice", bytes("first"));
  let kept: Uint8Array | undefined;
  inbox.drain((_origin, _from, payload) => kept = payload);
  for (let i = 0; i < 100; i++) inbox.push("a", "alice", bytes("overwrite?"));
  assert.equal(text(kept!), "first");
  assert.equal(drained(inbox).length, 100);
});

Deno.test("RemoteInbox.push() drops past its bound and counts, but always takes one", () => {
  const inbox = new RemoteInbox({ maxBytes: 10 });
  assert.equal(inbox.push("a", "x", new Uint8Array(50)), true);
  assert.equal(inbox.push("a", "x", new Uint8Array(1)), false);
  assert.equal(inbox.dropped, 1);
  inbox.drain(() => {});
  assert.equal(inbox.push("a", "x", new Uint8Array(6)), true);
  assert.equal(inbox.push("a", "x", new Uint8Array(4)), true);
  assert.equal(inbox.push("a", "x", new Uint8Array(1)), false);
  assert.equal(inbox.dropped, 2);
  assert.equal(inbox.size, 2);
});

Deno.test("RemoteInbox.ready() waits for a push, resolves at once when one waits", async () => {
  const inbox = new RemoteInbox();
  const waiting = inbox.ready();
  assert.equal(await hasSettled(waiting), false);
  inbox.push("a", "alice", bytes("hi"));
  assert.equal(await hasSettled(waiting), true);
  assert.equal(await hasSettled(inbox.ready()), true);
});

Deno.test("RemoteInbox.ready() rejects when its signal aborts", async () => {
  const inbox = new RemoteInbox();
  const controller = new AbortController();
  const waiting = inbox.ready(controller.signal);
  controller.abort(new Error("stop"));
  await assert.rejects(waiting, /stop/);
  // A later push does not touch the aborted wait; a new wait works.
  const next = inbox.ready();
  inbox.push("a", "alice", bytes("hi"));
  await next;
});

Deno.test("RemoteInbox calls onWaiting when it stops being empty, once per drain", () => {
  let calls = 0;
  const inbox = new RemoteInbox({ onWaiting: () => calls++ });
  inbox.push("a", "alice", bytes("1"));
  inbox.push("a", "alice", bytes("2"));
  assert.equal(calls, 1);
  inbox.drain(() => {});
  inbox.push("a", "alice", bytes("3"));
  assert.equal(calls, 2);
});

Deno.test("RemoteInbox.notify() replaces onWaiting: called when the inbox stops being empty", () => {
  let first = 0;
  let second = 0;
  const inbox = new RemoteInbox({ onWaiting: () => first++ });
  inbox.notify(() => second++);
  inbox.push("a", "alice", bytes("one"));
  inbox.push("a", "alice", bytes("two"));
  assert.deepEqual([first, second], [0, 1]);
  drained(inbox);
  inbox.push("a", "alice", bytes("three"));
  assert.deepEqual([first, second], [0, 2]);
});
