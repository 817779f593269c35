/**
 * Integration tests of the advice the client gives when TLS fails: a real server with a
 * throw-away certificate made by openssl for each case, and the client's one line.
 *
 * @module
 */

import assert from "node:assert/strict";
import { generateTestCert } from "../lib/testing.ts";
import { CLIENT_RUN_ARGS, DENO, selfSignedCert, spawn, startServer } from "../lib/testing.ts";

/** A self-signed certificate made with `extensions` (openssl `-addext` values). */
function selfSigned(dir: string, name: string, extensions: string[]) {
  return selfSignedCert(dir, name, name, extensions);
}

/** Starts a TLS server with `cert`, runs the client with `args`, returns its stderr line. */
async function clientError(
  cert: { certFile: string; keyFile: string },
  args: string[],
): Promise<string> {
  const server = await startServer(["--tls-cert", cert.certFile, "--tls-key", cert.keyFile]);
  try {
    const client = spawn(DENO, [...CLIENT_RUN_ARGS, String(server.port), "--count", "1", ...args]);
    const status = await client.status;
    assert.equal(status.code, 1, client.stdout.text() + client.stderr.text());
    assert.doesNotMatch(client.stdout.text(), /write/);
    const lines = client.stderr.text().trim().split("\n");
    assert.equal(lines.length, 1, client.stderr.text());
    return lines[0];
  } finally {
    server.kill("SIGINT");
    await server.status;
  }
}

Deno.test("client advises --ca for a certificate it does not trust", async () => {
  const cert = await generateTestCert();
  try {
    assert.match(
      await clientError(cert, ["--tls"]),
      /^client\(\d+\): cannot connect to 127\.0\.0\.1:\d+: the server's certificate is not signed by an authority this client trusts \(UnknownIssuer\): trust it with --ca <file>/,
    );
  } finally {
    await Deno.remove(cert.dir, { recursive: true });
  }
});

Deno.test("client advises CA:FALSE for a server certificate that is a CA certificate", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parrot-cert-" });
  try {
    // The usual `openssl req -x509` recipe: openssl marks it CA:TRUE.
    const cert = await selfSigned(dir, "127.0.0.1", ["subjectAltName=IP:127.0.0.1"]);
    assert.match(
      await clientError(cert, ["--ca", cert.certFile]),
      /: the server's certificate is a CA certificate, which TLS refuses for a server \(CaUsedAsEndEntity\): regenerate it with -addext basicConstraints=critical,CA:FALSE$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client says --host must be a name the certificate carries", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parrot-cert-" });
  try {
    const cert = await selfSigned(dir, "example.com", [
      "basicConstraints=critical,CA:FALSE",
      "subjectAltName=DNS:example.com",
    ]);
    assert.match(
      await clientError(cert, ["--ca", cert.certFile]),
      /: the server's certificate is not valid for "127\.0\.0\.1" \(it names example\.com\): --host must be a name or address the certificate carries$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("client --tls against a plain server says the server does not speak TLS", async () => {
  // The server answers the handshake's bytes once its read deadline has passed.
  const server = await startServer(["--read-timeout", "100ms"]);
  try {
    const client = spawn(DENO, [...CLIENT_RUN_ARGS, String(server.port), "--tls"]);
    assert.equal((await client.status).code, 1);
    assert.match(
      client.stderr.text().trim(),
      /^client\(\d+\): cannot connect to 127\.0\.0\.1:\d+: the server does not speak TLS .*: drop --tls and --ca$/,
    );
  } finally {
    server.kill("SIGINT");
    await server.status;
  }
});

Deno.test("client --tls gives up a handshake the server never answers after --confirm-timeout", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) accepted.push(conn);
  })();
  try {
    const client = spawn(DENO, [
      ...CLIENT_RUN_ARGS,
      String(listener.addr.port),
      "--tls",
      "--confirm-timeout",
      "200ms",
    ]);
    assert.equal((await client.status).code, 1);
    assert.match(
      client.stderr.text().trim(),
      /^client\(\d+\): cannot connect to 127\.0\.0\.1:\d+: the server did not complete the TLS handshake within 200ms \(does it speak TLS\? if not, drop --tls and --ca\)$/,
    );
  } finally {
    listener.close();
    await accepting;
    for (const conn of accepted) conn.close();
  }
});
