import assert from "node:assert/strict";
import { generateTestCert } from "../testing.ts";
import { nextTurn, waitFor } from "../testing.ts";
import { SharedConnectionSlots } from "./connection_slots.ts";
import { type ConnInfo, serveTcp, type TcpHandler } from "./serve_tcp.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const HOST = "127.0.0.1";

function connect(port: number): Promise<Deno.Conn> {
  return Deno.connect({ hostname: HOST, port });
}

/** Connects to `port`, runs `use` with the connection and closes it. */
async function withConnection(
  port: number,
  use: (conn: Deno.Conn) => Promise<void>,
): Promise<void> {
  const conn = await connect(port);
  try {
    await use(conn);
  } finally {
    conn.close();
  }
}

/** Reads until `needle` has arrived (or the end); returns everything read. */
async function readUntil(conn: Deno.Conn, needle: string): Promise<string> {
  let received = "";
  const buffer = new Uint8Array(1024);
  while (!received.includes(needle)) {
    const n = await conn.read(buffer);
    if (n === null) break;
    received += decoder.decode(buffer.subarray(0, n));
  }
  return received;
}

/** Reads to the end of the stream (a reset counts as the end); returns everything read. */
async function readToEnd(conn: Deno.Conn): Promise<string> {
  let received = "";
  const buffer = new Uint8Array(1024);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      received += decoder.decode(buffer.subarray(0, n));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  }
  return received;
}

/** Reads from `conn` until its peer closes it; resolves then. */
async function untilClosed(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(1024);
  try {
    while (await conn.read(buffer) !== null) {
      // Discard.
    }
  } catch {
    // Closed under us: the same for a handler.
  }
}

/** Connecting to `port` is refused. */
async function assertRefused(port: number): Promise<void> {
  await assert.rejects(async () => {
    const conn = await connect(port);
    conn.close();
  }, Deno.errors.ConnectionRefused);
}

/** A handler that greets with `hi <id>` and serves until the client leaves. */
function greeter(infos: ConnInfo[] = []): TcpHandler {
  return async (conn, info) => {
    infos.push(info);
    await conn.write(encoder.encode(`hi ${info.id}\n`));
    await untilClosed(conn);
  };
}

Deno.test("serveTcp() gives each handler its conn, a unique id and the remote address", async () => {
  const infos: ConnInfo[] = [];
  const server = serveTcp({ port: 0 }, greeter(infos));
  assert.equal(server.addr.hostname, HOST);
  assert.ok(server.addr.port > 0, "addr has the real port");
  const a = await connect(server.addr.port);
  const b = await connect(server.addr.port);
  try {
    const greetingA = await readUntil(a, "\n");
    const greetingB = await readUntil(b, "\n");
    assert.equal(infos.length, 2);
    assert.notEqual(infos[0].id, infos[1].id);
    const byPort = new Map(infos.map((info) => [info.remoteAddr.port, info]));
    const infoA = byPort.get((a.localAddr as Deno.NetAddr).port);
    const infoB = byPort.get((b.localAddr as Deno.NetAddr).port);
    assert.ok(infoA && infoB, "remoteAddr is the client's address");
    assert.equal(infoA.remoteAddr.hostname, HOST);
    assert.equal(infoA.remoteAddr.transport, "tcp");
    assert.equal(greetingA, `hi ${infoA.id}\n`, "the handler got the conn of this client");
    assert.equal(greetingB, `hi ${infoB.id}\n`);
    assert.equal(infoA.signal.aborted, false);
    assert.equal(server.connections, 2);
  } finally {
    a.close();
    b.close();
  }
  await server.shutdown();
  assert.equal(server.connections, 0);
});

