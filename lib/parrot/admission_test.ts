import assert from "node:assert/strict";
import { MAX_CONTROL_LINE_BYTES } from "../defaults.ts";
import { admit, constantTimeEqual } from "./admission.ts";

const encoder = new TextEncoder();
const TOKEN = encoder.encode("s3cret");

/** A source that hands out `chunks` one per read, then waits forever (or ends with `end`). */
function source(chunks: string[], end = false) {
  const queue = chunks.map((chunk) => encoder.encode(chunk));
  return {
    reads: 0,
    read(p: Uint8Array): Promise<number | null> {
      this.reads++;
      const next = queue.shift();
      if (!next) return end ? Promise.resolve(null) : new Promise(() => {});
      const n = Math.min(next.length, p.length);
      p.set(next.subarray(0, n));
      if (n < next.length) queue.unshift(next.subarray(n));
      return Promise.resolve(n);
    },
  };
}

function run(conn: ReturnType<typeof source>, authTimeoutMs = 1_000) {
  return admit(conn, { token: TOKEN, authTimeoutMs });
}

Deno.test("admit() admits AUTH split over reads and returns the bytes after it", async () => {
  const result = await run(source(["AU", "TH s3c", "ret\r", "\nMSG 1\nx"]));
  assert.ok(result.admitted);
  assert.equal(result.admitted && new TextDecoder().decode(result.leftover), "MSG 1\nx");
});

Deno.test("admit() refuses a wrong token, another verb, and an empty token", async () => {
  for (
    const line of ["AUTH s3cre\n", "AUTH s3cretx\n", "HELLO s3cret\n", "AUTH \n", "AUTH\n", "\n"]
  ) {
    const result = await run(source([line]));
    assert.deepEqual(
      result.admitted ? "admitted" : result.reason,
      "unauthorized",
      JSON.stringify(line),
    );
  }
});

Deno.test("admit() refuses a first line longer than a control line without waiting for its end", async () => {
  const conn = source(["A".repeat(MAX_CONTROL_LINE_BYTES), "A".repeat(100_000)]);
  const result = await run(conn);
  assert.equal(!result.admitted && result.reason, "unauthorized");
  assert.equal(conn.reads, 2, "one control line and its line end, then no more");
});

Deno.test("admit() gives up with auth timeout when the line does not come in time", async () => {
  const result = await run(source(["AUTH s3"]), 50);
  assert.equal(!result.admitted && result.reason, "auth timeout");
});

Deno.test("admit() refuses without a reply a client that leaves before AUTH", async () => {
  const result = await run(source(["AUTH"], true));
  assert.equal(result.admitted, false);
  assert.equal(!result.admitted && result.reason, undefined);
});

Deno.test("admit() admits anyone, reading nothing, without a token", async () => {
  const conn = source([]);
  const result = await admit(conn, { authTimeoutMs: 10 });
  assert.ok(result.admitted);
  assert.equal(conn.reads, 0);
});

Deno.test("constantTimeEqual() compares bytes and lengths", () => {
  assert.equal(constantTimeEqual(encoder.encode("s3cret"), TOKEN), true);
  assert.equal(constantTimeEqual(encoder.encode("s3creT"), TOKEN), false);
  assert.equal(constantTimeEqual(encoder.encode("s3cret\0"), TOKEN), false);
  assert.equal(constantTimeEqual(new Uint8Array(0), TOKEN), false);
});
