/**
 * What one idle client costs the server's JavaScript heap, object by object: the
 * measurement behind the per-connection budget in docs/PERFORMANCE.md.
 *
 * It starts a parrot server in this process (no stdout), takes a heap snapshot once one
 * warm-up client is connected, opens `--count` idle clients (each says `HELLO`,
 * `PING`, gets its `PONG` and stays), and takes another. Before each snapshot the
 * server trims itself as its idle collection does (`trimMemory()`: pooled buffers, and
 * the outbound queues of clients with nothing queued), so the figure is what a quiet
 * server holds. The clients live in a Worker:
 * a Worker has a heap of its own, so they are not in the server's snapshot. The
 * snapshots (`node:v8`'s `writeHeapSnapshot()`, after a full collection each) are
 * compared object by object: every object is counted under the object that holds it
 * (its first retainer), and the difference is divided by the number of clients.
 *
 * Run:
 *
 *     deno run --allow-net=127.0.0.1 --allow-read --allow-write --v8-flags=--expose-gc \
 *       scripts/heap_per_connection.ts --count 2000
 *
 * Prints the live heap per connection and the largest items per connection, as
 * `bytes  count  holder .edge -> object`. Exits 1 when a client did not get its PONG.
 * What does not grow with the clients (compiled code, caches) is divided by them too:
 * use a count of 2,000 or more for a per-connection figure.
 *
 * @module
 */

import { parseArgs } from "node:util";
import v8 from "node:v8";
import { startParrotServer } from "../lib/parrot/server.ts";

/** One heap snapshot, reduced to bytes and counts by "holder .edge -> object". */
type Tally = Map<string, { count: number; bytes: number }>;

if (import.meta.main) await main();

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { count: { type: "string", default: "2000" }, top: { type: "string", default: "25" } },
    strict: true,
  });
  const count = wholeNumber("--count", values.count, 10_000);
  const top = wholeNumber("--top", values.top, 1_000);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) {
    console.error("Cannot collect garbage: run with --v8-flags=--expose-gc");
    Deno.exit(2);
  }
  const server = startParrotServer({ port: 0, output: null, maxClients: count + 10 });
  const dir = await Deno.makeTempDir({ prefix: "parrot-heap-" });
  const clients = new Worker(new URL("./heap_per_connection_clients.ts", import.meta.url), {
    type: "module",
  });
  try {
    await askClients(clients, server.addr.port, 1); // warm-up: code paths compiled
    server.trimMemory();
    const before = snapshot(`${dir}/before.heapsnapshot`, gc);
    await askClients(clients, server.addr.port, count);
    server.trimMemory();
    // Both taken before either is read: what reading allocates is in neither.
    const after = snapshot(`${dir}/after.heapsnapshot`, gc);
    report(tally(before), tally(after), count, top);
  } catch (error) {
    console.error(`Cannot measure: ${error instanceof Error ? error.message : error}`);
    Deno.exitCode = 1;
  } finally {
    clients.terminate();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

/** `text` as a whole number from 1 to `max`; exits 2 with a clear line otherwise. */
function wholeNumber(option: string, text: string, max: number): number {
  const value = Number(text);
  if (Number.isInteger(value) && value >= 1 && value <= max) return value;
  console.error(`Cannot use ${option} "${text}": a whole number from 1 to ${max}`);
  Deno.exit(2);
}

/** Asks the clients' Worker to open `count` more idle clients; resolves once all got PONG. */
function askClients(worker: Worker, port: number, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    worker.onmessage = (event) =>
      event.data === "ready" ? resolve() : reject(new Error(event.data));
    worker.postMessage({ port, count });
  });
}

function snapshot(file: string, gc: () => void): string {
  for (let i = 0; i < 3; i++) gc();
  v8.writeHeapSnapshot(file);
  return file;
}

/** Sums the objects of a snapshot by "holder .edge -> object" (weak edges do not hold). */
function tally(file: string): Tally {
  const heap = JSON.parse(Deno.readTextFileSync(file));
  const meta = heap.snapshot.meta;
  const nodeFields: string[] = meta.node_fields;
  const edgeFields: string[] = meta.edge_fields;
  const nodeTypes: string[] = meta.node_types[0];
  const edgeTypes: string[] = meta.edge_types[0];
  const nf = nodeFields.length;
  const ef = edgeFields.length;
  const [iType, iName, iSize, iEdges] = ["type", "name", "self_size", "edge_count"].map((f) =>
    nodeFields.indexOf(f)
  );
  const [eType, eName, eTo] = ["type", "name_or_index", "to_node"].map((f) =>
    edgeFields.indexOf(f)
  );
  const nodes: number[] = heap.nodes;
  const edges: number[] = heap.edges;
  const strings: string[] = heap.strings;
  const count = nodes.length / nf;
  const holder = new Int32Array(count).fill(-1);
  const holderEdge: string[] = new Array(count);
  for (let node = 0, edge = 0; node < count; node++) {
    for (let k = 0; k < nodes[node * nf + iEdges]; k++, edge += ef) {
      const type = edgeTypes[edges[edge + eType]];
      const to = edges[edge + eTo] / nf;
      if (type === "weak" || type === "shortcut" || holder[to] !== -1) continue;
      holder[to] = node;
      // Elements and a table's numbered slots (a Map's or Set's entries) are one row, not
      // one row per index, so that a holder's share does not scatter below the top rows.
      const edgeName = String(strings[edges[edge + eName]]);
      holderEdge[to] = type === "element" || type === "hidden"
        ? `[${type}]`
        : /^\d+$/.test(edgeName)
        ? "[index]"
        : edgeName;
    }
  }
  const name = (node: number) =>
    `${nodeTypes[nodes[node * nf + iType]]}:${
      String(strings[nodes[node * nf + iName]]).slice(0, 40)
    }`;
  const result: Tally = new Map();
  for (let node = 0; node < count; node++) {
    const key = holder[node] < 0
      ? `(root) -> ${name(node)}`
      : `${name(holder[node])} .${holderEdge[node]} -> ${name(node)}`;
    const entry = result.get(key) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += nodes[node * nf + iSize];
    result.set(key, entry);
  }
  return result;
}

function report(before: Tally, after: Tally, clients: number, top: number): void {
  const rows: { key: string; count: number; bytes: number }[] = [];
  let total = 0;
  for (const [key, entry] of after) {
    const old = before.get(key) ?? { count: 0, bytes: 0 };
    total += entry.bytes - old.bytes;
    rows.push({ key, count: entry.count - old.count, bytes: entry.bytes - old.bytes });
  }
  rows.sort((a, b) => b.bytes - a.bytes);
  console.log(
    `live heap per connection: ${(total / clients).toFixed(0)} bytes (${clients} clients)`,
  );
  console.log("bytes  count  holder .edge -> object (per connection)");
  for (const row of rows.slice(0, top)) {
    const bytes = (row.bytes / clients).toFixed(0).padStart(5);
    console.log(`${bytes}  ${(row.count / clients).toFixed(2).padStart(5)}  ${row.key}`);
  }
}
