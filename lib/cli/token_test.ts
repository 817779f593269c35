import assert from "node:assert/strict";
import { UsageError } from "./args.ts";
import { resolveToken, TOKEN_ENV } from "./token.ts";

Deno.test("resolveToken() prefers --token, then --token-file, then PARROT_TOKEN", async () => {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/token`;
  await Deno.writeTextFile(file, "from-file\n");
  const saved = Deno.env.get(TOKEN_ENV);
  try {
    Deno.env.set(TOKEN_ENV, "from-env");
    assert.equal(await resolveToken({ token: "from-flag" }), "from-flag");
    assert.equal(await resolveToken({ tokenFile: file }), "from-file");
    assert.equal(await resolveToken({}), "from-env");
    Deno.env.delete(TOKEN_ENV);
    assert.equal(await resolveToken({}), undefined);
  } finally {
    if (saved === undefined) Deno.env.delete(TOKEN_ENV);
    else Deno.env.set(TOKEN_ENV, saved);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveToken() refuses two sources, a missing or empty file, and a multi-line token", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/empty`, "\n");
    const cases: [Parameters<typeof resolveToken>[0], RegExp][] = [
      [{ token: "a", tokenFile: `${dir}/empty` }, /both --token and --token-file/],
      [{ tokenFile: `${dir}/missing` }, /Cannot read --token-file .*missing: no such file/],
      [{ tokenFile: `${dir}/empty` }, /is empty/],
      [{ token: "a\rb" }, /must be one line/],
    ];
    for (const [sources, message] of cases) {
      await assert.rejects(resolveToken(sources), (error: Error) => {
        assert.ok(error instanceof UsageError);
        assert.match(error.message, message);
        assert.doesNotMatch(error.message, /a\rb/, "the token is never in a message");
        return true;
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "resolveToken() refuses to guess when PARROT_TOKEN may not be read (fail closed)",
  permissions: { env: false, read: true },
  async fn() {
    await assert.rejects(resolveToken({}), (error: Error) => {
      assert.ok(error instanceof UsageError);
      assert.match(error.message, /^Cannot tell whether PARROT_TOKEN is set: no permission/);
      assert.match(error.message, /add --allow-env=PARROT_TOKEN to `deno run`/);
      assert.doesNotMatch(error.message, /\n/);
      return true;
    });
    // A token given on the command line needs no environment.
    assert.equal(await resolveToken({ token: "s3cret" }), "s3cret");
  },
});
