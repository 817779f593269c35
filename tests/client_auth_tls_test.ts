/**
 * Integration tests of the client's token and TLS options, and of the launcher passing
 * them on: real server, client and launcher processes. The token must get through from
 * each of its sources (`--token`, `PARROT_TOKEN`, `--token-file`) and must never be
 * printed; TLS must carry messages and relays with a CA the user gives.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  CLIENT_RUN_ARGS,
  DENO,
  generateTestCert,
  runDeno,
  type Running,
  spawn,
  startServer,
  type TestCert,
  waitFor,
} from "../lib/testing.ts";

const TOKEN = "correct-horse-battery-staple";
const WRONG = "not-the-right-token-42";

/** Runs a client to completion with `--count 2 --interval 10ms --message squawk`. */
function runClient(
  port: number,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const client = spawn(DENO, [
    ...CLIENT_RUN_ARGS,
    String(port),
    "--count",
    "2",
    "--interval",
    "10ms",
    "--message",
    "squawk",
    ...args,
  ], { env });
  return client.status.then((status) => ({
    code: status.code,
    stdout: client.stdout.text(),
    stderr: client.stderr.text(),
  }));
}

function pidOf(stdout: string): string {
  const pid = stdout.match(/^client\((\d+)\): running\.\.\.$/m)?.[1];
  assert.ok(pid, stdout);
  return pid;
}

