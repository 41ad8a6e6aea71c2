//! Every bound Aspen enforces, in one place. Each name carries its unit.
//!
//! Limits that shape the replicated state (key and value sizes, history length) must be the
//! same on every node of a cluster: they are constants, not flags, except the value limit a
//! node enforces on the requests it accepts (`DEFAULT_MAX_VALUE_BYTES`, `--max-value-bytes`),
//! which is checked before a command is proposed and never inside apply.

// ---- keys and values (DESIGN.md section 3) ----

/// Longest key (path below `/kv`), in bytes.
pub const MAX_KEY_BYTES: usize = 4096;
/// Longest single path component, in bytes (ENAMETOOLONG beyond).
pub const MAX_NAME_BYTES: usize = 255;
/// Default largest value a node accepts, in bytes (EFBIG beyond).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Hard ceiling for `--max-value-bytes`, in bytes: a value must fit one raft entry and frame.
pub const MAX_VALUE_BYTES_CEILING: usize = 4 * 1024 * 1024;
/// Most user xattrs on one entry.
pub const MAX_XATTRS_PER_ENTRY: usize = 64;
/// Longest xattr name, in bytes (Linux XATTR_NAME_MAX).
pub const MAX_XATTR_NAME_BYTES: usize = 255;
/// Largest xattr value, in bytes.
pub const MAX_XATTR_VALUE_BYTES: usize = 64 * 1024;
/// Longest symlink target, in bytes (Linux PATH_MAX).
pub const MAX_SYMLINK_TARGET_BYTES: usize = 4096;

// ---- commands ----

/// Most operations in one transaction branch, and most compares.
pub const MAX_TXN_OPS: usize = 128;
/// Largest encoded size of the commands of one client request, in bytes.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// Most entries a directory rename may move in one command (EXDEV beyond, like `mv` across
/// file systems, which then copies).
pub const MAX_RENAME_ENTRIES: usize = 10_000;
/// Most keys one delete-prefix command removes; larger prefixes are refused.
pub const MAX_DELETE_PREFIX_KEYS: usize = 100_000;
/// Most keys attached to one lease.
pub const MAX_KEYS_PER_LEASE: usize = 10_000;
/// Shortest and longest lease TTL, in seconds.
pub const MIN_LEASE_TTL_SECS: u64 = 1;
pub const MAX_LEASE_TTL_SECS: u64 = 30 * 24 * 3600;
/// Most leases one expiry command removes.
pub const MAX_LEASES_PER_EXPIRY: usize = 256;
/// How often the leader looks for expired leases, in milliseconds.
pub const LEASE_CHECK_INTERVAL_MS: u64 = 250;

// ---- topics (DESIGN.md section 5) ----

/// Largest message, in bytes (EFBIG beyond).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Most messages in one publish command.
pub const MAX_PUBLISH_BATCH_MESSAGES: usize = 1000;
/// Most messages a topic keeps whatever its configuration says (the oldest go first).
pub const MAX_MESSAGES_PER_TOPIC: u64 = 100_000;
/// Most consumer groups of one topic.
pub const MAX_GROUPS_PER_TOPIC: u64 = 64;
/// Most claims not yet acknowledged in one group (claims are refused beyond).
pub const MAX_PENDING_PER_GROUP: u64 = 10_000;
/// Most dead letters one group keeps (the oldest are dropped beyond).
pub const MAX_DEAD_LETTERS_PER_GROUP: u64 = 1_000;
/// Most claims one claim command examines for lapsed ones.
pub const MAX_CLAIM_SCAN_ENTRIES: usize = 1_000;
/// Most records one topic deletion removes; larger topics must be emptied first
/// (retention `max_messages: 0`).
pub const MAX_TOPIC_DELETE_RECORDS: usize = 100_000;
/// Claim visibility when a group is created without one, and its bounds, in milliseconds.
pub const DEFAULT_VISIBILITY_MS: u64 = 30_000;
pub const MIN_VISIBILITY_MS: u64 = 100;
pub const MAX_VISIBILITY_MS: u64 = 12 * 3600 * 1000;
/// Claims of one message before it is dead-lettered, by default and at most.
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
pub const MAX_MAX_DELIVERIES: u32 = 1_000;
/// Most claims, or acknowledgements, in one batch command.
pub const MAX_CLAIM_BATCH: usize = 1_000;
/// Claims `aspen topic sub` and `aspen bench topic` ask for at a time.
pub const SUB_CLAIM_BATCH: u32 = 64;
/// Most messages or entries a topic listing returns.
pub const MAX_TOPIC_LIST_ENTRIES: usize = 10_000;
/// Most topics the leader trims for age in one housekeeping pass (every
/// `LEASE_CHECK_INTERVAL_MS`).
pub const MAX_TOPIC_TRIMS_PER_CHECK: usize = 16;
/// How long `aspen topic sub` and claims through the mount wait between looks for a
/// claimable message, in milliseconds.
pub const CLAIM_POLL_MS: u64 = 50;

// ---- reads ----

