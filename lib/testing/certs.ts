/**
 * Throw-away TLS material for tests and the torture suite, made with openssl at run
 * time: a certificate for 127.0.0.1 and localhost, self-signed, marked `CA:FALSE`
 * (Deno's TLS refuses a CA certificate as an end entity), so a client trusts it by
 * passing the same file as its CA.
 *
 * @module
 */

/** Paths of a generated certificate and its key. */
export interface TestCert {
  /** The directory holding both files; remove it when done. */
  dir: string;
  /** PEM certificate, also usable as the client's CA file. */
  certFile: string;
  /** PEM private key. */
  keyFile: string;
}

/** Generates a certificate and key for 127.0.0.1 into a new temporary directory. */
export async function generateTestCert(): Promise<TestCert> {
  const dir = await Deno.makeTempDir({ prefix: "parrot-cert-" });
  const certFile = `${dir}/cert.pem`;
  const keyFile = `${dir}/key.pem`;
  const { success, stderr } = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "2",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) {
    throw new Error(`Cannot generate a test certificate: ${new TextDecoder().decode(stderr)}`);
  }
  return { dir, certFile, keyFile };
}
