//! The `/topics` tree (DESIGN.md section 5), over `Backend::topics`:
//!
//! ```text
//! /topics/<topic>/                 mkdir creates a topic, rmdir removes it
//!     publish                      each write(2) is one message (at most
//!                                  `MAX_PUBLISH_WRITE_BYTES`, EFBIG beyond); close(2) and
//!                                  fsync(2) return once the handle's messages are stored
//!     messages/<offset>            retained messages, exact bytes
//!     stream                       every message with a newline, at fixed positions (the
//!                                  part retention removed reads as NUL bytes); grows as
//!                                  messages arrive, so `tail -f` follows it
//!     config                       retention, JSON; write the whole object in one write(2)
//!     groups/<group>/              mkdir creates a consumer group, rmdir removes it
//!         claim                    open claims the next message: reads give `pending/<offset>`
//!         next                     open claims the next message: reads give its bytes;
//!                                  close acknowledges it (at most once)
//!         pending/<offset>         claims: reads give the bytes, unlink acknowledges;
//!                                  xattrs user.aspen.{consumer,deliveries,deadline_ns}
//!         dlq/<offset>             dead letters: reads give the bytes (while retained)
//!         offset                   the committed offset; write `start`, `end` or a number
//! ```
//!
//! A claim happens once per open, waiting up to the mount's `claim_wait=` (default
//! `CLAIM_WAIT_MS`) for a message; the
//! file's contents are fixed at open. Publishing is write-back like `/kv` files: a
//! handle keeps its messages (bounded) and publishes them in one command at flush, so
//! concurrent publishers do not queue behind each other's commits on the inode lock the
//! kernel holds during each write. Everything changes all the time: zero TTLs and
//! direct I/O throughout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use fuser::{Errno, FileAttr, FileType, FopenFlags};

use super::dir::{add_dots, DirSink};
use super::{backend_errno, AspenFs, OpResult};
use crate::attr;
use crate::backend::TopicBackend;
use crate::inode::Place;
use crate::limits::{
    MAX_OPEN_HANDLES, MAX_PUBLISH_BUFFER_BYTES, MAX_PUBLISH_BUFFER_MESSAGES,
    MAX_PUBLISH_WRITE_BYTES, UNKNOWN_INO,
};
use crate::tree::{valid_backend_name, Tree};

/// Extended attributes as (name, value) pairs.
pub(crate) type Xattrs = Vec<(String, Vec<u8>)>;

/// Extended attributes of a claim (`pending/<offset>`).
const CLAIM_CONSUMER_XATTR: &str = "user.aspen.consumer";
const CLAIM_DELIVERIES_XATTR: &str = "user.aspen.deliveries";
const CLAIM_DEADLINE_XATTR: &str = "user.aspen.deadline_ns";

/// What a path below `/topics` names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TopicPath {
    Topic(String),
    Publish(String),
    Messages(String),
    Message(String, u64),
    Stream(String),
    Config(String),
    Groups(String),
    Group(String, String),
    Claim(String, String),
    Next(String, String),
    Offset(String, String),
    Pending(String, String),
    PendingItem(String, String, u64),
    Dlq(String, String),
    DlqItem(String, String, u64),
}

/// One spelling per offset: "007" is not "7".
fn offset(name: &str) -> Option<u64> {
    let n: u64 = name.parse().ok()?;
    (n.to_string() == name).then_some(n)
}

/// Parses a path below `/topics` ("" is `/topics` itself, not handled here).
fn parse(path: &str) -> Option<TopicPath> {
    let parts: Vec<&str> = path.split('/').collect();
    let p = match parts.as_slice() {
        [t] => TopicPath::Topic(t.to_string()),
        [t, "publish"] => TopicPath::Publish(t.to_string()),
        [t, "messages"] => TopicPath::Messages(t.to_string()),
        [t, "messages", o] => TopicPath::Message(t.to_string(), offset(o)?),
        [t, "config"] => TopicPath::Config(t.to_string()),
        [t, "stream"] => TopicPath::Stream(t.to_string()),
        [t, "groups"] => TopicPath::Groups(t.to_string()),
        [t, "groups", g] => TopicPath::Group(t.to_string(), g.to_string()),
        [t, "groups", g, "claim"] => TopicPath::Claim(t.to_string(), g.to_string()),
        [t, "groups", g, "next"] => TopicPath::Next(t.to_string(), g.to_string()),
        [t, "groups", g, "offset"] => TopicPath::Offset(t.to_string(), g.to_string()),
        [t, "groups", g, "pending"] => TopicPath::Pending(t.to_string(), g.to_string()),
        [t, "groups", g, "pending", o] => {
            TopicPath::PendingItem(t.to_string(), g.to_string(), offset(o)?)
        }
        [t, "groups", g, "dlq"] => TopicPath::Dlq(t.to_string(), g.to_string()),
        [t, "groups", g, "dlq", o] => TopicPath::DlqItem(t.to_string(), g.to_string(), offset(o)?),
        _ => return None,
    };
    Some(p)
}

