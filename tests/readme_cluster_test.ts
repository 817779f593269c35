/**
 * The README's "Two servers" walkthrough works as written: its five commands, taken from the
 * README and run exactly as shown (each through `sh -c`, so its quoting is the shell's), in
 * their terminals' order; what the README says each terminal shows is checked against what
 * it printed. The ports are the README's: the test says so plainly when one is taken.
 */

import assert from "node:assert/strict";
import { type Running, spawn, waitFor } from "../lib/testing.ts";

const README = new URL("../README.md", import.meta.url);

/** The text of the README's `## Two servers` section. */
async function section(): Promise<string> {
  const readme = await Deno.readTextFile(README);
  const start = readme.indexOf("\n## Two servers\n");
  assert.ok(start >= 0, 'the README has no "## Two servers" section');
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end);
}

/** Whether nothing listens on 127.0.0.1:`port` now. */
function isFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("README's two-servers walkthrough: its commands run as written and show what it says", async () => {
  const text = await section();
  const block = text.match(/```sh\n([\s\S]*?)```/)?.[1];
  assert.ok(block, "no sh block in the section");
  const commands = block.split("\n").map((line) => line.replace(/\s+#.*$/, "").trim()).filter((
    line,
  ) => line);
  assert.equal(commands.length, 5, block);
  const [natsLine, eastLine, westLine, bobLine, annLine] = commands;
  assert.match(natsLine, /^nats-server /);
  for (const port of [4222, 8080, 8082]) {
    assert.ok(isFree(port), `port ${port}, which the README uses, is taken: free it and run again`);
  }
  const run = (line: string): Running => spawn("sh", ["-c", `exec ${line}`]);
  const running: Running[] = [];
  try {
    const nats = run(natsLine);
    running.push(nats);
    await nats.stderr.waitForText("Server is ready");
    const east = run(eastLine);
    const west = run(westLine);
    running.push(east, west);
    await east.stderr.waitForText("Connected to NATS at", 30_000);
    await west.stderr.waitForText("Connected to NATS at", 30_000);
    const bob = run(bobLine);
    running.push(bob);
    // Bob is in once west has taken his first message.
    await waitFor(() => /^bob: /m.test(west.stdout.text()), "bob's first message on west", 30_000);
    const ann = run(annLine);
    const annStatus = await ann.status;
    assert.equal(annStatus.code, 0, ann.stdout.text() + ann.stderr.text());
    // What the README says each terminal shows.
    const shown = text.match(/```text\n([\s\S]*?)```/)?.[1]?.trim();
    assert.equal(shown, "ann@east: hello from east");
    await west.stdout.waitForText(`${shown}\n`);
    await east.stdout.waitForText("ann: hello from east\n");
    const prose = text.replace(/\s+/g, " ");
    assert.ok(prose.includes("Terminal 2 prints `ann: hello from east`"));
    await bob.stdout.waitForText(/^client\(\d+\): read 15 bytes$/m);
    assert.ok(prose.includes("`client(<pid>): read 15 bytes`"));
    // East prints none of west's messages (no --print-cluster there).
    assert.ok(!east.stdout.text().includes("bob"), east.stdout.text());
  } finally {
    for (const process of running.toReversed()) {
      try {
        process.child.kill("SIGINT");
      } catch {
        // Exited already.
      }
      await process.status;
    }
  }
  // The servers and bob stop cleanly on Ctrl+C.
  for (const process of running.slice(1)) assert.equal((await process.status).code, 0);
});
