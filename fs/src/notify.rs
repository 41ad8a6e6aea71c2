//! Kernel cache coherence: turns `Backend::subscribe()` changes into FUSE notifications.
//!
//! Two dedicated threads, neither of which ever serves a FUSE request (a notification
//! sent from a request handler can deadlock against the kernel):
//! - the *forwarder* drains the backend's receiver into a bounded queue
//!   (`NOTIFY_QUEUE_LEN`). When the queue is full the change is counted and logged, and
//!   a full invalidation is scheduled, so nothing is lost silently;
//! - the *notifier* takes changes from the queue and, for keys the kernel knows (found in
//!   the inode table), sends `inval_inode` (attributes and data), `inval_entry` (the
//!   name in its parent) or `delete` (deleted keys). For a new key in a directory the
//!   kernel knows, it invalidates that directory's attributes (times, link count).
//!
//! A change with an empty key and `deleted: true` is the backend's way of saying that
//! changes may have been missed (see [`Change`]): everything is invalidated then too.
//!
//! Both stop when told to or when their input ends.

use std::ffi::OsStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

use fuser::{FileType, INodeNo, Notifier};

use crate::backend::Change;
use crate::inode::{InodeTable, Known};
use crate::limits::{NOTIFY_IDLE_POLL, NOTIFY_QUEUE_LEN};
use crate::tree::{split_key, Tree};

/// Counters shared by the two threads and the mount handle.
#[derive(Debug, Default)]
pub(crate) struct NotifyState {
    pub stop: AtomicBool,
    /// Changes that did not fit the queue (ever).
    pub overflowed: AtomicU64,
    /// Changes turned into notifications.
    pub applied: AtomicU64,
    /// A full invalidation is due because changes were dropped.
    sweep_due: AtomicBool,
}

/// The running threads of one mount. Dropping it without [`NotifyThreads::stop`] lets
/// them run on until their input ends.
#[derive(Debug)]
pub(crate) struct NotifyThreads {
    pub state: Arc<NotifyState>,
    threads: Vec<JoinHandle<()>>,
}

impl NotifyThreads {
    /// Stops both threads and waits for them (at most about `NOTIFY_IDLE_POLL`).
    pub(crate) fn stop(self) {
        self.state.stop.store(true, Ordering::Release);
        for t in self.threads {
            if t.join().is_err() {
                tracing::error!("a notifier thread panicked");
            }
        }
    }
}

pub(crate) fn start(
    changes: Receiver<Change>,
    inodes: Arc<InodeTable>,
    kernel: Notifier,
) -> std::io::Result<NotifyThreads> {
    let state = Arc::new(NotifyState::default());
    let (tx, rx) = sync_channel(NOTIFY_QUEUE_LEN);
    let s = state.clone();
    let forwarder = std::thread::Builder::new()
        .name("aspen-fs-changes".into())
        .spawn(move || forward(&changes, &tx, &s))?;
    let s = state.clone();
    let notifier = std::thread::Builder::new()
        .name("aspen-fs-notify".into())
        .spawn(move || notify_loop(&rx, &inodes, &kernel, &s));
    let notifier = match notifier {
        Ok(t) => t,
        Err(e) => {
            state.stop.store(true, Ordering::Release);
            let _ = forwarder.join();
            return Err(e);
        }
    };
    Ok(NotifyThreads {
        state,
        threads: vec![forwarder, notifier],
    })
}

fn forward(changes: &Receiver<Change>, queue: &SyncSender<Change>, st: &NotifyState) {
    let mut behind = false;
    while !st.stop.load(Ordering::Acquire) {
        match changes.recv_timeout(NOTIFY_IDLE_POLL) {
            Ok(change) => match queue.try_send(change) {
                Ok(()) => behind = false,
                Err(TrySendError::Full(change)) => {
                    let n = st.overflowed.fetch_add(1, Ordering::AcqRel) + 1;
                    st.sweep_due.store(true, Ordering::Release);
                    if !behind {
                        tracing::warn!(
                            key = change.key,
                            dropped_total = n,
                            "cache notifier is behind: change dropped, full invalidation scheduled"
                        );
                    } else {
                        tracing::debug!(key = change.key, dropped_total = n, "change dropped");
                    }
                    behind = true;
                }
                Err(TrySendError::Disconnected(_)) => return,
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                tracing::info!("backend change stream ended; kernel caches now expire by TTL only");
                return;
            }
        }
    }
}

