/**
 * The live page in a real browser: headless Chromium (`/usr/bin/chromium`) driven by
 * playwright-core. The one test run with `-A` (playwright-core needs it under Deno), in
 * a task of its own: `deno task test:browser`, which `.ci/run` runs after installing
 * chromium.
 *
 * It opens the page, sees a message of a TCP client on it, the client list (and a
 * client that leaves disappear), the chart move, sends a message from the page, times
 * a click-to-render while 64 TCP clients send 10,000 messages/s (a process of its own,
 * tcp_load.ts), and saves docs/screenshot.png.
 *
 * The server is the real one, started as `deno task server 0 --http 0` starts it (the
 * task's flags, {@linkcode SERVER_RUN_ARGS}): the test reads what it prints on stdout,
 * and the client list is the server's own (`clients()`), TCP and WebSocket.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import { ParrotClient } from "../../mod.ts";
import { httpListeningPort, type ServerProcess, startServer, waitFor } from "../../lib/testing.ts";

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT = new URL("../../docs/screenshot.png", import.meta.url);
/** The load of the issue: 64 TCP clients, 10,000 messages/s in all, for a bounded time. */
const LOAD = { clients: 64, rate: 10_000, seconds: 6 };
/** Clicks timed under load. */
const CLICKS = 5;
/** Longest a PING of the test's clients may wait for its PONG. */
const PING_TIMEOUT_MS = 30_000;

/** What the test's functions use of the page's DOM (Deno's types have no DOM, see page.ts). */
interface TestElement {
  readonly textContent: string | null;
}
declare const document: {
  querySelector(selector: string): TestElement | null;
  querySelectorAll(selector: string): Iterable<TestElement> & { readonly length: number };
  addEventListener(type: string, listener: () => void, capture: boolean): void;
};
declare const window: { clickTimes: number[]; clickAt: number | undefined };
declare function requestAnimationFrame(callback: () => void): void;
declare class MutationObserver {
  constructor(callback: () => void);
  observe(target: TestElement | null, options: Record<string, boolean>): void;
}

/** The server process with its HTTP side, and where to connect. */
interface LiveServer extends AsyncDisposable {
  process: ServerProcess;
  pageUrl: string;
  tcpPort: number;
  /** Whether the server printed `line` on stdout (a whole line). */
  printed(line: string): boolean;
}

/** `server.ts 0 --http 0` with the `server` task's flags; stopped with SIGTERM on dispose. */
async function startLiveServer(): Promise<LiveServer> {
  const process = await startServer(["--http", "0"]);
  const httpPort = await httpListeningPort(process);
  let stopped = false;
  return {
    process,
    pageUrl: `http://127.0.0.1:${httpPort}/`,
    tcpPort: process.port,
    printed: (line) => `\n${process.stdout.text()}`.includes(`\n${line}\n`),
    async [Symbol.asyncDispose]() {
      if (stopped) return;
      stopped = true;
      process.kill("SIGTERM");
      await process.status;
    },
  };
}

/**
 * A TCP client of the test. A subscribed one reads the relays all the time (the load
 * would make it a slow consumer otherwise) and keeps those not from the load clients in
 * `heard`.
 */
async function tcpClient(live: LiveServer, name: string, subscribe = false) {
  const client = await ParrotClient.connect({ port: live.tcpPort, name, subscribe });
  const heard: string[] = [];
  const reading = subscribe
    ? (async () => {
      const decoder = new TextDecoder();
      for await (const event of client) {
        if (event.type === "message" && !event.from.startsWith("load")) {
          heard.push(`${event.from}: ${decoder.decode(event.payload)}`);
        }
      }
    })()
    : Promise.resolve();
  await client.ping({ signal: AbortSignal.timeout(PING_TIMEOUT_MS) });
  return {
    client,
    heard,
    /** Resolves once everything this client sent is through. */
    ping: () => client.ping({ signal: AbortSignal.timeout(PING_TIMEOUT_MS) }),
    async close() {
      await client.close();
      await reading;
    },
  };
}

/** The text of every cell of the first column `column` of the rows of `tbody`. */
function columnTexts(page: Page, tbody: string, column: number): Promise<string[]> {
  return page.$$eval(
    `#${tbody} tr td:nth-child(${column})`,
    (cells) => cells.map((cell) => cell.textContent ?? ""),
  );
}

/**
 * Waits until `predicate` holds in the page. Not `page.waitForFunction`: that evaluates
 * a string in the page, which the page's Content-Security-Policy rightly forbids.
 */