/// Largest page a range or directory listing returns, in entries.
pub const MAX_LIST_LIMIT: usize = 10_000;
/// Page size when the caller gives none, in entries.
pub const DEFAULT_LIST_LIMIT: usize = 1000;
/// Largest total value bytes one listing page returns, in bytes.
pub const MAX_LIST_PAGE_BYTES: usize = 8 * 1024 * 1024;

// ---- watch history and streams ----

/// Revisions of change history kept for watches that start in the past.
pub const WATCH_HISTORY_REVISIONS: u64 = 10_000;
/// Capacity of the in-process broadcast of applied changes, in apply batches.
pub const EVENT_BROADCAST_CAPACITY: usize = 1024;
/// Most events in one watch frame.
pub const MAX_WATCH_EVENTS_PER_FRAME: usize = 256;

// ---- proposals (group commit) ----

/// Most client commands packed into one raft entry.
pub const MAX_BATCH_COMMANDS: usize = 1024;
/// Largest encoded size of one raft entry's commands, in bytes.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Proposals in flight through raft at once from one node. Measured on 2 cores with 64
/// clients: 2 beats 1 (pipelining) and 4 or 8 (smaller batches, more raft entries).
pub const MAX_INFLIGHT_PROPOSALS: usize = 2;
/// Commands waiting for a batch slot before new ones are refused.
pub const PROPOSAL_QUEUE_LEN: usize = 16_384;
/// How long a client request may wait for a commit, in milliseconds (then EIO/timeout).
pub const CLIENT_REQUEST_TIMEOUT_MS: u64 = 10_000;

// ---- raft ----

/// Also openraft's timeout for one append-entries round trip (the follower's fsync
/// included), so it must cover the largest append (`MAX_APPEND_BYTES`) on a slow disk.
pub const HEARTBEAT_INTERVAL_MS: u64 = 250;
pub const ELECTION_TIMEOUT_MIN_MS: u64 = 1000;
pub const ELECTION_TIMEOUT_MAX_MS: u64 = 2000;
/// How long a quorum's acknowledgement lets the leader serve linearizable reads locally,
/// in milliseconds: half the shortest election timeout (see `raft::lease`).
pub const LEADER_LEASE_MS: u64 = ELECTION_TIMEOUT_MIN_MS / 2;
/// Most log entries in one append-entries request.
pub const MAX_APPEND_ENTRIES: u64 = 256;
/// Most bytes of log entries in one append-entries request (at least one entry is sent).
pub const MAX_APPEND_BYTES: usize = 4 * 1024 * 1024;
/// Size of one snapshot chunk on the wire, in bytes.
pub const SNAPSHOT_CHUNK_BYTES: u64 = 1024 * 1024;
/// Applied entries after which a new snapshot is built.
pub const SNAPSHOT_EVERY_ENTRIES: u64 = 20_000;
/// Log entries kept behind a snapshot so slow followers catch up without one.
pub const LOG_KEPT_BEHIND_SNAPSHOT_ENTRIES: u64 = 5_000;
/// Longest a snapshot transfer may take, in milliseconds.
pub const SNAPSHOT_TIMEOUT_MS: u64 = 120_000;
/// Largest single record inside a snapshot file, in bytes.
pub const MAX_SNAPSHOT_RECORD_BYTES: usize = 64 * 1024 * 1024;
/// Records written to the store per batch while installing a snapshot.
pub const SNAPSHOT_INSTALL_BATCH_RECORDS: usize = 1024;

// ---- transport ----

/// Largest frame, header excluded, in bytes.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// Buffer first reserved for an incoming frame body; it grows as bytes arrive, so a
/// peer that claims a large frame and sends nothing costs no more than this.
pub const FRAME_READ_CHUNK_BYTES: usize = 64 * 1024;
/// Requests in flight on one connection (client side) before callers wait.
pub const MAX_INFLIGHT_PER_CONNECTION: usize = 1024;
/// Requests served concurrently for one connection (server side).
pub const MAX_CONCURRENT_REQUESTS_PER_CONNECTION: usize = 1024;
/// Bytes of queued frames a connection sends in one write.
pub const WRITE_COALESCE_BYTES: usize = 64 * 1024;
/// Outgoing frames queued on one connection.
pub const CONNECTION_SEND_QUEUE_FRAMES: usize = 1024;
/// Connections a node serves at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// Time allowed for the authentication handshake, in milliseconds.
pub const HANDSHAKE_TIMEOUT_MS: u64 = 5_000;
/// Time allowed to open a TCP connection, in milliseconds.
pub const CONNECT_TIMEOUT_MS: u64 = 3_000;
/// Timeout for vote and small peer RPCs, in milliseconds.
pub const PEER_RPC_TIMEOUT_MS: u64 = 2_000;
/// Bytes of the random challenge in the handshake.
pub const NONCE_BYTES: usize = 32;
/// Largest secret or token file, in bytes.
pub const MAX_SECRET_FILE_BYTES: u64 = 4096;
/// Fewest bytes a cluster secret or client token must have.
pub const MIN_SECRET_BYTES: usize = 16;
/// Hops a forwarded request may take to find the leader.
pub const MAX_FORWARD_HOPS: u8 = 2;
/// Attempts a client makes (following leader hints and reconnecting) before giving up.
pub const CLIENT_MAX_ATTEMPTS: u32 = 20;
/// Pause between client retries, in milliseconds.
pub const CLIENT_RETRY_BACKOFF_MS: u64 = 100;

