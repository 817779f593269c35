/**
 * The live page's script, run by the browser: it reads the feed (`/live`, Server-Sent
 * Events, one event a second) and shows the messages, the clients, the rates as two
 * small charts and the counters; its form sends a message as a named web user over the
 * `/ws` WebSocket.
 *
 * Plain TypeScript without a framework or any import at run time: the server strips the
 * types (`stripTypeScriptTypes` of `node:module`) and serves it as `/page.js`; `deno
 * check` checks it as it is. Data from the feed only ever reaches the page through
 * `textContent`, never as HTML.
 *
 * The DOM it uses is declared below, in this module only: `/// <reference lib="dom" />`
 * would add the DOM to the one type check the whole project shares, and change the
 * types of the server's code (its streams, for one). `EventSource`, `WebSocket`, `URL`
 * and `location` are in Deno's own types.
 *
 * @module
 */

import type { ClientInfo, FeedEvent, FeedHistoryEvent, FeedMessage } from "../live_feed.ts";

/** The part of a DOM element the page uses. */
interface PageElement {
  textContent: string | null;
  className: string;
  readonly dataset: Record<string, string | undefined>;
  readonly lastElementChild: PageElement | null;
  append(...nodes: PageElement[]): void;
  prepend(...nodes: PageElement[]): void;
  replaceChildren(...nodes: PageElement[]): void;
  remove(): void;
  addEventListener(type: string, listener: (event: { preventDefault(): void }) => void): void;
}
/** A `<tbody>`. */
interface PageTableBody extends PageElement {
  readonly rows: { readonly length: number };
}
/** An `<input>`. */
interface PageInput extends PageElement {
  value: string;
}
/** The part of a canvas 2D context the charts use. */
interface PageCanvasContext {
  strokeStyle: string;
  fillStyle: string;
  lineWidth: number;
  font: string;
  clearRect(x: number, y: number, width: number, height: number): void;
  fillText(text: string, x: number, y: number): void;
  beginPath(): void;
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
  stroke(): void;
}
/** A `<canvas>`. */
interface PageCanvas extends PageElement {
  readonly width: number;
  readonly height: number;
  getContext(kind: "2d"): PageCanvasContext | null;
}
declare const document: {
  getElementById(id: string): PageElement | null;
  createElement(tag: string): PageElement;
};
declare function getComputedStyle(element: PageElement): {
  getPropertyValue(name: string): string;
};

/** Rows of messages the page keeps; older ones are removed. */
const MAX_MESSAGE_ROWS = 200;
/** Points of each chart: one a second. */
const CHART_POINTS = 60;
/** Longest client name (HELLO's rule: MAX_NAME_LENGTH in lib/defaults.ts). */
const MAX_NAME_LENGTH = 64;

/** The element with this id (of the type the page's HTML gives it); throws when it lacks it. */
function element<T extends PageElement = PageElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`The page has no #${id}`);
  return found as T;
}

/** HELLO's name rule (isValidName in lib/parrot/frame.ts): 1 to 64 printable ASCII characters. */
export function isValidName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return false;
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code < 0x21 || code > 0x7e) return false;
  }
  return true;
}

/** `1234567` as `1.2M`, `1234` as `1.2k`. */
function compact(value: number | null): string {
  if (value === null) return "n/a";
  const units: [number, string][] = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [size, unit] of units) {
    if (value >= size) return `${(value / size).toFixed(value >= 10 * size ? 0 : 1)}${unit}`;
  }
  return value >= 10 || value === 0 ? value.toFixed(0) : value.toFixed(1);
}

