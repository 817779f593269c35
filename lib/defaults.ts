/**
 * Every default of parrot and of its TCP toolkit, in one place.
 *
 * The CLIs print these in their help text and docs/PROTOCOL.md quotes them, so
 * a change here is a change of behaviour that users see.
 *
 * @module
 */

/** Address the server binds when `--host` is not given: loopback only. */
export const DEFAULT_HOST = "127.0.0.1";
/** Most clients served at once; one more gets `ERR too many clients`. */
export const DEFAULT_MAX_CLIENTS = 10_000;
/** Milliseconds a frame or line may take to complete once its first byte arrived. */
export const DEFAULT_READ_TIMEOUT_MS = 5_000;
/** Milliseconds of silence before the server sends `PING` (and as long again before it drops). */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** Milliseconds a shutdown waits for clients to finish before it closes them. */
export const DEFAULT_GRACE_MS = 5_000;
/** Milliseconds a new connection has to finish its TLS handshake and send `AUTH`. */
export const DEFAULT_AUTH_TIMEOUT_MS = 2_000;
/** Milliseconds one write to a client may stay in flight before it is a slow consumer. */
export const DEFAULT_WRITE_TIMEOUT_MS = 10_000;
/** Largest `MSG` payload accepted, in bytes. */
export const DEFAULT_MAX_FRAME_BYTES = 1_048_576;
/** Bytes queued for one client before it counts as a slow consumer. */
export const DEFAULT_MAX_OUTBOUND_BYTES = 8 * 1024 * 1024;
/** Capacity of the channel between the connection tasks and the main task, in read batches. */
export const DEFAULT_QUEUE_CAPACITY = 32;
/** Longest control line (verb and arguments, without the line end), in bytes. */
export const MAX_CONTROL_LINE_BYTES = 4096;
/** Longest client name given with `HELLO`, in characters. */
export const MAX_NAME_LENGTH = 64;
/**
 * Length of the listen queue (connections the kernel completes before we accept them).
 * A burst of connects beyond it loses handshakes that the clients then retry seconds
 * later. The kernel caps it at `net.core.somaxconn`.
 */
export const DEFAULT_TCP_BACKLOG = 4_096;
/** First delay after a failed accept; it doubles up to {@linkcode MAX_ACCEPT_BACKOFF_MS}. */
export const DEFAULT_ACCEPT_BACKOFF_MS = 5;
/** Longest delay between retries of a failing accept. */
export const MAX_ACCEPT_BACKOFF_MS = 1_000;
/** Milliseconds `serveTcp` gives a TLS connection to complete its handshake before its handler runs. */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Longest line the toolkit's line reader accepts by default, in bytes, without its line end. */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;
/** Largest frame the toolkit's length-prefixed reader accepts by default, in bytes. */
export const DEFAULT_MAX_PREFIXED_FRAME_BYTES = 1024 * 1024;
/** Smallest read buffer, used while a connection is idle. */
export const MIN_READ_BUFFER_BYTES = 128;
/** Largest read buffer, used while a connection is busy. */
export const MAX_READ_BUFFER_BYTES = 64 * 1024;
/**
 * Read buffer bytes the busy connections share: with more clients than this fills at
 * {@linkcode MAX_READ_BUFFER_BYTES} each, every one's buffer stops growing sooner.
 */
export const READ_BUFFER_BUDGET_BYTES = 8 * 1024 * 1024;
/** The read buffer a busy connection may always grow to, whatever the number of clients. */
export const MIN_BUSY_READ_BUFFER_BYTES = 4 * 1024;
/** Default client message interval in milliseconds. */
export const DEFAULT_CLIENT_INTERVAL_MS = 1_000;
/** How long the client waits for the server to confirm its connection and its last message. */
export const DEFAULT_CONFIRM_TIMEOUT_MS = 10_000;
/** Default number of client processes the launcher starts. */
export const DEFAULT_LAUNCH_COUNT = 3;
/** Default delay between two client starts of the launcher, in milliseconds. */
export const DEFAULT_LAUNCH_STAGGER_MS = 1_000;
/** Milliseconds a closing connection gets to take its last queued bytes (an `ERR`, a `QUIT`). */
export const CLOSE_FLUSH_TIMEOUT_MS = 2_000;
/**
 * Relay bytes one shard may have posted to another and not yet had acknowledged; past
 * it, the shard waits before it takes more input.
 */
export const DEFAULT_MAX_FORWARD_BYTES = 8 * 1024 * 1024;
/**
 * Longest the server stops taking input, after a batch, for subscribers that fell
 * behind (over half of {@linkcode DEFAULT_MAX_OUTBOUND_BYTES} queued, or
 * {@linkcode DEFAULT_MAX_FORWARD_BYTES} unacknowledged by another shard) to catch up;
 * a subscriber that has stopped reading is cut off by the slow-consumer rule instead.
 */
export const DEFAULT_STALL_MS = 50;
/**
 * Threads the server runs on (`--threads`). One: on a machine whose cores the server
 * shares with its clients, more threads take a busy load faster but cost latency
 * (p99 0.5 ms more here) and about 18 MB of RSS each (docs/PERFORMANCE.md).
 */
