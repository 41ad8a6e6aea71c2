//! Conversions between backend metadata and the kernel's `FileAttr`, time helpers,
//! and the attributes of synthesized directories and files.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{FileAttr, FileType, INodeNo, TimeOrNow};

use crate::backend::{EntryAttr, EntryKind};
use crate::limits::BLOCK_SIZE;

pub(crate) fn file_type(kind: EntryKind) -> FileType {
    match kind {
        EntryKind::File => FileType::RegularFile,
        EntryKind::Dir => FileType::Directory,
        EntryKind::Symlink => FileType::Symlink,
        EntryKind::Fifo => FileType::NamedPipe,
        EntryKind::Socket => FileType::Socket,
        EntryKind::CharDevice => FileType::CharDevice,
        EntryKind::BlockDevice => FileType::BlockDevice,
    }
}

/// Nanoseconds since the epoch to `SystemTime` (saturating at the epoch's range).
pub(crate) fn time_from_ns(ns: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(ns.unsigned_abs());
    let t = if ns >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    t.unwrap_or(UNIX_EPOCH)
}

/// `SystemTime` to nanoseconds since the epoch (saturating).
pub(crate) fn ns_from_time(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// A setattr time as an `AttrChange::mtime_ns` value (`None`: the store's clock).
pub(crate) fn time_or_now(t: TimeOrNow) -> Option<i64> {
    match t {
        TimeOrNow::Now => None,
        TimeOrNow::SpecificTime(t) => Some(ns_from_time(t)),
    }
}

/// The kernel's view of a backend entry.
pub(crate) fn from_entry(ino: u64, a: &EntryAttr) -> FileAttr {
    let kind = file_type(a.kind);
    let mtime = time_from_ns(a.mtime_ns);
    FileAttr {
        ino: INodeNo(ino),
        size: a.size,
        blocks: a.size.div_ceil(512),
        atime: mtime,
        mtime,
        ctime: time_from_ns(a.ctime_ns),
        crtime: time_from_ns(a.ctime_ns),
        kind,
        // invariant: masked to 12 bits, fits u16.
        perm: (a.mode & 0o7777) as u16,
        // A backend that predates link counts reports 0; keep the POSIX minimum.
        nlink: if kind == FileType::Directory {
            a.nlink.max(2)
        } else {
            a.nlink.max(1)
        },
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

/// Attributes of a directory or file the file system makes up (root, top-level
/// directories, `/cluster` files): owned by root, timestamps of the mount.
pub(crate) fn synthesized(
    ino: u64,
    kind: FileType,
    mode: u32,
    size: u64,
    time: SystemTime,
) -> FileAttr {
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: time,
        mtime: time,
        ctime: time,
        crtime: time,
        kind,
        // invariant: masked to 12 bits, fits u16.
        perm: (mode & 0o7777) as u16,
        nlink: if kind == FileType::Directory { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: BLOCK_SIZE,
        flags: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trip() {
        for ns in [0, 1, 1_700_000_000_123_456_789, -5_000_000_001] {
            assert_eq!(ns_from_time(time_from_ns(ns)), ns);
        }
    }
}
