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
use crate::limits::{MEMORY_CAPACITY_BYTES, MEMORY_MAX_ENTRIES};
use store::{err, State};

/// Peer id used by the `external_*` methods: matches no real instance.
const EXTERNAL_PEER: u64 = u64::MAX;

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
