//! The store behind `MemoryBackend`: an ordered map of entries with etcd-style
//! revisions and POSIX metadata, and the exact semantics of each `Backend` command
//! (conditions, kinds, directory rules, renames). No locking and no notifications here.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::backend::*;
use crate::limits::{
    DEFAULT_MAX_VALUE_BYTES, MAX_KEY_BYTES, MAX_NAME_BYTES, MAX_XATTR_VALUE_BYTES,
    MEMORY_CAPACITY_BYTES, MEMORY_MAX_ENTRIES, MEMORY_MAX_XATTRS_PER_ENTRY,
};

#[derive(Debug, Clone)]
pub(super) struct Stored {
    pub(super) attr: EntryAttr,
    pub(super) value: Vec<u8>,
    pub(super) xattrs: Vec<(String, Vec<u8>)>,
}

#[derive(Debug)]
pub(super) struct State {
    pub(super) entries: BTreeMap<String, Stored>,
    pub(super) revision: u64,
    pub(super) max_value_bytes: u64,
    pub(super) read_only: bool,
    pub(super) cluster: BTreeMap<String, Vec<u8>>,
    pub(super) puts: u64,
    pub(super) used_bytes: u64,
}

fn now_ns() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

pub(super) fn err(kind: ErrorKind, msg: impl Into<String>) -> BackendError {
    BackendError::new(kind, msg)
}

/// Checks a non-root key: UTF-8 `/`-separated components, none empty, `.`, `..`
/// or containing NUL; components up to 255 bytes and the key up to 4 KiB.
fn validate_key(key: &str) -> BackendResult<()> {
    if key.is_empty() {
        return Err(err(
            ErrorKind::InvalidInput,
            "the root cannot be changed this way",
        ));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(err(ErrorKind::NameTooLong, "key longer than 4 KiB"));
    }
    for c in key.split('/') {
        if c.is_empty() || c == "." || c == ".." || c.contains('\0') {
            return Err(err(
                ErrorKind::InvalidInput,
                format!("bad key component {c:?}"),
            ));
        }
        if c.len() > MAX_NAME_BYTES {
            return Err(err(
                ErrorKind::NameTooLong,
                "key component longer than 255 bytes",
            ));
        }
    }
    Ok(())
}

fn parent_of(key: &str) -> &str {
    match key.rfind('/') {
        Some(i) => key.get(..i).unwrap_or(""),
        None => "",
    }
}

/// Whether entries of `kind` hold a value (the others must have an empty one).
fn carries_value(kind: EntryKind) -> bool {
    matches!(kind, EntryKind::File | EntryKind::Symlink)
}

/// Whether `rdev` means something for entries of `kind`.
fn is_device(kind: EntryKind) -> bool {
    matches!(kind, EntryKind::CharDevice | EntryKind::BlockDevice)
}

fn child_prefix(dir: &str) -> String {
    if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    }
}

impl State {
    pub(super) fn new() -> State {
        let now = now_ns();
        let mut entries = BTreeMap::new();
        entries.insert(
            String::new(),
            Stored {
                attr: EntryAttr {
                    kind: EntryKind::Dir,
                    size: 0,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    mtime_ns: now,
                    ctime_ns: now,
                    create_revision: 1,
                    mod_revision: 1,
                    version: 1,
                    lease: 0,
                    rdev: 0,
                    nlink: 2,
                },
                value: Vec::new(),
                xattrs: Vec::new(),
            },
        );
        let mut cluster = BTreeMap::new();
        cluster.insert("node".to_string(), b"id 1\naddress memory\n".to_vec());
        cluster.insert("leader".to_string(), b"1\n".to_vec());
        cluster.insert("health".to_string(), b"ok\n".to_vec());
        State {
            entries,
            revision: 1,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            read_only: false,
            cluster,
            puts: 0,
            used_bytes: 0,
        }
    }