Deno.test("serveTcp() counts connections and forgets a client that left", async () => {
  const returned: (() => void)[] = [];
  const server = serveTcp({ port: 0 }, async (conn, info) => {
    await greeter()(conn, info);
    returned.shift()?.();
  });
  try {
    assert.equal(server.connections, 0);
    const a = await connect(server.addr.port);
    await readUntil(a, "\n");
    assert.equal(server.connections, 1);
    const gone = new Promise<void>((resolve) => returned.push(resolve));
    a.close();
    await gone;
    await nextTurn();
    assert.equal(server.connections, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("serveTcp() hands a connection over maxConnections to onReject and closes it", async () => {
  const returned: (() => void)[] = [];
  const rejected: Deno.NetAddr[] = [];
  const server = serveTcp({
    port: 0,
    maxConnections: 1,
    onReject: async (conn) => {
      rejected.push(conn.remoteAddr as Deno.NetAddr);
      await conn.write(encoder.encode("ERR full\n"));
    },
  }, async (conn, info) => {
    await greeter()(conn, info);
    returned.shift()?.();
  });
  try {
    const first = await connect(server.addr.port);
    assert.match(await readUntil(first, "\n"), /^hi \d+\n$/);

    const extra = await connect(server.addr.port);
    assert.equal(await readToEnd(extra), "ERR full\n", "the line, then the end of the stream");
    extra.close();
    assert.equal(rejected.length, 1);
    assert.equal(rejected[0].port, (extra.localAddr as Deno.NetAddr).port);
    assert.equal(server.connections, 1);

    const gone = new Promise<void>((resolve) => returned.push(resolve));
    first.close();
    await gone;
    await nextTurn();

    await withConnection(server.addr.port, async (later) => {
      assert.match(await readUntil(later, "\n"), /^hi \d+\n$/, "the slot was freed");
      assert.equal(rejected.length, 1);
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("serveTcp() shares connectionSlots with another server: one limit for both", async () => {
  const slots = new SharedConnectionSlots(1);
  const rejected: string[] = [];
  const options = {
    port: 0,
    connectionSlots: slots,
    onReject: async (conn: Deno.Conn) => {
      rejected.push("refused");
      await conn.write(encoder.encode("ERR full\n"));
    },
  };
  const returned: (() => void)[] = [];
  const handler: TcpHandler = async (conn, info) => {
    await greeter()(conn, info);
    returned.shift()?.();
  };
  const a = serveTcp(options, handler);
  const b = serveTcp(options, handler);
  try {
    const first = await connect(a.addr.port);
    assert.match(await readUntil(first, "\n"), /^hi \d+\n$/);
    assert.equal(slots.taken, 1);

    const extra = await connect(b.addr.port);
    assert.equal(await readToEnd(extra), "ERR full\n", "the other server's slot counts");
    extra.close();
    assert.deepEqual(rejected, ["refused"]);

    const gone = new Promise<void>((resolve) => returned.push(resolve));
    first.close();
    await gone;
    await waitFor(() => slots.taken === 0, "the slot to be given back");
    await withConnection(b.addr.port, async (later) => {
      assert.match(await readUntil(later, "\n"), /^hi \d+\n$/, "the freed slot serves b");
    });
  } finally {
    await Promise.all([a.shutdown(), b.shutdown()]);
  }
  assert.equal(slots.taken, 0);
});

Deno.test("serveTcp() shuts down when its signal aborts: listener closed, handlers signalled, finished after they return", async () => {
  const controller = new AbortController();
  const { promise: release, resolve: releaseHandler } = Promise.withResolvers<void>();
  const { promise: signalled, resolve: handlerSignalled } = Promise.withResolvers<void>();
  const server = serveTcp({ port: 0, signal: controller.signal }, async (conn, info) => {
    await conn.write(encoder.encode("hi\n"));
    await new Promise((resolve) => info.signal.addEventListener("abort", resolve, { once: true }));
    handlerSignalled();
    await release;
    await conn.write(encoder.encode("bye\n"));
  });
  const port = server.addr.port;
  const client = await connect(port);
  try {
    assert.equal(await readUntil(client, "\n"), "hi\n");
    let finished = false;
    server.finished.then(() => finished = true);
    controller.abort();
    await signalled;
    await nextTurn();
    assert.equal(finished, false, "finished waits for the handler");
    releaseHandler();
    await server.finished;
    await assertRefused(port);
    assert.equal(
      await readToEnd(client),
      "bye\n",
      "the handler said goodbye, then the conn closed",
    );
    assert.equal(server.connections, 0);
  } finally {
    client.close();
  }
});

Deno.test("serveTcp() shutdown() stops accepting, aborts info.signal and resolves after the handlers", async () => {
  const signals: AbortSignal[] = [];
  const server = serveTcp({ port: 0 }, async (conn, info) => {
    signals.push(info.signal);
    await conn.write(encoder.encode("hi\n"));
    await new Promise((resolve) => info.signal.addEventListener("abort", resolve, { once: true }));
  });
  const port = server.addr.port;
  const client = await connect(port);
  try {
    await readUntil(client, "\n");
    assert.equal(signals[0].aborted, false);
    await server.shutdown();
    assert.equal(signals[0].aborted, true);
    assert.equal(await readToEnd(client), "", "the conn was closed when the handler returned");
    await assertRefused(port);
  } finally {
    client.close();
  }
});

Deno.test("serveTcp() shutdown() twice is safe and both calls settle", async () => {
  const server = serveTcp({ port: 0 }, greeter());
  const client = await connect(server.addr.port);
  await readUntil(client, "\n");
  client.close();
  const first = server.shutdown();
  const second = server.shutdown();
  await Promise.all([first, second, server.finished]);
  await server.shutdown();
});

Deno.test("serveTcp() shuts down at once with an already aborted signal", async () => {
  const server = serveTcp({ port: 0, signal: AbortSignal.abort() }, greeter());
  await server.finished;
  await assertRefused(server.addr.port);
});

Deno.test("serveTcp() force-closes the conn of a handler that ignores the signal after gracePeriodMs", async () => {
  const { promise: reading, resolve: readStarted } = Promise.withResolvers<void>();
  let outcome: unknown = "pending";
  const server = serveTcp({ port: 0, gracePeriodMs: 50 }, async (conn) => {
    readStarted();
    try {
      outcome = await conn.read(new Uint8Array(16)); // ignores info.signal
    } catch (error) {
      outcome = error;
    }
  });
  const client = await connect(server.addr.port);
  try {
    await reading;
    const started = performance.now();
    await server.shutdown();
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 45, `finished after ${elapsed}ms, before the grace period`);
    assert.ok(
      outcome === null || outcome instanceof Deno.errors.Interrupted ||
        outcome instanceof Deno.errors.BadResource,
      `the pending read ended: ${outcome}`,
    );
    assert.equal(await readToEnd(client), "");
  } finally {
    client.close();
  }
});

Deno.test("serveTcp() reports a throwing handler to onHandlerError, closes its conn and keeps serving", async () => {
  const errors: { error: unknown; info: ConnInfo }[] = [];
  const server = serveTcp({
    port: 0,
    onHandlerError: (error, info) => errors.push({ error, info }),
  }, async (conn, info) => {
    if (info.id === 1) throw new Error("boom");
    await greeter()(conn, info);
  });
  try {
    const failing = await connect(server.addr.port);
    assert.equal(await readToEnd(failing), "", "the conn of the failed handler is closed");
    failing.close();
    assert.equal(errors.length, 1);
    assert.equal((errors[0].error as Error).message, "boom");
    assert.equal(errors[0].info.id, 1);
    assert.equal(errors[0].info.remoteAddr.port, (failing.localAddr as Deno.NetAddr).port);

    await withConnection(server.addr.port, async (next) => {
      assert.equal(await readUntil(next, "\n"), "hi 2\n");
      assert.equal(server.connections, 1);
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("serveTcp() frees the slot of a handler that throws before returning a promise", async () => {
  const errors: unknown[] = [];
  const handler: TcpHandler = (conn, info) => {
    if (info.id === 1) throw new Error("sync boom");
    return greeter()(conn, info);
  };
  const server = serveTcp({
    port: 0,
    maxConnections: 1,
    onReject: (conn) => void conn.write(encoder.encode("ERR full\n")).catch(() => {}),
    onHandlerError: (error) => errors.push(error),
  }, handler);
  try {
    const failing = await connect(server.addr.port);
    assert.equal(await readToEnd(failing), "");
    failing.close();
    assert.equal(errors.length, 1);
    await nextTurn();
    assert.equal(server.connections, 0, "the failed connection no longer counts");

    await withConnection(server.addr.port, async (next) => {
      assert.equal(await readUntil(next, "\n"), "hi 2\n", "served, not refused as over the limit");
    });
  } finally {
    await server.shutdown();
  }
});

Deno.test("serveTcp() serves an existing listener and closes it on shutdown", async () => {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  const server = serveTcp({ listener }, greeter());
  assert.equal(server.addr.port, listener.addr.port);
  await withConnection(listener.addr.port, async (client) => {
    assert.equal(await readUntil(client, "\n"), "hi 1\n");
  });
  await server.shutdown();
  await assertRefused(listener.addr.port);
});

Deno.test("serveTcp() reports accept errors with the held count, backs off and keeps accepting", async () => {
  const real = Deno.listen({ hostname: HOST, port: 0 });
  const emfile = () => new Error("Too many open files (os error 24)");
  let accepts = 0;
  let closes = 0;
  const fake = {
    addr: real.addr,
    accept(): Promise<Deno.Conn> {
      accepts++;
      // The first connection is real, the next three accepts fail, then real again.
      if (accepts >= 2 && accepts <= 4) return Promise.reject(emfile());
      return real.accept();
    },
    close(): void {
      closes++;
      real.close();
    },
  } as unknown as Deno.Listener;

  const reported: { error: unknown; held: number; at: number }[] = [];
  const { promise: threeErrors, resolve: gotThreeErrors } = Promise.withResolvers<void>();
  const server = serveTcp({
    listener: fake,
    onAcceptError: (error, held) => {
      reported.push({ error, held, at: performance.now() });
      if (reported.length === 3) gotThreeErrors();
    },
  }, greeter());
  assert.equal(server.addr.port, real.addr.port);

  const first = await connect(real.addr.port);
  const second = await connect(real.addr.port);
  try {
    assert.equal(await readUntil(first, "\n"), "hi 1\n");
    await threeErrors;
    assert.equal(reported.length, 3);
    for (const { error, held } of reported) {
      assert.equal((error as Error).message, "Too many open files (os error 24)");
      assert.equal(held, 1, "the connection already served is held");
    }
    assert.ok(
      reported[2].at - reported[0].at >= 12,
      `backed off between retries (${reported[2].at - reported[0].at}ms for 2 retries)`,
    );
    assert.equal(await readUntil(second, "\n"), "hi 2\n", "served after the errors");
    assert.equal(accepts, 6, "accepting again after the second connection");
  } finally {
    first.close();
    second.close();
  }
  await server.shutdown();
  assert.ok(closes >= 1, "the listener was closed");
  await assertRefused(real.addr.port);
});

/** A listener that delegates to a real one and counts how often it is closed. */
function countingListener(): { listener: Deno.Listener; closes: () => number } {
  const real = Deno.listen({ hostname: HOST, port: 0 });
  let closes = 0;
  const listener = {
    addr: real.addr,
    accept: () => real.accept(),
    close(): void {
      closes++;
      real.close();
    },
  } as unknown as Deno.Listener;
  return { listener, closes: () => closes };
}

Deno.test("serveTcp() shutdown() runs the shutdown sequence once: the listener is closed once", async () => {
  const { listener, closes } = countingListener();
  const server = serveTcp({ listener }, greeter());
  await server.shutdown();
  await server.shutdown();
  assert.equal(closes(), 1);
});

Deno.test("serveTcp() aborting its signal runs the shutdown sequence once: the listener is closed once", async () => {
  const { listener, closes } = countingListener();
  const controller = new AbortController();
  const server = serveTcp({ listener, signal: controller.signal }, greeter());
  controller.abort();
  await server.finished;
  assert.equal(closes(), 1);
});

Deno.test("serveTcp() calls onShutdown once, after accepting stopped and before waiting for the handlers", async () => {
  const events: string[] = [];
  let release = () => {};
  const server = serveTcp({
    port: 0,
    onShutdown: () => {
      events.push("onShutdown");
      release();
    },
  }, async (conn) => {
    await conn.write(encoder.encode("hi\n"));
    await new Promise<void>((resolve) => release = resolve);
    events.push("handler done");
  });
  const port = server.addr.port;
  const client = await connect(port);
  try {
    await readUntil(client, "\n");
    server.shutdown();
    await server.shutdown();
    assert.deepEqual(events, ["onShutdown", "handler done"]);
    await assertRefused(port);
  } finally {
    client.close();
  }
});

Deno.test("serveTcp() sets TCP_NODELAY on each connection unless told not to", async () => {
  for (const noDelay of [undefined, false]) {
    const real = Deno.listen({ hostname: HOST, port: 0 });
    const calls: boolean[] = [];
    const listener = {
      addr: real.addr,
      async accept(): Promise<Deno.Conn> {
        const conn = await real.accept() as Deno.TcpConn;
        const setNoDelay = conn.setNoDelay.bind(conn);
        conn.setNoDelay = (value?: boolean) => (calls.push(value ?? true), setNoDelay(value));
        return conn;
      },
      close: () => real.close(),
    } as unknown as Deno.Listener;
    const server = serveTcp({ listener, noDelay }, greeter());
    await withConnection(real.addr.port, async (conn) => {
      await readUntil(conn, "\n");
    });
    await server.shutdown();
    assert.deepEqual(calls, noDelay === false ? [] : [true]);
  }
});

Deno.test("serveTcp() makes closing a connection twice harmless", async () => {
  const errors: unknown[] = [];
  let closedTwice = false;
  const server = serveTcp({ port: 0, onHandlerError: (error) => errors.push(error) }, (conn) => {
    conn.close();
    conn.close(); // a handler and the server may both close it
    closedTwice = true;
    return Promise.resolve();
  });
  await withConnection(server.addr.port, async (conn) => {
    assert.equal(await readToEnd(conn), "");
  });
  await server.shutdown();
  assert.equal(closedTwice, true);
  assert.deepEqual(errors, []);
});

Deno.test("serveTcp() with handlerCloses leaves a returned handler's conn to it and closes a thrower's", async () => {
  const kept: Deno.Conn[] = [];
  const server = serveTcp(
    { port: 0, handlerCloses: true, onHandlerError: () => {} },
    (conn, info) => {
      if (info.id === 2) return Promise.reject(new Error("boom"));
      kept.push(conn);
      return Promise.resolve(); // returns without closing: the conn is still the handler's
    },
  );
  try {
    await withConnection(server.addr.port, async (client) => {
      await waitFor(() => kept.length === 1 && server.connections === 0, "the handler to return");
      await kept[0].write(encoder.encode("still open\n"));
      assert.equal(await readUntil(client, "\n"), "still open\n");
      kept[0].close();
      assert.equal(await readToEnd(client), "");
    });
    const failing = await connect(server.addr.port);
    assert.equal(await readToEnd(failing), "", "the conn of the failed handler is closed");
    failing.close();
  } finally {
    await server.shutdown();
  }
});

Deno.test("serveTcp() calls onListen once with the bound address before it returns", () => {
  const heard: Deno.NetAddr[] = [];
  const server = serveTcp({ port: 0, onListen: (addr) => heard.push(addr) }, greeter());
  try {
    assert.equal(heard.length, 1);
    assert.deepEqual(heard[0], server.addr);
    assert.ok(heard[0].port > 0, "the real port, not 0");
  } finally {
    server.shutdown();
  }
  return server.finished;
});

Deno.test("serveTcp() closes the listener and rethrows when onListen throws", async () => {
  let port = 0;
  assert.throws(() =>
    serveTcp({
      port: 0,
      onListen: (addr) => {
        port = addr.port;
        throw new Error("no thanks");
      },
    }, greeter()), /no thanks/);
  await assertRefused(port);
});

Deno.test("serveTcp() prints a handler's error to stderr when no onHandlerError is given", async () => {
  const printed: unknown[][] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => printed.push(args);
  try {
    const server = serveTcp({ port: 0 }, () => Promise.reject(new Error("handler broke")));
    await withConnection(server.addr.port, async (conn) => {
      assert.equal(await readToEnd(conn), "", "the failed handler's conn is closed");
    });
    await server.shutdown();
  } finally {
    console.error = consoleError;
  }
  assert.equal(printed.length, 1);
  assert.match(String(printed[0][0]), /connection 1 \(127\.0\.0\.1:\d+\) failed/);
  assert.equal((printed[0][1] as Error).message, "handler broke");
});

Deno.test("serveTcp() with await using shuts down at the end of the scope", async () => {
  let port = 0;
  {
    await using server = serveTcp({ port: 0 }, greeter());
    port = server.addr.port;
    await withConnection(port, async (conn) => {
      assert.equal(await readUntil(conn, "\n"), "hi 1\n");
    });
  }
  await assertRefused(port);
});

Deno.test("serveTcp() gives each connection its own signal, aborted when the shutdown starts", async () => {
  const infos: ConnInfo[] = [];
  const server = serveTcp({ port: 0 }, async (conn, info) => {
    infos.push(info);
    await conn.write(encoder.encode("hi\n"));
    await new Promise((resolve) => info.signal.addEventListener("abort", resolve, { once: true }));
  });
  const [a, b] = [await connect(server.addr.port), await connect(server.addr.port)];
  try {
    await readUntil(a, "\n");
    await readUntil(b, "\n");
    assert.notEqual(infos[0].signal, infos[1].signal, "one signal per connection");
    assert.equal(infos[0].shutdownSignal, infos[1].shutdownSignal, "one shutdown signal for all");
    assert.equal(infos[0].signal.aborted, false);
    await server.shutdown();
    for (const info of infos) {
      assert.equal(info.signal.aborted, true);
      assert.equal(info.signal.reason.name, "AbortError");
      assert.equal(info.signal.reason, info.shutdownSignal.reason);
    }
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("serveTcp() aborts a connection's signal when its handler settles, and not another's", async () => {
  const infos: ConnInfo[] = [];
  const server = serveTcp({ port: 0 }, async (conn, info) => {
    infos.push(info);
    info.signal; // first use: made now, while the handler runs
    await greeter()(conn, info);
  });
  const [a, b] = [await connect(server.addr.port), await connect(server.addr.port)];
  try {
    await readUntil(a, "\n");
    await readUntil(b, "\n");
    const [infoA, infoB] = infos[0].remoteAddr.port === (a.localAddr as Deno.NetAddr).port
      ? infos
      : [infos[1], infos[0]];
    a.close(); // A's handler returns
    await waitFor(() => infoA.signal.aborted, "the signal of the finished connection");
    assert.match(infoA.signal.reason.message, /handler has finished/);
    assert.equal(infoB.signal.aborted, false);
    assert.equal(infoB.shutdownSignal.aborted, false);
  } finally {
    b.close();
    await server.shutdown();
  }
});

Deno.test("serveTcp() gives a signal first used after the shutdown started already aborted", async () => {
  const { promise: stopping, resolve: shutdownStarted } = Promise.withResolvers<void>();
  let late: AbortSignal | undefined;
  const server = serveTcp({ port: 0 }, async (conn, info) => {
    await conn.write(encoder.encode("hi\n"));
    await stopping;
    late = info.signal;
  });
  const client = await connect(server.addr.port);
  try {
    await readUntil(client, "\n");
    const finished = server.shutdown();
    shutdownStarted();
    await finished;
    assert.equal(late?.aborted, true);
  } finally {
    client.close();
  }
});

Deno.test("serveTcp() refuses tls or reusePort with an existing listener", () => {
  const listener = Deno.listen({ hostname: HOST, port: 0 });
  try {
    assert.throws(
      () => serveTcp({ listener, reusePort: true }, greeter()),
      { name: "TypeError", message: /Cannot use tls or reusePort with an existing listener/ },
    );
  } finally {
    listener.close();
  }
});

/** A throw-away certificate, as PEM text. */
async function testCertificate(): Promise<{ cert: string; key: string }> {
  const files = await generateTestCert();
  try {
    return {
      cert: await Deno.readTextFile(files.certFile),
      key: await Deno.readTextFile(files.keyFile),
    };
  } finally {
    await Deno.remove(files.dir, { recursive: true });
  }
}

Deno.test("serveTcp() with tls serves a TLS client after the handshake", async () => {
  const tls = await testCertificate();
  const handshakes: boolean[] = [];
  await using server = serveTcp({ port: 0, tls }, async (conn) => {
    // The handshake is done before the handler runs: this resolves at once.
    await (conn as Deno.TlsConn).handshake();
    handshakes.push(true);
    await conn.write(encoder.encode("secret hello\n"));
  });
  const client = await Deno.connectTls({
    hostname: HOST,
    port: server.addr.port,
    caCerts: [tls.cert],
  });
  try {
    assert.equal(await new Response(client.readable).text(), "secret hello\n");
    assert.deepEqual(handshakes, [true]);
  } finally {
    try {
      client.close();
    } catch {
      // The readable's end closed it.
    }
  }
});

Deno.test("serveTcp() closes a TLS connection whose handshake misses its deadline, before its handler", async () => {
  const tls = await testCertificate();
  const failures: unknown[] = [];
  let handled = 0;
  await using server = serveTcp({
    port: 0,
    tls: { ...tls, handshakeTimeoutMs: 50 },
    onHandshakeError: (error) => failures.push(error),
  }, () => {
    handled++;
    return Promise.resolve();
  });
  const silent = await connect(server.addr.port); // plain TCP: never says ClientHello
  try {
    // (The peer may not see the close: Deno does not close a TlsConn's socket before a
    // handshake began; scripts/repro/tls_close_before_handshake.ts.)
    await waitFor(() => failures.length === 1, "the handshake failure");
    assert.equal((failures[0] as DOMException).name, "TimeoutError");
    assert.match((failures[0] as Error).message, /TLS handshake did not complete within 50ms/);
    assert.equal(handled, 0, "the handler never ran");
    assert.equal(server.connections, 0);
  } finally {
    silent.close();
  }
});

Deno.test("serveTcp() with handshakeByHandler runs the handler before any handshake", async () => {
  const tls = await testCertificate();
  const { promise: handled, resolve: handlerRan } = Promise.withResolvers<void>();
  await using server = serveTcp({
    port: 0,
    tls: { ...tls, handshakeByHandler: true, handshakeTimeoutMs: 1 },
    onHandshakeError: () => assert.fail("serveTcp did a handshake"),
  }, async (conn) => {
    handlerRan();
    await conn.read(new Uint8Array(16)).catch(() => null); // ends when the client leaves
  });
  const silent = await connect(server.addr.port); // plain TCP: never says ClientHello
  try {
    await handled;
    assert.equal(server.connections, 1);
  } finally {
    silent.close();
  }
});

Deno.test("serveTcp() with reusePort shares a port under --unstable-net and explains itself without it", async () => {
  const serveTcpUrl = new URL("./serve_tcp.ts", import.meta.url).href;
  const program = `
    import { serveTcp } from ${JSON.stringify(serveTcpUrl)};
    const handler = () => Promise.resolve();
    try {
      const first = serveTcp({ port: 0, reusePort: true }, handler);
      const second = serveTcp({ port: first.addr.port, reusePort: true }, handler);
      console.log(second.addr.port === first.addr.port ? "shared" : "different");
      await Promise.all([first.shutdown(), second.shutdown()]);
    } catch (error) {
      console.log(error.message);
    }
  `;
  const run = async (flags: string[]) => {
    const { stdout } = await new Deno.Command("deno", {
      args: ["eval", ...flags, program],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    return new TextDecoder().decode(stdout).trim();
  };
  assert.equal(await run(["--unstable-net"]), "shared");
  assert.equal(await run([]), "Cannot listen with reusePort: run deno with --unstable-net");
});
