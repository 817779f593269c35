import assert from "node:assert/strict";
import { formatServerAddress, parseServerAddress } from "./server_address.ts";

Deno.test("parseServerAddress() reads host:port, [ipv6]:port and a bare port", () => {
  assert.deepEqual(parseServerAddress("localhost:1"), { hostname: "localhost", port: 1 });
  assert.deepEqual(parseServerAddress("[::1]:65535"), { hostname: "::1", port: 65535 });
  assert.deepEqual(parseServerAddress("8080"), { hostname: "127.0.0.1", port: 8080 });
  assert.deepEqual(parseServerAddress("8080", "::1"), { hostname: "::1", port: 8080 });
});

Deno.test("parseServerAddress() refuses what is not an address, with the reason", () => {
  const mistakes: [string, RegExp][] = [
    ["", /expected host:port/],
    ["example.com", /expected host:port/],
    ["::1:8080", /expected host:port/],
    ["host:", /port must be a number from 1 to 65535/],
    ["host:x", /port must be a number from 1 to 65535/],
    ["host:0", /port must be a number from 1 to 65535/],
    ["host:65536", /port must be a number from 1 to 65535/],
    ["0", /port must be a number from 1 to 65535/],
  ];
  for (const [text, reason] of mistakes) {
    assert.throws(() => parseServerAddress(text), (error: Error) => {
      assert.ok(error instanceof RangeError);
      assert.match(error.message, new RegExp(`^Cannot parse server address "${text}": `));
      assert.match(error.message, reason);
      return true;
    }, text);
  }
});

Deno.test("formatServerAddress() writes what parseServerAddress() reads", () => {
  for (const text of ["127.0.0.1:8080", "[::1]:1", "example.com:443"]) {
    assert.equal(formatServerAddress(parseServerAddress(text)), text);
  }
  assert.equal(formatServerAddress({ port: 9 }), "127.0.0.1:9");
});