    fn writable(&self) -> BackendResult<()> {
        if self.read_only {
            Err(err(ErrorKind::ReadOnly, "store is read-only (no quorum)"))
        } else {
            Ok(())
        }
    }

    fn dir_exists(&self, key: &str) -> BackendResult<()> {
        match self.entries.get(key) {
            None => Err(err(ErrorKind::NotFound, format!("no directory {key:?}"))),
            Some(e) if e.attr.kind != EntryKind::Dir => Err(err(
                ErrorKind::NotDir,
                format!("{key:?} is not a directory"),
            )),
            Some(_) => Ok(()),
        }
    }

    fn has_children(&self, dir: &str) -> bool {
        let prefix = child_prefix(dir);
        self.entries
            .range::<str, _>((Bound::Excluded(dir), Bound::Unbounded))
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix) && k.len() > prefix.len())
    }

    /// Keys of `key` and everything below it.
    fn subtree(&self, key: &str) -> Vec<String> {
        let prefix = format!("{key}/");
        let mut out = vec![key.to_string()];
        out.extend(
            self.entries
                .range::<str, _>((Bound::Excluded(prefix.as_str()), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone()),
        );
        out
    }

    fn bump(&mut self) -> u64 {
        self.revision = self.revision.saturating_add(1);
        self.revision
    }

    fn stored_size(s: &Stored) -> u64 {
        let x: usize = s.xattrs.iter().map(|(n, v)| n.len() + v.len()).sum();
        (s.value.len() + x) as u64
    }

    fn insert(&mut self, key: String, s: Stored) {
        self.used_bytes = self.used_bytes.saturating_add(Self::stored_size(&s));
        if let Some(old) = self.entries.insert(key, s) {
            self.used_bytes = self.used_bytes.saturating_sub(Self::stored_size(&old));
        }
    }

    fn remove(&mut self, key: &str) -> Option<Stored> {
        let old = self.entries.remove(key)?;
        self.used_bytes = self.used_bytes.saturating_sub(Self::stored_size(&old));
        Some(old)
    }

    /// A child of `key`'s parent directory was added (`delta` 1) or removed (-1):
    /// the parent's mtime and ctime become `now`, and its link count moves by `delta`
    /// when the child is a directory. Like the real store, this is not a change of
    /// the directory entry itself: its revision and version stay.
    fn touch_parent(&mut self, key: &str, child_is_dir: bool, delta: i32, now: i64) {
        if let Some(p) = self.entries.get_mut(parent_of(key)) {
            p.attr.mtime_ns = now;
            p.attr.ctime_ns = now;
            if child_is_dir {
                p.attr.nlink = p.attr.nlink.saturating_add_signed(delta).max(2);
            }
        }
    }

    fn check_space(&self, adding_bytes: u64, new_entry: bool) -> BackendResult<()> {
        if self.used_bytes.saturating_add(adding_bytes) > MEMORY_CAPACITY_BYTES
            || (new_entry && self.entries.len() as u64 >= MEMORY_MAX_ENTRIES)
        {
            return Err(err(ErrorKind::NoSpace, "memory store is full"));
        }
        Ok(())
    }

    pub(super) fn put(&mut self, req: PutRequest) -> BackendResult<EntryAttr> {
        self.writable()?;
        validate_key(&req.key)?;
        self.dir_exists(parent_of(&req.key))?;
        if req.value.len() as u64 > self.max_value_bytes {
            return Err(err(ErrorKind::TooBig, "value larger than the maximum"));
        }
        if !req.value.is_empty() && !carries_value(req.kind) {
            return Err(err(
                ErrorKind::InvalidInput,
                format!("a {:?} entry has no value", req.kind),
            ));
        }
        let existing = self.entries.get(&req.key);
        match (req.condition, existing) {
            (PutCondition::MustNotExist, Some(_)) => {
                return Err(err(
                    ErrorKind::AlreadyExists,
                    format!("{:?} exists", req.key),
                ))
            }
            (PutCondition::ModRevision(r), Some(e)) if e.attr.mod_revision != r => {
                return Err(err(ErrorKind::Conflict, "mod_revision differs"))
            }
            (PutCondition::ModRevision(r), None) if r != 0 => {
                return Err(err(ErrorKind::Conflict, "entry does not exist"))
            }
            _ => {}
        }
        if let Some(e) = existing {
            match (e.attr.kind, req.kind) {
                (EntryKind::Dir, EntryKind::Dir) => {}
                (EntryKind::Dir, _) => return Err(err(ErrorKind::IsDir, "is a directory")),
                (_, EntryKind::Dir) => return Err(err(ErrorKind::AlreadyExists, "exists")),
                _ => {}
            }
        }
        let (create_revision, version, lease, old_xattrs, nlink) = match existing {
            Some(e) => (
                e.attr.create_revision,
                e.attr.version.saturating_add(1),
                e.attr.lease,
                e.xattrs.clone(),
                // A directory replacing itself keeps its subdirectories.
                if req.kind == EntryKind::Dir {
                    e.attr.nlink.max(2)
                } else {
                    1
                },
            ),
            None => (
                0,
                1,
                0,
                Vec::new(),
                if req.kind == EntryKind::Dir { 2 } else { 1 },
            ),
        };
        let new_entry = existing.is_none();
        let xattrs = req.xattrs.unwrap_or(old_xattrs);
        self.check_space(req.value.len() as u64, new_entry)?;
        let rev = self.bump();
        let now = now_ns();
        let attr = EntryAttr {
            kind: req.kind,
            size: req.value.len() as u64,
            mode: req.mode & 0o7777,
            uid: req.uid,
            gid: req.gid,
            mtime_ns: req.mtime_ns.unwrap_or(now),
            // A new entry's change time is its creation (the given time, as the store does).
            ctime_ns: if new_entry {
                req.mtime_ns.unwrap_or(now)
            } else {
                now
            },
            create_revision: if create_revision == 0 {
                rev
            } else {
                create_revision
            },
            mod_revision: rev,
            version,
            lease,
            rdev: if is_device(req.kind) { req.rdev } else { 0 },
            nlink,
        };
        self.puts = self.puts.saturating_add(1);
        if new_entry {
            self.touch_parent(&req.key, req.kind == EntryKind::Dir, 1, now);
        }
        self.insert(
            req.key,
            Stored {
                attr: attr.clone(),
                value: req.value,
                xattrs,
            },
        );
        Ok(attr)
    }

    pub(super) fn set_attr(&mut self, key: &str, change: AttrChange) -> BackendResult<EntryAttr> {
        self.writable()?;
        let max = self.max_value_bytes;
        let Some(cur) = self.entries.get(key) else {
            return Err(err(ErrorKind::NotFound, format!("no entry {key:?}")));
        };
        let mut s = cur.clone();
        if let Some(size) = change.size {
            match s.attr.kind {
                EntryKind::Dir => return Err(err(ErrorKind::IsDir, "is a directory")),
                EntryKind::Symlink => return Err(err(ErrorKind::InvalidInput, "is a symlink")),
                EntryKind::File => {}
                EntryKind::Fifo
                | EntryKind::Socket
                | EntryKind::CharDevice
                | EntryKind::BlockDevice => {
                    return Err(err(ErrorKind::InvalidInput, "not a regular file"))
                }
            }
            if size > max {
                return Err(err(ErrorKind::TooBig, "size larger than the maximum"));
            }
            let size = usize::try_from(size)
                .map_err(|_| err(ErrorKind::TooBig, "size larger than the address space"))?;
            s.value.resize(size, 0);
            s.attr.size = size as u64;
        }
        if let Some(mode) = change.mode {
            s.attr.mode = mode & 0o7777;
        }
        if let Some(uid) = change.uid {
            s.attr.uid = uid;
        }
        if let Some(gid) = change.gid {
            s.attr.gid = gid;
        }
        let now = now_ns();
        if let Some(m) = change.mtime_ns {
            s.attr.mtime_ns = m.unwrap_or(now);
        } else if change.size.is_some() {
            s.attr.mtime_ns = now;
        }
        if let Some((name, value, mode)) = change.set_xattr {
            if !name.starts_with("user.") {
                return Err(err(ErrorKind::Unsupported, "only user.* xattrs are stored"));
            }
            if value.len() > MAX_XATTR_VALUE_BYTES {
                return Err(err(ErrorKind::TooBig, "xattr value too large"));
            }
            let pos = s.xattrs.iter().position(|(n, _)| *n == name);
            match (mode, pos) {
                (XattrMode::Create, Some(_)) => {
                    return Err(err(ErrorKind::AlreadyExists, "xattr exists"))
                }
                (XattrMode::Replace, None) => return Err(err(ErrorKind::NoData, "no such xattr")),
                (_, Some(i)) => {
                    if let Some(slot) = s.xattrs.get_mut(i) {
                        slot.1 = value;
                    }
                }
                (_, None) => {
                    if s.xattrs.len() >= MEMORY_MAX_XATTRS_PER_ENTRY {
                        return Err(err(ErrorKind::NoSpace, "too many xattrs"));
                    }
                    s.xattrs.push((name, value));
                }
            }
        }
        if let Some(name) = change.remove_xattr {
            match s.xattrs.iter().position(|(n, _)| *n == name) {
                Some(i) => {
                    s.xattrs.remove(i);
                }
                None => return Err(err(ErrorKind::NoData, "no such xattr")),
            }
        }
        self.check_space(
            State::stored_size(&s).saturating_sub(State::stored_size(cur)),
            false,
        )?;
        let rev = self.bump();
        s.attr.ctime_ns = now;
        s.attr.mod_revision = rev;
        s.attr.version = s.attr.version.saturating_add(1);
        let attr = s.attr.clone();
        self.insert(key.to_string(), s);
        Ok(attr)
    }

    pub(super) fn delete(&mut self, key: &str, kind: DeleteKind) -> BackendResult<()> {
        self.writable()?;
        validate_key(key)?;
        let Some(e) = self.entries.get(key) else {
            return Err(err(ErrorKind::NotFound, format!("no entry {key:?}")));
        };
        match (kind, e.attr.kind) {
            (DeleteKind::NonDir, EntryKind::Dir) => {
                return Err(err(ErrorKind::IsDir, "is a directory"))
            }
            (DeleteKind::EmptyDir, k) if k != EntryKind::Dir => {
                return Err(err(ErrorKind::NotDir, "not a directory"))
            }
            (DeleteKind::EmptyDir, EntryKind::Dir) if self.has_children(key) => {
                return Err(err(ErrorKind::NotEmpty, "directory not empty"))
            }
            _ => {}
        }
        let is_dir = e.attr.kind == EntryKind::Dir;
        self.bump();
        self.remove(key);
        self.touch_parent(key, is_dir, -1, now_ns());
        Ok(())
    }

    /// Moves `from` and everything below it to `to` (which must be free). The moved
    /// entry's ctime becomes `now`; everything moved gets revision `rev`. Parents are
    /// not touched here.
    fn move_subtree(&mut self, from: &str, to: &str, rev: u64, now: i64) {
        for k in self.subtree(from) {
            if let Some(mut s) = self.remove(&k) {
                let suffix = k.get(from.len()..).unwrap_or("");
                s.attr.mod_revision = rev;
                if suffix.is_empty() {
                    s.attr.ctime_ns = now;
                }
                self.insert(format!("{to}{suffix}"), s);
            }
        }
    }

    pub(super) fn rename(&mut self, from: &str, to: &str, mode: RenameMode) -> BackendResult<()> {
        self.writable()?;
        validate_key(from)?;
        validate_key(to)?;
        let Some(src) = self.entries.get(from) else {
            return Err(err(ErrorKind::NotFound, format!("no entry {from:?}")));
        };
        let src_kind = src.attr.kind;
        self.dir_exists(parent_of(to))?;
        if from == to {
            return Ok(());
        }
        if to.starts_with(&format!("{from}/")) || from.starts_with(&format!("{to}/")) {
            return Err(err(
                ErrorKind::InvalidInput,
                "cannot move a directory into itself",
            ));
        }
        let dst_kind = self.entries.get(to).map(|e| e.attr.kind);
        match (mode, dst_kind) {
            (RenameMode::NoReplace, Some(_)) => {
                return Err(err(ErrorKind::AlreadyExists, format!("{to:?} exists")))
            }
            (RenameMode::Exchange, None) => {
                return Err(err(ErrorKind::NotFound, format!("no entry {to:?}")))
            }
            (RenameMode::Replace, Some(d)) => match (src_kind, d) {
                (EntryKind::Dir, EntryKind::Dir) if self.has_children(to) => {
                    return Err(err(ErrorKind::NotEmpty, "target directory not empty"));
                }
                (EntryKind::Dir, EntryKind::Dir) => {}
                (EntryKind::Dir, _) => return Err(err(ErrorKind::NotDir, "target not a dir")),
                (_, EntryKind::Dir) => return Err(err(ErrorKind::IsDir, "target is a dir")),
                _ => {}
            },
            _ => {}
        }
        let rev = self.bump();
        let now = now_ns();
        let src_dir = src_kind == EntryKind::Dir;
        if mode == RenameMode::Exchange {
            // Park `to` under a name no valid key can have, then swap.
            let parked = format!("\0{to}");
            self.move_subtree(to, &parked, rev, now);
            self.move_subtree(from, to, rev, now);
            self.move_subtree(&parked, from, rev, now);
            let dst_dir = dst_kind == Some(EntryKind::Dir);
            self.touch_parent(from, src_dir, -1, now);
            self.touch_parent(from, dst_dir, 1, now);
            self.touch_parent(to, dst_dir, -1, now);
            self.touch_parent(to, src_dir, 1, now);
        } else {
            if let Some(d) = dst_kind {
                self.remove(to);
                self.touch_parent(to, d == EntryKind::Dir, -1, now);
            }
            self.move_subtree(from, to, rev, now);
            self.touch_parent(from, src_dir, -1, now);
            self.touch_parent(to, src_dir, 1, now);
        }
        Ok(())
    }

    pub(super) fn list(
        &self,
        dir: &str,
        after: Option<&str>,
        limit: usize,
    ) -> BackendResult<DirPage> {
        self.dir_exists(dir)?;
        let prefix = child_prefix(dir);
        let mut cursor: Bound<String> = match after {
            Some(a) => Bound::Excluded(format!("{prefix}{a}")),
            None if dir.is_empty() => Bound::Excluded(String::new()),
            None => Bound::Included(prefix.clone()),
        };
        let mut page = DirPage::default();
        loop {
            let next = self
                .entries
                .range::<String, _>((cursor.clone(), Bound::Unbounded))
                .next();
            let Some((k, e)) = next else { break };
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            match rest.find('/') {
                None => {
                    if page.entries.len() >= limit {
                        page.more = true;
                        break;
                    }
                    page.entries.push((rest.to_string(), e.attr.clone()));
                    cursor = Bound::Excluded(k.clone());
                }
                Some(i) => {
                    // A grandchild: skip the whole subtree of that child ('0' follows '/').
                    let child = rest.get(..i).unwrap_or("");
                    cursor = Bound::Included(format!("{prefix}{child}0"));
                }
            }
        }
        Ok(page)
    }
}
