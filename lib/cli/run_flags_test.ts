import assert from "node:assert/strict";
import denoJson from "../../deno.json" with { type: "json" };
import { parseRunTask, runTask } from "./run_flags.ts";

Deno.test("parseRunTask() splits the environment, the deno run flags and the script", () => {
  assert.deepEqual(
    parseRunTask("A=1 B_2=x=y deno run --allow-net --v8-flags=--expose-gc,--foo app.ts"),
    {
      env: { A: "1", B_2: "x=y" },
      flags: ["--allow-net", "--v8-flags=--expose-gc,--foo"],
      script: "app.ts",
    },
  );
  assert.deepEqual(parseRunTask("deno run app.ts"), { env: {}, flags: [], script: "app.ts" });
});

Deno.test("parseRunTask() refuses a line it would have to guess at", () => {
  for (
    const line of [
      "deno test --allow-net",
      "deno run --allow-net",
      "deno run app.ts 8080",
      "deno run --allow-net app.ts && echo done",
      "A='1 2' deno run app.ts",
    ]
  ) {
    assert.throws(() => parseRunTask(line), /^Error: Cannot read the task/, line);
  }
});

Deno.test("runTask() reads the server and client tasks of deno.json", () => {
  for (const name of ["server", "client"] as const) {
    const { env, flags, script } = runTask(name);
    const environment = Object.entries(env).map(([key, value]) => `${key}=${value}`);
    assert.equal(denoJson.tasks[name], [...environment, "deno", "run", ...flags, script].join(" "));
    assert.equal(script, `${name}.ts`);
  }
});
