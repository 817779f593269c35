/**
 * The README's commands work as written: its TLS recipe makes a certificate that a TLS
 * server and a `--ca` client accept, its quick-start client step prints what the README
 * shows, every `deno task <name>` in the README and docs/ is a task of deno.json, and the
 * echo example it shows is examples/echo_server.ts as it is. The commands are taken from
 * the README itself; only the port (0, then the one the server took) and the certificate
 * paths (a temporary directory) are put in.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const README = new URL("README.md", ROOT);

/** The fenced blocks of a Markdown text (their language and body), in order. */
function fencedBlocks(markdown: string): { lang: string; body: string }[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((match) => ({
    lang: match[1],
    body: match[2],
  }));
}

/** The text of one `## ` section of the README, heading excluded. */
async function readmeSection(heading: string): Promise<string> {
  const readme = await Deno.readTextFile(README);
  const start = readme.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `the README has no "## ${heading}" section`);
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The command lines of a shell block, comments and continuation lines joined. */
function commandLines(body: string): string[] {
  return body.replace(/\\\n\s*/g, "").split("\n")
    .map((line) => line.replace(/\s+#.*$/, "").trim())
    .filter((line) => line.length > 0);
}

/** A running process whose stdout and stderr are collected as they come. */
class Running {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  #changed = Promise.withResolvers<void>();

  constructor(command: string[]) {
    const [program, ...args] = command;
    this.child = new Deno.Command(program, {
      args,
      cwd: ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#outputEnded = Promise.all([
      this.#collect(this.child.stdout, (text) => this.stdout += text),
      this.#collect(this.child.stderr, (text) => this.stderr += text),
    ]);
  }

  #outputEnded: Promise<unknown>;

  async #collect(stream: ReadableStream<Uint8Array>, append: (text: string) => void) {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      append(text);
      this.#changed.resolve();
      this.#changed = Promise.withResolvers();
    }
  }

  /** Waits for the process to exit and its output to end. */
  async finished(): Promise<{ code: number; stdout: string; stderr: string }> {
    const { code } = await this.child.status;
    await this.#outputEnded;
    return { code, stdout: this.stdout, stderr: this.stderr };
  }

  /** Waits until the stream's text matches; fails when the process ends first. */
  async waitFor(stream: "stdout" | "stderr", pattern: RegExp): Promise<RegExpMatchArray> {
    const signal = AbortSignal.timeout(60_000); // A safety net against a hang, not a timing check.
    const aborted = new Promise<"aborted">((resolve) =>
      signal.addEventListener("abort", () => resolve("aborted"), { once: true })
    );
    const ended = this.#outputEnded.then(() => "ended" as const);
    while (true) {
      const match = this[stream].match(pattern);
      if (match) return match;
      const what = await Promise.race([
        this.#changed.promise.then(() => "changed"),
        ended,
        aborted,
      ]);
      if (what !== "changed" && !this[stream].match(pattern)) {
        assert.fail(
          `${stream} never matched ${pattern} (${what}):\n${this[stream]}\n${this.stderr}`,
        );
      }
    }
  }
}

/** Starts a README server command on port 0 and returns it with the port it took. */
async function startServer(line: string): Promise<{ server: Running; port: number }> {
  const words = line.split(/\s+/);
  assert.deepEqual(words.slice(0, 3), ["deno", "task", "server"], line);
  assert.match(words[3], /^\d+$/, `no port in ${line}`);
  const server = new Running([...words.slice(0, 3), "0", ...words.slice(4)]);
  const [, port] = await server.waitFor("stderr", /listening on \S+:(\d+)/);
  return { server, port: Number(port) };
}

/** Stops a server as Ctrl+C does and checks that it exits 0. */
async function stopServer(server: Running) {
  server.child.kill("SIGINT");
  const { code } = await server.child.status;
  assert.equal(code, 0, `the server exited with ${code}:\n${server.stderr}`);
}

/** A README client command, with the server's real port in place of the README's. */
function clientCommand(line: string, port: number): string[] {
  const words = line.split(/\s+/);
  assert.deepEqual(words.slice(0, 3), ["deno", "task", "client"], line);
  assert.match(words[3], /^\d+$/, `no port in ${line}`);
  return [...words.slice(0, 3), String(port), ...words.slice(4)];
}

