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
  const files = await selfSignedCert(dir, "cert", "127.0.0.1", [
    "basicConstraints=critical,CA:FALSE",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ]);
  return { dir, ...files };
}

/**
 * Makes `<dir>/<file>.pem` and `<dir>/<file>-key.pem`: a self-signed EC certificate for
 * common name `name` with `extensions` (openssl `-addext` values), valid for two days.
 */
export async function selfSignedCert(
  dir: string,
  file: string,
  name: string,
  extensions: string[],
): Promise<{ certFile: string; keyFile: string }> {
  const certFile = `${dir}/${file}.pem`;
  const keyFile = `${dir}/${file}-key.pem`;
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
      `/CN=${name}`,
      ...extensions.flatMap((extension) => ["-addext", extension]),
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
  return { certFile, keyFile };
}