/** `HH:MM:SS.mmm` in local time. */
function clockTime(ms: number): string {
  const date = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${
    String(date.getMilliseconds()).padStart(3, "0")
  }`;
}

/** A table cell with this text (as text: never parsed as HTML). */
function cell(text: string, className = ""): PageElement {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/** The messages table: newest first, at most {@linkcode MAX_MESSAGE_ROWS} rows. */
function showMessages(body: PageTableBody, messages: FeedMessage[]): void {
  for (const message of messages) {
    const row = document.createElement("tr");
    const preview = message.binary
      ? `binary: ${message.preview}${message.truncated ? " …" : ""}`
      : `${message.preview}${message.truncated ? "…" : ""}`;
    row.append(
      cell(clockTime(message.time), "time"),
      cell(message.from),
      cell(String(message.size), "num"),
      cell(preview, message.binary ? "payload binary" : "payload"),
    );
    body.prepend(row);
  }
  while (body.rows.length > MAX_MESSAGE_ROWS) body.lastElementChild?.remove();
}

/** The clients table, rebuilt from the event's list. */
function showClients(body: PageTableBody, clients: ClientInfo[]): void {
  body.replaceChildren(
    ...clients.map((client) => {
      const row = document.createElement("tr");
      row.dataset.clientId = String(client.id);
      row.append(
        cell(client.name),
        cell(client.transport),
        cell(client.address),
        cell(String(client.messagesIn), "num"),
        cell(String(client.messagesOut), "num"),
        cell(new Date(client.connectedAt).toLocaleTimeString()),
      );
      return row;
    }),
  );
}

/** What the counters of `--stats` are called on the page (those a server has are shown). */
export const COUNTER_LABELS: Record<string, string> = {
  clients: "clients",
  connections: "connections",
  messages: "messages",
  relayed: "relayed",
  queueDepth: "queue depth",
  slowConsumers: "slow consumers",
  slowConsumerDrops: "slow consumer drops",
  rejected: "rejected connections",
  authFailures: "auth failures",
  tlsFailures: "TLS failures",
  ratePauses: "rate-limit pauses",
  readTimeouts: "read timeouts",
  idleTimeouts: "idle timeouts",
  protocolErrors: "protocol errors",
  unwrittenMessages: "unwritten messages",
  // Cluster mode (`lib/cluster/cluster_metrics.ts`, clusterFeedCounters).
  clusterConnected: "cluster connected",
  clusterPublished: "cluster published",
  clusterReceived: "cluster received",
  clusterBuffered: "cluster buffered",
  clusterReplayed: "cluster replayed",
  clusterDropped: "cluster dropped",
  clusterLost: "cluster lost",
  clusterInvalid: "cluster invalid",
  clusterRefused: "cluster refused",
  clusterOverflow: "cluster overflow",
};

function showCounters(list: PageElement, counters: Record<string, unknown> | null): void {
  if (!counters) return;
  const items: PageElement[] = [];
  for (const [key, label] of Object.entries(COUNTER_LABELS)) {
    const value = counters[key];
    if (typeof value !== "number") continue;
    const term = document.createElement("dt");
    term.textContent = label;
    const definition = document.createElement("dd");
    definition.textContent = String(value);
    definition.dataset.counter = key;
    items.push(term, definition);
  }
  list.replaceChildren(...items);
}

/** A small line chart of two series (in and out), the last {@linkcode CHART_POINTS} values. */
class Chart {
  readonly #canvas: PageCanvas;
  readonly #in: number[] = [];
  readonly #out: (number | null)[] = [];

  constructor(canvas: PageCanvas) {
    this.#canvas = canvas;
  }

  /** Points drawn so far (at most {@linkcode CHART_POINTS}). */
  get points(): number {
    return this.#in.length;
  }

  push(valueIn: number, valueOut: number | null): void {
    this.#in.push(valueIn);
    this.#out.push(valueOut);
    if (this.#in.length > CHART_POINTS) {
      this.#in.shift();
      this.#out.shift();
    }
    this.#draw();
  }

  #draw(): void {
    const canvas = this.#canvas;
    const context = canvas.getContext("2d");
    if (!context) return;
    const { width, height } = canvas;
    const style = getComputedStyle(canvas);
    context.clearRect(0, 0, width, height);
    const all = [...this.#in, ...this.#out.filter((v): v is number => v !== null)];
    const top = Math.max(1, ...all) * 1.1;
    const x = (i: number) => (i / (CHART_POINTS - 1)) * (width - 4) + 2;
    const y = (v: number) => height - 2 - (v / top) * (height - 16);
    context.fillStyle = style.getPropertyValue("--muted") || "#888";
    context.font = "10px system-ui, sans-serif";
    context.fillText(compact(top / 1.1), 4, 10);
    const line = (values: (number | null)[], color: string) => {
      context.strokeStyle = color;
      context.lineWidth = 1.5;
      context.beginPath();
      const offset = CHART_POINTS - values.length;
      let drawing = false;
      values.forEach((value, i) => {
        if (value === null) {
          drawing = false;
          return;
        }
        if (drawing) context.lineTo(x(offset + i), y(value));
        else context.moveTo(x(offset + i), y(value));
        drawing = true;
      });
      context.stroke();
    };
    line(this.#in, style.getPropertyValue("--in") || "green");
    line(this.#out, style.getPropertyValue("--out") || "orange");
    canvas.dataset.points = String(this.#in.length);
  }
}

/** What a pending send waits for: the server's `{"type":"pong"}` after the message. */
interface PendingPong {
  resolve(): void;
  reject(error: Error): void;
}

/** One `/ws` connection of {@linkcode WebSender}, for one name. */
interface WebLink {
  readonly name: string;
  readonly socket: WebSocket;
  /** Resolves once open; rejects if it closes first. */
  readonly open: Promise<void>;
  /** Sends waiting for their pong, oldest first. */
  readonly pongs: PendingPong[];
  /** Closed by the sender itself (a new name): nothing to tell the user. */
  closedHere: boolean;
}

const PING = JSON.stringify({ type: "ping" });
const PONG = JSON.stringify({ type: "pong" });

/**
 * Sends messages as a named web user over the `/ws` WebSocket (docs/PROTOCOL.md,
 * "WebSocket"). The one place that knows that protocol: it connects to
 * `/ws?name=<name>&subscribe=0` (the name as HELLO's; unsubscribed, since the page shows
 * the messages from its feed and must not take every relay under load), sends each
 * message as `{"type":"msg","text":...}` followed by `{"type":"ping"}`, and a send is done
 * when the server's `{"type":"pong"}` says the message went through. It answers the
 * server's idle `{"type":"ping"}` with `{"type":"pong"}`. A close says its code and
 * reason: to the send waiting, or to `onClose` when none is. A new name opens a new
 * socket.
 *
 * @example Sending as "web" from the page
 * ```ts ignore
 * const sender = new WebSender(location.href, (message) => console.log(message));
 * await sender.send("web", "hello from the page");
 * ```
 */
export class WebSender {
  readonly #base: string;
  readonly #onClose: (message: string) => void;
  #link: WebLink | null = null;

  /**
   * A sender to `/ws` of the origin of `base` (the page's URL); `onClose` hears of a
   * connection the server closed while no send waited on it.
   */
  constructor(base: string | URL, onClose: (message: string) => void = () => {}) {
    this.#base = String(base);
    this.#onClose = onClose;
  }

  /** Sends `text` as `name`; resolves once the server has taken it (its pong). */
  async send(name: string, text: string): Promise<void> {
    const link = this.#linkFor(name);
    await link.open;
    const done = new Promise<void>((resolve, reject) => link.pongs.push({ resolve, reject }));
    link.socket.send(JSON.stringify({ type: "msg", text }));
    link.socket.send(PING);
    await done;
  }

  /** Closes the connection, if any. */
  close(): void {
    const link = this.#link;
    this.#link = null;
    if (!link) return;
    link.closedHere = true;
    link.socket.close(1000, "page closed");
  }

  #linkFor(name: string): WebLink {
    const current = this.#link;
    if (current && current.name === name) return current;
    if (current) {
      current.closedHere = true;
      current.socket.close(1000, "name changed");
    }
    const link = this.#connect(name);
    this.#link = link;
    return link;
  }

  #connect(name: string): WebLink {
    const url = new URL("/ws", this.#base);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.search = new URLSearchParams({ name, subscribe: "0" }).toString();
    const socket = new WebSocket(url);
    let opened = false;
    const open = new Promise<void>((resolve, reject) => {
      socket.addEventListener("open", () => {
        opened = true;
        resolve();
      }, { once: true });
      socket.addEventListener("close", (event: CloseEvent) => {
        if (this.#link === link) this.#link = null;
        const why = `${event.code}${event.reason ? ` ${event.reason}` : ""}`;
        const error = new Error(
          opened ? `the server closed /ws (${why})` : `/ws refused the connection (${why})`,
        );
        reject(error);
        const waiting = link.pongs.splice(0);
        for (const pong of waiting) pong.reject(error);
        if (opened && waiting.length === 0 && !link.closedHere) this.#onClose(error.message);
      }, { once: true });
    });
    // Only the waiting sends report a failed open.
    open.catch(() => {});
    socket.addEventListener("message", (event: MessageEvent) => {
      if (typeof event.data !== "string") return;
      let control: { type?: unknown };
      try {
        control = JSON.parse(event.data);
      } catch {
        return;
      }
      if (control?.type === "ping") socket.send(PONG);
      else if (control?.type === "pong") link.pongs.shift()?.resolve();
    });
    // The listeners above run on later events, once `link` is set.
    const link: WebLink = { name, socket, open, pongs: [], closedHere: false };
    return link;
  }
}

/** Wires the page: the feed, the charts and the form. */
function start(): void {
  const status = element("status");
  const messages = element<PageTableBody>("messages");
  const clients = element<PageTableBody>("clients");
  const clientCount = element("client-count");
  const clientsMore = element("clients-more");
  const counters = element("counters");
  const sampling = element("sampling");
  const messageChart = new Chart(element<PageCanvas>("chart-messages"));
  const byteChart = new Chart(element<PageCanvas>("chart-bytes"));
  const rate = (id: string, value: number | null) => {
    element(id).textContent = compact(value);
  };

  const feed = new EventSource("/live");
  feed.addEventListener("open", () => {
    status.textContent = "live";
    status.className = "status live";
  });
  feed.addEventListener("error", () => {
    status.textContent = "disconnected: reconnecting…";
    status.className = "status";
  });
  // With --history, the recent messages come first (again after a reconnect: they
  // replace what the table showed).
  feed.addEventListener("history", (message: MessageEvent<string>) => {
    const event = JSON.parse(message.data) as FeedHistoryEvent;
    messages.replaceChildren();
    showMessages(messages, event.messages);
  });
  feed.addEventListener("message", (message: MessageEvent<string>) => {
    const event = JSON.parse(message.data) as FeedEvent;
    showMessages(messages, event.messages);
    showClients(clients, event.clients);
    clientCount.textContent = String(event.clientCount);
    clientsMore.textContent = event.clientCount > event.clients.length
      ? `and ${event.clientCount - event.clients.length} more`
      : "";
    showCounters(counters, event.counters as unknown as Record<string, unknown> | null);
    const { shown, total } = event.sampled;
    sampling.textContent = total > shown && shown > 0
      ? `showing 1 in ${Math.round(total / shown)}`
      : total > shown
      ? `showing none of ${total}`
      : "";
    rate("rate-messages-in", event.rates.messagesIn);
    rate("rate-messages-out", event.rates.messagesOut);
    rate("rate-bytes-in", event.rates.bytesIn);
    rate("rate-bytes-out", event.rates.bytesOut);
    messageChart.push(event.rates.messagesIn, event.rates.messagesOut);
    byteChart.push(event.rates.bytesIn, event.rates.bytesOut);
  });

  const form = element("send-form");
  const nameInput = element<PageInput>("send-name");
  const textInput = element<PageInput>("send-text");
  const sendStatus = element("send-status");
  const say = (text: string, error = false) => {
    sendStatus.textContent = text;
    sendStatus.className = error ? "hint error" : "hint";
  };
  const sender = new WebSender(location.href, (message) => say(`Disconnected: ${message}`, true));
  form.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const name = nameInput.value;
    if (!isValidName(name)) {
      say(
        `Cannot send as "${name}": a name is 1 to 64 printable ASCII characters, no spaces`,
        true,
      );
      return;
    }
    const text = textInput.value;
    sender.send(name, text).then(
      () => {
        say(`sent as ${name}`);
        textInput.value = "";
      },
      (error: Error) => say(`Cannot send: ${error.message}`, true),
    );
  });
}

if (typeof document !== "undefined") start();
