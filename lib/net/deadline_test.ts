import assert from "node:assert/strict";
import { countingController, tcpPair } from "../testing.ts";
import { abortable, deadlineSignal, isTimeoutError, readWithDeadline } from "./deadline.ts";

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) =>
    signal.addEventListener("abort", () => resolve(), { once: true })
  );
}

Deno.test("abortable() resolves with the value of the promise", async () => {
  const controller = new AbortController();
  assert.equal(await abortable(Promise.resolve(42), controller.signal), 42);
});

Deno.test("abortable() rejects with the error of the promise", async () => {
  const controller = new AbortController();
  await assert.rejects(
    abortable(Promise.reject(new Error("Read failed")), controller.signal),
    { message: "Read failed" },
  );
});

Deno.test("abortable() rejects with the abort reason while the promise keeps running", async () => {
  const { promise, resolve } = Promise.withResolvers<string>();
  const controller = new AbortController();
  const waiting = abortable(promise, controller.signal);
  const reason = new Error("Idle");
  controller.abort(reason);
  await assert.rejects(waiting, (error) => error === reason);
  resolve("still here");
  assert.equal(await promise, "still here");
});

Deno.test("abortable() rejects at once with an already aborted signal", async () => {
  const { promise, resolve } = Promise.withResolvers<number>();
  await assert.rejects(abortable(promise, AbortSignal.abort(new Error("Shut down"))), {
    message: "Shut down",
  });
  resolve(1);
});

Deno.test("abortable() removes its abort listener when the promise settles", async () => {
  const { controller, listeners } = countingController();
  for (let i = 0; i < 3; i++) {
    const pending = abortable(Promise.resolve(i), controller.signal);
    assert.equal(listeners(), 1);
    assert.equal(await pending, i);
    assert.equal(listeners(), 0);
  }
  await assert.rejects(abortable(Promise.reject(new Error("Failed")), controller.signal));
  assert.equal(listeners(), 0);
});

Deno.test("abortable() leaves no unhandled rejection when the abandoned promise rejects", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (event: PromiseRejectionEvent): void => {
    unhandled.push(event.reason);
    event.preventDefault();
  };
  globalThis.addEventListener("unhandledrejection", onUnhandled);
  try {
    const { promise, reject } = Promise.withResolvers<number>();
    const controller = new AbortController();
    const waiting = abortable(promise, controller.signal);
    controller.abort(new Error("Gave up"));
    await assert.rejects(waiting, { message: "Gave up" });
    reject(new Error("Late failure"));

    const early = Promise.withResolvers<number>();
    await assert.rejects(abortable(early.promise, AbortSignal.abort()));
    early.reject(new Error("Late failure too"));

    await new Promise((resolve) => setTimeout(resolve, 0));
    assert.deepEqual(unhandled, []);
  } finally {
    globalThis.removeEventListener("unhandledrejection", onUnhandled);
  }
});

Deno.test("deadlineSignal() aborts with a TimeoutError after the given time", async () => {
  const start = performance.now();
  const signal = deadlineSignal(20);
  assert.equal(signal.aborted, false);
  await aborted(signal);
  assert.ok(performance.now() - start >= 15);
  assert.equal(isTimeoutError(signal.reason), true);
});

Deno.test("deadlineSignal() follows its parent signal", () => {
  const controller = new AbortController();
  const signal = deadlineSignal(60_000, controller.signal);
  const reason = new Error("Shutting down");
  controller.abort(reason);
  assert.equal(signal.aborted, true);
  assert.equal(signal.reason, reason);
  assert.equal(isTimeoutError(signal.reason), false);
});

Deno.test("deadlineSignal() times out before a parent signal that does not abort", async () => {
  const controller = new AbortController();
  const signal = deadlineSignal(20, controller.signal);
  await aborted(signal);
  assert.equal(isTimeoutError(signal.reason), true);
  assert.equal(controller.signal.aborted, false);
});

Deno.test("deadlineSignal() rejects a negative or non-finite time", () => {
  for (const ms of [-1, NaN, Infinity]) {
    assert.throws(() => deadlineSignal(ms), {
      name: "RangeError",
      message:
        `Cannot set a deadline of ${ms}ms: expected a number of milliseconds from 0 to 2147483647`,
    });
  }
});