export const DEFAULT_THREADS = 1;
/** Most read batches the main task takes from the channel before it writes stdout once. */
export const MAX_DRAIN_BATCH = 256;
/** Connection attempts a reconnecting client makes after a loss before it gives up. */
export const DEFAULT_RECONNECT_ATTEMPTS = 10;
/** Upper bound of a reconnecting client's first delay, in milliseconds; it doubles per attempt. */
export const DEFAULT_RECONNECT_INITIAL_MS = 100;
/** Largest upper bound of a reconnecting client's delay between attempts, in milliseconds. */
export const DEFAULT_RECONNECT_MAX_MS = 5_000;
/** Messages a reconnecting client keeps while disconnected; beyond it the oldest are dropped. */
export const DEFAULT_MAX_UNSENT = 1_000;
/**
 * Milliseconds the HTTP side's shutdown waits for requests in flight (a page's open
 * stream) before it gives up on them.
 */
export const HTTP_SHUTDOWN_MS = 1_000;
/** Messages per second the live page's feed shows at most; beyond it, it samples ("1 in N"). */
export const DEFAULT_FEED_MESSAGES_PER_SECOND = 100;
/** Milliseconds between two events of the live page's feed (rates are per second regardless). */
export const DEFAULT_FEED_INTERVAL_MS = 1_000;
/** Payload bytes of one message the live feed keeps for its preview. */
export const FEED_PREVIEW_BYTES = 256;
/** Clients listed in one live feed event; the event gives the count of all. */
export const MAX_FEED_CLIENTS = 200;
/** Stored messages a page gets when it opens, with `--history` (the most recent ones). */
export const FEED_HISTORY_MESSAGES = 50;
/** Pages watching the live feed at once; one more gets 503. */
export const MAX_FEED_WATCHERS = 32;
/** Events queued for one watcher; a watcher that has this many unread misses the next ones. */
export const FEED_WATCHER_QUEUE_EVENTS = 4;
/** Events a watcher may miss in a row (it does not read) before the feed closes its stream. */
export const MAX_FEED_MISSED_EVENTS = 30;

/** NATS subject prefix of cluster mode (`--cluster-subject`): messages go to `<prefix>.<server>`. */
export const DEFAULT_CLUSTER_SUBJECT = "parrot.msg";
/**
 * Bytes of recent messages each server keeps for the cluster (`--cluster-buffer`): its
 * outbound buffer while NATS is away and the ring that answers replay requests.
 */
export const DEFAULT_CLUSTER_BUFFER_BYTES = 8 * 1024 * 1024;
/** Most messages the cluster ring keeps, whatever their size. */
export const MAX_CLUSTER_RING_MESSAGES = 1_000_000;
/** Bytes of messages after which a cluster batch is sealed and published at once. */
export const DEFAULT_CLUSTER_BATCH_BYTES = 64 * 1024;
/** Milliseconds between two attempts to reach NATS (a random wait of up to as much is added). */
export const DEFAULT_CLUSTER_RECONNECT_WAIT_MS = 250;
/** Milliseconds between two head frames while a server's sequence moves. */
export const DEFAULT_CLUSTER_HEAD_INTERVAL_MS = 1_000;
/** Milliseconds a replay request may stay unanswered before it is sent again. */
export const DEFAULT_CLUSTER_REPLAY_TIMEOUT_MS = 2_000;
/** Replay requests sent for one gap before the gap is declared lost. */
export const DEFAULT_CLUSTER_REPLAY_ATTEMPTS = 3;
/** Milliseconds between the NATS client's pings (two unanswered ones mean a dead connection). */
export const DEFAULT_CLUSTER_PING_INTERVAL_MS = 5_000;
/** Most other servers' streams a server tracks at once; past it the least recently heard goes. */
export const MAX_CLUSTER_ORIGINS = 1_024;
/**
 * Payload bytes of other servers' messages waiting for the main task; past it they are
 * dropped and counted (NATS cannot be told to wait).
 */
export const DEFAULT_CLUSTER_INBOX_BYTES = 8 * 1024 * 1024;
/** Milliseconds one attempt to connect to a NATS server may take. */
export const DEFAULT_CLUSTER_CONNECT_TIMEOUT_MS = 5_000;

/** Most messages the history keeps (`--history-max`); the oldest go first. */
export const DEFAULT_HISTORY_MAX = 1_000_000;
/** Oldest message the history keeps, in milliseconds (`--history-age`, 7 days). */
export const DEFAULT_HISTORY_AGE_MS = 7 * 24 * 3_600_000;
/** Most messages one `HISTORY <n>` replays (`--history-replay-max`). */
export const DEFAULT_HISTORY_REPLAY_MAX = 1_000;
/** Milliseconds a message may wait in the history writer's batch before it is written. */
export const DEFAULT_HISTORY_FLUSH_MS = 50;
/**
 * Payload bytes the history writer holds that are not yet stored (its batches, in
 * memory and in flight to the database thread). Past half of it the server waits before
 * it takes more input (backpressure); past all of it, a writer nobody waits for skips
 * messages and counts them.
 */
export const DEFAULT_HISTORY_MAX_PENDING_BYTES = 16 * 1024 * 1024;
/** Milliseconds the history writer waits after a failed write before it tries again. */
export const DEFAULT_HISTORY_RETRY_MS = 5_000;
