import assert from "node:assert/strict";
import { UsageError } from "./args.ts";
import { parseServers } from "./servers.ts";

const HOST = "127.0.0.1";

Deno.test("parseServers() keeps the positional port with --host", () => {
  assert.deepEqual(parseServers({ host: "10.0.0.1" }, "8080"), [
    { hostname: "10.0.0.1", port: 8080 },
  ]);
  assert.deepEqual(parseServers({ host: HOST }, "localhost:8080"), [
    { hostname: "localhost", port: 8080 },
  ]);
});

Deno.test("parseServers() takes --server repeated and as comma lists, after the positional", () => {
  assert.deepEqual(
    parseServers({ host: HOST, server: ["a:1,b:2", " [::1]:3 ", "4"] }, undefined),
    [
      { hostname: "a", port: 1 },
      { hostname: "b", port: 2 },
      { hostname: "::1", port: 3 },
      { hostname: HOST, port: 4 },
    ],
  );
  assert.deepEqual(parseServers({ host: HOST, server: ["b:2"] }, "1"), [
    { hostname: HOST, port: 1 },
    { hostname: "b", port: 2 },
  ]);
});

Deno.test("parseServers() refuses a bad or repeated entry, or none, in one line", () => {
  const mistakes: [Record<string, unknown>, string | undefined, string][] = [
    [{}, undefined, "Missing the server: give its port (or host:port), or --server host:port"],
    [{}, "0", "Cannot connect to port 0: give the server's port"],
    [{}, "x", 'Cannot use port "x": expected a number from 0 to 65535'],
    [{}, "a:0", 'Cannot use "a:0": the port must be a number from 1 to 65535'],
    [
      { server: ["a:1,"] },
      undefined,
      'Cannot use --server "": expected host:port, [ipv6]:port or a port',
    ],
    [
      { server: ["a"] },
      undefined,
      'Cannot use --server "a": expected host:port, [ipv6]:port or a port',
    ],
    [{ server: ["8080"] }, "8080", "Cannot use the server 127.0.0.1:8080 twice: give it once"],
  ];
  for (const [values, positional, message] of mistakes) {
    assert.throws(
      () => parseServers({ host: HOST, ...values }, positional),
      (error: Error) => error instanceof UsageError && error.message === message,
      message,
    );
  }
});