impl TopicPath {
    fn is_dir(&self) -> bool {
        matches!(
            self,
            TopicPath::Topic(_)
                | TopicPath::Messages(_)
                | TopicPath::Groups(_)
                | TopicPath::Group(..)
                | TopicPath::Pending(..)
                | TopicPath::Dlq(..)
        )
    }

    /// Permission bits: `publish` is write-only, `config` and `offset` read-write.
    fn mode(&self) -> u32 {
        match self {
            p if p.is_dir() => 0o755,
            TopicPath::Publish(_) => 0o222,
            TopicPath::Config(_) | TopicPath::Offset(..) => 0o644,
            _ => 0o444,
        }
    }

    fn topic(&self) -> &str {
        match self {
            TopicPath::Topic(t)
            | TopicPath::Publish(t)
            | TopicPath::Messages(t)
            | TopicPath::Message(t, _)
            | TopicPath::Stream(t)
            | TopicPath::Config(t)
            | TopicPath::Groups(t)
            | TopicPath::Group(t, _)
            | TopicPath::Claim(t, _)
            | TopicPath::Next(t, _)
            | TopicPath::Offset(t, _)
            | TopicPath::Pending(t, _)
            | TopicPath::PendingItem(t, _, _)
            | TopicPath::Dlq(t, _)
            | TopicPath::DlqItem(t, _, _) => t,
        }
    }

