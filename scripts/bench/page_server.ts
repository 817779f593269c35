/**
 * A stand-in for `server.ts --http 0` in the bench's "page open" row, until the `--http`
 * flag lands: `deno run --allow-net=127.0.0.1 scripts/bench/page_server.ts <port>
 * [--page]`. A parrot server with its defaults, records on stdout as server.ts prints
 * them; with `--page`, also the live feed fed by every message (`onMessage`) and an
 * HTTP listener on a free port serving the live page (createLivePage). Logs
 * `listening on 127.0.0.1:<port>` (and ` http 127.0.0.1:<port>`) on stderr; SIGTERM or
 * SIGINT shuts it down gracefully and exits 0.
 *
 * TODO(merge): once server.ts has `--http`, the bench runs `server.ts 0 --http 0`
 * instead, both with and without the page, and this file goes.
 *
 * @module
 */

import { startParrotServer } from "../../mod.ts";
import { LiveFeed } from "../../lib/http/live_feed.ts";
import { createLivePage } from "../../lib/http/live_page.ts";

const [port, ...flags] = Deno.args;
const withPage = flags.includes("--page");
const feed = withPage ? new LiveFeed({ stats: () => server.stats() }) : null;
const server = startParrotServer({
  port: Number(port),
  onMessage: feed ? (from, payload) => feed.onMessage(from, payload) : undefined,
});
const page = feed ? createLivePage(feed) : null;
const http = page
  ? Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => page(request) ?? new Response("Not found\n", { status: 404 }),
  )
  : null;
console.error(
  `page_server listening on 127.0.0.1:${server.addr.port}${
    http ? ` http 127.0.0.1:${http.addr.port}` : ""
  }`,
);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  feed?.close();
  await http?.shutdown();
  await server.shutdown();
  Deno.exit(0);
}
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
