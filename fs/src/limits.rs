//! Every bound of the file system layer, in one place, each with its unit.
//!
//! Tables, queues, buffers and loops over external input are limited by these
//! constants (DESIGN.md section 9). Change a bound here, never inline.

use std::time::Duration;

/// Longest name of one directory entry, in bytes (ENAMETOOLONG beyond; statfs `namemax`).
pub const MAX_NAME_BYTES: usize = 255;

/// Longest backend key (path below `/kv`), in bytes (ENAMETOOLONG beyond).
pub const MAX_KEY_BYTES: usize = 4096;

/// Deepest parent chain walked when computing a key from an inode, in nodes.
/// A key of `MAX_KEY_BYTES` has at most this many one-byte components.
pub const MAX_PATH_DEPTH: usize = MAX_KEY_BYTES / 2 + 1;

/// Most inodes the inode table holds at once, in inodes (ENFILE for new ones beyond).
/// The kernel's lookups drive the count; `forget` shrinks it.
pub const MAX_INODES: usize = 1 << 20;

/// Most open file and directory handles at once, in handles (ENFILE beyond).
pub const MAX_OPEN_HANDLES: usize = 16_384;

/// Most bytes held by all open handles together (write-back buffers and read
/// snapshots), in bytes. ENOMEM at open, ENOSPC at write beyond.
pub const MAX_BUFFERED_BYTES: u64 = 1 << 30;

/// Entries fetched per `Backend::list` call while reading a directory, in entries.
/// Directories of any size are read page by page; this is not a cap on their size.
pub const READDIR_PAGE_ENTRIES: usize = 256;

/// `Change`s waiting for the notifier thread, in changes. On overflow the change is
/// counted and logged, and the notifier invalidates every cached inode once it catches up.
pub const NOTIFY_QUEUE_LEN: usize = 4096;

/// How often the notifier threads check for shutdown while idle, in time.
pub const NOTIFY_IDLE_POLL: Duration = Duration::from_millis(200);

/// Attempts to commit a write-back buffer when the entry changed underneath it
/// (compare-and-swap conflicts), in attempts.
pub const MAX_COMMIT_ATTEMPTS: u32 = 8;

/// Largest file value assumed when `Backend::stats` cannot be read, in bytes.
pub const DEFAULT_MAX_VALUE_BYTES: u64 = 1 << 20;

/// Largest xattr value accepted or returned, in bytes (the kernel's XATTR_SIZE_MAX).
pub const MAX_XATTR_VALUE_BYTES: usize = 65_536;

/// Largest listxattr answer, in bytes (the kernel's XATTR_LIST_MAX).
pub const MAX_XATTR_LIST_BYTES: usize = 65_536;

/// Longest symlink target, in bytes (PATH_MAX without the terminating NUL).
pub const MAX_SYMLINK_TARGET_BYTES: usize = 4095;

/// Block size reported by stat and statfs, in bytes.
pub const BLOCK_SIZE: u32 = 4096;

/// `d_ino` reported by plain readdir for an entry the kernel has not looked up yet
/// (libfuse's FUSE_UNKNOWN_INO). The inode allocator never hands out this number.
pub const UNKNOWN_INO: u64 = 0xffff_ffff;

/// Default request threads of a mount, in threads. Handlers block on the backend (a
/// network round trip for a remote node, a raft commit for writes), so more threads mean
/// more requests in flight, which group commit turns into throughput.
pub const DEFAULT_THREADS: usize = 32;

/// Most request threads of a mount, in threads.
pub const MAX_THREADS: usize = 64;

/// Default kernel attribute cache lifetime, in time. Aspen invalidates the kernel
/// cache on every change it learns of, so this is only the fallback bound on staleness.
pub const DEFAULT_ATTR_TIMEOUT: Duration = Duration::from_secs(30);

/// Default kernel directory-entry cache lifetime, in time.
pub const DEFAULT_ENTRY_TIMEOUT: Duration = Duration::from_secs(30);

/// MemoryBackend: most stored xattrs on one entry, in attributes (ENOSPC beyond).
pub const MEMORY_MAX_XATTRS_PER_ENTRY: usize = 128;

/// MemoryBackend: capacity reported by `stats`, in bytes (ENOSPC beyond).
pub const MEMORY_CAPACITY_BYTES: u64 = 1 << 32;

/// MemoryBackend: most entries stored, in entries (ENOSPC beyond).
pub const MEMORY_MAX_ENTRIES: u64 = 1 << 22;

/// MemoryBackend: most recent hook events kept, in events.
pub const MEMORY_MAX_HOOK_EVENTS: usize = 1024;

/// Longest `/hooks/<type>/<index>.json` name the mount accepts, in bytes.
pub const MAX_HOOK_NAME_BYTES: usize = 64;

/// How long an open of a group's `claim` or `next` file waits for a message before it
/// reads as empty, in milliseconds, unless the mount says otherwise (`claim_wait=`).
pub const CLAIM_WAIT_MS: u64 = 2_000;
/// The longest `claim_wait=` a mount accepts, in milliseconds (the waiting open holds a
/// request thread).
pub const MAX_CLAIM_WAIT_MS: u64 = 300_000;

/// Largest message one write(2) to a topic's `publish` file may carry, in bytes. The
/// kernel hands a write to the file system in requests of at most 256 pages (1 MiB,
/// its default `max_pages_limit`), and a buffer that does not start on a page boundary
/// spans one page more than its length: a write of up to 1 MiB - 4 KiB always arrives
/// as one request, and a request longer than that may be a piece of a larger write.
/// Such requests are refused with EFBIG rather than published as several messages.
pub const MAX_PUBLISH_WRITE_BYTES: usize = 1024 * 1024 - 4096;

/// Messages and bytes one open `publish` handle holds before it publishes them without
/// waiting for close (the first bound is the service's batch limit).
pub const MAX_PUBLISH_BUFFER_MESSAGES: usize = 1000;
pub const MAX_PUBLISH_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Largest secret value written through `/secrets/kv`, in bytes (the service's own
/// limit, `MAX_SECRET_VALUE_BYTES`, is the same; EFBIG beyond).
pub const MAX_SECRET_FILE_BYTES: usize = 256 * 1024;

/// Secret paths read to list one `/secrets/kv` directory, in paths.
pub const MAX_SECRET_LIST_PATHS: usize = 1000;

/// Directories made with mkdir under `/secrets/kv` and remembered by one mount (secret
/// directories are implicit: they exist while a secret is below them).
pub const MAX_SECRET_MADE_DIRS: usize = 1024;