async function until<T extends number | string | undefined>(
  page: Page,
  predicate: (argument: T) => boolean,
  argument?: T,
  timeoutMs = 20_000,
): Promise<void> {
  await waitFor(
    () => page.evaluate(predicate as (argument: unknown) => boolean, argument),
    `the page: ${predicate.toString().slice(0, 200)}`,
    timeoutMs,
    25,
  );
}

async function launch(): Promise<Browser> {
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu"],
  });
}

Deno.test({
  name: "the live page in Chromium shows messages, clients, rates and sends as a web user",
  // playwright-core keeps its pipes and timers to the browser process open in between.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await using live = await startLiveServer();
    const browser = await launch();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error") {
          problems.push(`console: ${message.text()}`);
        }
      });
      const polly = await tcpClient(live, "polly");
      const listener = await tcpClient(live, "listener", true);
      await page.goto(live.pageUrl);
      await page.waitForSelector("#status.live");

      await t.step("a message from a TCP client appears on the page, escaped", async () => {
        polly.client.send("<b>pieces of eight</b>");
        await polly.ping();
        await page.waitForSelector("#messages tr");
        assert.deepEqual(await columnTexts(page, "messages", 2), ["polly"]);
        assert.deepEqual(await columnTexts(page, "messages", 4), ["<b>pieces of eight</b>"]);
        assert.equal(await page.$$eval("#messages b", (bold) => bold.length), 0);
      });

      await t.step(
        "the client list shows the clients, and one that leaves disappears",
        async () => {
          await until(page, () => document.querySelectorAll("#clients tr").length === 2);
          assert.deepEqual((await columnTexts(page, "clients", 1)).sort(), ["listener", "polly"]);
          const leaving = await tcpClient(live, "leaving");
          await until(
            page,
            () =>
              [...document.querySelectorAll("#clients tr td:first-child")].some((cell) =>
                cell.textContent === "leaving"
              ),
          );
          await leaving.close();
          await until(
            page,
            () =>
              ![...document.querySelectorAll("#clients tr td:first-child")].some((cell) =>
                cell.textContent === "leaving"
              ),
          );
          assert.equal(await page.textContent("#client-count"), "2");
        },
      );

      await t.step("the chart moves and the rates show the traffic", async () => {
        const before = await page.$eval(
          "#chart-messages",
          (canvas) => (canvas as unknown as { toDataURL(): string }).toDataURL(),
        );
        for (let i = 0; i < 50; i++) polly.client.send(`squawk ${i}`);
        await polly.ping();
        await until(
          page,
          () =>
            !["–", "0"].includes(document.querySelector("#rate-messages-in")?.textContent ?? "–"),
        );
        const after = await page.$eval(
          "#chart-messages",
          (canvas) => (canvas as unknown as { toDataURL(): string }).toDataURL(),
        );
        assert.notEqual(after, before);
        const points = Number(await page.getAttribute("#chart-messages", "data-points"));
        assert.ok(points >= 2, `only ${points} points drawn`);
        assert.equal(await page.textContent('[data-counter="messages"]'), "51");
      });

      await t.step("a message sent from the page reaches the server and a TCP client", async () => {
        await page.fill("#send-name", "web");
        await page.fill("#send-text", "hello from the page");
        await page.click("#send-button");
        await until(
          page,
          () => document.querySelector("#send-status")?.textContent === "sent as web",
        );
        await waitFor(
          () => live.printed("web: hello from the page"),
          "the server to print the page's message",
        );
        await waitFor(
          () => listener.heard.includes("web: hello from the page"),
          "the page's message at the TCP client",
        );
        await until(
          page,
          () =>
            [...document.querySelectorAll("#messages td.payload")].some((cell) =>
              cell.textContent === "hello from the page"
            ),
        );
        // The page's sender is a client of its own, listed by the server.
        await until(page, () => document.querySelectorAll("#clients tr").length === 3);
        const rows = await page.$$eval(
          "#clients tr",
          (rows) =>
            rows.map((row) => `${row.children[0].textContent} ${row.children[1].textContent}`),
        );
        assert.deepEqual(rows.sort(), ["listener tcp", "polly tcp", "web websocket"]);
      });

      await t.step("an invalid name is refused by the page", async () => {
        await page.fill("#send-name", "two words");
        await page.fill("#send-text", "never sent");
        await page.dispatchEvent("#send-form", "submit");
        await until(
          page,
          () => (document.querySelector("#send-status")?.textContent ?? "").includes("two words"),
        );
        assert.match(
          (await page.textContent("#send-status"))!,
          /^Cannot send as "two words": a name is 1 to 64 printable ASCII characters/,
        );
        await page.fill("#send-name", "web");
      });

      await t.step(
        `a click renders while ${LOAD.clients} TCP clients send ${LOAD.rate} messages/s`,
        async () => {
          await page.evaluate(() => {
            const status = document.querySelector("#send-status");
            window.clickTimes = [];
            document.addEventListener("click", () => {
              window.clickAt = performance.now();
            }, true);
            new MutationObserver(() => {
              const at = window.clickAt;
              if (at === undefined) return;
              window.clickAt = undefined;
              requestAnimationFrame(() => window.clickTimes.push(performance.now() - at));
            }).observe(status, { childList: true, characterData: true, subtree: true });
          });
          const load = new Deno.Command(Deno.execPath(), {
            args: [
              "run",
              "--allow-net=127.0.0.1",
              new URL("./tcp_load.ts", import.meta.url).pathname,
              String(live.tcpPort),
              String(LOAD.clients),
              String(LOAD.rate),
              String(LOAD.seconds),
            ],
            stdout: "piped",
            stderr: "inherit",
          }).spawn();
          const lines = load.stdout.pipeThrough(new TextDecoderStream()).getReader();
          let output = "";
          while (!output.includes("ready\n")) {
            const { value, done } = await lines.read();
            if (done) break;
            output += value;
          }
          assert.match(output, /ready/);
          // The server lists the load clients with the three of the test.
          const everyone = LOAD.clients + 3;
          await until(
            page,
            (everyone) => document.querySelector("#client-count")?.textContent === String(everyone),
            everyone,
          );
          const names = await columnTexts(page, "clients", 1);
          assert.equal(names.filter((name) => /^load\d+$/.test(name)).length, LOAD.clients);
          // The page samples: a few thousand messages a second are shown 1 in N.
          await until(
            page,
            () => /showing 1 in \d+/.test(document.querySelector("#sampling")?.textContent ?? ""),
          );
          for (let i = 0; i < CLICKS; i++) {
            await page.fill("#send-text", `click ${i}`);
            const count = await page.evaluate(() => window.clickTimes.length);
            await page.click("#send-button");
            await until(page, (count) => window.clickTimes.length > count, count);
          }
          const times = (await page.evaluate(() => window.clickTimes)).slice(-CLICKS);
          while (!output.includes("done ")) {
            const { value, done } = await lines.read();
            if (done) break;
            output += value;
          }
          const status = await load.status;
          assert.equal(status.code, 0, `the load process exited ${status.code}`);
          const [, sent, ms] = output.match(/done (\d+) (\d+)/)!.map(Number);
          assert.equal(sent, LOAD.rate * LOAD.seconds);
          const rows = await page.$$eval("#messages tr", (all) => all.length);
          assert.ok(rows <= 200, `${rows} rows kept`);
          const sorted = [...times].sort((a, b) => a - b);
          console.log(
            `click-to-render under load (${sent} messages in ${ms} ms from ${LOAD.clients} ` +
              `clients, ${Math.round(sent / (ms / 1000))}/s): median ${
                sorted[Math.floor(sorted.length / 2)].toFixed(1)
              } ms, max ${sorted.at(-1)!.toFixed(1)} ms over ${times.length} clicks`,
          );
        },
      );

      await t.step("the screenshot for the README", async () => {
        // Once the load is over, the page shows every message again, and the load
        // clients have left.
        await until(page, () => document.querySelector("#sampling")?.textContent === "");
        await until(page, () => document.querySelector("#client-count")?.textContent === "3");
        polly.client.send("pieces of eight!");
        listener.client.send("ahoy, polly");
        polly.client.send(new Uint8Array([0x00, 0xff, 0x10, 0x80, 0x7f]));
        await polly.ping();
        await listener.ping();
        await page.fill("#send-text", "hello from the page, again");
        await page.click("#send-button");
        await until(
          page,
          () => document.querySelector("#send-status")?.textContent === "sent as web",
        );
        await until(
          page,
          () =>
            [...document.querySelectorAll("#messages td.payload")].some((cell) =>
              cell.textContent === "hello from the page, again"
            ),
        );
        await page.screenshot({ path: SCREENSHOT.pathname, fullPage: false });
        const saved = await Deno.stat(SCREENSHOT);
        assert.ok(saved.size > 10_000, `the screenshot has ${saved.size} bytes`);
      });

      await polly.close();
      await listener.close();
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
    await live[Symbol.asyncDispose]();
    assert.equal((await live.process.status).code, 0, live.process.stderr.text());
    assert.ok(live.printed("web: click 0"), "the clicks under load are printed");
  },
});
