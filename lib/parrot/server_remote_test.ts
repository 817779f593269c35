/**
 * The server's `remote` option (cluster mode's way in): other servers' messages are relayed
 * to the subscribed clients with their sender's name, printed only with `printRemote`.
 */

import assert from "node:assert/strict";
import { RemoteInbox } from "../cluster/remote_inbox.ts";
import { RawClient, RecordingWriter, waitFor } from "../testing.ts";
import type { MessageHistory, StoredMessage } from "./message_history.ts";
import { startParrotServer } from "./server.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

for (const printRemote of [false, true]) {
  Deno.test(`startParrotServer() relays remote messages to every subscriber, printRemote ${printRemote}`, async () => {
    const inbox = new RemoteInbox();
    const output = new RecordingWriter();
    const server = startParrotServer({ port: 0, output, remote: inbox, printRemote });
    const ann = await RawClient.connect(server.addr.port);
    const carl = await RawClient.connect(server.addr.port);
    try {
      await ann.write("HELLO ann\nPING\n");
      await carl.write("HELLO carl\nPING\n");
      await waitFor(
        () => ann.received.text() === "PONG\n" && carl.received.text() === "PONG\n",
        "PONGs",
      );
      const binary = Uint8Array.of(0, 10, 255, 77, 83, 71, 10);
      inbox.push("east", "bob", bytes("hello"));
      inbox.push("east", "bob", binary);
      await ann.write("MSG 4\nmine\n");
      const expected = "MSG bob 5\nhello\nMSG bob 7\n\0\n\xffMSG\n\n";
      await waitFor(() => ann.received.text().includes("MSG bob 7"), "remote messages for ann");
      await waitFor(() => carl.received.text().includes("MSG ann 4"), "ann's message for carl");
      assert.equal(
        new TextDecoder("latin1").decode(ann.received.bytes()),
        "PONG\n" + expected,
        "ann: the remote ones, not her own",
      );
      assert.ok(new TextDecoder("latin1").decode(carl.received.bytes()).includes(expected));
      await ann.write("PING\n");
      await waitFor(() => ann.received.text().endsWith("PONG\n"), "the barrier");
      const printed = new TextDecoder().decode(output.bytes());
      assert.ok(printed.includes("ann: mine\n"));
      assert.equal(printed.includes("bob@east: hello\n"), printRemote, printed);
      assert.ok(!printed.includes("bob: "), "never as a local sender");
    } finally {
      await ann.close();
      await carl.close();
      await server.shutdown();
    }
  });
}

Deno.test("startParrotServer() records remote messages in its history and hands them to onRemote", async () => {
  const inbox = new RemoteInbox();
  const recorded: StoredMessage[] = [];
  const history: MessageHistory = {
    get lastId() {
      return recorded.length;
    },
    recordRange: (from, bytes, start, end) =>
      void recorded.push({ sender: from, payload: bytes.slice(start, end) }),
    last: (n, upToId = recorded.length) => recorded.slice(0, upToId).slice(-n),
  };
  const seen: string[] = [];
  const server = startParrotServer({
    port: 0,
    output: new RecordingWriter(),
    remote: inbox,
    history,
    onRemote: (origin, from, payload) =>
      seen.push(`${from}@${origin}: ${new TextDecoder().decode(payload)}`),
  });
  const ann = await RawClient.connect(server.addr.port);
  try {
    await ann.write("HELLO ann\nMSG 4\nmine\nPING\n");
    await waitFor(() => ann.received.text() === "PONG\n", "ann's PONG");
    inbox.push("east", "bob", bytes("hello"));
    await waitFor(() => recorded.length === 2, "the remote message recorded");
    assert.deepEqual(seen, ["bob@east: hello"]);
    assert.equal(ann.received.text(), "PONG\nMSG bob 5\nhello\n", "live, as ever");
    // A client that comes later gets both from the history, in the order relayed.
    const carl = await RawClient.connect(server.addr.port);
    await carl.write("HISTORY 5\nPING\n");
    await waitFor(() => carl.received.text().endsWith("PONG\n"), "carl's replay");
    assert.equal(carl.received.text(), "MSG ann 4\nmine\nMSG bob 5\nhello\nPONG\n");
    await carl.close();
  } finally {
    await ann.close();
    await server.shutdown();
  }
});