fn notify_loop(queue: &Receiver<Change>, inodes: &InodeTable, kernel: &Notifier, st: &NotifyState) {
    while !st.stop.load(Ordering::Acquire) {
        if st.sweep_due.swap(false, Ordering::AcqRel) {
            sweep(inodes, kernel, st, "changes were dropped");
        }
        match queue.recv_timeout(NOTIFY_IDLE_POLL) {
            Ok(change) if change.key.is_empty() && change.deleted => {
                // The backend's signal that changes may have been missed.
                sweep(inodes, kernel, st, "the backend reported missed changes");
                st.applied.fetch_add(1, Ordering::AcqRel);
            }
            Ok(change) => {
                apply(&change, inodes, kernel);
                st.applied.fetch_add(1, Ordering::AcqRel);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if st.sweep_due.swap(false, Ordering::AcqRel) {
                    sweep(inodes, kernel, st, "changes were dropped");
                }
                return;
            }
        }
    }
}

/// Logs a failed notification. ENOENT (nothing cached) is already ignored by fuser.
fn check(what: &str, r: std::io::Result<()>) {
    if let Err(e) = r {
        tracing::debug!(what, error = %e, "kernel notification failed");
    }
}

fn invalidate_known(k: &Known, kernel: &Notifier) {
    if k.kind == FileType::Directory {
        // Attributes only. The name stays: invalidating a directory's dentry would
        // break getcwd(3) of processes inside it.
        check("inval_inode", kernel.inval_inode(INodeNo(k.ino), -1, 0));
    } else {
        check("inval_inode", kernel.inval_inode(INodeNo(k.ino), 0, 0));
        check(
            "inval_entry",
            kernel.inval_entry(INodeNo(k.parent), OsStr::new(&k.name)),
        );
    }
}

fn apply(change: &Change, inodes: &InodeTable, kernel: &Notifier) {
    let kv = Tree::Kv.ino();
    if change.key.is_empty() {
        check("inval_inode", kernel.inval_inode(INodeNo(kv), -1, 0));
        return;
    }
    let found = match inodes.find(kv, &change.key) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(errno = e.code(), "inode table unavailable to the notifier");
            return;
        }
    };
    // A key below a directory the kernel does not know is not cached at all.
    let Some((parent, known)) = found else {
        return;
    };
    // A name the kernel does not know, in a directory it knows: most likely a new
    // child, which changed the directory's times (and link count for a subdirectory).
    // Deletions and known names are handled below: `delete` and `inval_entry`
    // invalidate the parent's attributes in the kernel as well.
    let Some(known) = known else {
        check("inval_inode", kernel.inval_inode(INodeNo(parent), -1, 0));
        return;
    };
    if change.deleted {
        let (_, name) = split_key(&change.key);
        check(
            "delete",
            kernel.delete(INodeNo(parent), INodeNo(known.ino), OsStr::new(name)),
        );
    } else {
        invalidate_known(&known, kernel);
    }
}

/// Invalidates everything the kernel may cache under `/kv` (after missed changes).
fn sweep(inodes: &InodeTable, kernel: &Notifier, st: &NotifyState, why: &str) {
    let all = match inodes.known_below(Tree::Kv.ino()) {
        Ok(all) => all,
        Err(e) => {
            tracing::error!(
                errno = e.code(),
                "inode table unavailable; full invalidation skipped"
            );
            return;
        }
    };
    tracing::warn!(
        inodes = all.len(),
        dropped_total = st.overflowed.load(Ordering::Acquire),
        why,
        "invalidating every cached /kv inode"
    );
    check(
        "inval_inode",
        kernel.inval_inode(INodeNo(Tree::Kv.ino()), -1, 0),
    );
    for k in &all {
        invalidate_known(k, kernel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    #[test]
    fn overflow_is_counted_and_schedules_a_sweep() {
        let (tx, rx) = channel();
        for i in 0..5 {
            tx.send(Change {
                key: format!("k{i}"),
                deleted: false,
            })
            .unwrap();
        }
        drop(tx);
        let (qtx, qrx) = sync_channel(2);
        let st = NotifyState::default();
        // Returns when the backend's stream ends.
        forward(&rx, &qtx, &st);
        assert_eq!(st.overflowed.load(Ordering::Acquire), 3);
        assert!(st.sweep_due.load(Ordering::Acquire));
        let kept: Vec<String> = qrx.try_iter().map(|c| c.key).collect();
        assert_eq!(kept, ["k0", "k1"]);
    }

    #[test]
    fn forwarder_stops_when_told() {
        let (_tx, rx) = channel::<Change>();
        let (qtx, _qrx) = sync_channel(2);
        let st = NotifyState::default();
        st.stop.store(true, Ordering::Release);
        forward(&rx, &qtx, &st);
    }
}
