import assert from "node:assert/strict";

/** Runs a script that reports stdoutNeverWaits() on stderr, with its stdout as `stdout`. */
async function verdict(stdout: "piped" | "null" | "file"): Promise<string> {
  const script = `import { stdoutNeverWaits, stdoutWriter } from ${
    JSON.stringify(new URL("./stdout_writer.ts", import.meta.url).href)
  };
const writer = stdoutWriter();
await writer.write(new TextEncoder().encode("a record\\n"));
await writer.write(new TextEncoder().encode("x".repeat(10_000) + "\\n")); // over the sync bound
console.error(stdoutNeverWaits() ? "never waits" : "may wait");`;
  const file = await Deno.makeTempFile();
  try {
    const args = ["run", "--allow-read", "-"];
    const command = stdout === "file"
      ? new Deno.Command("sh", {
        args: ["-c", `exec "deno" "$@" > "${file}"`, "sh", ...args],
        stdin: "piped",
        stderr: "piped",
      })
      : new Deno.Command("deno", { args, stdin: "piped", stdout, stderr: "piped" });
    const child = command.spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(script));
    await writer.close();
    const output = await child.output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    const expected = "a record\n" + "x".repeat(10_000) + "\n";
    if (stdout === "file") assert.equal(await Deno.readTextFile(file), expected);
    if (stdout === "piped") assert.equal(new TextDecoder().decode(output.stdout), expected);
    return new TextDecoder().decode(output.stderr).trim();
  } finally {
    await Deno.remove(file);
  }
}

Deno.test("stdoutWriter() writes every byte to a file, /dev/null or a pipe, and only the first two never wait", async () => {
  assert.equal(await verdict("file"), "never waits");
  assert.equal(await verdict("null"), "never waits");
  assert.equal(await verdict("piped"), "may wait");
});
