/**
 * Minimal repro, for an upstream report: closing a server-side `Deno.TlsConn` whose
 * peer has not started the TLS handshake does not close the TCP socket. The peer sees
 * neither FIN nor RST until it sends a byte or leaves, so a server cannot shed silent
 * connections on its TLS port; it can only stop counting them.
 *
 * Run: deno run --allow-net=127.0.0.1 --allow-read scripts/repro/tls_close_before_handshake.ts <cert.pem> <key.pem>
 * (any certificate for 127.0.0.1; `lib/testing/certs.ts` shows how to make one). Prints
 * whether the plain TCP peer saw the close within 3 seconds; exits 1 when it did not.
 *
 * @module
 */

const [certFile, keyFile] = Deno.args;
if (!certFile || !keyFile) {
  console.error("usage: tls_close_before_handshake.ts <cert.pem> <key.pem>");
  Deno.exit(2);
}
const listener = Deno.listenTls({
  hostname: "127.0.0.1",
  port: 0,
  cert: await Deno.readTextFile(certFile),
  key: await Deno.readTextFile(keyFile),
});
const accepted = listener.accept().then((conn) => {
  conn.close(); // No read, no handshake pending: just close it.
  console.log("server: accepted and closed the TlsConn");
});
const peer = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
await accepted;
const closed = peer.read(new Uint8Array(16)).then((n) => `read returned ${n}`, String);
const verdict = await Promise.race([
  closed,
  new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 3_000)),
]);
console.log(
  verdict === undefined
    ? "peer: still open 3 s after the server closed it (the bug)"
    : `peer: saw the close (${verdict})`,
);
Deno.exit(verdict === undefined ? 1 : 0);
