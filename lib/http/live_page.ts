/**
 * The live page's routes: `/` (the HTML), `/page.css`, `/page.js` (the browser script,
 * TypeScript with its types stripped), `/favicon.svg` and `/live` (the feed, Server-Sent
 * Events).
 *
 * It owns what the browser gets and the headers that keep it safe: a strict
 * Content-Security-Policy (everything from the page's own origin, no inline script, no
 * framing), no MIME sniffing, no referrer. The assets are part of the module graph (text
 * imports), so a compiled server has them and nothing is read from disk or the network
 * at run time. Access control (Host, Origin, token) is the HTTP side's job: it calls
 * this handler only for requests it has let through.
 *
 * @module
 */

import { stripTypeScriptTypes } from "node:module";
import type { LiveFeed } from "./live_feed.ts";
import html from "./page/index.html" with { type: "text" };
import css from "./page/page.css" with { type: "text" };
import icon from "./page/favicon.svg" with { type: "text" };
import script from "./page/page.ts" with { type: "text" };

/** The page's Content-Security-Policy: its own origin only, no inline script or style. */
export const LIVE_PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Headers every response of the page carries. */
const COMMON_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
};

/** The browser script as JavaScript: its types stripped once, when this module loads. */
const javascript = stripTypeScriptTypes(script);

interface Asset {
  body: string;
  type: string;
  extra?: Record<string, string>;
}

const ASSETS: Record<string, Asset> = {
  "/": {
    body: html,
    type: "text/html; charset=utf-8",
    extra: { "content-security-policy": LIVE_PAGE_CSP, "x-frame-options": "DENY" },
  },
  "/page.css": { body: css, type: "text/css; charset=utf-8" },
  "/page.js": { body: javascript, type: "text/javascript; charset=utf-8" },
  "/favicon.svg": { body: icon, type: "image/svg+xml" },
};

/** The path of the feed the page reads. */
export const LIVE_FEED_PATH = "/live";

/**
 * The handler of the live page's routes: a response for `/`, its assets and the feed
 * endpoint {@linkcode LIVE_FEED_PATH}, undefined for every other path (the HTTP side
 * answers those). Only GET and HEAD are allowed (405 otherwise); a feed with too many
 * watchers, or closed, answers 503.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LiveFeed } from "./live_feed.ts";
 * import { createLivePage } from "./live_page.ts";
 *
 * const feed = new LiveFeed();
 * const page = createLivePage(feed);
 * const response = await page(new Request("http://127.0.0.1/"));
 * assert.equal(response?.status, 200);
 * assert.match(response!.headers.get("content-security-policy")!, /script-src 'self'/);
 * await response!.body?.cancel();
 * assert.equal(page(new Request("http://127.0.0.1/metrics")), undefined);
 * feed.close();
 * ```
 */
export function createLivePage(
  feed: LiveFeed,
): (request: Request) => Response | Promise<Response> | undefined {
  return (request) => {
    const path = new URL(request.url).pathname;
    const asset = ASSETS[path];
    if (!asset && path !== LIVE_FEED_PATH) return undefined;
    if (request.method !== "GET" && request.method !== "HEAD") {
      return new Response(`Cannot ${request.method} ${path}: only GET and HEAD\n`, {
        status: 405,
        headers: { ...COMMON_HEADERS, allow: "GET, HEAD", "content-type": "text/plain" },
      });
    }
    if (asset) {
      return new Response(request.method === "HEAD" ? null : asset.body, {
        headers: { ...COMMON_HEADERS, "content-type": asset.type, ...asset.extra },
      });
    }
    const headers = { ...COMMON_HEADERS, "content-type": "text/event-stream" };
    if (request.method === "HEAD") return new Response(null, { headers });
    try {
      // The watcher ends when the browser goes away: Deno.serve cancels the body. Not
      // request.signal: Deno.serve aborts it when a response completes, which a feed
      // never does, and warns about that use.
      return new Response(feed.watch(), { headers });
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      return new Response(`Cannot watch the live feed: ${error.message}\n`, {
        status: 503,
        headers: { ...COMMON_HEADERS, "content-type": "text/plain" },
      });
    }
  };
}
