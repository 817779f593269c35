/**
 * The commands of docs/CLUSTER.md's "Clients on several servers" section work as
 * written: the section's own lines are run, against two real servers, with their ports
 * (taken on port 0) put in place of the document's 8080 and 8081.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DEFAULT_MESSAGE } from "../client.ts";
import { DENO, type Running, spawn, startServer, waitFor } from "../lib/testing.ts";

const CLUSTER_MD = new URL("../docs/CLUSTER.md", import.meta.url);

/** The command lines of the section's `sh` block. */
async function sectionCommands(): Promise<string[]> {
  const text = await Deno.readTextFile(CLUSTER_MD);
  const start = text.indexOf("\n## Clients on several servers\n");
  assert.ok(start >= 0, 'docs/CLUSTER.md has no "## Clients on several servers" section');
  const end = text.indexOf("\n## ", start + 1);
  const section = text.slice(start, end < 0 ? undefined : end);
  const block = /^```sh\n([\s\S]*?)^```$/m.exec(section);
  assert.ok(block, "no sh block in the section");
  return block[1].split("\n").map((line) => line.trim()).filter((line) => line.length > 0);
}

/**
 * The senders of the messages on a server's stdout (each message is the client's default,
 * several lines long: a sender's name opens its first line), with how many each sent.
 */
function senders(stdout: string): Map<string, number> {
  const counts = new Map<string, number>();
  const opening = DEFAULT_MESSAGE.split("\n")[0];
  for (const line of stdout.split("\n")) {
    if (!line.endsWith(`: ${opening}`)) continue;
    const name = line.slice(0, -`: ${opening}`.length);
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

Deno.test("docs/CLUSTER.md's several-server client and launcher commands work as written", async () => {
  const commands = await sectionCommands();
  assert.equal(commands.length, 2, commands.join("\n"));
  const servers = [await startServer(), await startServer()];
  const put = (line: string) =>
    line.replaceAll("127.0.0.1:8080", `127.0.0.1:${servers[0].port}`)
      .replaceAll("127.0.0.1:8081", `127.0.0.1:${servers[1].port}`);
  const running: Running[] = [];
  try {
    // The client: on the first server.
    const [clientLine, launcherLine] = commands.map(put);
    assert.match(clientLine, /^deno task client /);
    const client = spawn(DENO, clientLine.split(/\s+/).slice(1));
    running.push(client);
    await waitFor(() => senders(servers[0].stdout.text()).size === 1, "the client's messages");
    client.child.kill("SIGINT");
    assert.equal((await client.status).code, 0, client.stderr.text());
    assert.equal(servers[1].stdout.text(), "");

    // The launcher: four clients, two on each server.
    assert.match(launcherLine, /^deno task clients /);
    const launcher = spawn(DENO, launcherLine.split(/\s+/).slice(1));
    running.push(launcher);
    const before = servers[0].stdout.text().length;
    await waitFor(
      () =>
        senders(servers[0].stdout.text().slice(before)).size === 2 &&
        senders(servers[1].stdout.text()).size === 2,
      "two clients sending to each server",
      20_000,
    );
    await launcher.stdout.waitForText(/clients per server: 2 on \S+, 2 on \S+$/m);
    launcher.child.kill("SIGINT");
    assert.equal((await launcher.status).code, 0, launcher.stderr.text());
  } finally {
    for (const process of [...running, ...servers]) {
      try {
        process.child.kill("SIGKILL");
      } catch {
        // It has exited already.
      }
    }
    await Promise.all([...running, ...servers].map((process) => process.status));
  }
});
