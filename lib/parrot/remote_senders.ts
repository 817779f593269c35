/**
 * Stand-ins for the senders of other servers' messages (cluster mode): what the hub and the
 * stdout records need to relay and print a message whose sender is not a client here.
 *
 * The hub relays a message from a {@linkcode Session} (it takes the sender's `MSG <name> `
 * header, and never relays a message back to its sender); a record takes a name and a
 * `"<name>: "` prefix. A remote sender is no client of this server, so it gets a session
 * that is never added to the hub: every subscriber here receives its messages, under the
 * same slow-consumer rule as local ones. Both are made once per name and kept, so the main
 * task allocates nothing per message; a bounded number are kept (past it, the cache starts
 * over), so a stream of ever new names cannot grow memory.
 *
 * @module
 */

import type { RecordSender } from "./record_format.ts";
import { Session } from "./session.ts";

/** Names kept at most before the caches start over. */
const MAX_CACHED_SENDERS = 4096;

const encoder = new TextEncoder();
/** A connection that is never written to: a remote sender's session is never in the hub. */
const NOWHERE = { write: (p: Uint8Array) => Promise.resolve(p.length), close: () => {} };

/**
 * The sessions and record senders of other servers' clients.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RemoteSenders } from "./remote_senders.ts";
 *
 * const senders = new RemoteSenders();
 * assert.equal(new TextDecoder().decode(senders.session("alice").relayHeader), "MSG alice ");
 * assert.equal(senders.record("east", "alice").name, "alice@east");
 * assert.equal(senders.session("alice"), senders.session("alice")); // made once
 * ```
 */
export class RemoteSenders {
  #sessions = new Map<string, Session>();
  #records = new Map<string, Map<string, RecordSender>>();
  #recordCount = 0;

  /** The session the hub relays `from`'s messages from (named `from`, as the MSG frame shows). */
  session(from: string): Session {
    let session = this.#sessions.get(from);
    if (session === undefined) {
      if (this.#sessions.size >= MAX_CACHED_SENDERS) this.#sessions.clear();
      session = new Session(NOWHERE, 0, from);
      this.#sessions.set(from, session);
    }
    return session;
  }

  /** The record sender of `from` on server `origin`: `<from>@<origin>: ` on stdout. */
  record(origin: string, from: string): RecordSender {
    let byName = this.#records.get(origin);
    if (byName === undefined) {
      byName = new Map();
      this.#records.set(origin, byName);
    }
    let sender = byName.get(from);
    if (sender === undefined) {
      if (this.#recordCount >= MAX_CACHED_SENDERS) {
        this.#records.clear();
        this.#recordCount = 0;
        byName = new Map();
        this.#records.set(origin, byName);
      }
      const name = `${from}@${origin}`;
      sender = { name, prefix: encoder.encode(`${name}: `) };
      byName.set(from, sender);
      this.#recordCount++;
    }
    return sender;
  }
}
