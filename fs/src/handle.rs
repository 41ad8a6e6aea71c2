//! Open handles: per-open write-back buffers for files, listing state for directories,
//! and the table that holds them (bounded by `MAX_OPEN_HANDLES` handles and
//! `MAX_BUFFERED_BYTES` bytes in all buffers together).
//!
//! A file handle holds the value: loaded at open (a snapshot, for close-to-open
//! consistency) or empty after O_TRUNC. Writes change only the buffer and mark it dirty;
//! the operation layer commits it with one `Backend::put`. Commits of one handle are
//! serialized with a flag and a condition variable, so no lock guard is ever held
//! across a backend call. Poisoned locks become EIO.
//!
//! The handle of a deferred create starts dirty with its create pending: its first
//! commit stores the new entry and its contents together. If that commit fails, the
//! error sticks to the handle: later writes, flushes and fsyncs report it again, as the
//! file they would change was never stored.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use fuser::Errno;

use crate::backend::EntryAttr;

fn poisoned<T>(_: T) -> Errno {
    tracing::error!("handle lock poisoned");
    Errno::EIO
}

/// The byte budget shared by all buffers of a mount.
#[derive(Debug)]
pub(crate) struct Budget {
    used: AtomicU64,
    max: u64,
}

impl Budget {
    pub(crate) fn new(max: u64) -> Budget {
        Budget {
            used: AtomicU64::new(0),
            max,
        }
    }

    /// Reserves `n` bytes; false when that would exceed the budget.
    fn charge(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.max)
            })
            .is_ok()
    }

    fn uncharge(&self, n: u64) {
        // The closure never returns None, so the update always succeeds.
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                Some(u.saturating_sub(n))
            });
    }

    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// Where the entry of a handle stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Create {
    /// The entry exists in the backend (or existed when opened).
    Stored,
    /// Created on this mount; the next commit stores it (deferred create).
    Pending,
    /// Storing the created entry failed with this error; it never existed.
    Failed(Errno),
}

#[derive(Debug)]
struct FileState {
    data: Vec<u8>,
    dirty: bool,
    /// Bumped by every change to `data`, to tell whether a commit saw the latest.
    gen: u64,
    committing: bool,
    /// The last commit failed (and its error was reported) with no write since.
    failed: bool,
    /// The entry's attributes as last known to this handle (for compare-and-swap).
    base: Option<EntryAttr>,
    /// Time of the last local change, reported while dirty.
    mtime: SystemTime,
    /// Order of the last local change among all handles (see `CHANGE_SEQ`).
    seq: u64,
    create: Create,
}

/// Orders changes across handles, so that the latest writer's view is reported.
static CHANGE_SEQ: AtomicU64 = AtomicU64::new(1);

/// What a dirty handle holds: its size, the time and the order of its last change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DirtyView {
    pub size: u64,
    pub mtime: SystemTime,
    pub seq: u64,
}

/// What a commit needs, taken from the handle while no commit runs.
#[derive(Debug)]
pub(crate) struct Commit {
    pub data: Vec<u8>,
    pub base: Option<EntryAttr>,
    /// This commit stores a deferred create (the entry does not exist yet).
    pub create: bool,
    gen: u64,
}

/// An open regular file (or `/cluster` file).
#[derive(Debug)]
pub(crate) struct FileHandle {
    pub ino: u64,
    pub writable: bool,
    pub append: bool,
    state: Mutex<FileState>,
    idle: Condvar,
}

/// Truncates or zero-extends a buffer to `size`, keeping the budget in step.
fn resize_charged(data: &mut Vec<u8>, size: usize, budget: &Budget) -> Result<(), Errno> {
    let old_len = data.len();
    if size > old_len {
        if !budget.charge((size - old_len) as u64) {
            return Err(Errno::ENOSPC);
        }
    } else {
        budget.uncharge((old_len - size) as u64);
    }
    data.resize(size, 0);
    Ok(())
}

impl FileHandle {
    /// A handle over `data`, already charged to the budget by the caller.
    fn new(
        ino: u64,
        writable: bool,
        append: bool,
        data: Vec<u8>,
        dirty: bool,
        base: Option<EntryAttr>,
    ) -> FileHandle {
        FileHandle {
            ino,
            writable,
            append,
            state: Mutex::new(FileState {
                data,
                dirty,
                gen: 0,
                committing: false,
                failed: false,
                base,
                mtime: SystemTime::now(),
                seq: 0,
                create: Create::Stored,
            }),
            idle: Condvar::new(),
        }
    }

