//! `MemoryBackend`: a complete in-memory implementation of [`Backend`].
//!
//! It owns an ordered map of entries with etcd-style revisions and POSIX metadata,
//! and the fan-out of [`Change`]s to subscribers. Several `MemoryBackend` values can
//! share one store ([`MemoryBackend::peer`]): each behaves like a different node, so a
//! change made through one is delivered to the subscribers of the others, never to its
//! own. Changes injected with the `external_*` methods reach every subscriber, as if made
//! by someone else entirely. Used by this crate's tests; handy for others.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::backend::*;
use crate::limits::{
    DEFAULT_MAX_VALUE_BYTES, MAX_KEY_BYTES, MAX_NAME_BYTES, MAX_XATTR_VALUE_BYTES,
    MEMORY_CAPACITY_BYTES, MEMORY_MAX_ENTRIES, MEMORY_MAX_XATTRS_PER_ENTRY,
};

/// Peer id used by the `external_*` methods: matches no real instance.
const EXTERNAL_PEER: u64 = u64::MAX;

#[derive(Debug, Clone)]
struct Stored {
    attr: EntryAttr,
    value: Vec<u8>,
    xattrs: Vec<(String, Vec<u8>)>,
}

#[derive(Debug)]
struct State {
    entries: BTreeMap<String, Stored>,
    revision: u64,
    max_value_bytes: u64,
    read_only: bool,
    cluster: BTreeMap<String, Vec<u8>>,
    puts: u64,
    used_bytes: u64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    subscribers: Mutex<Vec<(u64, Sender<Change>)>>,
    next_peer: AtomicU64,
}

