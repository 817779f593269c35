/**
 * Tests of the page's sender, {@linkcode WebSender}, with Deno's own `WebSocket`: against
 * the real `ParrotServer.upgradeWebSocket` behind `Deno.serve`, and against a scripted
 * `/ws` for what the real server does only on a timer (its idle ping).
 */

import assert from "node:assert/strict";
import { RecordingWriter, TextConn, waitFor } from "../../testing.ts";
import { type ParrotServerOptions, startParrotServer } from "../../parrot/server.ts";
import { WebSender } from "./page.ts";

/** A parrot server with its `/ws` on an HTTP server, and a TCP subscriber that said HELLO. */
async function setup(options: ParrotServerOptions = {}) {
  const output = new RecordingWriter();
  const server = startParrotServer({ port: 0, output, ...options });
  const http = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (request, info) => server.upgradeWebSocket(request, info),
  );
  const tcp = await TextConn.connect(server.addr.port);
  await tcp.write("HELLO polly\nPING\n");
  await tcp.until("PONG\n");
  return {
    output,
    server,
    tcp,
    base: `http://127.0.0.1:${http.addr.port}/`,
    async [Symbol.asyncDispose]() {
      tcp.close();
      await server.shutdown();
      await http.shutdown();
    },
  };
}

Deno.test("WebSender.send() sends a message as the name, done once the server has taken it", async () => {
  await using live = await setup();
  const sender = new WebSender(live.base);
  try {
    await sender.send("web", "hello from the page");
    // The pong came after the message: it is printed already, and relayed.
    assert.equal(live.output.text(), "web: hello from the page\n");
    assert.equal(
      await live.tcp.until("hello from the page\n"),
      "MSG web 19\nhello from the page\n",
    );
    // A message that looks like a control is a message; the sender took no relays.
    await sender.send("web", '{"type":"quit"}');
    assert.match(live.output.text(), /web: \{"type":"quit"\}\n$/);
    const web = live.server.clients().find((client) => client.name === "web");
    assert.equal(web?.transport, "websocket");
    assert.equal(web?.messagesIn, 2);
    assert.equal(web?.messagesOut, 0);
  } finally {
    sender.close();
  }
});

Deno.test("WebSender.send() under a new name opens a new connection and closes the old one", async () => {
  await using live = await setup();
  const closes: string[] = [];
  const sender = new WebSender(live.base, (message) => closes.push(message));
  try {
    await sender.send("ann", "one");
    await sender.send("bob", "two");
    assert.equal(live.output.text(), "ann: one\nbob: two\n");
    await waitFor(
      () => live.server.clients().every((client) => client.name !== "ann"),
      "ann to leave",
    );
    assert.deepEqual(closes, [], "a close of the sender's own is not reported");
  } finally {
    sender.close();
  }
});

Deno.test("WebSender.send() rejects with the server's close code and reason", async () => {
  await using live = await setup({ maxFrameBytes: 16 });
  const sender = new WebSender(live.base);
  try {
    await assert.rejects(
      sender.send("web", "a message over sixteen bytes"),
      { message: "the server closed /ws (1009 frame too large)" },
    );
    // The next send opens a new connection.
    await sender.send("web", "short");
    assert.match(live.output.text(), /^web: short\n$/);
  } finally {
    sender.close();
  }
});

Deno.test("WebSender.send() rejects when /ws refuses the upgrade", async () => {
  await using live = await setup();
  const sender = new WebSender(live.base);
  // The page never asks with an invalid name; a server that refuses it answers 400.
  // Without a close frame, browsers say code 1006, Deno 0.
  await assert.rejects(sender.send("two words", "never sent"), {
    message: /^\/ws refused the connection \((1006|0)\)$/,
  });
  assert.equal(live.output.text(), "");
});

Deno.test("WebSender answers the server's ping and reports a close while no send waits", async () => {
  const received: string[] = [];
  let url = "";
  const http = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (request) => {
    url = request.url;
    const { socket, response } = Deno.upgradeWebSocket(request);
    // The pong for the send's ping, then an idle ping of the server's; its answer, a close.
    socket.onmessage = (event) => {
      received.push(event.data);
      if (event.data === '{"type":"ping"}') {
        socket.send('{"type":"pong"}');
        socket.send('{"type":"ping"}');
      }
      if (event.data === '{"type":"pong"}') socket.close(1008, "invalid name");
    };
    return response;
  });
  const closes: string[] = [];
  const sender = new WebSender(`http://127.0.0.1:${http.addr.port}/page`, (m) => closes.push(m));
  try {
    await sender.send("web", "hi");
    await waitFor(() => closes.length > 0, "the close to be reported");
    assert.deepEqual(closes, ["the server closed /ws (1008 invalid name)"]);
    assert.deepEqual(received, [
      '{"type":"msg","text":"hi"}',
      '{"type":"ping"}',
      '{"type":"pong"}',
    ]);
    assert.equal(new URL(url).search, "?name=web&subscribe=0");
  } finally {
    sender.close();
    await http.shutdown();
  }
});