    /// The handle of a deferred create: empty, dirty, its entry to be stored by the
    /// first commit.
    fn created(ino: u64, writable: bool, append: bool) -> FileHandle {
        let h = FileHandle::new(ino, writable, append, Vec::new(), true, None);
        if let Ok(mut st) = h.state.lock() {
            st.create = Create::Pending;
        }
        h
    }

    fn lock(&self) -> Result<MutexGuard<'_, FileState>, Errno> {
        self.state.lock().map_err(poisoned)
    }

    /// Up to `size` bytes at `offset` (fewer at the end of the value).
    pub(crate) fn read(&self, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let st = self.lock()?;
        let len = st.data.len();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(len);
        let end = start.saturating_add(size as usize).min(len);
        Ok(st.data.get(start..end).unwrap_or(&[]).to_vec())
    }

    /// Writes `bytes` at `offset` (at the end for O_APPEND), zero-filling a gap.
    /// EFBIG past `max_len`; ENOSPC when the mount's buffer budget is spent.
    pub(crate) fn write(
        &self,
        offset: u64,
        bytes: &[u8],
        max_len: u64,
        budget: &Budget,
    ) -> Result<u32, Errno> {
        let count = u32::try_from(bytes.len()).map_err(|_| Errno::EINVAL)?;
        let mut st = self.lock()?;
        if let Create::Failed(e) = st.create {
            return Err(e);
        }
        let start = if self.append {
            st.data.len() as u64
        } else {
            offset
        };
        let end = start.checked_add(bytes.len() as u64).ok_or(Errno::EFBIG)?;
        if end > max_len {
            return Err(Errno::EFBIG);
        }
        let (start, end) = (
            usize::try_from(start).map_err(|_| Errno::EFBIG)?,
            usize::try_from(end).map_err(|_| Errno::EFBIG)?,
        );
        let old_len = st.data.len();
        if end > old_len {
            if !budget.charge((end - old_len) as u64) {
                tracing::warn!(ino = self.ino, "write-back buffer budget exhausted");
                return Err(Errno::ENOSPC);
            }
            st.data.resize(end, 0);
        }
        let Some(dst) = st.data.get_mut(start..end) else {
            return Err(Errno::EIO);
        };
        dst.copy_from_slice(bytes);
        st.dirty = true;
        st.gen = st.gen.wrapping_add(1);
        st.failed = false;
        st.mtime = SystemTime::now();
        st.seq = CHANGE_SEQ.fetch_add(1, Ordering::Relaxed);
        Ok(count)
    }

    /// Truncates or zero-extends the buffer to `size` and marks it dirty: this handle's
    /// own ftruncate(fd), committed with the buffer. (A truncation by another party:
    /// [`FileHandle::truncate_if_clean`].)
    pub(crate) fn truncate(&self, size: u64, max_len: u64, budget: &Budget) -> Result<(), Errno> {
        if size > max_len {
            return Err(Errno::EFBIG);
        }
        let size = usize::try_from(size).map_err(|_| Errno::EFBIG)?;
        let mut st = self.lock()?;
        if let Create::Failed(e) = st.create {
            return Err(e);
        }
        resize_charged(&mut st.data, size, budget)?;
        st.dirty = true;
        st.gen = st.gen.wrapping_add(1);
        st.failed = false;
        st.mtime = SystemTime::now();
        st.seq = CHANGE_SEQ.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A truncation by another party, applied only while the handle holds no unstored
    /// writes (checked and applied under one lock, so no write slips in between):
    /// `Ok(false)` when it holds some, which the caller stores first.
    pub(crate) fn truncate_if_clean(&self, size: u64, budget: &Budget) -> Result<bool, Errno> {
        let size = usize::try_from(size).map_err(|_| Errno::EFBIG)?;
        let mut st = self.lock()?;
        if let Create::Failed(e) = st.create {
            return Err(e);
        }
        if st.dirty || st.committing {
            return Ok(false);
        }
        resize_charged(&mut st.data, size, budget)?;
        st.gen = st.gen.wrapping_add(1);
        Ok(true)
    }

    /// Size, time and order of uncommitted data, if any.
    pub(crate) fn dirty_view(&self) -> Result<Option<DirtyView>, Errno> {
        let st = self.lock()?;
        Ok(st.dirty.then_some(DirtyView {
            size: st.data.len() as u64,
            mtime: st.mtime,
            seq: st.seq,
        }))
    }

    pub(crate) fn is_dirty(&self) -> Result<bool, Errno> {
        Ok(self.lock()?.dirty)
    }

    /// Whether uncommitted data remains only because its last commit failed and the
    /// error was reported (no write since), or the handle's created entry could not
    /// be stored.
    pub(crate) fn failed(&self) -> Result<bool, Errno> {
        let st = self.lock()?;
        Ok((st.dirty && st.failed) || matches!(st.create, Create::Failed(_)))
    }

    /// Records a change of times without a change of data (utimens to now).
    pub(crate) fn touch(&self) -> Result<(), Errno> {
        let mut st = self.lock()?;
        st.mtime = SystemTime::now();
        st.seq = CHANGE_SEQ.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Replaces the attributes the next commit compares against.
    pub(crate) fn set_base(&self, attr: &EntryAttr) -> Result<(), Errno> {
        self.lock()?.base = Some(attr.clone());
        Ok(())
    }

    /// Waits until no other commit of this handle runs, then, if the buffer is dirty,
    /// marks a commit as running and returns a copy of what to commit. Every `Some`
    /// must be followed by [`FileHandle::end_commit`]. The error of a failed create
    /// is returned again.
    pub(crate) fn begin_commit(&self) -> Result<Option<Commit>, Errno> {
        let mut st = self.lock()?;
        while st.committing {
            st = self.idle.wait(st).map_err(poisoned)?;
        }
        if let Create::Failed(e) = st.create {
            return Err(e);
        }
        if !st.dirty {
            return Ok(None);
        }
        st.committing = true;
        Ok(Some(Commit {
            data: st.data.clone(),
            base: st.base.clone(),
            create: st.create == Create::Pending,
            gen: st.gen,
        }))
    }

    /// Waits until no commit of this handle runs and keeps others from starting until
    /// the returned guard is dropped; tells whether the handle's create is pending.
    pub(crate) fn hold_commits(&self) -> Result<CommitHold<'_>, Errno> {
        let mut st = self.lock()?;
        while st.committing {
            st = self.idle.wait(st).map_err(poisoned)?;
        }
        st.committing = true;
        let create_pending = st.create == Create::Pending;
        Ok(CommitHold {
            h: self,
            create_pending,
        })
    }

    /// Ends a commit started by [`FileHandle::begin_commit`]. On success (`Some`: stored
    /// with these attributes; `None`: the entry is gone, the data had nowhere to go) the
    /// buffer is clean unless it changed meanwhile; on error it stays dirty.
    pub(crate) fn end_commit(&self, commit: &Commit, result: &Result<Option<EntryAttr>, Errno>) {
        let mut st = match self.state.lock() {
            Ok(st) => st,
            Err(poison) => poison.into_inner(),
        };
        st.committing = false;
        st.failed = result.is_err();
        if commit.create {
            st.create = match result {
                Ok(_) => Create::Stored,
                Err(e) => Create::Failed(*e),
            };
        }
        if let Ok(stored) = result {
            if let Some(attr) = stored {
                st.base = Some(attr.clone());
            }
            if st.gen == commit.gen {
                st.dirty = false;
            }
        }
        drop(st);
        self.idle.notify_all();
    }

    fn buffered_len(&self) -> u64 {
        match self.state.lock() {
            Ok(st) => st.data.len() as u64,
            Err(poison) => poison.into_inner().data.len() as u64,
        }
    }
}

