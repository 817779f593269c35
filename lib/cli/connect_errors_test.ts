import assert from "node:assert/strict";
import { explainConnectError } from "./connect_errors.ts";

const TLS = { hostname: "parrot.example", tls: true };

Deno.test("explainConnectError() names the certificate's names on a name mismatch", () => {
  const error = new Error(
    'invalid peer certificate: certificate not valid for name "parrot.example"; ' +
      'certificate is only valid for DnsName("a.example") or DnsName("b.example")',
  );
  assert.equal(
    explainConnectError(error, TLS),
    'the server\'s certificate is not valid for "parrot.example" (it names a.example, b.example): ' +
      "--host must be a name or address the certificate carries",
  );
});

Deno.test("explainConnectError() says an expired certificate must be renewed", () => {
  assert.match(
    explainConnectError(new Error("invalid peer certificate: Expired"), TLS),
    /outside its validity period \(Expired\): renew it$/,
  );
});

Deno.test("explainConnectError() describes what it does not know as describeError() does", () => {
  assert.equal(
    explainConnectError(new Deno.errors.ConnectionReset("reset (os error 104)"), TLS),
    "connection reset",
  );
  assert.equal(
    explainConnectError(new Deno.errors.ConnectionRefused("refused"), TLS),
    "connection refused (is the server running?)",
  );
});
