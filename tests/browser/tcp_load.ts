/**
 * A load of TCP clients for the browser test, in a process of its own so that its work
 * does not share the test's event loop: `deno run --allow-net=127.0.0.1
 * tests/browser/tcp_load.ts <port> <clients> <messages per second> <seconds>`.
 *
 * Connects `<clients>` connections (`HELLO load<i>`, `UNSUB`: they send and do not take
 * the relays), prints `ready`, sends the messages paced every 10 ms, round robin over
 * the connections, for `<seconds>`, then a `PING` on each and waits for every `PONG`
 * (so every message is through), and prints `done <messages sent> <milliseconds>`.
 *
 * @module
 */

const encoder = new TextEncoder();
const [port, clients, rate, seconds] = Deno.args.map(Number);
if (![port, clients, rate, seconds].every((n) => Number.isFinite(n) && n > 0)) {
  console.error("Usage: tcp_load.ts <port> <clients> <messages per second> <seconds>");
  Deno.exit(2);
}

const WORDS = ["squawk", "pieces of eight", "hello", "polly wants a cracker", "ahoy"];

const conns = await Promise.all(
  Array.from({ length: clients }, async (_, i) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode(`HELLO load${i}\nUNSUB\n`));
    return conn;
  }),
);
console.log("ready");

const total = Math.round(rate * seconds);
const start = performance.now();
let sent = 0;
while (sent < total) {
  const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
  if (due > sent) {
    const frames: string[][] = conns.map(() => []);
    for (; sent < due; sent++) {
      const payload = `#${sent} ${WORDS[sent % WORDS.length]}`;
      frames[sent % clients].push(`MSG ${encoder.encode(payload).length}\n${payload}\n`);
    }
    await Promise.all(
      conns.map((conn, i) =>
        frames[i].length > 0 ? writeAll(conn, encoder.encode(frames[i].join(""))) : null
      ),
    );
  }
  await new Promise((resolve) => setTimeout(resolve, 10));
}
// A PONG on each: everything this connection sent is through.
await Promise.all(conns.map(async (conn) => {
  await writeAll(conn, encoder.encode("PING\n"));
  const buffer = new Uint8Array(256);
  let text = "";
  while (!text.includes("PONG\n")) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error("The server closed a load connection before its PONG");
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  conn.close();
}));
console.log(`done ${sent} ${Math.round(performance.now() - start)}`);

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let offset = 0; offset < bytes.length;) offset += await conn.write(bytes.subarray(offset));
}