/// Exclusive use of a handle's commit slot (see [`FileHandle::hold_commits`]).
#[derive(Debug)]
pub(crate) struct CommitHold<'a> {
    h: &'a FileHandle,
    pub create_pending: bool,
}

impl CommitHold<'_> {
    /// Cancels the pending create (unlink before it was stored): the buffer has
    /// nowhere to go, and no commit will store the entry.
    pub(crate) fn cancel_create(&mut self) {
        let mut st = match self.h.state.lock() {
            Ok(st) => st,
            Err(poison) => poison.into_inner(),
        };
        st.create = Create::Stored;
        st.dirty = false;
        self.create_pending = false;
    }
}

impl Drop for CommitHold<'_> {
    fn drop(&mut self) {
        let mut st = match self.h.state.lock() {
            Ok(st) => st,
            Err(poison) => poison.into_inner(),
        };
        st.committing = false;
        drop(st);
        self.h.idle.notify_all();
    }
}

/// One child of a listing.
#[derive(Debug, Clone)]
pub(crate) struct Listed {
    pub name: String,
    pub attr: EntryAttr,
    /// A file created here and not stored yet (not from the backend).
    pub pending: bool,
    /// [`crate::ops::AspenFs::commits`] when the backend was asked (see there).
    pub commits: u64,
}

