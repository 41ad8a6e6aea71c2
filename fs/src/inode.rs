//! The inode table: kernel inode numbers <-> nodes `{parent, name}`.
//!
//! Numbers come from a counter and are never reused within a mount, so there are no
//! collisions. A node lives while the kernel holds lookups on it (`nlookup`, lowered by
//! `forget`), while it has open handles, or while it has children in the table; then it
//! is removed, so memory follows the kernel's lookups. The table is bounded by
//! `MAX_INODES`. A node stores only its parent and its own name: the full path is
//! computed by walking parents, so renaming a directory relinks a single node.
//!
//! A node may be *pending*: a file created here (deferred create, see `ops/file.rs`)
//! that exists only in this table and in the buffer of the handle that created it,
//! until that handle commits it. A pending node keeps the attributes it was created
//! with and the number of that handle; the handle's open count keeps the node in the
//! table until the commit has settled it (stored: an ordinary node; failed or
//! cancelled: detached). So pending nodes are bounded by `MAX_OPEN_HANDLES` as well as
//! by the table's own bound.
//!
//! One `RwLock` guards the table. It is never held across a backend call or a reply,
//! and a poisoned lock becomes EIO.

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use fuser::{Errno, FileType};

use crate::backend::EntryAttr;
use crate::limits::{MAX_PATH_DEPTH, UNKNOWN_INO};
use crate::tree::{Tree, ROOT_INO};

/// Parent of a node that no longer has a name (unlinked, replaced, or moved away).
const DETACHED: u64 = 0;

/// A file created on this mount and not yet stored (deferred create).
#[derive(Debug, Clone)]
struct Pending {
    /// The directory it was created in (pending nodes never move).
    dir: u64,
    /// The file handle whose commit stores it (0 while the create sets it up).
    fh: u64,
    /// Attributes it was created with (size 0; the handle's buffer has the rest).
    attr: EntryAttr,
}

#[derive(Debug)]
struct Node {
    parent: u64,
    name: String,
    kind: FileType,
    /// Lookups the kernel holds on this node.
    nlookup: u64,
    /// Open file and directory handles.
    open: u64,
    /// Fixed nodes (root and top-level directories) are never removed.
    permanent: bool,
    /// Attributes last seen from the backend.
    attr: Option<EntryAttr>,
    /// Set while the node is a deferred create not yet stored.
    pending: Option<Pending>,
    /// Pending creates among the children, and the newest creation time among them
    /// since the count was last zero.
    pending_children: usize,
    pending_newest_ns: i64,
    children: HashMap<String, u64>,
}

impl Node {
    fn new(parent: u64, name: &str, kind: FileType, permanent: bool) -> Node {
        Node {
            parent,
            name: name.to_string(),
            kind,
            nlookup: 0,
            open: 0,
            permanent,
            attr: None,
            pending: None,
            pending_children: 0,
            pending_newest_ns: i64::MIN,
            children: HashMap::new(),
        }
    }
}

#[derive(Debug)]
struct Inner {
    nodes: HashMap<u64, Node>,
    next: u64,
    /// Pending nodes in `nodes` (so listings skip the search when there are none).
    pending: usize,
}

/// Where an inode sits: the top-level tree and the `/`-separated path below it
/// ("" for the tree's own directory). The root directory itself has no tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    Root,
    In(Tree, String),
}

/// A cached entry, as the notifier needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Known {
    pub parent: u64,
    pub name: String,
    pub ino: u64,
    pub kind: FileType,
}

#[derive(Debug)]
pub(crate) struct InodeTable {
    inner: RwLock<Inner>,
    max: usize,
}

fn poisoned<T>(_: T) -> Errno {
    tracing::error!("inode table lock poisoned");
    Errno::EIO
}