// ---- cluster membership ----

/// How long `--join` waits for a learner to catch up before promoting it, in milliseconds.
pub const JOIN_CATCH_UP_TIMEOUT_MS: u64 = 60_000;

// ---- mounts ----

/// Changes queued for a mount's kernel-cache notifier before they are dropped (and the
/// caches flushed whole instead).
pub const FS_CHANGE_QUEUE_LEN: usize = 65_536;

// ---- hooks (DESIGN.md section 6) ----

/// Hook events waiting for delivery on one node (the persisted outbox) before new ones
/// are dropped and counted as overflow; apply never waits for delivery.
pub const HOOK_QUEUE_EVENTS: usize = 65_536;
/// Events the delivery thread takes from the outbox per round.
pub const HOOK_DELIVERY_BATCH_EVENTS: usize = 256;
/// Node-local events (snapshots) queued for delivery before they are dropped and counted.
pub const HOOK_DIRECT_QUEUE_EVENTS: usize = 64;
/// Keys listed in one event; `key_count` still gives the total.
pub const MAX_HOOK_EVENT_KEYS: usize = 1000;
/// Bytes of keys listed in one event (so the recent ring fits one frame); `key_count`
/// still gives the total.
pub const MAX_HOOK_EVENT_KEY_BYTES: usize = 8 * 1024;
/// Most event lines in one `hooks tail` frame.
pub const MAX_HOOK_LINES_PER_FRAME: usize = 256;
/// Recent events kept in memory for `/hooks/events` and `/hooks/<type>/`.
pub const MAX_HOOK_RING_EVENTS: usize = 1024;
/// Event files kept per type in the spool directory (oldest removed beyond).
pub const MAX_HOOK_SPOOL_FILES_PER_TYPE: usize = 1000;
/// Size of the spool's `events` file before it is rotated to `events.1`, in bytes.
pub const MAX_HOOK_EVENTS_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Bytes read back from the end of the `events` file at start (recent ring, dedupe).
pub const HOOK_EVENTS_TAIL_READ_BYTES: u64 = 256 * 1024;
/// Capacity of the in-process broadcast to `aspen hooks tail` streams, in events.
pub const HOOK_TAIL_BROADCAST_EVENTS: usize = 4096;
/// Longest event pattern of `aspen hooks tail --type`, in bytes.
pub const MAX_HOOK_PATTERN_BYTES: usize = 256;
/// How long the delivery thread sleeps when nothing woke it, in milliseconds.
pub const HOOK_IDLE_WAKE_MS: u64 = 1000;
/// Overflowed events between two overflow warnings in the log (the first is always logged).
pub const HOOK_OVERFLOW_LOG_EVERY_EVENTS: u64 = 1000;

// ---- secrets (DESIGN.md section 4) ----

/// Versions a secret keeps when its `max_versions` is unset (Vault's default).
pub const DEFAULT_SECRET_MAX_VERSIONS: u32 = 10;
/// Highest `max_versions` a secret may set.
pub const MAX_SECRET_MAX_VERSIONS: u32 = 100;
/// Largest secret value (plaintext), in bytes.
pub const MAX_SECRET_VALUE_BYTES: usize = 256 * 1024;
/// Largest stored ciphertext: the value plus age's header (about 200 bytes a recipient)
/// and 16 bytes a 64 KiB chunk, in bytes.
pub const MAX_SECRET_CIPHERTEXT_BYTES: usize = MAX_SECRET_VALUE_BYTES + 16 * 1024;
/// Recipients in the cluster's recipient set.
pub const MAX_SECRET_RECIPIENTS: usize = 16;
/// Longest recipient string, in bytes (an x25519 recipient has 62).
pub const MAX_SECRET_RECIPIENT_BYTES: usize = 128;
/// Custom metadata pairs of one secret.
pub const MAX_SECRET_CUSTOM_ENTRIES: usize = 64;
/// Longest custom metadata key, in bytes.
pub const MAX_SECRET_CUSTOM_KEY_BYTES: usize = 128;
/// Longest custom metadata value, in bytes.
pub const MAX_SECRET_CUSTOM_VALUE_BYTES: usize = 512;
/// Versions named in one delete, undelete or destroy.
pub const MAX_SECRET_VERSIONS_PER_COMMAND: usize = 100;
/// Largest `delete_version_after`, in seconds (100 years).
pub const MAX_SECRET_DELETE_AFTER_SECS: u64 = 100 * 365 * 24 * 3600;
/// Paths in one page of a secret listing.
pub const MAX_SECRET_LIST_ENTRIES: usize = 1000;
/// Largest age identity file (`keys.txt`), in bytes.
pub const MAX_AGE_IDENTITY_FILE_BYTES: u64 = 64 * 1024;
/// Identities read from one identity file.
pub const MAX_AGE_IDENTITIES: usize = 64;
