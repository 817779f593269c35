import assert from "node:assert/strict";
import { generateTestCert } from "../testing.ts";
import { listenTcp } from "./listen_tcp.ts";

Deno.test("listenTcp() binds plain TCP on 127.0.0.1 and a free port by default", async () => {
  const listener = listenTcp();
  try {
    const addr = listener.addr as Deno.NetAddr;
    assert.equal(addr.hostname, "127.0.0.1");
    assert.ok(addr.port > 0);
    const [client, server] = await Promise.all([
      Deno.connect({ hostname: addr.hostname, port: addr.port }),
      listener.accept(),
    ]);
    assert.equal("handshake" in server, false, "a plain TCP connection");
    client.close();
    server.close();
  } finally {
    listener.close();
  }
});

Deno.test("listenTcp() with tls binds a TLS listener for that certificate", async () => {
  const files = await generateTestCert();
  const cert = await Deno.readTextFile(files.certFile);
  const key = await Deno.readTextFile(files.keyFile);
  await Deno.remove(files.dir, { recursive: true });
  const listener = listenTcp({ tls: { cert, key } });
  try {
    const { port } = listener.addr as Deno.NetAddr;
    const [client, server] = await Promise.all([
      Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [cert] }),
      listener.accept(),
    ]);
    await Promise.all([client.handshake(), (server as Deno.TlsConn).handshake()]);
    client.close();
    server.close();
  } finally {
    listener.close();
  }
});