impl InodeTable {
    /// A table holding the root and the top-level directories, bounded to `max` nodes.
    pub(crate) fn new(max: usize) -> InodeTable {
        let mut nodes = HashMap::new();
        let mut root = Node::new(ROOT_INO, "", FileType::Directory, true);
        for t in Tree::ALL {
            root.children.insert(t.name().to_string(), t.ino());
            nodes.insert(
                t.ino(),
                Node::new(ROOT_INO, t.name(), FileType::Directory, true),
            );
        }
        nodes.insert(ROOT_INO, root);
        let next = Tree::ALL.iter().map(|t| t.ino()).max().unwrap_or(ROOT_INO) + 1;
        InodeTable {
            inner: RwLock::new(Inner {
                nodes,
                next,
                pending: 0,
            }),
            max,
        }
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Inner>, Errno> {
        self.inner.read().map_err(poisoned)
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Inner>, Errno> {
        self.inner.write().map_err(poisoned)
    }

    /// Number of nodes, fixed ones included.
    pub(crate) fn len(&self) -> Result<usize, Errno> {
        Ok(self.read()?.nodes.len())
    }

    /// Records one kernel lookup of `name` in `parent` and returns its inode number,
    /// allocating one if the name is new. A known name whose kind changed (the entry
    /// was replaced) gets a fresh number; the old node is detached.
    pub(crate) fn lookup(
        &self,
        parent: u64,
        name: &str,
        kind: FileType,
        attr: Option<EntryAttr>,
    ) -> Result<u64, Errno> {
        let mut g = self.write()?;
        let inner = &mut *g;
        let existing = inner
            .nodes
            .get(&parent)
            .ok_or(Errno::ESTALE)?
            .children
            .get(name)
            .copied();
        if let Some(ino) = existing {
            if let Some(node) = inner.nodes.get_mut(&ino) {
                if node.kind == kind {
                    if !node.permanent {
                        node.nlookup = node.nlookup.saturating_add(1);
                    }
                    if attr.is_some() {
                        node.attr = attr;
                    }
                    return Ok(ino);
                }
                node.parent = DETACHED;
            }
            if let Some(p) = inner.nodes.get_mut(&parent) {
                p.children.remove(name);
            }
            inner.remove_if_unused(ino);
        }
        let mut node = Node::new(parent, name, kind, false);
        node.nlookup = 1;
        node.attr = attr;
        inner.insert(node, self.max)
    }

    /// Registers a deferred create of the regular file `name` in `parent` with
    /// attributes `attr`, counting one kernel lookup, and returns its new inode number.
    /// A node the table held for the name (an entry that no longer exists as far as
    /// the kernel's lookup went) is detached. EEXIST when the name is already a pending
    /// create here. Finish with [`InodeTable::set_pending_handle`].
    pub(crate) fn create_pending(
        &self,
        parent: u64,
        name: &str,
        attr: EntryAttr,
    ) -> Result<u64, Errno> {
        let mut g = self.write()?;
        let inner = &mut *g;
        if let Some(old) = inner.child(parent, name) {
            if inner.nodes.get(&old).is_some_and(|n| n.pending.is_some()) {
                return Err(Errno::EEXIST);
            }
            inner.detach_child(parent, name);
        }
        // (Checked after the detach, which may remove an unused parent.)
        if !inner.nodes.contains_key(&parent) {
            return Err(Errno::ESTALE);
        }
        let created_ns = attr.ctime_ns;
        let mut node = Node::new(parent, name, FileType::RegularFile, false);
        node.nlookup = 1;
        node.attr = Some(attr.clone());
        node.pending = Some(Pending {
            dir: parent,
            fh: 0,
            attr,
        });
        let ino = inner.insert(node, self.max)?;
        inner.pending += 1;
        if let Some(p) = inner.nodes.get_mut(&parent) {
            if p.pending_children == 0 {
                p.pending_newest_ns = i64::MIN;
            }
            p.pending_children += 1;
            p.pending_newest_ns = p.pending_newest_ns.max(created_ns);
        }
        Ok(ino)
    }

    /// Records the handle whose commit stores the pending node `ino`.
    pub(crate) fn set_pending_handle(&self, ino: u64, fh: u64) -> Result<(), Errno> {
        let mut g = self.write()?;
        match g.nodes.get_mut(&ino).and_then(|n| n.pending.as_mut()) {
            Some(p) => {
                p.fh = fh;
                Ok(())
            }
            None => Err(Errno::ESTALE),
        }
    }

    /// The committing handle and the attributes of `ino` if it is a pending create.
    pub(crate) fn pending(&self, ino: u64) -> Result<Option<(u64, EntryAttr)>, Errno> {
        let g = self.read()?;
        Ok(g.nodes
            .get(&ino)
            .and_then(|n| n.pending.as_ref())
            .map(|p| (p.fh, p.attr.clone())))
    }

    /// If `name` in `parent` is a pending create: counts one kernel lookup on it and
    /// returns its inode number and attributes.
    pub(crate) fn lookup_pending(
        &self,
        parent: u64,
        name: &str,
    ) -> Result<Option<(u64, EntryAttr)>, Errno> {
        {
            // Most lookups are of other names: decide those under the read lock.
            let g = self.read()?;
            let pending = g
                .child(parent, name)
                .and_then(|ino| g.nodes.get(&ino))
                .is_some_and(|n| n.pending.is_some());
            if !pending {
                return Ok(None);
            }
        }
        let mut g = self.write()?;
        let inner = &mut *g;
        let Some(ino) = inner.child(parent, name) else {
            return Ok(None);
        };
        let Some(node) = inner.nodes.get_mut(&ino) else {
            return Ok(None);
        };
        let Some(p) = &node.pending else {
            return Ok(None);
        };
        let attr = p.attr.clone();
        node.nlookup = node.nlookup.saturating_add(1);
        Ok(Some((ino, attr)))
    }

    /// Names and attributes of the pending creates in directory `dir`, in name order.
    pub(crate) fn pending_children(&self, dir: u64) -> Result<Vec<(String, EntryAttr)>, Errno> {
        let g = self.read()?;
        let Some(d) = g.nodes.get(&dir).filter(|d| d.pending_children > 0) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, EntryAttr)> = d
            .children
            .iter()
            .filter_map(|(name, ino)| {
                let p = g.nodes.get(ino)?.pending.as_ref()?;
                Some((name.clone(), p.attr.clone()))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// While directory `dir` has pending creates: the creation time of the newest one
    /// made since it last had none.
    pub(crate) fn newest_pending_child(&self, dir: u64) -> Result<Option<i64>, Errno> {
        let g = self.read()?;
        Ok(g.nodes
            .get(&dir)
            .filter(|d| d.pending_children > 0)
            .map(|d| d.pending_newest_ns))
    }

    /// Pending creates in the table.
    pub(crate) fn pending_count(&self) -> Result<usize, Errno> {
        Ok(self.read()?.pending)
    }

    /// Sets the times of a pending create (utimens to now before it is stored).
    pub(crate) fn touch_pending(&self, ino: u64, now_ns: i64) -> Result<(), Errno> {
        let mut g = self.write()?;
        if let Some(node) = g.nodes.get_mut(&ino) {
            if let Some(p) = node.pending.as_mut() {
                p.attr.mtime_ns = now_ns;
                p.attr.ctime_ns = now_ns;
                node.attr = Some(p.attr.clone());
            }
        }
        Ok(())
    }

    /// Ends the pending state of `ino`. `Some(attr)`: it was stored with these
    /// attributes and is an ordinary node now. `None`: it was not stored (the commit
    /// failed, or the create was cancelled by unlink): the node loses its name, so a
    /// new lookup asks the backend. No-op for a node that is not pending.
    pub(crate) fn end_pending(&self, ino: u64, stored: Option<&EntryAttr>) -> Result<(), Errno> {
        let mut g = self.write()?;
        let inner = &mut *g;
        if inner.take_pending(ino).is_none() {
            return Ok(());
        }
        match stored {
            Some(a) => {
                if let Some(node) = inner.nodes.get_mut(&ino) {
                    node.attr = Some(a.clone());
                }
            }
            None => {
                let Some(node) = inner.nodes.get_mut(&ino) else {
                    return Ok(());
                };
                let (parent, name) = (node.parent, node.name.clone());
                node.parent = DETACHED;
                if let Some(p) = inner.nodes.get_mut(&parent) {
                    if p.children.get(&name) == Some(&ino) {
                        p.children.remove(&name);
                    }
                }
                inner.remove_if_unused(ino);
            }
        }
        Ok(())
    }

    /// The inode number of `name` in `parent` if the kernel knows it.
    pub(crate) fn peek(&self, parent: u64, name: &str) -> Result<Option<u64>, Errno> {
        let g = self.read()?;
        Ok(g.nodes
            .get(&parent)
            .and_then(|p| p.children.get(name).copied()))
    }

    /// Drops `n` kernel lookups of `ino`; removes the node once nothing refers to it.
    pub(crate) fn forget(&self, ino: u64, n: u64) -> Result<(), Errno> {
        let mut g = self.write()?;
        if let Some(node) = g.nodes.get_mut(&ino) {
            node.nlookup = node.nlookup.saturating_sub(n);
        }
        g.remove_if_unused(ino);
        Ok(())
    }

    /// Counts an open handle on `ino`.
    pub(crate) fn open(&self, ino: u64) -> Result<(), Errno> {
        let mut g = self.write()?;
        let node = g.nodes.get_mut(&ino).ok_or(Errno::ESTALE)?;
        node.open = node.open.saturating_add(1);
        Ok(())
    }

    /// Releases an open handle on `ino`.
    pub(crate) fn close(&self, ino: u64) -> Result<(), Errno> {
        let mut g = self.write()?;
        if let Some(node) = g.nodes.get_mut(&ino) {
            node.open = node.open.saturating_sub(1);
        }
        g.remove_if_unused(ino);
        Ok(())
    }

    /// The name `name` in `parent` is gone (unlink, rmdir): detach its node.
    pub(crate) fn unlink(&self, parent: u64, name: &str) -> Result<(), Errno> {
        let mut g = self.write()?;
        g.detach_child(parent, name);
        Ok(())
    }

    /// Mirrors a successful rename. With `exchange` the two nodes swap names;
    /// otherwise a node previously named `new_name` is detached.
    pub(crate) fn rename(
        &self,
        parent: u64,
        name: &str,
        new_parent: u64,
        new_name: &str,
        exchange: bool,
    ) -> Result<(), Errno> {
        let mut g = self.write()?;
        let inner = &mut *g;
        let src = inner.child(parent, name);
        let dst = inner.child(new_parent, new_name);
        if src.is_some() && src == dst {
            return Ok(());
        }
        if let Some(p) = inner.nodes.get_mut(&parent) {
            p.children.remove(name);
        }
        if let Some(p) = inner.nodes.get_mut(&new_parent) {
            p.children.remove(new_name);
        }
        if let Some(s) = src {
            inner.link(s, new_parent, new_name);
        }
        match dst {
            Some(d) if exchange => inner.link(d, parent, name),
            Some(d) => {
                if let Some(node) = inner.nodes.get_mut(&d) {
                    node.parent = DETACHED;
                }
                inner.remove_if_unused(d);
            }
            None => {}
        }
        Ok(())
    }

    /// Where `ino` sits, or `None` when it is unknown or detached.
    pub(crate) fn place(&self, ino: u64) -> Result<Option<Place>, Errno> {
        if ino == ROOT_INO {
            return Ok(Some(Place::Root));
        }
        let g = self.read()?;
        let mut names: Vec<&str> = Vec::new();
        let mut cur = ino;
        for _ in 0..=MAX_PATH_DEPTH {
            if let Some(tree) = Tree::from_ino(cur) {
                names.reverse();
                return Ok(Some(Place::In(tree, names.join("/"))));
            }
            let Some(node) = g.nodes.get(&cur) else {
                return Ok(None);
            };
            if node.parent == DETACHED || node.parent == ROOT_INO {
                return Ok(None);
            }
            names.push(&node.name);
            cur = node.parent;
        }
        tracing::error!(ino, "inode parent chain deeper than the key limit");
        Err(Errno::EIO)
    }

    /// Looks `path` (below the tree directory `top`) up in the table: the parent's
    /// inode if the kernel knows it, and the entry itself if known too.
    pub(crate) fn find(&self, top: u64, path: &str) -> Result<Option<(u64, Option<Known>)>, Errno> {
        let g = self.read()?;
        let mut cur = top;
        let mut parts = path.split('/').peekable();
        while let Some(part) = parts.next() {
            let Some(child) = g.child(cur, part) else {
                return Ok(if parts.peek().is_none() {
                    Some((cur, None))
                } else {
                    None
                });
            };
            if parts.peek().is_none() {
                let kind = g
                    .nodes
                    .get(&child)
                    .map_or(FileType::RegularFile, |n| n.kind);
                let known = Known {
                    parent: cur,
                    name: part.to_string(),
                    ino: child,
                    kind,
                };
                return Ok(Some((cur, Some(known))));
            }
            cur = child;
        }
        Ok(None)
    }

    /// Every linked node below the tree directory `top` (for a full invalidation).
    pub(crate) fn known_below(&self, top: u64) -> Result<Vec<Known>, Errno> {
        let g = self.read()?;
        let mut out = Vec::new();
        let mut stack = vec![top];
        while let Some(dir) = stack.pop() {
            if let Some(node) = g.nodes.get(&dir) {
                for (name, &ino) in &node.children {
                    let kind = g.nodes.get(&ino).map_or(FileType::RegularFile, |n| n.kind);
                    out.push(Known {
                        parent: dir,
                        name: name.clone(),
                        ino,
                        kind,
                    });
                    if kind == FileType::Directory {
                        stack.push(ino);
                    }
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn kind(&self, ino: u64) -> Result<Option<FileType>, Errno> {
        Ok(self.read()?.nodes.get(&ino).map(|n| n.kind))
    }

    pub(crate) fn parent(&self, ino: u64) -> Result<Option<u64>, Errno> {
        Ok(self.read()?.nodes.get(&ino).map(|n| n.parent))
    }

    pub(crate) fn cached_attr(&self, ino: u64) -> Result<Option<EntryAttr>, Errno> {
        Ok(self.read()?.nodes.get(&ino).and_then(|n| n.attr.clone()))
    }

    pub(crate) fn set_cached_attr(&self, ino: u64, attr: &EntryAttr) -> Result<(), Errno> {
        if let Some(n) = self.write()?.nodes.get_mut(&ino) {
            n.attr = Some(attr.clone());
        }
        Ok(())
    }
}

impl Inner {
    /// Adds `node` under a fresh number and links it into its parent.
    fn insert(&mut self, node: Node, max: usize) -> Result<u64, Errno> {
        if self.nodes.len() >= max {
            tracing::warn!(max, "inode table full");
            return Err(Errno::ENFILE);
        }
        let mut ino = self.next;
        if ino == UNKNOWN_INO {
            ino += 1;
        }
        self.next = ino + 1;
        let (parent, name) = (node.parent, node.name.clone());
        self.nodes.insert(ino, node);
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.insert(name, ino);
        }
        Ok(ino)
    }

    /// Clears the pending state of `ino`, keeping the counts right.
    fn take_pending(&mut self, ino: u64) -> Option<Pending> {
        let p = self.nodes.get_mut(&ino)?.pending.take()?;
        self.pending = self.pending.saturating_sub(1);
        if let Some(d) = self.nodes.get_mut(&p.dir) {
            d.pending_children = d.pending_children.saturating_sub(1);
        }
        Some(p)
    }

    fn child(&self, parent: u64, name: &str) -> Option<u64> {
        self.nodes.get(&parent)?.children.get(name).copied()
    }

    fn link(&mut self, ino: u64, parent: u64, name: &str) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.parent = parent;
            node.name = name.to_string();
        }
        if let Some(p) = self.nodes.get_mut(&parent) {
            p.children.insert(name.to_string(), ino);
        }
    }

    fn detach_child(&mut self, parent: u64, name: &str) {
        let Some(ino) = self
            .nodes
            .get_mut(&parent)
            .and_then(|p| p.children.remove(name))
        else {
            return;
        };
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.parent = DETACHED;
        }
        self.remove_if_unused(ino);
    }

    /// Removes `ino` if nothing refers to it any more, then its parent likewise.
    fn remove_if_unused(&mut self, ino: u64) {
        let mut cur = ino;
        for _ in 0..=MAX_PATH_DEPTH {
            let Some(node) = self.nodes.get(&cur) else {
                return;
            };
            if node.permanent || node.nlookup > 0 || node.open > 0 || !node.children.is_empty() {
                return;
            }
            let parent = node.parent;
            self.take_pending(cur);
            let Some(node) = self.nodes.remove(&cur) else {
                return;
            };
            if parent == DETACHED {
                return;
            }
            if let Some(p) = self.nodes.get_mut(&parent) {
                if p.children.get(&node.name) == Some(&cur) {
                    p.children.remove(&node.name);
                }
            }
            cur = parent;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KV: u64 = 2;

    fn table() -> InodeTable {
        InodeTable::new(100)
    }

    fn kv(path: &str) -> Option<Place> {
        Some(Place::In(Tree::Kv, path.to_string()))
    }

    #[test]
    fn numbers_are_stable_and_unique() {
        let t = table();
        let a = t.lookup(KV, "a", FileType::Directory, None).unwrap();
        let b = t.lookup(KV, "b", FileType::RegularFile, None).unwrap();
        assert_ne!(a, b);
        assert_eq!(t.lookup(KV, "a", FileType::Directory, None).unwrap(), a);
        let c = t.lookup(a, "c", FileType::RegularFile, None).unwrap();
        assert_eq!(t.place(c).unwrap(), kv("a/c"));
        assert_eq!(t.place(KV).unwrap(), kv(""));
        assert_eq!(t.place(ROOT_INO).unwrap(), Some(Place::Root));
        assert_eq!(t.peek(a, "c").unwrap(), Some(c));
        assert_eq!(t.peek(a, "zz").unwrap(), None);
        // Top-level directories are fixed and never counted.
        assert_eq!(
            t.lookup(ROOT_INO, "kv", FileType::Directory, None).unwrap(),
            KV
        );
        t.forget(KV, 10).unwrap();
        assert_eq!(t.place(KV).unwrap(), kv(""));
    }

    #[test]
    fn forget_removes_only_unreferenced_nodes() {
        let t = table();
        let base = t.len().unwrap();
        let a = t.lookup(KV, "a", FileType::Directory, None).unwrap();
        t.lookup(KV, "a", FileType::Directory, None).unwrap();
        let c = t.lookup(a, "c", FileType::RegularFile, None).unwrap();
        t.forget(a, 2).unwrap();
        // `a` still has a child in the table.
        assert_eq!(t.place(c).unwrap(), kv("a/c"));
        t.open(c).unwrap();
        t.forget(c, 1).unwrap();
        assert_eq!(t.len().unwrap(), base + 2, "open handle keeps the node");
        t.close(c).unwrap();
        assert_eq!(t.len().unwrap(), base, "child and then parent removed");
        // A new lookup gets a new number: numbers are never reused.
        let a2 = t.lookup(KV, "a", FileType::Directory, None).unwrap();
        assert!(a2 > c);
    }

    #[test]
    fn rename_relinks_one_node() {
        let t = table();
        let d = t.lookup(KV, "d", FileType::Directory, None).unwrap();
        let f = t.lookup(d, "f", FileType::RegularFile, None).unwrap();
        let e = t.lookup(KV, "e", FileType::Directory, None).unwrap();
        t.rename(KV, "d", e, "moved", false).unwrap();
        assert_eq!(t.place(f).unwrap(), kv("e/moved/f"));
        assert_eq!(t.peek(KV, "d").unwrap(), None);
        // Replacing rename detaches the target.
        let g = t.lookup(KV, "g", FileType::RegularFile, None).unwrap();
        let h = t.lookup(KV, "h", FileType::RegularFile, None).unwrap();
        t.rename(KV, "g", KV, "h", false).unwrap();
        assert_eq!(t.place(g).unwrap(), kv("h"));
        assert_eq!(t.place(h).unwrap(), None);
        assert_eq!(t.peek(KV, "h").unwrap(), Some(g));
        // Exchange swaps both names.
        t.rename(KV, "h", e, "moved", true).unwrap();
        assert_eq!(t.place(g).unwrap(), kv("e/moved"));
        assert_eq!(t.place(d).unwrap(), kv("h"));
        assert_eq!(t.place(f).unwrap(), kv("h/f"));
    }

    #[test]
    fn unlink_detaches_and_kind_change_renumbers() {
        let t = table();
        let f = t.lookup(KV, "f", FileType::RegularFile, None).unwrap();
        t.open(f).unwrap();
        t.unlink(KV, "f").unwrap();
        assert_eq!(t.place(f).unwrap(), None);
        assert_eq!(
            t.kind(f).unwrap(),
            Some(FileType::RegularFile),
            "open keeps it"
        );
        let f2 = t.lookup(KV, "f", FileType::RegularFile, None).unwrap();
        assert_ne!(f, f2);
        let f3 = t.lookup(KV, "f", FileType::Directory, None).unwrap();
        assert_ne!(f2, f3);
        assert_eq!(t.place(f2).unwrap(), None);
        assert_eq!(t.place(f3).unwrap(), kv("f"));
    }

    #[test]
    fn bounded() {
        let t = InodeTable::new(10);
        let fixed = t.len().unwrap();
        let mut made = 0;
        let mut last_err = None;
        for i in 0..20 {
            match t.lookup(KV, &format!("n{i}"), FileType::RegularFile, None) {
                Ok(_) => made += 1,
                Err(e) => last_err = Some(e),
            }
        }
        assert_eq!(made, 10 - fixed);
        assert_eq!(last_err, Some(Errno::ENFILE));
        // Forgetting makes room again.
        let n0 = t.peek(KV, "n0").unwrap().unwrap();
        t.forget(n0, 1).unwrap();
        assert!(t.lookup(KV, "new", FileType::RegularFile, None).is_ok());
    }

    fn new_file() -> EntryAttr {
        EntryAttr {
            kind: crate::backend::EntryKind::File,
            size: 0,
            mode: 0o640,
            uid: 7,
            gid: 8,
            mtime_ns: 1,
            ctime_ns: 1,
            create_revision: 0,
            mod_revision: 0,
            version: 0,
            lease: 0,
            rdev: 0,
            nlink: 1,
        }
    }

    #[test]
    fn pending_creates() {
        let t = table();
        let d = t.lookup(KV, "d", FileType::Directory, None).unwrap();
        // A stale node of the name is replaced by the pending one.
        let stale = t.lookup(d, "b", FileType::RegularFile, None).unwrap();
        let b = t.create_pending(d, "b", new_file()).unwrap();
        assert_ne!(b, stale);
        assert_eq!(t.place(stale).unwrap(), None);
        let a = t.create_pending(d, "a", new_file()).unwrap();
        t.set_pending_handle(b, 42).unwrap();
        assert_eq!(t.pending_count().unwrap(), 2);
        assert_eq!(
            t.pending(b).unwrap().map(|(fh, a)| (fh, a.mode)),
            Some((42, 0o640))
        );
        assert_eq!(t.create_pending(d, "b", new_file()), Err(Errno::EEXIST));
        let names: Vec<String> = t
            .pending_children(d)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert!(t.pending_children(KV).unwrap().is_empty());
        assert_eq!(t.newest_pending_child(d).unwrap(), Some(1));
        assert_eq!(t.newest_pending_child(KV).unwrap(), None);
        // lookup_pending counts a lookup; a stored node is no longer found by it.
        assert_eq!(t.lookup_pending(d, "b").unwrap().map(|(i, _)| i), Some(b));
        t.touch_pending(b, 99).unwrap();
        assert_eq!(t.pending(b).unwrap().map(|(_, a)| a.mtime_ns), Some(99));
        let stored = EntryAttr {
            mod_revision: 5,
            ..new_file()
        };
        t.end_pending(b, Some(&stored)).unwrap();
        assert_eq!(t.pending(b).unwrap().map(|(fh, _)| fh), None);
        assert_eq!(t.cached_attr(b).unwrap().map(|a| a.mod_revision), Some(5));
        assert_eq!(t.place(b).unwrap(), kv("d/b"));
        assert_eq!(t.lookup_pending(d, "b").unwrap().map(|(i, _)| i), None);
        // Not stored: the name goes; the open handle keeps the node.
        t.open(a).unwrap();
        t.forget(a, 1).unwrap();
        assert!(
            t.pending(a).unwrap().is_some(),
            "kept while its handle is open"
        );
        t.end_pending(a, None).unwrap();
        assert_eq!(t.place(a).unwrap(), None);
        assert_eq!(t.peek(d, "a").unwrap(), None);
        assert_eq!(t.pending_count().unwrap(), 0);
        t.close(a).unwrap();
        assert_eq!(t.kind(a).unwrap(), None, "removed once closed");
        // A pending node removed without its commit (no handle ever) is uncounted.
        let c = t.create_pending(d, "c", new_file()).unwrap();
        assert_eq!(t.pending_count().unwrap(), 1);
        t.forget(c, 1).unwrap();
        assert_eq!(t.pending_count().unwrap(), 0);
        assert!(t.pending_children(d).unwrap().is_empty());
        assert_eq!(t.newest_pending_child(d).unwrap(), None);
    }

    #[test]
    fn find_and_known_below() {
        let t = table();
        let d = t.lookup(KV, "d", FileType::Directory, None).unwrap();
        let f = t.lookup(d, "f", FileType::RegularFile, None).unwrap();
        let (p, k) = t.find(KV, "d/f").unwrap().unwrap();
        assert_eq!(p, d);
        assert_eq!(k.unwrap().ino, f);
        assert_eq!(t.find(KV, "d/new").unwrap(), Some((d, None)));
        assert_eq!(t.find(KV, "x/y").unwrap(), None);
        let all = t.known_below(KV).unwrap();
        assert_eq!(all.len(), 2);
    }
}