/// Listing state of an open directory: entries fetched but not yet returned, and
/// where to continue in the backend (by name, so pages are stable under changes).
#[derive(Debug, Default)]
pub(crate) struct DirState {
    /// Offset (position in the listing) of the next entry to return.
    pub next: u64,
    /// Children ready to return, in name order (backend entries, and pending creates
    /// moved in front when they come first).
    pub queue: VecDeque<Listed>,
    /// Pending creates of the directory when the listing started, in name order, not
    /// yet merged into `queue`.
    pub local: VecDeque<Listed>,
    /// Name of the last entry fetched from the backend.
    pub fetch_after: Option<String>,
    /// Whether the backend has entries after `fetch_after`.
    pub more: bool,
    /// Whether listing started (before that `more` is meaningless).
    pub started: bool,
    /// Children returned in the last reply and their first offset, so that a reply
    /// the kernel consumed only partly can be resumed without listing again.
    pub batch: Vec<Listed>,
    pub batch_start: u64,
}

#[derive(Debug)]
pub(crate) struct DirHandle {
    pub ino: u64,
    state: Mutex<DirState>,
}

impl DirHandle {
    /// Takes the listing state out (leaving a fresh one); put it back with `restore`.
    /// No lock is held while the caller talks to the backend.
    pub(crate) fn take(&self) -> Result<DirState, Errno> {
        Ok(std::mem::take(&mut *self.state.lock().map_err(poisoned)?))
    }