    fn group(&self) -> Option<&str> {
        match self {
            TopicPath::Group(_, g)
            | TopicPath::Claim(_, g)
            | TopicPath::Next(_, g)
            | TopicPath::Offset(_, g)
            | TopicPath::Pending(_, g)
            | TopicPath::PendingItem(_, g, _)
            | TopicPath::Dlq(_, g)
            | TopicPath::DlqItem(_, g, _) => Some(g),
            _ => None,
        }
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn attr_of(ino: u64, p: &TopicPath, size: u64) -> FileAttr {
    let kind = if p.is_dir() {
        FileType::Directory
    } else {
        FileType::RegularFile
    };
    attr::synthesized(ino, kind, p.mode(), size, SystemTime::now())
}

fn topics_root_attr(ino: u64) -> FileAttr {
    attr::synthesized(ino, FileType::Directory, 0o755, 0, SystemTime::now())
}

/// Per-handle state of `/topics` files: claims of open `next` handles (acknowledged at
/// release), and messages written to `publish` handles and not yet published.
#[derive(Default)]
pub(crate) struct NextClaims {
    by_handle: Mutex<HashMap<u64, (String, String, u64)>>,
    unpublished: Mutex<HashMap<u64, Unpublished>>,
}

/// Messages of one `publish` handle, in write order.
struct Unpublished {
    topic: String,
    messages: Vec<Vec<u8>>,
    bytes: usize,
}

impl AspenFs {
    fn topic_service(&self) -> OpResult<&dyn TopicBackend> {
        self.backend.topics().ok_or(Errno::EOPNOTSUPP)
    }

    /// The message at `offset`, ENOENT when it is not retained.
    fn topic_message(&self, t: &dyn TopicBackend, topic: &str, offset: u64) -> OpResult<Vec<u8>> {
        t.topic_messages(topic, offset, 1)
            .map_err(backend_errno)?
            .into_iter()
            .find(|(o, _)| *o == offset)
            .map(|(_, data)| data)
            .ok_or(Errno::ENOENT)
    }

    /// Checks that `p` exists; returns the size its attributes report.
    fn topic_size(&self, p: &TopicPath) -> OpResult<u64> {
        let t = self.topic_service()?;
        let stat = t
            .topic_stat(p.topic())
            .map_err(backend_errno)?
            .ok_or(Errno::ENOENT)?;
        if let Some(g) = p.group() {
            let groups = t.group_names(p.topic()).map_err(backend_errno)?;
            if !groups.iter().any(|x| x == g) {
                return Err(Errno::ENOENT);
            }
        }
        match p {
            TopicPath::Stream(_) => Ok(stat.stream_end),
            TopicPath::Message(topic, o) => {
                if *o < stat.first || *o >= stat.next {
                    return Err(Errno::ENOENT);
                }
                Ok(self.topic_message(t, topic, *o)?.len() as u64)
            }
            TopicPath::PendingItem(topic, g, o) => {
                let pending = t.group_pending(topic, g).map_err(backend_errno)?;
                if !pending.iter().any(|c| c.offset == *o) {
                    return Err(Errno::ENOENT);
                }
                Ok(0)
            }
            TopicPath::DlqItem(topic, g, o) => {
                let dead = t.group_dead_letters(topic, g).map_err(backend_errno)?;
                if !dead.contains(o) {
                    return Err(Errno::ENOENT);
                }
                Ok(0)
            }
            _ => Ok(0),
        }
    }

    /// lookup of `name` in the `/topics` directory `dir` ("" is `/topics`).
    pub(crate) fn topics_lookup(
        &self,
        parent: u64,
        dir: &str,
        name: &str,
    ) -> OpResult<(FileAttr, Duration)> {
        // Without the service, `/topics` is an empty directory.
        if self.backend.topics().is_none() {
            return Err(Errno::ENOENT);
        }
        let p = parse(&join(dir, name)).ok_or(Errno::ENOENT)?;
        let size = self.topic_size(&p)?;
        let mut a = attr_of(UNKNOWN_INO, &p, size);
        a.ino = fuser::INodeNo(self.inodes.lookup(parent, name, a.kind, None)?);
        Ok((a, Duration::ZERO))
    }

    /// getattr of a path below `/topics` (not `/topics` itself).
    pub(crate) fn topics_getattr(&self, ino: u64, path: &str) -> OpResult<(FileAttr, Duration)> {
        let p = parse(path).ok_or(Errno::ENOENT)?;
        let size = self.topic_size(&p)?;
        Ok((attr_of(ino, &p, size), Duration::ZERO))
    }

    /// Whether opendir may open this path below `/topics` ("" is `/topics`).
    pub(crate) fn topics_check_dir(&self, path: &str) -> OpResult<()> {
        if path.is_empty() {
            return Ok(());
        }
        let p = parse(path).ok_or(Errno::ENOENT)?;
        if !p.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        self.topic_size(&p).map(|_| ())
    }

    /// open of a file below `/topics`.
    pub(crate) fn topics_open(
        &self,
        ino: u64,
        path: &str,
        readable: bool,
        writable: bool,
    ) -> OpResult<(u64, FopenFlags)> {
        let p = parse(path).ok_or(Errno::ENOENT)?;
        if p.is_dir() {
            return Err(Errno::EISDIR);
        }
        let t = self.topic_service()?;
        let may_write = matches!(
            p,
            TopicPath::Publish(_) | TopicPath::Config(_) | TopicPath::Offset(..)
        );
        if writable && !may_write {
            return Err(Errno::EACCES);
        }
        if writable {
            self.writable()?;
        }
        self.topic_size(&p)?;
        let mut claimed = None;
        let data = match &p {
            TopicPath::Publish(_) if readable => return Err(Errno::EACCES),
            TopicPath::Publish(_) => Vec::new(),
            // Read from the service at read time (`topics_read`).
            TopicPath::Stream(_) => Vec::new(),
            _ if !readable => Vec::new(),
            TopicPath::Message(topic, o)
            | TopicPath::PendingItem(topic, _, o)
            | TopicPath::DlqItem(topic, _, o) => self.topic_message(t, topic, *o)?,
            TopicPath::Config(topic) => t.topic_config(topic).map_err(backend_errno)?,
            TopicPath::Offset(topic, g) => {
                format!("{}\n", t.group_offset(topic, g).map_err(backend_errno)?).into_bytes()
            }
            TopicPath::Claim(topic, g) => {
                self.writable()?;
                let wait = self.settings.claim_wait;
                match t.group_claim(topic, g, wait).map_err(backend_errno)? {
                    Some(o) => format!("pending/{o}\n").into_bytes(),
                    None => Vec::new(),
                }
            }
            TopicPath::Next(topic, g) => {
                self.writable()?;
                let wait = self.settings.claim_wait;
                match t.group_claim(topic, g, wait).map_err(backend_errno)? {
                    Some(o) => {
                        claimed = Some((topic.clone(), g.clone(), o));
                        // Removed by retention meanwhile: an empty read; the claim
                        // goes away at the next claim.
                        self.topic_message(t, topic, o).unwrap_or_default()
                    }
                    None => Vec::new(),
                }
            }
            _ => return Err(Errno::EISDIR),
        };
        let fh = self
            .handles
            .open_file(ino, false, false, data, false, None)?;
        if let Err(e) = self.inodes.open(ino) {
            self.handles.close_file(fh)?;
            return Err(e);
        }
        if let Some(c) = claimed {
            let mut claims = self.next_claims.by_handle.lock().map_err(|_| Errno::EIO)?;
            if claims.len() < MAX_OPEN_HANDLES {
                claims.insert(fh, c);
            }
        }
        Ok((fh, FopenFlags::FOPEN_DIRECT_IO))
    }

    /// A write to a `/topics` file; `None` when `ino` is not one.
    pub(crate) fn topics_write(
        &self,
        fh: u64,
        ino: u64,
        offset: u64,
        data: &[u8],
    ) -> OpResult<Option<u32>> {
        let path = match self.inodes.place(ino)? {
            Some(Place::In(Tree::Topics, path)) if !path.is_empty() => path,
            _ => return Ok(None),
        };
        self.writable()?;
        let t = self.topic_service()?;
        let n = u32::try_from(data.len()).map_err(|_| Errno::EFBIG)?;
        match parse(&path).ok_or(Errno::ENOENT)? {
            TopicPath::Publish(_) if data.len() > MAX_PUBLISH_WRITE_BYTES => {
                return Err(Errno::EFBIG)
            }
            TopicPath::Publish(topic) => {
                let full = {
                    let mut all = self
                        .next_claims
                        .unpublished
                        .lock()
                        .map_err(|_| Errno::EIO)?;
                    if all.len() >= MAX_OPEN_HANDLES && !all.contains_key(&fh) {
                        return Err(Errno::ENFILE);
                    }
                    let u = all.entry(fh).or_insert_with(|| Unpublished {
                        topic,
                        messages: Vec::new(),
                        bytes: 0,
                    });
                    u.messages.push(data.to_vec());
                    u.bytes = u.bytes.saturating_add(data.len());
                    u.messages.len() >= MAX_PUBLISH_BUFFER_MESSAGES
                        || u.bytes >= MAX_PUBLISH_BUFFER_BYTES
                };
                if full {
                    self.topics_flush(fh)?;
                }
            }
            // Small files replaced as a whole: one write(2) is the new contents.
            TopicPath::Config(topic) if offset == 0 => {
                t.topic_configure(&topic, data).map_err(backend_errno)?
            }
            TopicPath::Offset(topic, g) if offset == 0 => {
                let to = std::str::from_utf8(data).map_err(|_| Errno::EINVAL)?;
                t.group_seek(&topic, &g, to.trim()).map_err(backend_errno)?
            }
            TopicPath::Config(_) | TopicPath::Offset(..) => return Err(Errno::EINVAL),
            _ => return Err(Errno::EBADF),
        }
        Ok(Some(n))
    }

    /// A read of the `/topics` file at `path` that is served at read time (`stream`);
    /// `None` for the others, whose contents the handle holds.
    pub(crate) fn topics_read(
        &self,
        path: &str,
        offset: u64,
        size: u32,
    ) -> OpResult<Option<Vec<u8>>> {
        match parse(path) {
            Some(TopicPath::Stream(topic)) => {
                let t = self.topic_service()?;
                let data = t
                    .topic_stream(&topic, offset, size)
                    .map_err(backend_errno)?;
                Ok(Some(data))
            }
            _ => Ok(None),
        }
    }

    /// Extended attributes of a `/topics` file: a claim's consumer, delivery count and
    /// deadline (ns since the epoch) on `pending/<offset>`; `None` when `ino` is not a
    /// `/topics` file (empty for the other `/topics` files).
    pub(crate) fn topics_xattrs(&self, ino: u64) -> OpResult<Option<Xattrs>> {
        let path = match self.inodes.place(ino)? {
            Some(Place::In(Tree::Topics, path)) => path,
            _ => return Ok(None),
        };
        let Some(TopicPath::PendingItem(topic, group, offset)) = parse(&path) else {
            return Ok(Some(Vec::new()));
        };
        let t = self.topic_service()?;
        let claim = t
            .group_pending(&topic, &group)
            .map_err(backend_errno)?
            .into_iter()
            .find(|c| c.offset == offset)
            .ok_or(Errno::ENOENT)?;
        Ok(Some(vec![
            (CLAIM_CONSUMER_XATTR.into(), claim.consumer.into_bytes()),
            (
                CLAIM_DELIVERIES_XATTR.into(),
                claim.deliveries.to_string().into_bytes(),
            ),
            (
                CLAIM_DEADLINE_XATTR.into(),
                claim.deadline_ns.to_string().into_bytes(),
            ),
        ]))
    }

    /// Flush or fsync of a handle: a `publish` handle publishes what was written to it,
    /// in one command, and returns once it is stored (the error, if any, is close(2)'s).
    pub(crate) fn topics_flush(&self, fh: u64) -> OpResult<()> {
        let pending = self
            .next_claims
            .unpublished
            .lock()
            .map_err(|_| Errno::EIO)?
            .remove(&fh);
        let Some(u) = pending else {
            return Ok(());
        };
        if u.messages.is_empty() {
            return Ok(());
        }
        let t = self.topic_service()?;
        t.topic_publish(&u.topic, u.messages)
            .map(|_| ())
            .map_err(backend_errno)
    }

    /// Release of a handle: a `publish` handle publishes what is left (close(2) already
    /// flushed; this covers a handle closed without a flush), a `next` handle
    /// acknowledges its claim.
    pub(crate) fn topics_release(&self, fh: u64) -> OpResult<()> {
        if let Err(e) = self.topics_flush(fh) {
            tracing::error!(
                fh,
                errno = e.code(),
                "publishing at release failed; messages lost"
            );
        }
        let claim = self
            .next_claims
            .by_handle
            .lock()
            .map_err(|_| Errno::EIO)?
            .remove(&fh);
        if let Some((topic, group, offset)) = claim {
            let t = self.topic_service()?;
            if let Err(e) = t.group_ack(&topic, &group, offset) {
                // At most once: the message was handed out; a failed acknowledgement
                // lets it come back after the visibility timeout.
                tracing::warn!(topic, group, offset, error = %e, "acknowledging a next claim at close failed");
            }
        }
        Ok(())
    }

    /// mkdir below `/topics`: a topic, or a group under `<topic>/groups`.
    pub(crate) fn topics_mkdir(&self, parent: u64, dir: &str, name: &str) -> OpResult<FileAttr> {
        self.writable()?;
        let t = self.topic_service()?;
        if !valid_backend_name(name) {
            return Err(Errno::EINVAL);
        }
        let p = match parse(&join(dir, name)) {
            Some(p @ TopicPath::Topic(_)) => {
                t.topic_create(name).map_err(backend_errno)?;
                p
            }
            Some(p @ TopicPath::Group(..)) => {
                t.group_create(p.topic(), name).map_err(backend_errno)?;
                p
            }
            _ => return Err(Errno::EPERM),
        };
        let ino = self
            .inodes
            .lookup(parent, name, FileType::Directory, None)?;
        Ok(attr_of(ino, &p, 0))
    }

    /// rmdir (a topic or a group) and unlink (of `pending/<offset>`: acknowledges it)
    /// below `/topics`.
    pub(crate) fn topics_remove(
        &self,
        parent: u64,
        dir: &str,
        name: &str,
        rmdir: bool,
    ) -> OpResult<()> {
        self.writable()?;
        let t = self.topic_service()?;
        match (parse(&join(dir, name)), rmdir) {
            (Some(TopicPath::Topic(topic)), true) => t.topic_delete(&topic),
            (Some(TopicPath::Group(topic, g)), true) => t.group_delete(&topic, &g),
            (Some(TopicPath::PendingItem(topic, g, o)), false) => t.group_ack(&topic, &g, o),
            (Some(p), true) if !p.is_dir() => return Err(Errno::ENOTDIR),
            (Some(p), false) if p.is_dir() => return Err(Errno::EISDIR),
            (Some(_), _) => return Err(Errno::EPERM),
            (None, _) => return Err(Errno::ENOENT),
        }
        .map_err(backend_errno)?;
        self.inodes.unlink(parent, name)?;
        Ok(())
    }

    /// readdir of `/topics` or a directory below it.
    pub(crate) fn topics_readdir(
        &self,
        ino: u64,
        parent: u64,
        path: &str,
        offset: u64,
        sink: &mut dyn DirSink,
    ) -> OpResult<()> {
        let t = self.topic_service()?;
        let names: Vec<String>;
        // Position of the first child in `names` (messages are numbered from `first`).
        let mut skip = 0usize;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        if path.is_empty() {
            names = t.topic_names().map_err(backend_errno)?;
        } else {
            let p = parse(path).ok_or(Errno::ENOENT)?;
            self.topic_size(&p)?;
            match &p {
                TopicPath::Topic(_) => {
                    names = ["publish", "messages", "stream", "config", "groups"]
                        .map(String::from)
                        .to_vec()
                }
                TopicPath::Messages(topic) => {
                    // Offsets are dense: list a window from the reply's position on.
                    let stat = t
                        .topic_stat(topic)
                        .map_err(backend_errno)?
                        .ok_or(Errno::ENOENT)?;
                    skip = start.saturating_sub(2);
                    let from = stat.first.saturating_add(skip as u64);
                    let window = crate::limits::READDIR_PAGE_ENTRIES as u64;
                    names = (from..stat.next.min(from.saturating_add(window)))
                        .map(|o| o.to_string())
                        .collect();
                }
                TopicPath::Groups(topic) => names = t.group_names(topic).map_err(backend_errno)?,
                TopicPath::Group(..) => {
                    names = ["claim", "next", "offset", "pending", "dlq"]
                        .map(String::from)
                        .to_vec()
                }
                TopicPath::Pending(topic, g) => {
                    names = t
                        .group_pending(topic, g)
                        .map_err(backend_errno)?
                        .into_iter()
                        .map(|c| c.offset.to_string())
                        .collect()
                }
                TopicPath::Dlq(topic, g) => {
                    names = t
                        .group_dead_letters(topic, g)
                        .map_err(backend_errno)?
                        .into_iter()
                        .map(|o| o.to_string())
                        .collect()
                }
                _ => return Err(Errno::ENOTDIR),
            }
        }
        let Some(pos) = add_dots(
            sink,
            start,
            &topics_root_attr(ino),
            &topics_root_attr(parent),
        ) else {
            return Ok(());
        };
        let first_index = (pos - 2).saturating_sub(skip);
        for (i, name) in names.iter().enumerate().skip(first_index) {
            let off = (skip + i + 3) as u64;
            let Some(p) = parse(&join(path, name)).filter(|_| valid_backend_name(name)) else {
                continue;
            };
            let kind = if p.is_dir() {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            let full =
                self.add_synthesized(sink, ino, name, off, kind, |child| attr_of(child, &p, 0))?;
            if full {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse("orders"), Some(TopicPath::Topic("orders".into())));
        assert_eq!(
            parse("orders/messages/12"),
            Some(TopicPath::Message("orders".into(), 12))
        );
        assert_eq!(parse("orders/messages/012"), None);
        assert_eq!(parse("orders/messages/x"), None);
        assert_eq!(
            parse("o/groups/g/pending/3"),
            Some(TopicPath::PendingItem("o".into(), "g".into(), 3))
        );
        assert_eq!(
            parse("o/groups/g/claim"),
            Some(TopicPath::Claim("o".into(), "g".into()))
        );
        assert_eq!(parse("o/other"), None);
        assert!(parse("o/groups/g").is_some_and(|p| p.is_dir()));
        assert!(parse("o/publish").is_some_and(|p| !p.is_dir() && p.mode() == 0o222));
    }
}
