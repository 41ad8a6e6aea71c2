//! `MemoryBackend`: a complete in-memory implementation of [`Backend`].
//!
//! It owns an ordered map of entries with etcd-style revisions and POSIX metadata,
//! and the fan-out of [`Change`]s to subscribers. Several `MemoryBackend` values can
//! share one store ([`MemoryBackend::peer`]): each behaves like a different node, so a
//! change made through one is delivered to the subscribers of the others, never to its
//! own. Changes injected with the `external_*` methods reach every subscriber, as if made
//! by someone else entirely. Used by this crate's tests; handy for others.

mod store;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backend::*;
use crate::limits::{MEMORY_CAPACITY_BYTES, MEMORY_MAX_ENTRIES, MEMORY_MAX_HOOK_EVENTS};
use store::{err, State};

/// Peer id used by the `external_*` methods: matches no real instance.
const EXTERNAL_PEER: u64 = u64::MAX;

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    subscribers: Mutex<Vec<(u64, Sender<Change>)>>,
    next_peer: AtomicU64,
    hooks: Mutex<Hooks>,
}

/// Hook events injected by tests, as `/hooks` shows them.
#[derive(Debug, Default)]
struct Hooks {
    types: Vec<String>,
    events: std::collections::VecDeque<HookRecord>,
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

impl MemoryBackend {
    /// An empty store: only the root directory, three `/cluster` files, values up to 1 MiB.
    pub fn new() -> MemoryBackend {
        MemoryBackend {
            shared: Arc::new(Shared {
                state: Mutex::new(State::new()),
                subscribers: Mutex::new(Vec::new()),
                next_peer: AtomicU64::new(1),
                hooks: Mutex::new(Hooks::default()),
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
                    rdev: 0,
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
            rdev: 0,
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
                    rdev: 0,
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

    /// Records a hook event (its type becomes a `/hooks` directory); the oldest beyond
    /// `MEMORY_MAX_HOOK_EVENTS` is dropped.
    pub fn push_hook_event(&self, kind: &str, index: u64, line: &[u8]) {
        if let Ok(mut h) = self.shared.hooks.lock() {
            if !h.types.iter().any(|t| t == kind) {
                h.types.push(kind.to_string());
            }
            if h.events.len() >= MEMORY_MAX_HOOK_EVENTS {
                h.events.pop_front();
            }
            h.events.push_back(HookRecord {
                kind: kind.to_string(),
                index,
                line: line.to_vec(),
            });
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

    fn hook_types(&self) -> Vec<String> {
        self.shared
            .hooks
            .lock()
            .map(|h| h.types.clone())
            .unwrap_or_default()
    }

    fn hook_events(&self) -> BackendResult<Vec<HookRecord>> {
        let h = self
            .shared
            .hooks
            .lock()
            .map_err(|_| err(ErrorKind::Io, "memory hooks lock poisoned"))?;
        Ok(h.events.iter().cloned().collect())
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
    use crate::limits::DEFAULT_MAX_VALUE_BYTES;

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
            rdev: 0,
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

    fn tick() {
        std::thread::sleep(std::time::Duration::from_millis(3));
    }

    fn attr(b: &MemoryBackend, key: &str) -> EntryAttr {
        b.stat(key).unwrap().unwrap()
    }

    /// Asserts that `key`'s mtime and ctime moved past `before`'s, and nothing else
    /// about the directory entry changed (revision, version).
    fn assert_touched(b: &MemoryBackend, key: &str, before: &EntryAttr) -> EntryAttr {
        let now = attr(b, key);
        assert!(now.mtime_ns > before.mtime_ns, "{key}: mtime not moved");
        assert!(now.ctime_ns > before.ctime_ns, "{key}: ctime not moved");
        assert_eq!(now.mod_revision, before.mod_revision, "{key}: revision");
        assert_eq!(now.version, before.version, "{key}: version");
        now
    }

    #[test]
    fn creating_and_removing_touches_the_parent() {
        let b = MemoryBackend::new();
        put(&b, "d", EntryKind::Dir, b"", PutCondition::Any).unwrap();
        assert_eq!(attr(&b, "").nlink, 3, "root counts its subdirectory");
        let d0 = attr(&b, "d");
        assert_eq!(d0.nlink, 2);
        tick();
        put(&b, "d/f", EntryKind::File, b"x", PutCondition::Any).unwrap();
        let d1 = assert_touched(&b, "d", &d0);
        assert_eq!(d1.nlink, 2, "a file is no link of its parent");
        tick();
        // Replacing an existing entry is no change of the directory.
        put(&b, "d/f", EntryKind::File, b"y", PutCondition::Any).unwrap();
        assert_eq!(attr(&b, "d"), d1);
        put(&b, "d/s", EntryKind::Dir, b"", PutCondition::Any).unwrap();
        let d2 = assert_touched(&b, "d", &d1);
        assert_eq!(d2.nlink, 3);
        // Re-putting a directory keeps its link count.
        put(&b, "d", EntryKind::Dir, b"", PutCondition::Any).unwrap();
        let d2 = attr(&b, "d");
        assert_eq!(d2.nlink, 3);
        tick();
        b.delete("d/s", DeleteKind::EmptyDir).unwrap();
        let d3 = assert_touched(&b, "d", &d2);
        assert_eq!(d3.nlink, 2);
        tick();
        b.delete("d/f", DeleteKind::NonDir).unwrap();
        assert_touched(&b, "d", &d3);
        let r = attr(&b, "");
        tick();
        b.delete("d", DeleteKind::EmptyDir).unwrap();
        let r2 = attr(&b, "");
        assert_eq!(r2.nlink, 2);
        assert!(r2.mtime_ns > r.mtime_ns);
        // A failed command touches nothing.
        put(&b, "d", EntryKind::Dir, b"", PutCondition::Any).unwrap();
        let d = attr(&b, "d");
        tick();
        put(&b, "d", EntryKind::Dir, b"", PutCondition::MustNotExist).unwrap_err();
        b.delete("d/none", DeleteKind::NonDir).unwrap_err();
        assert_eq!(attr(&b, "d"), d);
    }

    #[test]
    fn rename_touches_both_parents_and_moves_link_counts() {
        let b = MemoryBackend::new();
        for d in ["src", "dst", "src/sub", "src/sub/inner"] {
            put(&b, d, EntryKind::Dir, b"", PutCondition::Any).unwrap();
        }
        put(&b, "src/f", EntryKind::File, b"", PutCondition::Any).unwrap();
        let (s0, d0) = (attr(&b, "src"), attr(&b, "dst"));
        assert_eq!((s0.nlink, d0.nlink), (3, 2));
        let sub0 = attr(&b, "src/sub");
        let inner0 = attr(&b, "src/sub/inner");
        tick();
        b.rename("src/sub", "dst/sub", RenameMode::Replace).unwrap();
        let s1 = assert_touched(&b, "src", &s0);
        let d1 = assert_touched(&b, "dst", &d0);
        assert_eq!((s1.nlink, d1.nlink), (2, 3));
        let sub1 = attr(&b, "dst/sub");
        assert!(
            sub1.ctime_ns > sub0.ctime_ns,
            "the moved entry's ctime moves"
        );
        assert_eq!(
            sub1.nlink, 3,
            "the moved directory keeps its subdirectories"
        );
        assert_eq!(attr(&b, "dst/sub/inner").ctime_ns, inner0.ctime_ns);
        tick();
        // A file moves no links.
        b.rename("src/f", "dst/f", RenameMode::NoReplace).unwrap();
        let s2 = assert_touched(&b, "src", &s1);
        let d2 = assert_touched(&b, "dst", &d1);
        assert_eq!((s2.nlink, d2.nlink), (2, 3));
        // Replacing an empty directory: one link out of src, none into dst.
        put(&b, "src/e", EntryKind::Dir, b"", PutCondition::Any).unwrap();
        put(&b, "dst/e", EntryKind::Dir, b"", PutCondition::Any).unwrap();
        assert_eq!((attr(&b, "src").nlink, attr(&b, "dst").nlink), (3, 4));
        b.rename("src/e", "dst/e", RenameMode::Replace).unwrap();
        assert_eq!((attr(&b, "src").nlink, attr(&b, "dst").nlink), (2, 4));
        // Exchanging a directory with a file moves one link each way.
        tick();
        let (s3, d3) = (attr(&b, "src"), attr(&b, "dst"));
        put(&b, "src/g", EntryKind::File, b"", PutCondition::Any).unwrap();
        b.rename("src/g", "dst/e", RenameMode::Exchange).unwrap();
        assert_eq!(attr(&b, "src/g").kind, EntryKind::Dir);
        let s4 = assert_touched(&b, "src", &s3);
        let d4 = assert_touched(&b, "dst", &d3);
        assert_eq!((s4.nlink, d4.nlink), (3, 3));
        // Within one directory: times move, the count does not.
        tick();
        b.rename("src/g", "src/h", RenameMode::Replace).unwrap();
        let s5 = assert_touched(&b, "src", &s4);
        assert_eq!(s5.nlink, 3);
    }

    #[test]
    fn special_kinds() {
        let b = MemoryBackend::new();
        let special = |key: &str, kind, value: &[u8], rdev| {
            b.put(PutRequest {
                key: key.to_string(),
                kind,
                value: value.to_vec(),
                mode: 0o640,
                uid: 3,
                gid: 4,
                mtime_ns: None,
                xattrs: None,
                condition: PutCondition::MustNotExist,
                rdev,
            })
        };
        for (k, kind, rdev) in [
            ("p", EntryKind::Fifo, 0),
            ("s", EntryKind::Socket, 0),
            ("c", EntryKind::CharDevice, 0x0103),
            ("bd", EntryKind::BlockDevice, 0x0801),
        ] {
            let a = special(k, kind, b"", rdev).unwrap();
            assert_eq!((a.kind, a.rdev, a.size, a.nlink), (kind, rdev, 0, 1));
            assert_eq!((a.mode, a.uid, a.gid), (0o640, 3, 4));
            assert_eq!(attr(&b, k), a);
            let e = special(&format!("{k}2"), kind, b"x", rdev).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidInput);
        }
        assert_eq!(attr(&b, "").nlink, 2);
        let page = b.list("", None, 10).unwrap();
        assert_eq!(names(&page), ["bd", "c", "p", "s"]);
        assert_eq!(page.entries.first().unwrap().1.rdev, 0x0801);
        put(&b, "d", EntryKind::Dir, b"", PutCondition::Any).unwrap();
        let e = b
            .put(PutRequest {
                key: "d".into(),
                kind: EntryKind::Fifo,
                value: vec![],
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime_ns: None,
                xattrs: None,
                condition: PutCondition::Any,
                rdev: 0,
            })
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::IsDir);
        let e = put(&b, "p", EntryKind::Dir, b"", PutCondition::Any).unwrap_err();
        assert_eq!(e.kind, ErrorKind::AlreadyExists);
        let e = b.delete("p", DeleteKind::EmptyDir).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotDir);
        let trunc = AttrChange {
            size: Some(0),
            ..Default::default()
        };
        assert_eq!(
            b.set_attr("p", trunc).unwrap_err().kind,
            ErrorKind::InvalidInput
        );
        let a = b
            .set_attr(
                "c",
                AttrChange {
                    mode: Some(0o600),
                    uid: Some(9),
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(
            (a.kind, a.rdev, a.mode, a.uid),
            (EntryKind::CharDevice, 0x0103, 0o600, 9)
        );
        b.rename("c", "d/c", RenameMode::Replace).unwrap();
        assert_eq!(attr(&b, "d/c").rdev, 0x0103);
        // A file may replace a special entry and the other way round.
        put(&b, "s", EntryKind::File, b"data", PutCondition::Any).unwrap();
        b.rename("p", "s", RenameMode::Replace).unwrap();
        assert_eq!(attr(&b, "s").kind, EntryKind::Fifo);
        b.delete("s", DeleteKind::NonDir).unwrap();
        b.delete("bd", DeleteKind::NonDir).unwrap();
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
