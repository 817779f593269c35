/**
 * `ClusterMember`: cluster mode as the server's CLI holds it. A {@linkcode ClusterLink} whose
 * deliveries are checked against this server's limits and handed to the server's main task
 * through a {@linkcode RemoteInbox}.
 *
 * The link decodes and orders what other servers publish; what it delivers must still obey
 * the limits a local client obeys before the main task relays it: a payload larger than this
 * server's max frame, or a sender name that no parrot client could have (the relay frame
 * `MSG <name> <n>` would break), is refused here, counted and logged once, never relayed.
 * A delivery that the inbox cannot take (the main task is that far behind) is counted as an
 * overflow. Both counts join the link's in {@linkcode ClusterMember.stats}.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { isValidName } from "../parrot/frame.ts";
import type { ClusterCommandLine } from "./cluster_flags.ts";
import { ClusterLink } from "./cluster_link.ts";
import type { ClusterReport } from "./cluster_metrics.ts";
import type { RemoteInbox } from "./remote_inbox.ts";

const log = getLogger(["parrot", "cluster"]);

/** Largest length a cluster frame can give a payload (u32): the link's own cap is the frame. */
const ANY_PAYLOAD = 0xffff_ffff;

/** Settings of {@linkcode ClusterMember.open}. */
export interface ClusterMemberOptions {
  /** The cluster flags. */
  cluster: Omit<ClusterCommandLine, "serverName" | "printCluster">;
  /** This server's name in the cluster. */
  serverName: string;
  /** This server's largest payload (`--max-frame`): larger remote payloads are refused. */
  maxFrameBytes: number;
  /** Where the accepted messages of other servers go (the server's `remote` option). */
  inbox: RemoteInbox;
}

/**
 * A server's membership of a cluster: publish its messages, take the others' into its inbox.
 *
 * @example
 * ```ts ignore
 * import { ClusterMember } from "./cluster_member.ts";
 * import { RemoteInbox } from "./remote_inbox.ts";
 * const inbox = new RemoteInbox();
 * const member = ClusterMember.open({
 *   cluster: { servers: ["nats://127.0.0.1:4222"], subject: "parrot.msg", bufferBytes: 1 << 20 },
 *   serverName: "east",
 *   maxFrameBytes: 1 << 20,
 *   inbox,
 * });
 * member.publish("alice", new TextEncoder().encode("hi"));
 * await member.close();
 * ```
 */
export class ClusterMember {
  readonly #link: ClusterLink;
  readonly #inbox: RemoteInbox;
  #refused = 0;
  #refusedLogged = false;
  #overflowLogged = false;

  private constructor(options: ClusterMemberOptions) {
    this.#inbox = options.inbox;
    const { maxFrameBytes, inbox } = options;
    this.#link = ClusterLink.open({
      ...options.cluster,
      serverName: options.serverName,
      // Checked below, per message: a frame is dropped whole by the link, and one large
      // message of a server with a larger --max-frame must not take its neighbours along.
      maxPayloadBytes: ANY_PAYLOAD,
      onMessage: (origin, from, payload) => {
        if (payload.length > maxFrameBytes) {
          return this.#refuse(
            origin,
            `a payload of ${payload.length} bytes is over the max frame (${maxFrameBytes})`,
          );
        }
        if (!isValidName(from)) {
          return this.#refuse(origin, `the sender name ${JSON.stringify(from)} is not valid`);
        }
        if (!inbox.push(origin, from, payload) && !this.#overflowLogged) {
          this.#overflowLogged = true;
          log.warn(
            "Dropping messages of other servers: the server is behind by more than its inbox holds (logged once)",
          );
        }
      },
    });
  }

  /**
   * Checks the settings (throws `ClusterConfigError` for one that cannot be applied) and
   * starts connecting in the background.
   */
  static open(options: ClusterMemberOptions): ClusterMember {
    return new ClusterMember(options);
  }

  /** This server's name in the cluster. */
  get serverName(): string {
    return this.#link.serverName;
  }

  /** Resolves once connected (and subscribed) for the first time. */
  ready(signal?: AbortSignal): Promise<void> {
    return this.#link.ready(signal);
  }

  /** Publishes one message of this server's clients (the server's `onMessage`). */
  publish(from: string, payload: Uint8Array): void {
    this.#link.publish(from, payload);
  }

  /** The link's counters, with the refused and overflowed deliveries. */
  stats(): ClusterReport {
    return { ...this.#link.stats(), refused: this.#refused, overflow: this.#inbox.dropped };
  }

  /** Publishes what is held and leaves the cluster (at once if `signal` aborts). */
  close(signal?: AbortSignal): Promise<void> {
    return this.#link.close(signal);
  }

  #refuse(origin: string, why: string): void {
    this.#refused++;
    if (!this.#refusedLogged) {
      this.#refusedLogged = true;
      log.warn("Refused a message of server {origin}: {why} (logged once)", { origin, why });
    }
  }
}
