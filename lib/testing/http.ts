/**
 * The part of `lib/testing.ts` for the HTTP side: a request with headers `fetch` will
 * not send as given (`Host`), over a raw socket, and the HTTP side's listening line of
 * a server process. Import it through `lib/testing.ts`.
 *
 * @module
 */

import { waitFor } from "../testing.ts";
import type { Running } from "./processes.ts";

/** What {@linkcode rawHttp} read back. */
export interface RawHttpResponse {
  status: number;
  /** Header names in lower case. */
  headers: Map<string, string>;
  body: string;
}

/**
 * Sends one HTTP/1.1 request with exactly `headers` (a `Host` of the test's choice, for
 * one) over a plain socket to 127.0.0.1:`port`, and reads the response until the
 * server closes (`Connection: close`).
 */
export async function rawHttp(
  port: number,
  path: string,
  headers: Record<string, string>,
  method = "GET",
): Promise<RawHttpResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const lines = [`${method} ${path} HTTP/1.1`, "Connection: close"];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  await conn.write(new TextEncoder().encode(`${lines.join("\r\n")}\r\n\r\n`));
  const text = await new Response(conn.readable).text();
  const [head, ...rest] = text.split("\r\n\r\n");
  const [statusLine, ...headerLines] = head.split("\r\n");
  const map = new Map<string, string>();
  for (const line of headerLines) {
    const at = line.indexOf(":");
    map.set(line.slice(0, at).trim().toLowerCase(), line.slice(at + 1).trim());
  }
  let body = rest.join("\r\n\r\n");
  if (map.get("transfer-encoding") === "chunked") body = unchunk(body);
  return { status: Number(statusLine.split(" ")[1]), headers: map, body };
}

function unchunk(body: string): string {
  let out = "";
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf("\r\n", at);
    if (lineEnd < 0) return out;
    const size = parseInt(body.slice(at, lineEnd), 16);
    if (!(size > 0)) return out;
    out += body.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}

/** Waits for the "HTTP side listening on http://host:port/" log line and returns the port. */
export async function httpListeningPort(running: Running): Promise<number> {
  let exited = false;
  running.status.then(() => exited = true);
  const line = /HTTP side listening on http:\/\/[^\s"]+:(\d+)\//;
  await waitFor(
    () => line.test(running.stderr.text()) || exited,
    "the HTTP side's listening line",
    20_000,
  );
  const match = running.stderr.text().match(line);
  if (!match) throw new Error(`The server exited early:\n${running.stderr.text()}`);
  return Number(match[1]);
}