Deno.test("isTimeoutError() recognises only the TimeoutError DOMException", () => {
  assert.equal(isTimeoutError(new DOMException("Signal timed out", "TimeoutError")), true);
  assert.equal(isTimeoutError(new DOMException("Aborted", "AbortError")), false);
  assert.equal(
    isTimeoutError(Object.assign(new Error("Timed out"), { name: "TimeoutError" })),
    false,
  );
  assert.equal(isTimeoutError("TimeoutError"), false);
  assert.equal(isTimeoutError(undefined), false);
});

Deno.test("readWithDeadline() returns the bytes that arrive in time", async () => {
  const { client, server, close } = await tcpPair();
  try {
    await server.write(new TextEncoder().encode("PING\n"));
    const buffer = new Uint8Array(64);
    const count = await readWithDeadline(client, buffer, 1_000);
    assert.equal(new TextDecoder().decode(buffer.subarray(0, count ?? 0)), "PING\n");
  } finally {
    close();
  }
});

Deno.test("readWithDeadline() returns null at the end of the stream", async () => {
  const { client, server, close } = await tcpPair();
  try {
    server.close();
    assert.equal(await readWithDeadline(client, new Uint8Array(8), 1_000), null);
  } finally {
    close();
  }
});

Deno.test("readWithDeadline() times out on silence, and closing the conn settles the read", async () => {
  const { client, close } = await tcpPair();
  let pending: Promise<number | null> | undefined;
  const conn = {
    read(p: Uint8Array): Promise<number | null> {
      pending = client.read(p);
      return pending;
    },
  };
  try {
    const start = performance.now();
    await assert.rejects(readWithDeadline(conn, new Uint8Array(8), 30), (error) => {
      assert.equal(isTimeoutError(error), true);
      assert.equal((error as DOMException).message, "Read timed out after 30ms");
      return true;
    });
    assert.ok(performance.now() - start >= 25);
    assert.ok(pending);
  } finally {
    close();
  }
  await assert.rejects(pending, Deno.errors.Interrupted);
});

Deno.test("readWithDeadline() rejects with the reason of an aborted parent signal", async () => {
  const { client, close } = await tcpPair();
  const { controller, listeners } = countingController();
  try {
    const reading = readWithDeadline(client, new Uint8Array(8), 60_000, controller.signal);
    assert.equal(listeners(), 1);
    const reason = new Error("Server shutting down");
    controller.abort(reason);
    await assert.rejects(reading, (error) => error === reason);
  } finally {
    close();
  }
});

Deno.test("readWithDeadline() starts no read on an already aborted signal", async () => {
  let reads = 0;
  const conn = {
    read(): Promise<number | null> {
      reads++;
      return Promise.resolve(0);
    },
  };
  await assert.rejects(
    readWithDeadline(conn, new Uint8Array(8), 1_000, AbortSignal.abort(new Error("Stopped"))),
    { message: "Stopped" },
  );
  assert.equal(reads, 0);
});

Deno.test("readWithDeadline() removes its abort listener once the read settles", async () => {
  const { controller, listeners } = countingController();
  const ok = { read: (): Promise<number | null> => Promise.resolve(4) };
  assert.equal(await readWithDeadline(ok, new Uint8Array(8), 1_000, controller.signal), 4);
  assert.equal(listeners(), 0);

  const failing = {
    read: (): Promise<number | null> => Promise.reject(new Deno.errors.ConnectionReset("Reset")),
  };
  await assert.rejects(
    readWithDeadline(failing, new Uint8Array(8), 1_000, controller.signal),
    Deno.errors.ConnectionReset,
  );
  assert.equal(listeners(), 0);

  const silent = { read: (): Promise<number | null> => new Promise(() => {}) };
  await assert.rejects(readWithDeadline(silent, new Uint8Array(8), 20, controller.signal));
  assert.equal(listeners(), 0);
});

Deno.test("readWithDeadline() rejects an invalid time without reading", async () => {
  let reads = 0;
  const conn = {
    read(): Promise<number | null> {
      reads++;
      return Promise.resolve(0);
    },
  };
  await assert.rejects(readWithDeadline(conn, new Uint8Array(8), -5), RangeError);
  await assert.rejects(readWithDeadline(conn, new Uint8Array(8), 2 ** 31), RangeError);
  assert.equal(reads, 0);
});