Deno.test("README's TLS recipe gives a certificate a TLS server and a --ca client accept", async () => {
  const blocks = fencedBlocks(await readmeSection("TLS")).filter((block) => block.lang === "sh");
  const recipe = blocks.find((block) => block.body.includes("openssl req"));
  assert.ok(recipe, "no openssl recipe in the README's TLS section");
  const commands = commandLines(blocks.filter((block) => block !== recipe)[0].body);
  const serverLine = commands.find((line) => line.startsWith("deno task server"));
  const clientLine = commands.find((line) => line.startsWith("deno task client"));
  assert.ok(serverLine && clientLine, "no server and client commands after the recipe");

  const dir = await Deno.makeTempDir({ prefix: "parrot-readme-tls-" });
  try {
    const made = await new Deno.Command("sh", {
      args: ["-c", `set -e\n${recipe.body}`],
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(made.success, `the recipe failed: ${new TextDecoder().decode(made.stderr)}`);
    // The recipe's files, where `deno task` (which runs in the repository) would find them.
    const inDir = (line: string) => line.replace(/(\S+\.pem)\b/g, `${dir}/$1`);

    const { server, port } = await startServer(inDir(serverLine));
    try {
      const client = await new Running(clientCommand(inDir(clientLine), port)).finished();
      const clientOut = client.stdout;
      assert.equal(client.code, 0, `the client failed:\n${clientOut}${client.stderr}`);
      const [, pid] = clientOut.match(/^client\((\d+)\)/) ?? [];
      assert.ok(pid, `no client pid in:\n${clientOut}`);
      await server.waitFor("stdout", new RegExp(`^${pid}: \\S`, "m"));
    } finally {
      await stopServer(server);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README's first client step prints what the README shows", async () => {
  const section = await readmeSection("Quick start");
  const blocks = fencedBlocks(section);
  const shell = blocks.filter((block) => block.lang === "sh").map((block) =>
    commandLines(block.body)
  );
  const serverLine = shell[0].find((line) => line.startsWith("deno task server"));
  const clientLine = shell[1]?.[0];
  assert.ok(serverLine && clientLine, "the quick start has no server and client step");
  const [clientShown, serverShown] = blocks.filter((block) => block.lang === "text");
  assert.ok(clientShown && serverShown, "the quick start does not show what they print");

  const { server, port } = await startServer(serverLine);
  try {
    const client = await new Running(clientCommand(clientLine, port)).finished();
    const clientOut = client.stdout;
    assert.equal(client.code, 0, clientOut + client.stderr);
    const pid = clientOut.match(/^client\((\d+)\)/)?.[1];
    assert.ok(pid, `no client pid in:\n${clientOut}`);
    const shownPid = clientShown.body.match(/^client\((\d+)\)/)?.[1];
    assert.ok(shownPid, "the README's client output has no pid");
    assert.equal(clientOut, clientShown.body.replaceAll(shownPid, pid), "the client's output");

    // The server's record: the lines the README shows, up to its "...".
    const shownRecord = serverShown.body.split("\n...\n")[0].replaceAll(shownPid, pid);
    await server.waitFor("stdout", new RegExp(`^${pid}: `, "m"));
    await server.waitFor("stdout", /\n\n/); // The whole record (the message ends with a LF).
    assert.ok(
      server.stdout.startsWith(shownRecord),
      `the server printed:\n${server.stdout}\nthe README shows:\n${shownRecord}`,
    );
  } finally {
    await stopServer(server);
  }
});

Deno.test("every `deno task <name>` in the README and docs/ is a task of deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const files = [README];
  for await (const entry of Deno.readDir(new URL("docs/", ROOT))) {
    if (entry.name.endsWith(".md")) files.push(new URL(`docs/${entry.name}`, ROOT));
  }
  const unknown: string[] = [];
  let seen = 0;
  for (const file of files) {
    const text = await Deno.readTextFile(file);
    for (const [, name] of text.matchAll(/deno task ([a-z][a-z-]*)/g)) {
      seen++;
      if (!(name in config.tasks)) unknown.push(`${file.pathname.split("/").at(-1)}: ${name}`);
    }
  }
  assert.ok(seen > 0, "no `deno task` found");
  assert.deepEqual(unknown, [], "tasks named in the docs but not in deno.json");
  const quickStart = await readmeSection("Quick start");
  for (const task of ["server", "test", "client"]) {
    assert.ok(quickStart.includes(`deno task ${task}`), `the quick start lacks deno task ${task}`);
  }
});

Deno.test("README's `Task ...` lines show the tasks as deno.json has them", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const readme = await Deno.readTextFile(README);
  const lines = [...readme.matchAll(/^Task ([a-z][a-z-]*) (.*?)(?: '[^']*')*$/gm)];
  assert.ok(lines.length > 0, "no `Task ...` line in the README");
  for (const [line, name, command] of lines) assert.equal(command, config.tasks[name], line);
});

Deno.test("README shows examples/echo_server.ts whole, as it is", async () => {
  const readme = await Deno.readTextFile(README);
  const example = await Deno.readTextFile(new URL("examples/echo_server.ts", ROOT));
  assert.ok(
    readme.includes("```ts\n" + example + "```\n"),
    "the README's echo example differs from examples/echo_server.ts",
  );
});

Deno.test("README's live-page command serves the page, /metrics and /healthz", async () => {
  const blocks = fencedBlocks(await readmeSection("Watch it live")).filter((b) => b.lang === "sh");
  const [line] = commandLines(blocks[0].body);
  assert.match(line, /^deno task server \d+ --http \d+$/, line);
  const { server } = await startServer(line.replace(/--http \d+/, "--http 0"));
  try {
    const [, httpPort] = await server.waitFor(
      "stderr",
      /HTTP side listening on http:\/\/[^:]+:(\d+)\//,
    );
    const base = `http://127.0.0.1:${httpPort}`;
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(await page.text(), /<script[^>]+src="\/page\.js"/);
    const health = await fetch(`${base}/healthz`);
    assert.deepEqual([health.status, await health.text()], [200, "ok\n"]);
    const metrics = await fetch(`${base}/metrics`);
    assert.match(await metrics.text(), /^parrot_clients\{transport="tcp"\} 0$/m);
  } finally {
    await stopServer(server);
  }
});
