/**
 * Integration tests of the client's promise that exit 0 means the server took every
 * message: it waits for the server's `PONG` after `AUTH` and `HELLO` before it writes,
 * and after its last message before it exits 0. A server that does not answer (a TLS
 * server spoken to in plain TCP, a silent listener, one that stops answering) makes it
 * exit 1 with one line, and a hint when nothing at all came back.
 *
 * @module
 */

import assert from "node:assert/strict";
import { generateTestCert } from "../lib/testing.ts";
import { CLIENT_RUN_ARGS, DENO, spawn, startServer } from "../lib/testing.ts";

/** Runs the client task's command to completion. */
async function runClient(
  port: number,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const client = spawn(DENO, [...CLIENT_RUN_ARGS, String(port), ...args]);
  const status = await client.status;
  return { code: status.code, stdout: client.stdout.text(), stderr: client.stderr.text() };
}

function assertOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line expected:\n${stderr}`);
  assert.match(lines[0], pattern);
}

/**
 * A listener that reads everything and answers only the first `answers` PINGs with
 * PONG (none: a silent server). Closes every connection when disposed.
 */
function answeringListener(answers: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  let pings = 0;
  const serving = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      (async () => {
        const decoder = new TextDecoder();
        const buffer = new Uint8Array(64 * 1024);
        let text = "";
        try {
          for (let n; (n = await conn.read(buffer)) !== null;) {
            text += decoder.decode(buffer.subarray(0, n), { stream: true });
            const seen = text.split("\n").filter((line) => line === "PING").length;
            for (; pings < Math.min(seen, answers); pings++) {
              await conn.write(new TextEncoder().encode("PONG\n"));
            }
          }
        } catch {
          // Closed on dispose.
        }
      })();
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch {
          // Closed by the client.
        }
      }
      await serving;
    },
  };
}

Deno.test("client without --tls against a TLS server exits 1 with a hint to try --tls, writing nothing", async () => {
  const cert = await generateTestCert();
  const server = await startServer(["--tls-cert", cert.certFile, "--tls-key", cert.keyFile]);
  try {
    const client = await runClient(server.port, ["--count", "2", "--interval", "10ms"]);
    assert.equal(client.code, 1, client.stdout + client.stderr);
    assertOneLine(client.stderr, /^client\(\d+\): .*\(does the server speak TLS\? try --tls\)$/);
    assert.doesNotMatch(client.stdout, /write/, "a write was claimed");
  } finally {
    server.kill("SIGINT");
    await server.status;
    await Deno.remove(cert.dir, { recursive: true });
  }
});

Deno.test("client against a listener that never answers exits 1 after --confirm-timeout", async () => {
  await using silent = answeringListener(0);
  const hint = String
    .raw`the server did not confirm the connection within 200ms \(does the server speak TLS\? try --tls\)`;
  for (
    const [mode, expected] of [
      [[], new RegExp(`^client\\(\\d+\\): ${hint}$`)],
      [
        ["--reconnect", "--reconnect-attempts", "1"],
        new RegExp(`^client\\(\\d+\\): giving up after 1 attempt: ${hint}$`),
      ],
    ] as const
  ) {
    const client = await runClient(silent.port, [
      ...mode,
      "--count",
      "2",
      "--confirm-timeout",
      "200ms",
    ]);
    assert.equal(client.code, 1, client.stdout + client.stderr);
    assertOneLine(client.stderr, expected);
    assert.doesNotMatch(client.stdout, /write/, "a write was claimed");
  }
});

Deno.test("client whose last messages the server does not confirm exits 1, with or without --reconnect", async () => {
  // Without --reconnect nothing is kept; with it, both messages are, unconfirmed.
  const modes: [string[], string][] = [
    [[], ""],
    [["--reconnect"], " \\(2 unconfirmed messages\\)"],
  ];
  for (const [mode, unconfirmed] of modes) {
    await using halfDeaf = answeringListener(1);
    const client = await runClient(halfDeaf.port, [
      ...mode,
      "--count",
      "2",
      "--interval",
      "10ms",
      "--confirm-timeout",
      "200ms",
    ]);
    assert.equal(client.code, 1, client.stdout + client.stderr);
    assert.match(client.stdout, /write \d+ bytes/);
    assertOneLine(
      client.stderr,
      new RegExp(
        `^client\\(\\d+\\): the server did not confirm the messages within 200ms${unconfirmed}$`,
      ),
    );
  }
});

Deno.test("client --count exits 0 once the server has printed every message", async () => {
  const server = await startServer();
  try {
    for (const mode of [[], ["--reconnect"]]) {
      const before = server.stdout.text();
      const client = await runClient(server.port, [
        ...mode,
        "--count",
        "3",
        "--interval",
        "10ms",
        "--message",
        "hi",
      ]);
      assert.equal(client.code, 0, client.stderr);
      const pid = client.stdout.match(/^client\((\d+)\)/)?.[1];
      // No waiting: the PONG the client waited for says the messages are on stdout.
      assert.equal(server.stdout.text(), before + `${pid}: hi\n`.repeat(3), `${mode}`);
    }
  } finally {
    server.kill("SIGINT");
    await server.status;
  }
});

Deno.test("client --confirm-timeout rejects a bad duration in one line", async () => {
  const client = await runClient(1234, ["--confirm-timeout", "soon"]);
  assert.equal(client.code, 2);
  assert.match(client.stderr, /^error: Cannot use --confirm-timeout "soon": /);
});
