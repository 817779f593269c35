import assert from "node:assert/strict";
import { REASON } from "./frame.ts";

Deno.test("REASON holds every reason the server sends: no ERR line is built from a literal", async () => {
  const literal = /(?:encodeErr|\.fail)\(\s*["'`]/;
  const offenders: string[] = [];
  for (const dir of ["./", "./threads/"]) {
    for await (const entry of Deno.readDir(new URL(dir, import.meta.url))) {
      if (!entry.isFile || !entry.name.endsWith(".ts") || entry.name.endsWith("_test.ts")) continue;
      const text = await Deno.readTextFile(new URL(dir + entry.name, import.meta.url));
      text.split("\n").forEach((line, i) => {
        // Doc examples may show a reason as text.
        if (literal.test(line) && !line.trimStart().startsWith("*")) {
          offenders.push(`${dir}${entry.name}:${i + 1}: ${line.trim()}`);
        }
      });
    }
  }
  assert.deepEqual(offenders, []);
  assert.equal(new Set(Object.values(REASON)).size, Object.keys(REASON).length, "no reason twice");
});
