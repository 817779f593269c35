import assert from "node:assert/strict";
import { bareHostName, hostGuard, hostName, normalOrigin, originGuard } from "./guards.ts";

function withHeaders(headers: Record<string, string>, path = "/"): Request {
  return new Request(`http://placeholder${path}`, { headers });
}

Deno.test("hostName() takes the name of a Host header and refuses what is not one", () => {
  assert.equal(hostName("127.0.0.1:8081"), "127.0.0.1");
  assert.equal(hostName("localhost"), "localhost");
  assert.equal(hostName("localhost:80"), "localhost");
  assert.equal(hostName("[::1]:8081"), "::1");
  assert.equal(hostName("EVIL.example"), "evil.example");
  assert.equal(hostName("evil.example@127.0.0.1"), undefined);
  assert.equal(hostName("127.0.0.1/x"), undefined);
  assert.equal(hostName("0x7f.0.0.1"), undefined, "no other spelling of an address");
  assert.equal(hostName(""), undefined);
});

Deno.test("hostGuard() passes loopback names and the bound address, refuses others with 421", async () => {
  const guard = hostGuard({ boundHost: "192.168.1.5" });
  for (const host of ["localhost:9", "127.0.0.1:9", "[::1]:9", "192.168.1.5:9", "LOCALHOST"]) {
    assert.equal(guard(withHeaders({ host })).ok, true, host);
  }
  const verdict = guard(withHeaders({ host: "evil.example:9" }));
  assert.equal(verdict.ok, false);
  if (verdict.ok) return;
  assert.equal(verdict.response.status, 421);
  assert.equal(
    await verdict.response.text(),
    'Cannot serve Host "evil.example:9": not a name of this server (start it with --http-allow-host evil.example to allow it)\n',
  );
});

Deno.test("hostGuard() passes the names of allowHosts, and an IPv6 bound address", () => {
  const guard = hostGuard({ boundHost: "::1", allowHosts: ["parrot.lan", "Other.Lan"] });
  assert.equal(guard(withHeaders({ host: "parrot.lan:8081" })).ok, true);
  assert.equal(guard(withHeaders({ host: "other.lan" })).ok, true);
  assert.equal(guard(withHeaders({ host: "[::1]:8081" })).ok, true);
  assert.equal(guard(withHeaders({ host: "parrot.lan.evil.example" })).ok, false);
});

Deno.test("hostGuard() refuses a request without a Host header with 400", () => {
  const request = withHeaders({});
  request.headers.delete("host");
  const verdict = hostGuard({ boundHost: "127.0.0.1" })(request);
  assert.equal(verdict.ok ? 0 : verdict.response.status, 400);
});

Deno.test("originGuard() passes no Origin, the request's own origin and the allowed ones", () => {
  const guard = originGuard({ allowOrigins: ["https://dash.example:8443/"] });
  const ask = (headers: Record<string, string>) => guard(withHeaders(headers, "/ws")).ok;
  assert.equal(ask({ host: "127.0.0.1:8081" }), true, "no Origin: not a browser");
  assert.equal(ask({ host: "127.0.0.1:8081", origin: "http://127.0.0.1:8081" }), true);
  assert.equal(ask({ host: "localhost:80", origin: "http://localhost" }), true, "default port");
  assert.equal(ask({ host: "127.0.0.1:8081", origin: "https://dash.example:8443" }), true);
});

Deno.test("originGuard() refuses another origin, another port or scheme, and null with 403", async () => {
  const guard = originGuard();
  const host = "127.0.0.1:8081";
  for (
    const origin of [
      "http://evil.example",
      "http://127.0.0.1:9999",
      "https://127.0.0.1:8081",
      "null",
    ]
  ) {
    const verdict = guard(withHeaders({ host, origin }, "/ws"));
    assert.equal(verdict.ok, false, origin);
    if (verdict.ok) continue;
    assert.equal(verdict.response.status, 403);
    assert.match(
      await verdict.response.text(),
      /^Cannot accept a request from origin .*--http-allow-origin/,
    );
  }
});

Deno.test("originGuard() throws for an allowed origin that is not one", () => {
  assert.throws(() => originGuard({ allowOrigins: ["dash.example"] }), RangeError);
  assert.throws(() => originGuard({ allowOrigins: ["http://dash.example/path"] }), RangeError);
});

Deno.test("normalOrigin() drops default ports and case, refuses paths and other schemes", () => {
  assert.equal(normalOrigin("https://A.example:443"), "https://a.example");
  assert.equal(normalOrigin("http://a.example:8080/"), "http://a.example:8080");
  assert.equal(normalOrigin("ftp://a.example"), undefined);
  assert.equal(normalOrigin("http://a.example/x"), undefined);
});

Deno.test("bareHostName() takes a name or address without a port, IPv6 with or without brackets", () => {
  assert.equal(bareHostName("parrot.lan"), "parrot.lan");
  assert.equal(bareHostName("10.0.0.2"), "10.0.0.2");
  assert.equal(bareHostName("::1"), "::1");
  assert.equal(bareHostName("[::1]"), "::1");
  assert.equal(bareHostName("parrot.lan:8081"), undefined);
  assert.equal(bareHostName("[::1]:8081"), undefined);
  assert.equal(bareHostName("http://parrot.lan"), undefined);
  assert.equal(bareHostName("a b"), undefined);
});