/// An in-memory store implementing [`Backend`]. Cloning gives another handle on the
/// same instance (same peer id); [`MemoryBackend::peer`] gives a different peer.
#[derive(Debug, Clone)]
pub struct MemoryBackend {
    shared: Arc<Shared>,
    peer: u64,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

fn now_ns() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

fn err(kind: ErrorKind, msg: impl Into<String>) -> BackendError {
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

fn child_prefix(dir: &str) -> String {
    if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    }
}

impl State {
    fn new() -> State {
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

    fn check_space(&self, adding_bytes: u64, new_entry: bool) -> BackendResult<()> {
        if self.used_bytes.saturating_add(adding_bytes) > MEMORY_CAPACITY_BYTES
            || (new_entry && self.entries.len() as u64 >= MEMORY_MAX_ENTRIES)
        {
            return Err(err(ErrorKind::NoSpace, "memory store is full"));
        }
        Ok(())
    }

    fn put(&mut self, req: PutRequest) -> BackendResult<EntryAttr> {
        self.writable()?;
        validate_key(&req.key)?;
        self.dir_exists(parent_of(&req.key))?;
        if req.value.len() as u64 > self.max_value_bytes {
            return Err(err(ErrorKind::TooBig, "value larger than the maximum"));
        }
        if req.kind == EntryKind::Dir && !req.value.is_empty() {
            return Err(err(ErrorKind::InvalidInput, "a directory has no value"));
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
        let (create_revision, version, lease, old_xattrs) = match existing {
            Some(e) => (
                e.attr.create_revision,
                e.attr.version.saturating_add(1),
                e.attr.lease,
                e.xattrs.clone(),
            ),
            None => (0, 1, 0, Vec::new()),
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
            ctime_ns: now,
            create_revision: if create_revision == 0 {
                rev
            } else {
                create_revision
            },
            mod_revision: rev,
            version,
            lease,
        };
        self.puts = self.puts.saturating_add(1);
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

    fn set_attr(&mut self, key: &str, change: AttrChange) -> BackendResult<EntryAttr> {
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

    fn delete(&mut self, key: &str, kind: DeleteKind) -> BackendResult<()> {
        self.writable()?;
        validate_key(key)?;
        let Some(e) = self.entries.get(key) else {
            return Err(err(ErrorKind::NotFound, format!("no entry {key:?}")));
        };
        match (kind, e.attr.kind) {
            (DeleteKind::NonDir, EntryKind::Dir) => {
                return Err(err(ErrorKind::IsDir, "is a directory"))
            }
            (DeleteKind::EmptyDir, EntryKind::File | EntryKind::Symlink) => {
                return Err(err(ErrorKind::NotDir, "not a directory"))
            }
            (DeleteKind::EmptyDir, EntryKind::Dir) if self.has_children(key) => {
                return Err(err(ErrorKind::NotEmpty, "directory not empty"))
            }
            _ => {}
        }
        self.bump();
        self.remove(key);
        Ok(())
    }

    /// Moves `from` and everything below it to `to` (which must be free).
    fn move_subtree(&mut self, from: &str, to: &str, rev: u64, now: i64) {
        for k in self.subtree(from) {
            if let Some(mut s) = self.remove(&k) {
                let suffix = k.get(from.len()..).unwrap_or("");
                s.attr.mod_revision = rev;
                s.attr.ctime_ns = now;
                self.insert(format!("{to}{suffix}"), s);
            }
        }
    }

    fn rename(&mut self, from: &str, to: &str, mode: RenameMode) -> BackendResult<()> {
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
        if mode == RenameMode::Exchange {
            // Park `to` under a name no valid key can have, then swap.
            let parked = format!("\0{to}");
            self.move_subtree(to, &parked, rev, now);
            self.move_subtree(from, to, rev, now);
            self.move_subtree(&parked, from, rev, now);
        } else {
            if dst_kind.is_some() {
                self.remove(to);
            }
            self.move_subtree(from, to, rev, now);
        }
        Ok(())
    }

    fn list(&self, dir: &str, after: Option<&str>, limit: usize) -> BackendResult<DirPage> {
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

impl MemoryBackend {
    /// An empty store: only the root directory, three `/cluster` files, values up to 1 MiB.
    pub fn new() -> MemoryBackend {
        MemoryBackend {
            shared: Arc::new(Shared {
                state: Mutex::new(State::new()),
                subscribers: Mutex::new(Vec::new()),
                next_peer: AtomicU64::new(1),
            }),
            peer: 0,
        }
    }

    /// Sets the largest value a file may hold (EFBIG beyond).
    pub fn with_max_value_bytes(self, max: u64) -> MemoryBackend {
        if let Ok(mut st) = self.state() {
            st.max_value_bytes = max;
        }
        self
    }

    /// Another instance on the same store, like a second node: its changes reach this
    /// instance's subscribers and the other way round.
    pub fn peer(&self) -> MemoryBackend {
        MemoryBackend {
            shared: self.shared.clone(),
            peer: self.shared.next_peer.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn state(&self) -> BackendResult<MutexGuard<'_, State>> {
        self.shared
            .state
            .lock()
            .map_err(|_| err(ErrorKind::Io, "memory store lock poisoned"))
    }

    /// Runs `f` on the state and, if it succeeds, announces `changes(&result)` to the
    /// subscribers of other peers, still in apply order.
    fn mutate<T>(
        &self,
        by: u64,
        f: impl FnOnce(&mut State) -> BackendResult<T>,
        changes: impl FnOnce(&T) -> Vec<Change>,
    ) -> BackendResult<T> {
        let mut st = self.state()?;
        let out = f(&mut st)?;
        let list = changes(&out);
        if let Ok(mut subs) = self.shared.subscribers.lock() {
            subs.retain(|(peer, tx)| {
                if *peer == by {
                    return true;
                }
                list.iter().all(|c| tx.send(c.clone()).is_ok())
            });
        }
        drop(st);
        Ok(out)
    }

    /// Writes a file as someone else would: every subscriber sees the change.
    /// An existing entry keeps its metadata; a new one is mode 0644, owned by root.
    pub fn external_put(&self, key: &str, value: &[u8]) -> BackendResult<EntryAttr> {
        let existing = self.stat(key)?;
        let (mode, uid, gid) = existing.map_or((0o644, 0, 0), |a| (a.mode, a.uid, a.gid));
        let key_owned = key.to_string();
        self.mutate(
            EXTERNAL_PEER,
            |st| {
                st.put(PutRequest {
                    key: key_owned.clone(),
                    kind: EntryKind::File,
                    value: value.to_vec(),
                    mode,
                    uid,
                    gid,
                    mtime_ns: None,
                    xattrs: None,
                    condition: PutCondition::Any,
                })
            },
            |_| {
                vec![Change {
                    key: key_owned.clone(),
                    deleted: false,
                }]
            },
        )
    }

    /// Writes a file as someone else would, but tells no subscriber: a lost change.
    pub fn external_put_unannounced(&self, key: &str, value: &[u8]) -> BackendResult<EntryAttr> {
        let existing = self.stat(key)?;
        let (mode, uid, gid) = existing.map_or((0o644, 0, 0), |a| (a.mode, a.uid, a.gid));
        self.state()?.put(PutRequest {
            key: key.to_string(),
            kind: EntryKind::File,
            value: value.to_vec(),
            mode,
            uid,
            gid,
            mtime_ns: None,
            xattrs: None,
            condition: PutCondition::Any,
        })
    }

    /// Tells every subscriber that changes may have been missed (an empty key with
    /// `deleted: true`), as a backend does after its change stream lagged.
    pub fn announce_missed_changes(&self) -> BackendResult<()> {
        self.mutate(
            EXTERNAL_PEER,
            |_| Ok(()),
            |_| {
                vec![Change {
                    key: String::new(),
                    deleted: true,
                }]
            },
        )
    }

    /// Creates a directory as someone else would (mode 0755, owned by root).
    pub fn external_mkdir(&self, key: &str) -> BackendResult<EntryAttr> {
        let key_owned = key.to_string();
        self.mutate(
            EXTERNAL_PEER,
            |st| {
                st.put(PutRequest {
                    key: key_owned.clone(),
                    kind: EntryKind::Dir,
                    value: Vec::new(),
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    mtime_ns: None,
                    xattrs: None,
                    condition: PutCondition::MustNotExist,
                })
            },
            |_| {
                vec![Change {
                    key: key_owned.clone(),
                    deleted: false,
                }]
            },
        )
    }

    /// Deletes a file, symlink or empty directory as someone else would.
    pub fn external_delete(&self, key: &str) -> BackendResult<()> {
        let kind = match self.stat(key)? {
            Some(a) if a.kind == EntryKind::Dir => DeleteKind::EmptyDir,
            _ => DeleteKind::NonDir,
        };
        self.mutate(
            EXTERNAL_PEER,
            |st| st.delete(key, kind),
            |_| {
                vec![Change {
                    key: key.to_string(),
                    deleted: true,
                }]
            },
        )
    }

    /// Changes metadata as someone else would.
    pub fn external_set_attr(&self, key: &str, change: AttrChange) -> BackendResult<EntryAttr> {
        self.mutate(
            EXTERNAL_PEER,
            |st| st.set_attr(key, change),
            |_| {
                vec![Change {
                    key: key.to_string(),
                    deleted: false,
                }]
            },
        )
    }

    /// Makes every write fail with `ReadOnly` (EROFS), like a node without quorum.
    pub fn set_read_only(&self, read_only: bool) {
        if let Ok(mut st) = self.state() {
            st.read_only = read_only;
        }
    }

    /// Sets (or adds) the contents of `/cluster/<name>`.
    pub fn set_cluster_file(&self, name: &str, contents: &[u8]) {
        if let Ok(mut st) = self.state() {
            st.cluster.insert(name.to_string(), contents.to_vec());
        }
    }

    /// Number of successful `put` calls so far, through every peer.
    pub fn put_count(&self) -> u64 {
        self.state().map(|st| st.puts).unwrap_or(0)
    }

    /// The current store revision.
    pub fn revision(&self) -> u64 {
        self.state().map(|st| st.revision).unwrap_or(0)
    }
}

impl Backend for MemoryBackend {
    fn stat(&self, key: &str) -> BackendResult<Option<EntryAttr>> {
        Ok(self.state()?.entries.get(key).map(|s| s.attr.clone()))
    }

    fn get(&self, key: &str) -> BackendResult<Option<Entry>> {
        Ok(self.state()?.entries.get(key).map(|s| Entry {
            attr: s.attr.clone(),
            value: s.value.clone(),
            xattrs: s.xattrs.clone(),
        }))
    }

    fn list(&self, dir: &str, after: Option<&str>, limit: usize) -> BackendResult<DirPage> {
        self.state()?.list(dir, after, limit)
    }

    fn put(&self, req: PutRequest) -> BackendResult<EntryAttr> {
        let key = req.key.clone();
        self.mutate(
            self.peer,
            |st| st.put(req),
            |_| {
                vec![Change {
                    key,
                    deleted: false,
                }]
            },
        )
    }

    fn set_attr(&self, key: &str, change: AttrChange) -> BackendResult<EntryAttr> {
        self.mutate(
            self.peer,
            |st| st.set_attr(key, change),
            |_| {
                vec![Change {
                    key: key.to_string(),
                    deleted: false,
                }]
            },
        )
    }

    fn delete(&self, key: &str, kind: DeleteKind) -> BackendResult<()> {
        self.mutate(
            self.peer,
            |st| st.delete(key, kind),
            |_| {
                vec![Change {
                    key: key.to_string(),
                    deleted: true,
                }]
            },
        )
    }

    fn rename(&self, from: &str, to: &str, mode: RenameMode) -> BackendResult<()> {
        self.mutate(
            self.peer,
            |st| st.rename(from, to, mode),
            |_| {
                if from == to {
                    return Vec::new();
                }
                vec![
                    Change {
                        key: from.to_string(),
                        deleted: mode != RenameMode::Exchange,
                    },
                    Change {
                        key: to.to_string(),
                        deleted: false,
                    },
                ]
            },
        )
    }

    fn stats(&self) -> BackendResult<FsStats> {
        let st = self.state()?;
        let free = MEMORY_CAPACITY_BYTES.saturating_sub(st.used_bytes);
        Ok(FsStats {
            total_bytes: MEMORY_CAPACITY_BYTES,
            free_bytes: free,
            available_bytes: free,
            total_files: MEMORY_MAX_ENTRIES,
            free_files: MEMORY_MAX_ENTRIES.saturating_sub(st.entries.len() as u64),
            max_value_bytes: st.max_value_bytes,
        })
    }

    fn cluster_files(&self) -> Vec<String> {
        self.state()
            .map(|st| st.cluster.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn cluster_file(&self, name: &str) -> BackendResult<Vec<u8>> {
        self.state()?
            .cluster
            .get(name)
            .cloned()
            .ok_or_else(|| err(ErrorKind::NotFound, format!("no cluster file {name:?}")))
    }

    fn subscribe(&self) -> Receiver<Change> {
        let (tx, rx) = channel();
        if let Ok(mut subs) = self.shared.subscribers.lock() {
            subs.push((self.peer, tx));
        }
        rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(
        b: &MemoryBackend,
        key: &str,
        kind: EntryKind,
        value: &[u8],
        cond: PutCondition,
    ) -> BackendResult<EntryAttr> {
        b.put(PutRequest {
            key: key.to_string(),
            kind,
            value: value.to_vec(),
            mode: 0o644,
            uid: 1,
            gid: 2,
            mtime_ns: None,
            xattrs: None,
            condition: cond,
        })
    }

    fn names(p: &DirPage) -> Vec<&str> {
        p.entries.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn put_get_revisions() {
        let b = MemoryBackend::new();
        let a1 = put(&b, "f", EntryKind::File, b"x", PutCondition::Any).unwrap();
        assert_eq!(a1.version, 1);
        assert_eq!(a1.create_revision, a1.mod_revision);
        let a2 = put(&b, "f", EntryKind::File, b"yy", PutCondition::Any).unwrap();
        assert_eq!(a2.version, 2);
        assert_eq!(a2.create_revision, a1.create_revision);
        assert!(a2.mod_revision > a1.mod_revision);
        assert_eq!(b.get("f").unwrap().unwrap().value, b"yy");
        let e = put(&b, "f", EntryKind::File, b"", PutCondition::MustNotExist).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AlreadyExists);
        let e = put(
            &b,
            "f",
            EntryKind::File,
            b"",
            PutCondition::ModRevision(a1.mod_revision),
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Conflict);
        put(
            &b,
            "f",
            EntryKind::File,
            b"z",
            PutCondition::ModRevision(a2.mod_revision),
        )
        .unwrap();
        let e = put(&b, "nodir/f", EntryKind::File, b"", PutCondition::Any).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        let e = put(&b, "f/g", EntryKind::File, b"", PutCondition::Any).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotDir);
    }

    #[test]
    fn list_pages_and_skips_grandchildren() {
        let b = MemoryBackend::new();
        put(&b, "d", EntryKind::Dir, b"", PutCondition::Any).unwrap();
        for n in ["a", "a-b", "a.x", "a0", "b"] {
            put(
                &b,
                &format!("d/{n}"),
                EntryKind::Dir,
                b"",
                PutCondition::Any,
            )
            .unwrap();
        }
        put(&b, "d/a/deep", EntryKind::File, b"", PutCondition::Any).unwrap();
        put(&b, "d/a/z", EntryKind::File, b"", PutCondition::Any).unwrap();
        let p = b.list("d", None, 100).unwrap();
        assert_eq!(names(&p), ["a", "a-b", "a.x", "a0", "b"]);
        assert!(!p.more);
        let p = b.list("d", None, 2).unwrap();
        assert_eq!(names(&p), ["a", "a-b"]);
        assert!(p.more);
        let p = b.list("d", Some("a-b"), 2).unwrap();
        assert_eq!(names(&p), ["a.x", "a0"]);
        assert!(p.more);
        let p = b.list("d", Some("a0"), 2).unwrap();
        assert_eq!(names(&p), ["b"]);
        assert!(!p.more);
        let p = b.list("", None, 10).unwrap();
        assert_eq!(names(&p), ["d"]);
        assert_eq!(
            b.list("d/a/deep", None, 1).unwrap_err().kind,
            ErrorKind::NotDir
        );
    }

    #[test]
    fn delete_and_rename() {
        let b = MemoryBackend::new();
        put(&b, "d", EntryKind::Dir, b"", PutCondition::Any).unwrap();
        put(&b, "d/f", EntryKind::File, b"1", PutCondition::Any).unwrap();
        assert_eq!(
            b.delete("d", DeleteKind::EmptyDir).unwrap_err().kind,
            ErrorKind::NotEmpty
        );
        assert_eq!(
            b.delete("d", DeleteKind::NonDir).unwrap_err().kind,
            ErrorKind::IsDir
        );
        assert_eq!(
            b.delete("d/f", DeleteKind::EmptyDir).unwrap_err().kind,
            ErrorKind::NotDir
        );
        b.rename("d", "e", RenameMode::Replace).unwrap();
        assert_eq!(b.get("e/f").unwrap().unwrap().value, b"1");
        assert!(b.stat("d").unwrap().is_none());
        put(&b, "g", EntryKind::File, b"2", PutCondition::Any).unwrap();
        assert_eq!(
            b.rename("g", "e/f", RenameMode::NoReplace)
                .unwrap_err()
                .kind,
            ErrorKind::AlreadyExists
        );
        b.rename("g", "e", RenameMode::Exchange).unwrap();
        assert_eq!(b.get("e").unwrap().unwrap().value, b"2");
        assert_eq!(b.get("g/f").unwrap().unwrap().value, b"1");
        assert_eq!(
            b.rename("g", "g/sub", RenameMode::Replace)
                .unwrap_err()
                .kind,
            ErrorKind::InvalidInput
        );
        assert_eq!(
            b.rename("g", "g/f/x", RenameMode::Replace)
                .unwrap_err()
                .kind,
            ErrorKind::NotDir
        );
        b.delete("g/f", DeleteKind::NonDir).unwrap();
        b.delete("g", DeleteKind::EmptyDir).unwrap();
    }

    #[test]
    fn peers_and_external_changes_reach_other_subscribers() {
        let a = MemoryBackend::new();
        let b = a.peer();
        let rx_a = a.subscribe();
        let rx_b = b.subscribe();
        put(&a, "x", EntryKind::File, b"", PutCondition::Any).unwrap();
        assert!(rx_a.try_recv().is_err());
        assert_eq!(
            rx_b.try_recv().unwrap(),
            Change {
                key: "x".into(),
                deleted: false
            }
        );
        a.external_delete("x").unwrap();
        assert_eq!(
            rx_a.try_recv().unwrap(),
            Change {
                key: "x".into(),
                deleted: true
            }
        );
        assert_eq!(
            rx_b.try_recv().unwrap(),
            Change {
                key: "x".into(),
                deleted: true
            }
        );
    }

    #[test]
    fn set_attr_and_xattrs() {
        let b = MemoryBackend::new();
        put(&b, "f", EntryKind::File, b"abc", PutCondition::Any).unwrap();
        let a = b
            .set_attr(
                "f",
                AttrChange {
                    size: Some(5),
                    mode: Some(0o600),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!((a.size, a.mode), (5, 0o600));
        assert_eq!(b.get("f").unwrap().unwrap().value, b"abc\0\0");
        let set = |n: &str, m| AttrChange {
            set_xattr: Some((n.to_string(), b"v".to_vec(), m)),
            ..Default::default()
        };
        b.set_attr("f", set("user.a", XattrMode::Create)).unwrap();
        assert_eq!(
            b.set_attr("f", set("user.a", XattrMode::Create))
                .unwrap_err()
                .kind,
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            b.set_attr("f", set("user.b", XattrMode::Replace))
                .unwrap_err()
                .kind,
            ErrorKind::NoData
        );
        let rm = AttrChange {
            remove_xattr: Some("user.a".into()),
            ..Default::default()
        };
        b.set_attr("f", rm.clone()).unwrap();
        assert_eq!(b.set_attr("f", rm).unwrap_err().kind, ErrorKind::NoData);
        let big = AttrChange {
            size: Some(DEFAULT_MAX_VALUE_BYTES + 1),
            ..Default::default()
        };
        assert_eq!(b.set_attr("f", big).unwrap_err().kind, ErrorKind::TooBig);
    }

    #[test]
    fn key_validation() {
        let b = MemoryBackend::new();
        let long = "x".repeat(256);
        assert_eq!(
            put(&b, &long, EntryKind::File, b"", PutCondition::Any)
                .unwrap_err()
                .kind,
            ErrorKind::NameTooLong
        );
        assert_eq!(
            put(&b, "a//b", EntryKind::File, b"", PutCondition::Any)
                .unwrap_err()
                .kind,
            ErrorKind::InvalidInput
        );
        assert_eq!(
            put(&b, "..", EntryKind::File, b"", PutCondition::Any)
                .unwrap_err()
                .kind,
            ErrorKind::InvalidInput
        );
        b.set_read_only(true);
        assert_eq!(
            put(&b, "a", EntryKind::File, b"", PutCondition::Any)
                .unwrap_err()
                .kind,
            ErrorKind::ReadOnly
        );
    }
}
