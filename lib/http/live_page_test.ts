import assert from "node:assert/strict";
import { isValidName } from "../parrot/frame.ts";
import { LiveFeed } from "./live_feed.ts";
import { createLivePage, LIVE_PAGE_CSP } from "./live_page.ts";

const BASE = "http://127.0.0.1:8081";

async function get(
  page: ReturnType<typeof createLivePage>,
  path: string,
  init?: RequestInit,
): Promise<Response> {
  const response = await page(new Request(`${BASE}${path}`, init));
  assert.ok(response, `no response for ${path}`);
  return response;
}

Deno.test("createLivePage() serves the page with a strict Content-Security-Policy and no inline script", async () => {
  const feed = new LiveFeed();
  const page = createLivePage(feed);
  const response = await get(page, "/");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(response.headers.get("content-security-policy"), LIVE_PAGE_CSP);
  assert.match(LIVE_PAGE_CSP, /default-src 'none'/);
  assert.match(LIVE_PAGE_CSP, /script-src 'self'(;|$)/);
  assert.equal(response.headers.get("x-content-type-options"), "nosniff");
  const html = await response.text();
  // Every script and style comes from a file of the page's own origin.
  assert.deepEqual(html.match(/<script[^>]*>/g), ['<script type="module" src="/page.js">']);
  assert.doesNotMatch(html, /<style|style=|\son[a-z]+=|(src|href)="(https?:)?\/\//);
  feed.close();
});

Deno.test("createLivePage() serves the stylesheet and the script as JavaScript without types", async () => {
  const feed = new LiveFeed();
  const page = createLivePage(feed);
  const css = await get(page, "/page.css");
  assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
  assert.match(await css.text(), /canvas/);
  const js = await get(page, "/page.js");
  assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
  const source = await js.text();
  assert.doesNotMatch(source, /^\s*(interface|import|declare) /m);
  // It runs as a module (without a document it only defines its functions), and its
  // name rule is HELLO's.
  const base64 = btoa(
    Array.from(new TextEncoder().encode(source), (b) => String.fromCharCode(b)).join(""),
  );
  const module = await import(`data:text/javascript;base64,${base64}`);
  for (const name of ["web", "a".repeat(64), "a".repeat(65), "", "a b", "zoë", "!~", "tab\t"]) {
    assert.equal(module.isValidName(name), isValidName(name), name);
  }
  feed.close();
});

Deno.test("createLivePage() streams the feed as Server-Sent Events at /live", async () => {
  const feed = new LiveFeed({ intervalMs: 3_600_000 });
  const page = createLivePage(feed);
  const response = await get(page, "/live");
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  // The body itself, not piped through a decoder: cancelling it reaches the feed at once.
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  feed.onMessage("polly", new TextEncoder().encode("squawk"));
  feed.tick();
  let text = "";
  while (!text.includes("\n\ndata: ") || !text.endsWith("\n\n")) {
    text += decoder.decode((await reader.read()).value, { stream: true });
  }
  const event = JSON.parse(text.slice(text.indexOf("data: ") + 6));
  assert.equal(event.messages[0].from, "polly");
  // The browser going away (Deno.serve cancels the body) ends the watcher.
  await reader.cancel();
  assert.equal(feed.watchers, 0);
  feed.close();
});

Deno.test("createLivePage() answers 503 beyond the most watchers, 405 to a POST, and leaves other paths", async () => {
  const feed = new LiveFeed({ intervalMs: 3_600_000, maxWatchers: 1 });
  const page = createLivePage(feed);
  const first = await get(page, "/live");
  const second = await get(page, "/live");
  assert.equal(second.status, 503);
  assert.equal(await second.text(), "Cannot watch the live feed: too many watchers (1)\n");
  const post = await get(page, "/", { method: "POST", body: "x" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "GET, HEAD");
  await post.body?.cancel();
  const head = await get(page, "/page.js", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
  for (const path of ["/metrics", "/healthz", "/ws", "/index.html", "/page.ts"]) {
    assert.equal(page(new Request(`${BASE}${path}`)), undefined, path);
  }
  feed.close();
  await first.body?.cancel();
});