function assertOneClearError(stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line expected:\n${stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(stderr, /^\s+at /m, "a stack trace was printed");
}

function assertNoSecret(...outputs: string[]): void {
  for (const output of outputs) {
    assert.ok(
      !output.includes(TOKEN) && !output.includes(WRONG),
      `a token was printed:\n${output}`,
    );
  }
}

async function withServer(
  args: string[],
  body: (port: number, stdout: () => string) => Promise<void>,
): Promise<void> {
  const server = await startServer(args);
  try {
    await body(server.port, () => server.stdout.text());
  } finally {
    server.kill("SIGINT");
    await server.status;
  }
}

async function withTokenFile(
  contents: string,
  body: (path: string) => Promise<void>,
): Promise<void> {
  const path = await Deno.makeTempFile({ prefix: "parrot-token-" });
  try {
    await Deno.writeTextFile(path, contents);
    await body(path);
  } finally {
    await Deno.remove(path);
  }
}

async function withCert(body: (cert: TestCert) => Promise<void>): Promise<void> {
  const cert = await generateTestCert();
  try {
    await body(cert);
  } finally {
    await Deno.remove(cert.dir, { recursive: true });
  }
}

Deno.test("client with the right --token gets its messages through", async () => {
  await withServer(["--token", TOKEN], async (port, serverOut) => {
    const client = await runClient(port, ["--token", TOKEN]);
    assert.equal(client.code, 0, client.stderr);
    const pid = pidOf(client.stdout);
    await waitFor(() => serverOut() === `${pid}: squawk\n`.repeat(2), "both messages printed");
    assertNoSecret(client.stdout, client.stderr);
  });
});

Deno.test("client with a wrong token says so in one line and exits 1, without printing it", async () => {
  await withServer(["--token", TOKEN], async (port, serverOut) => {
    for (const extra of [[], ["--reconnect"]]) {
      const client = await runClient(port, ["--token", WRONG, ...extra]);
      assert.equal(client.code, 1, `${extra}: ${client.stdout}${client.stderr}`);
      assertOneClearError(
        client.stderr,
        /^client\(\d+\): the server refused the token .*ERR unauthorized$/,
      );
      assert.doesNotMatch(client.stdout, /reconnecting|retrying/, "no retry after unauthorized");
      assert.doesNotMatch(
        client.stdout,
        /write/,
        `${extra}: a write was claimed before the refusal`,
      );
      assertNoSecret(client.stdout, client.stderr);
    }
    assert.equal(serverOut(), "", "nothing from an unauthorized client is printed");
  });
});

Deno.test("client reads the token from PARROT_TOKEN when no token option is given", async () => {
  await withServer(["--token", TOKEN], async (port, serverOut) => {
    const client = await runClient(port, [], { PARROT_TOKEN: TOKEN });
    assert.equal(client.code, 0, client.stderr);
    const pid = pidOf(client.stdout);
    await waitFor(() => serverOut().includes(`${pid}: squawk\n`), "a message printed");

    const without = await runClient(port, []);
    assert.equal(without.code, 1, without.stderr);
    assert.match(without.stderr, /ERR unauthorized/);
  });
});

Deno.test("client reads the token from the first line of --token-file", async () => {
  await withServer(["--token", TOKEN], async (port, serverOut) => {
    await withTokenFile(`${TOKEN}\nthe rest is ignored\n`, async (path) => {
      // --token-file wins over the environment.
      const client = await runClient(port, ["--token-file", path], { PARROT_TOKEN: WRONG });
      assert.equal(client.code, 0, client.stderr);
      const pid = pidOf(client.stdout);
      await waitFor(() => serverOut().includes(`${pid}: squawk\n`), "a message printed");
      assertNoSecret(client.stdout, client.stderr);
    });
  });
});

Deno.test("client rejects a missing or empty --token-file and conflicting token options", async () => {
  await withTokenFile("\n", async (empty) => {
    const mistakes: [string[], RegExp][] = [
      [["--token-file", "/nonexistent/token"], /Cannot read --token-file .*: no such file$/],
      [["--token-file", empty], /Cannot use the token from --token-file .*: it is empty$/],
      [["--token", TOKEN, "--token-file", empty], /both --token and --token-file/],
      [["--token", ""], /Cannot use the token from --token: it is empty$/],
      [["--ca", "/nonexistent/ca.pem"], /Cannot read --ca ".*": no such file$/],
      [["--ca", empty], /Cannot use --ca ".*": it holds no PEM certificate$/],
    ];
    for (const [args, pattern] of mistakes) {
      const { code, stderr } = await runDeno([...CLIENT_RUN_ARGS, "1234", ...args]);
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      const [line, hint] = stderr.trim().split("\n");
      assert.match(line, /^error: /);
      assert.match(line, pattern);
      assert.match(hint, /deno task client --help/);
      assertNoSecret(stderr);
    }
  });
});

Deno.test("client --help does not show the token from the environment", async () => {
  const help = spawn(DENO, [...CLIENT_RUN_ARGS, "--help"], { env: { PARROT_TOKEN: TOKEN } });
  assert.equal((await help.status).code, 0);
  assert.match(help.stdout.text(), /--token-file <path>/);
  assertNoSecret(help.stdout.text(), help.stderr.text());
});

Deno.test("clients with --ca talk to a TLS server, relay included", async () => {
  await withCert(async (cert) => {
    const tls = ["--tls-cert", cert.certFile, "--tls-key", cert.keyFile];
    await withServer(tls, async (port, serverOut) => {
      const listener = spawn(DENO, [
        ...CLIENT_RUN_ARGS,
        String(port),
        "--ca",
        cert.certFile,
        "--interval",
        "1m",
        "--message",
        "first",
      ]);
      try {
        await listener.stdout.waitForText("write 5 bytes");
        await waitFor(() => serverOut().includes(": first\n"), "the listener's message");
        const talker = await runClient(port, ["--ca", cert.certFile]);
        assert.equal(talker.code, 0, talker.stderr);
        const pid = pidOf(talker.stdout);
        await waitFor(
          () => serverOut().includes(`${pid}: squawk\n${pid}: squawk\n`),
          "the talker's messages",
        );
        await listener.stdout.waitForText(/read 6 bytes[^]*read 6 bytes/);
      } finally {
        listener.child.kill("SIGINT");
        assert.equal((await listener.status).code, 0, listener.stderr.text());
      }
    });
  });
});

Deno.test("client --tls without the server's CA fails in one line and exits 1", async () => {
  await withCert(async (cert) => {
    await withServer(["--tls-cert", cert.certFile, "--tls-key", cert.keyFile], async (port) => {
      const client = await runClient(port, ["--tls"]);
      assert.equal(client.code, 1);
      assertOneClearError(
        client.stderr,
        /^client\(\d+\): cannot connect to 127\.0\.0\.1:\d+: .*certificate/i,
      );
    });
  });
});

/**
 * The command line of a running process, as `ps` shows it to every user (read through
 * `sh`: Deno grants /proc only with --allow-all).
 */
async function commandLine(pid: number): Promise<string> {
  const { stdout } = await new Deno.Command("sh", {
    args: ["-c", 'cat "/proc/$1/cmdline"', "sh", String(pid)],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(stdout).replaceAll("\0", " ");
}

Deno.test("launcher passes --token-file and --ca to its clients, which get through", async () => {
  await withCert(async (cert) => {
    const tls = ["--tls-cert", cert.certFile, "--tls-key", cert.keyFile];
    await withServer(["--token", TOKEN, ...tls], async (port, serverOut) => {
      await withTokenFile(`${TOKEN}\n`, async (tokenFile) => {
        const launcher = await runDeno([
          "task",
          "-q",
          "clients",
          String(port),
          "--count",
          "2",
          "--stagger",
          "0",
          "--interval",
          "10ms",
          "--messages",
          "2",
          "--token-file",
          tokenFile,
          "--ca",
          cert.certFile,
        ]);
        assert.equal(launcher.code, 0, launcher.stdout + launcher.stderr);
        const pids = [...launcher.stdout.matchAll(/^client\((\d+)\): running/gm)].map((m) => m[1]);
        assert.equal(pids.length, 2, launcher.stdout);
        for (const pid of pids) {
          await waitFor(
            () => serverOut().split(`${pid}: `).length - 1 === 2,
            `two messages from client ${pid}`,
          );
        }
      });
    });
  });
});

Deno.test("launcher hands --token to its clients in the environment, not on their command line", async () => {
  await withServer(["--token", TOKEN], async (port, serverOut) => {
    const launcher: Running = spawn(DENO, [
      "task",
      "-q",
      "clients",
      String(port),
      "--count",
      "1",
      "--interval",
      "1m",
      "--token",
      TOKEN,
    ]);
    try {
      const output = await launcher.stdout.waitForText(/^client\(\d+\): write /m);
      const pid = Number(output.match(/^client\((\d+)\): running/m)![1]);
      await waitFor(() => serverOut().startsWith(`${pid}: `), "the client's message");
      const argv = await commandLine(pid);
      assert.match(argv, /client\.ts/);
      assert.ok(!argv.includes(TOKEN), `the token is on the client's command line: ${argv}`);
      assert.doesNotMatch(argv, /--allow-read/, "no file to read, no read permission");
    } finally {
      launcher.child.kill("SIGTERM");
      assert.equal((await launcher.status).code, 0, launcher.stderr.text());
    }
    assertNoSecret(launcher.stdout.text(), launcher.stderr.text());
  });
});

Deno.test("launcher rejects conflicting token options and stray reconnect options", async () => {
  const mistakes: [string[], RegExp][] = [
    [["--token", TOKEN, "--token-file", "t"], /both --token and --token-file/],
    [["--max-unsent", "5"], /Cannot use --max-unsent without --reconnect/],
    [["--reconnect", "--reconnect-attempts", "0"], /--reconnect-attempts "0"/],
    [["--ca", "a,b.pem"], /must not contain a comma/],
  ];
  for (const [args, pattern] of mistakes) {
    const { code, stderr } = await runDeno(["task", "-q", "clients", "1234", ...args]);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr.split("\n")[0], /^error: /);
    assert.match(stderr, pattern);
    assertNoSecret(stderr);
  }
});
