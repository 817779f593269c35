/**
 * docs/CLI.md cannot drift from the commands: each `--help` block must equal what its
 * command prints when run exactly as the block shows it, every task that answers
 * `--help` has a block, and `deno task docs` (scripts/cli_docs.ts) really rewrites a
 * stale block from the command's output.
 */

import assert from "node:assert/strict";
import { diffStart, HELP_TASKS, helpBlocks } from "../scripts/cli_docs.ts";

const ROOT = new URL("../", import.meta.url);
const CLI_DOC = new URL("docs/CLI.md", ROOT);

async function run(args: string[], cwd: URL | string = ROOT) {
  const { code, stdout, stderr } = await new Deno.Command("deno", {
    args,
    cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

/** The argument list of a task's command in deno.json, after its leading `deno`. */
async function taskArgs(task: string): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const words = String(config.tasks[task]).split(" ");
  assert.equal(words[0], "deno", `the ${task} task does not start with deno`);
  return words.slice(1);
}

Deno.test("docs/CLI.md shows each command's --help output as the command prints it", async () => {
  const blocks = helpBlocks(await Deno.readTextFile(CLI_DOC));
  assert.ok(blocks.length > 0, "docs/CLI.md has no `$ deno task <name> --help` block");
  const stale: string[] = [];
  for (const block of blocks) {
    // The block's command, word for word: `deno task <name> --help`.
    const [deno, ...args] = block.command.split(" ");
    assert.equal(deno, "deno");
    const { code, stdout, stderr } = await run(args);
    assert.equal(code, 0, `\`${block.command}\` exited with ${code}: ${stderr}`);
    const printed = stdout.endsWith("\n") ? stdout : `${stdout}\n`;
    if (printed !== block.output) {
      stale.push(`\`${block.command}\`: ${diffStart(block.output, printed)}`);
    }
  }
  assert.deepEqual(
    stale,
    [],
    `stale blocks in docs/CLI.md (run deno task docs):\n${stale.join("\n")}`,
  );
});

Deno.test("docs/CLI.md has a --help block for every task but test, test:browser and check", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT)));
  const tasks = Object.keys(config.tasks).filter((task) =>
    !["test", "test:browser", "check"].includes(task)
  );
  assert.deepEqual([...tasks].sort(), [...HELP_TASKS].sort(), "HELP_TASKS lists the tasks");
  const documented = helpBlocks(await Deno.readTextFile(CLI_DOC)).map((block) => block.task);
  assert.deepEqual(documented, [...HELP_TASKS], "one block per task, in HELP_TASKS order");
});

Deno.test("deno task docs rewrites stale --help blocks from the commands' output", async () => {
  const current = await Deno.readTextFile(CLI_DOC);
  const dir = await Deno.makeTempDir({ prefix: "parrot-docs-" });
  try {
    // A copy whose every block is stale; the generator must restore the current text.
    let stale = "";
    let copied = 0;
    for (const block of helpBlocks(current)) {
      stale += current.slice(copied, block.start) + "stale\n";
      copied = block.end;
    }
    stale += current.slice(copied);
    assert.notEqual(stale, current);
    const copy = `${dir}/CLI.md`;
    await Deno.writeTextFile(copy, stale);

    // The docs task's own permissions, with the copy in place of docs/CLI.md.
    const args = (await taskArgs("docs")).map((arg) =>
      arg.startsWith("--allow-write=")
        ? `--allow-write=${copy}`
        : arg.startsWith("--allow-read=")
        ? `${arg},${dir}`
        : arg
    );
    const check = await run([...args, "--check", "--file", copy]);
    assert.equal(check.code, 1, "--check must fail on stale blocks");
    assert.match(check.stderr, /stale --help blocks .*server, client/);
    assert.equal(await Deno.readTextFile(copy), stale, "--check must not write");

    const write = await run([...args, "--file", copy]);
    assert.equal(write.code, 0, write.stderr);
    assert.match(write.stdout, /^updated .*CLI\.md: server, client/);
    assert.equal(await Deno.readTextFile(copy), current);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task docs --check passes on docs/CLI.md as committed", async () => {
  const { code, stderr } = await run(["task", "docs", "--check"]);
  assert.equal(code, 0, stderr);
});