    pub(crate) fn restore(&self, st: DirState) -> Result<(), Errno> {
        *self.state.lock().map_err(poisoned)? = st;
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Maps {
    files: HashMap<u64, Arc<FileHandle>>,
    dirs: HashMap<u64, Arc<DirHandle>>,
    /// Writable file handles by inode, for truncation and size reporting.
    writers: HashMap<u64, Vec<u64>>,
}

/// All open handles of a mount.
#[derive(Debug)]
pub(crate) struct HandleTable {
    maps: RwLock<Maps>,
    next_fh: AtomicU64,
    max_handles: usize,
    pub budget: Budget,
}

impl HandleTable {
    pub(crate) fn new(max_handles: usize, max_bytes: u64) -> HandleTable {
        HandleTable {
            maps: RwLock::new(Maps::default()),
            next_fh: AtomicU64::new(1),
            max_handles,
            budget: Budget::new(max_bytes),
        }
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, Maps>, Errno> {
        self.maps.read().map_err(poisoned)
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, Maps>, Errno> {
        self.maps.write().map_err(poisoned)
    }

    fn room(&self, m: &Maps) -> Result<u64, Errno> {
        if m.files.len() + m.dirs.len() >= self.max_handles {
            tracing::warn!(max = self.max_handles, "too many open handles");
            return Err(Errno::ENFILE);
        }
        Ok(self.next_fh.fetch_add(1, Ordering::Relaxed))
    }

    /// Opens a file handle over `data` (charged to the budget: ENOMEM beyond it).
    pub(crate) fn open_file(
        &self,
        ino: u64,
        writable: bool,
        append: bool,
        data: Vec<u8>,
        dirty: bool,
        base: Option<EntryAttr>,
    ) -> Result<u64, Errno> {
        let len = data.len() as u64;
        if !self.budget.charge(len) {
            tracing::warn!(ino, "buffer budget exhausted at open");
            return Err(Errno::ENOMEM);
        }
        let h = FileHandle::new(ino, writable, append, data, dirty, base);
        self.insert_file(h)
            .inspect_err(|_| self.budget.uncharge(len))
    }

    /// Opens the handle of a deferred create of `ino` (empty; its first commit
    /// stores the entry).
    pub(crate) fn open_created(
        &self,
        ino: u64,
        writable: bool,
        append: bool,
    ) -> Result<u64, Errno> {
        self.insert_file(FileHandle::created(ino, writable, append))
    }

    fn insert_file(&self, h: FileHandle) -> Result<u64, Errno> {
        let mut m = self.write()?;
        let fh = self.room(&m)?;
        let (ino, writable) = (h.ino, h.writable);
        m.files.insert(fh, Arc::new(h));
        if writable {
            m.writers.entry(ino).or_default().push(fh);
        }
        Ok(fh)
    }

    pub(crate) fn open_dir(&self, ino: u64) -> Result<u64, Errno> {
        let mut m = self.write()?;
        let fh = self.room(&m)?;
        m.dirs.insert(
            fh,
            Arc::new(DirHandle {
                ino,
                state: Mutex::new(DirState::default()),
            }),
        );
        Ok(fh)
    }

    pub(crate) fn file(&self, fh: u64) -> Result<Arc<FileHandle>, Errno> {
        self.read()?.files.get(&fh).cloned().ok_or(Errno::EBADF)
    }

    /// Open file and directory handles.
    pub(crate) fn count(&self) -> Result<usize, Errno> {
        let m = self.read()?;
        Ok(m.files.len() + m.dirs.len())
    }

    pub(crate) fn dir(&self, fh: u64) -> Result<Arc<DirHandle>, Errno> {
        self.read()?.dirs.get(&fh).cloned().ok_or(Errno::EBADF)
    }

    /// Writable handles open on `ino`.
    pub(crate) fn writers(&self, ino: u64) -> Result<Vec<Arc<FileHandle>>, Errno> {
        let m = self.read()?;
        Ok(m.writers
            .get(&ino)
            .map(|fhs| {
                fhs.iter()
                    .filter_map(|fh| m.files.get(fh).cloned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every open file handle (for the final flush at unmount).
    pub(crate) fn all_files(&self) -> Result<Vec<Arc<FileHandle>>, Errno> {
        Ok(self.read()?.files.values().cloned().collect())
    }

    /// Removes a file handle and returns its buffer bytes to the budget.
    pub(crate) fn close_file(&self, fh: u64) -> Result<Option<Arc<FileHandle>>, Errno> {
        let mut m = self.write()?;
        let Some(h) = m.files.remove(&fh) else {
            return Ok(None);
        };
        if let Some(list) = m.writers.get_mut(&h.ino) {
            list.retain(|f| *f != fh);
            if list.is_empty() {
                m.writers.remove(&h.ino);
            }
        }
        drop(m);
        self.budget.uncharge(h.buffered_len());
        Ok(Some(h))
    }

    pub(crate) fn close_dir(&self, fh: u64) -> Result<Option<Arc<DirHandle>>, Errno> {
        Ok(self.write()?.dirs.remove(&fh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_sparse_append_and_budget() {
        let t = HandleTable::new(4, 100);
        let fh = t
            .open_file(9, true, false, b"abc".to_vec(), false, None)
            .unwrap();
        let h = t.file(fh).unwrap();
        assert!(!h.is_dirty().unwrap());
        h.write(5, b"xy", 1000, &t.budget).unwrap();
        assert_eq!(h.read(0, 100).unwrap(), b"abc\0\0xy");
        assert_eq!(h.read(6, 100).unwrap(), b"y");
        assert_eq!(h.read(60, 100).unwrap(), b"");
        assert_eq!(h.write(999, b"zz", 1000, &t.budget), Err(Errno::EFBIG));
        assert_eq!(h.write(0, &[0; 200], 1000, &t.budget), Err(Errno::ENOSPC));
        assert_eq!(t.budget.used(), 7);
        h.truncate(2, 1000, &t.budget).unwrap();
        assert_eq!(t.budget.used(), 2);
        assert_eq!(h.dirty_view().unwrap().map(|v| v.size), Some(2));
        let fa = t
            .open_file(9, true, true, b"12".to_vec(), false, None)
            .unwrap();
        let a = t.file(fa).unwrap();
        a.write(0, b"3", 1000, &t.budget).unwrap();
        assert_eq!(a.read(0, 10).unwrap(), b"123");
        assert_eq!(t.writers(9).unwrap().len(), 2);
        t.close_file(fh).unwrap();
        t.close_file(fa).unwrap();
        assert_eq!(t.budget.used(), 0);
        assert!(t.writers(9).unwrap().is_empty());
    }

    #[test]
    fn commit_protocol() {
        let t = HandleTable::new(4, 100);
        let fh = t
            .open_file(1, true, false, Vec::new(), false, None)
            .unwrap();
        let h = t.file(fh).unwrap();
        assert!(h.begin_commit().unwrap().is_none());
        h.write(0, b"a", 10, &t.budget).unwrap();
        let c = h.begin_commit().unwrap().unwrap();
        assert_eq!(c.data, b"a");
        // A write during the commit keeps the buffer dirty afterwards.
        h.write(1, b"b", 10, &t.budget).unwrap();
        h.end_commit(&c, &Ok(None));
        assert!(h.is_dirty().unwrap());
        let c = h.begin_commit().unwrap().unwrap();
        h.end_commit(&c, &Err(Errno::EROFS));
        assert!(h.is_dirty().unwrap(), "a failed commit keeps the data");
        assert!(h.failed().unwrap());
        h.write(2, b"c", 10, &t.budget).unwrap();
        assert!(!h.failed().unwrap(), "new data is worth another try");
        let c = h.begin_commit().unwrap().unwrap();
        h.end_commit(&c, &Ok(None));
        assert!(!h.is_dirty().unwrap());
    }

    /// A truncation by another party never drops writes this handle has not stored:
    /// it applies only to a clean buffer (found by the robustness harness: a write that
    /// landed between another open's store of the writers and its truncation was lost).
    #[test]
    fn truncation_by_another_party_waits_for_unstored_writes() {
        let t = HandleTable::new(4, 100);
        let fh = t
            .open_file(1, true, false, b"old".to_vec(), false, None)
            .unwrap();
        let h = t.file(fh).unwrap();
        assert!(h.truncate_if_clean(0, &t.budget).unwrap());
        assert!(
            !h.is_dirty().unwrap(),
            "following another's truncation is not a write"
        );
        assert_eq!(h.read(0, 10).unwrap(), b"");
        h.write(0, b"new", 10, &t.budget).unwrap();
        assert!(!h.truncate_if_clean(0, &t.budget).unwrap());
        assert_eq!(h.read(0, 10).unwrap(), b"new", "unstored writes are kept");
        let c = h.begin_commit().unwrap().unwrap();
        assert!(
            !h.truncate_if_clean(0, &t.budget).unwrap(),
            "not during a commit"
        );
        h.end_commit(&c, &Ok(None));
        assert!(h.truncate_if_clean(1, &t.budget).unwrap());
        assert_eq!(h.read(0, 10).unwrap(), b"n");
    }

    #[test]
    fn deferred_create_protocol() {
        let t = HandleTable::new(4, 100);
        let fh = t.open_created(3, true, false).unwrap();
        let h = t.file(fh).unwrap();
        assert!(
            h.is_dirty().unwrap(),
            "an untouched create is still to be stored"
        );
        let c = h.begin_commit().unwrap().unwrap();
        assert!(c.create);
        h.end_commit(&c, &Err(Errno::EROFS));
        // The failure sticks: the file never existed.
        assert!(h.failed().unwrap());
        assert_eq!(h.begin_commit().err(), Some(Errno::EROFS));
        assert_eq!(h.write(0, b"x", 10, &t.budget), Err(Errno::EROFS));
        assert_eq!(h.truncate(0, 10, &t.budget), Err(Errno::EROFS));

        // A write makes the first flush count; a stored create commits normally after.
        let fh = t.open_created(4, true, false).unwrap();
        let h = t.file(fh).unwrap();
        h.write(0, b"ab", 10, &t.budget).unwrap();
        let c = h.begin_commit().unwrap().unwrap();
        assert!(c.create);
        assert_eq!(c.data, b"ab");
        h.end_commit(&c, &Ok(None));
        assert!(!h.is_dirty().unwrap());
        h.write(2, b"c", 10, &t.budget).unwrap();
        assert!(!h.begin_commit().unwrap().unwrap().create);

        // Holding the commit slot, an unlink cancels the create.
        let fh = t.open_created(5, true, false).unwrap();
        let h = t.file(fh).unwrap();
        h.touch().unwrap();
        let mut hold = h.hold_commits().unwrap();
        assert!(hold.create_pending);
        hold.cancel_create();
        drop(hold);
        assert!(h.begin_commit().unwrap().is_none(), "nothing to store");
        assert!(!h.failed().unwrap());
    }

    #[test]
    fn handle_count_is_bounded() {
        let t = HandleTable::new(2, 100);
        t.open_dir(1).unwrap();
        t.open_file(1, false, false, Vec::new(), false, None)
            .unwrap();
        assert_eq!(t.open_dir(1), Err(Errno::ENFILE));
        assert_eq!(t.file(12345).err(), Some(Errno::EBADF));
    }
}
