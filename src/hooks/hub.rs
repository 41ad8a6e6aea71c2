//! The hook hub of one node: what apply calls to stage events, the delivery thread,
//! the counters behind `/cluster/metrics`, the ring of recent events behind `/hooks`,
//! and the broadcast that `aspen hooks tail` streams follow.
//!
//! Apply never waits: it stages events in the outbox unless the outbox already holds
//! its bound of undelivered events, in which case they are dropped, counted and logged.
//! The delivery thread is woken after each apply and delivers in log order.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fjall::OwnedWriteBatch;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::error::{Error, Result};
use crate::hooks::event::HookEvent;
use crate::hooks::outbox::{Outbox, OutboxKey};
use crate::hooks::spool::Spool;
use crate::limits::{
    HOOK_DELIVERY_BATCH_EVENTS, HOOK_DIRECT_QUEUE_EVENTS, HOOK_IDLE_WAKE_MS,
    HOOK_OVERFLOW_LOG_EVERY_EVENTS, HOOK_QUEUE_EVENTS, HOOK_TAIL_BROADCAST_EVENTS,
    MAX_HOOK_RING_EVENTS,
};
use crate::raft::types::NodeId;
use crate::store::Store;

/// Hook settings of a node.
#[derive(Debug, Clone)]
pub struct HookConfig {
    /// The spool directory; `None`: `<data-dir>/hooks`.
    pub spool_dir: Option<PathBuf>,
    /// Undelivered events the outbox holds before new ones overflow.
    pub queue_events: usize,
}

impl Default for HookConfig {
    fn default() -> Self {
        HookConfig {
            spool_dir: None,
            queue_events: HOOK_QUEUE_EVENTS,
        }
    }
}

/// Delivery figures of a node (for `/cluster/metrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookStats {
    pub delivered: u64,
    /// Events dropped because the outbox or the direct queue was full.
    pub overflow: u64,
    pub spool_errors: u64,
    /// Events a slow `hooks tail` stream missed.
    pub tail_lagged: u64,
    /// Events staged and not yet delivered.
    pub pending: u64,
    /// Log index of the last delivered event.
    pub cursor_index: u64,
}

/// One event of the recent ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentEvent {
    pub kind: String,
    pub index: u64,
    /// The JSON line, newline included.
    pub line: String,
}

pub struct HookHub {
    node: NodeId,
    outbox: Outbox,
    capacity: u64,
    pending: AtomicU64,
    overflow: AtomicU64,
    delivered: AtomicU64,
    spool_errors: AtomicU64,
    tail_lagged: AtomicU64,
    cursor_index: AtomicU64,
    /// Whether anything was ever delivered (`cursor_index` is meaningful).
    has_cursor: AtomicBool,
    ring: Mutex<VecDeque<RecentEvent>>,
    tail: broadcast::Sender<Arc<HookEvent>>,
    wake: SyncSender<()>,
    direct: SyncSender<HookEvent>,
    paused: AtomicBool,
    stopping: AtomicBool,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl HookHub {
    /// Opens the spool and the outbox and starts the delivery thread.
    pub fn start(
        store: Store,
        node: NodeId,
        data_dir: &std::path::Path,
        config: &HookConfig,
    ) -> Result<Arc<HookHub>> {
        let spool_dir = config
            .spool_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("hooks"));
        let (spool, recent) = Spool::open(&spool_dir)?;
        let outbox = Outbox::new(store);
        let cursor = outbox.cursor()?;
        if let Some(c) = cursor {
            let dropped = outbox.drop_delivered(c, HOOK_DELIVERY_BATCH_EVENTS)?;
            if dropped > 0 {
                tracing::info!(
                    dropped,
                    "hook events re-applied after a restart were delivered already"
                );
            }
        }
        let capacity = config.queue_events.max(1);
        let pending = outbox.count(cursor, capacity)?;
        let (wake, wake_rx) = mpsc::sync_channel(1);
        let (direct, direct_rx) = mpsc::sync_channel(HOOK_DIRECT_QUEUE_EVENTS);
        let (tail, _) = broadcast::channel(HOOK_TAIL_BROADCAST_EVENTS);
        let mut ring = VecDeque::new();
        for e in recent.iter().rev().take(MAX_HOOK_RING_EVENTS).rev() {
            ring.push_back(RecentEvent {
                kind: e.kind.clone(),
                index: e.index,
                line: e.json_line(),
            });
        }
        let hub = Arc::new(HookHub {
            node,
            outbox,
            capacity: capacity as u64,
            pending: AtomicU64::new(pending as u64),
            overflow: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            spool_errors: AtomicU64::new(0),
            tail_lagged: AtomicU64::new(0),
            cursor_index: AtomicU64::new(cursor.map_or(0, |c| c.0)),
            has_cursor: AtomicBool::new(cursor.is_some()),
            ring: Mutex::new(ring),
            tail,
            wake,
            direct,
            paused: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            worker: Mutex::new(None),
        });
        tracing::info!(dir = %spool_dir.display(), pending, "hook delivery started");
        let worker_hub = hub.clone();
        let handle = std::thread::Builder::new()
            .name("aspen-hooks".into())
            .spawn(move || deliver_loop(worker_hub, spool, wake_rx, direct_rx, cursor))
            .map_err(|e| Error::internal(format!("cannot start the hook thread: {e}")))?;
        if let Ok(mut w) = hub.worker.lock() {
            *w = Some(handle);
        }
        Ok(hub)
    }

    pub fn node(&self) -> NodeId {
        self.node
    }

    /// Stages an applied entry's events in its batch; returns how many were staged
    /// (0 when the outbox is full: they are dropped and counted). They count as pending
    /// from now on, before the batch commits, so that the delivery thread never
    /// delivers (and subtracts) events not yet counted; `unstage` takes them back when
    /// the batch fails.
    pub fn stage(
        &self,
        batch: &mut OwnedWriteBatch,
        index: u64,
        events: &[HookEvent],
    ) -> Result<u64> {
        if events.is_empty() || self.delivered_before(index) {
            return Ok(0);
        }
        let n = events.len() as u64;
        if self.pending.load(Ordering::Acquire).saturating_add(n) > self.capacity {
            self.count_overflow(n, index);
            return Ok(0);
        }
        self.outbox.stage(batch, index, events)?;
        self.pending.fetch_add(n, Ordering::AcqRel);
        Ok(n)
    }

    /// Whether the events of entry `index` were staged and delivered before: an entry
    /// replayed after a crash. (Undelivered events of that entry are still in the
    /// outbox, so staging them again is not needed.)
    fn delivered_before(&self, index: u64) -> bool {
        self.has_cursor.load(Ordering::Acquire)
            && index <= self.cursor_index.load(Ordering::Acquire)
    }

    /// The batch holding `staged` events failed to commit.
    pub fn unstage(&self, staged: u64) {
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(staged))
            });
    }

    /// After the batch holding `staged` events committed: wakes the delivery thread.
    pub fn staged(&self, staged: u64) {
        if staged > 0 {
            self.wake();
        }
    }

    fn wake(&self) {
        // A full channel already holds a wake-up: nothing is lost.
        let _ = self.wake.try_send(());
    }

    /// Queues a node-local event (snapshots), delivered once and not persisted.
    pub fn publish_local(&self, event: HookEvent) {
        let index = event.index;
        match self.direct.try_send(event) {
            Ok(()) => self.wake(),
            Err(TrySendError::Full(_)) => self.count_overflow(1, index),
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn count_overflow(&self, n: u64, index: u64) {
        let before = self.overflow.fetch_add(n, Ordering::AcqRel);
        if before / HOOK_OVERFLOW_LOG_EVERY_EVENTS
            != before.saturating_add(n) / HOOK_OVERFLOW_LOG_EVERY_EVENTS
            || before == 0
        {
            tracing::warn!(
                index,
                dropped_total = before.saturating_add(n),
                "hook delivery is behind: events dropped (counted in aspen_hook_overflow_total)"
            );
        }
    }

    pub fn stats(&self) -> HookStats {
        HookStats {
            delivered: self.delivered.load(Ordering::Acquire),
            overflow: self.overflow.load(Ordering::Acquire),
            spool_errors: self.spool_errors.load(Ordering::Acquire),
            tail_lagged: self.tail_lagged.load(Ordering::Acquire),
            pending: self.pending.load(Ordering::Acquire),
            cursor_index: self.cursor_index.load(Ordering::Acquire),
        }
    }

    /// The recent events, oldest first.
    pub fn recent(&self) -> Vec<RecentEvent> {
        match self.ring.lock() {
            Ok(r) => r.iter().cloned().collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Events as they are delivered from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<HookEvent>> {
        self.tail.subscribe()
    }

    /// Counts events a tail stream missed.
    pub fn count_tail_lagged(&self, missed: u64) {
        self.tail_lagged.fetch_add(missed, Ordering::AcqRel);
    }

    /// Holds delivery (apply goes on staging until the outbox is full). For tests and
    /// maintenance; `resume` continues where it stopped.
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
        self.wake();
    }

    /// Stops the delivery thread and waits for it (undelivered events stay in the
    /// outbox for the next start).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake();
        let handle = self.worker.lock().ok().and_then(|mut w| w.take());
        if let Some(h) = handle {
            if h.join().is_err() {
                tracing::error!("the hook delivery thread failed");
            }
        }
    }

    /// Delivers one event: spool, ring, tail streams.
    fn deliver(&self, spool: &mut Spool, event: HookEvent) {
        let line = event.json_line();
        if let Err(e) = spool.write(&event, &line) {
            let n = self.spool_errors.fetch_add(1, Ordering::AcqRel);
            if n.is_multiple_of(HOOK_OVERFLOW_LOG_EVERY_EVENTS) {
                tracing::warn!(error = %e, dir = %spool.dir().display(), "hook spool write failed");
            }
        }
        if let Ok(mut ring) = self.ring.lock() {
            if ring.len() >= MAX_HOOK_RING_EVENTS {
                ring.pop_front();
            }
            ring.push_back(RecentEvent {
                kind: event.kind.clone(),
                index: event.index,
                line,
            });
        }
        // No receiver is not an error: nobody is tailing.
        let _ = self.tail.send(Arc::new(event));
        self.delivered.fetch_add(1, Ordering::AcqRel);
    }

    /// Delivers the next page of the outbox; returns the new cursor and whether more
    /// may follow.
    fn deliver_page(
        &self,
        spool: &mut Spool,
        cursor: Option<OutboxKey>,
    ) -> Result<(Option<OutboxKey>, bool)> {
        let page = self.outbox.page(cursor, HOOK_DELIVERY_BATCH_EVENTS)?;
        let Some(((last_key, _), n)) = page.last().map(|l| (l.clone(), page.len())) else {
            return Ok((cursor, false));
        };
        let keys: Vec<OutboxKey> = page.iter().map(|(k, _)| *k).collect();
        for (_, event) in page {
            self.deliver(spool, event);
        }
        self.outbox.advance(&keys, last_key)?;
        let _ = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| {
                Some(p.saturating_sub(n as u64))
            });
        self.cursor_index.store(last_key.0, Ordering::Release);
        self.has_cursor.store(true, Ordering::Release);
        Ok((Some(last_key), n == HOOK_DELIVERY_BATCH_EVENTS))
    }
}

fn deliver_loop(
    hub: Arc<HookHub>,
    mut spool: Spool,
    wake: Receiver<()>,
    direct: Receiver<HookEvent>,
    mut cursor: Option<OutboxKey>,
) {
    let idle = Duration::from_millis(HOOK_IDLE_WAKE_MS);
    loop {
        if hub.stopping.load(Ordering::Acquire) {
            return;
        }
        while let Ok(event) = direct.try_recv() {
            hub.deliver(&mut spool, event);
        }
        let mut more = !hub.paused.load(Ordering::Acquire);
        while more && !hub.stopping.load(Ordering::Acquire) {
            match hub.deliver_page(&mut spool, cursor) {
                Ok((c, m)) => {
                    cursor = c;
                    more = m;
                }
                Err(e) => {
                    tracing::error!(error = %e, "hook outbox failed; retrying");
                    more = false;
                }
            }
        }
        match wake.recv_timeout(idle) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(what: &str, cond: impl Fn() -> bool) {
        let start = std::time::Instant::now();
        while !cond() {
            assert!(start.elapsed() < Duration::from_secs(30), "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn lines(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("events"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn stage_entries(hub: &HookHub, store: &Store, indices: &[u64]) {
        for i in indices {
            let mut batch = store.db.batch();
            let n = hub
                .stage(&mut batch, *i, &[HookEvent::new("kv.write", *i, *i, 1)])
                .unwrap();
            batch.commit().unwrap();
            hub.staged(n);
        }
    }

    /// Undelivered events survive a stop and are delivered once by the next start; an
    /// entry replayed after a crash (staged again at or before the cursor) is not
    /// delivered again.
    #[test]
    fn restart_neither_loses_nor_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let config = HookConfig {
            spool_dir: Some(spool.clone()),
            queue_events: 16,
        };
        let store = Store::open(&dir.path().join("data")).unwrap();
        let hub = HookHub::start(store.clone(), 1, dir.path(), &config).unwrap();
        hub.pause();
        stage_entries(&hub, &store, &[3, 4, 5]);
        assert_eq!(hub.stats().pending, 3);
        hub.stop();
        assert!(lines(&spool).is_empty());

        let hub = HookHub::start(store.clone(), 1, dir.path(), &config).unwrap();
        assert_eq!(hub.stats().pending, 3);
        wait("delivered after restart", || hub.stats().pending == 0);
        assert_eq!(lines(&spool).len(), 3);
        assert_eq!(hub.stats().cursor_index, 5);
        assert_eq!(hub.recent().len(), 3);
        hub.stop();

        // A replay of entries 4 and 5, then a new entry 6.
        let hub = HookHub::start(store.clone(), 1, dir.path(), &config).unwrap();
        hub.pause();
        stage_entries(&hub, &store, &[4, 5]);
        hub.stop();
        let hub = HookHub::start(store.clone(), 1, dir.path(), &config).unwrap();
        assert_eq!(
            hub.stats().pending,
            0,
            "replayed events are dropped at start"
        );
        stage_entries(&hub, &store, &[6]);
        wait("entry 6 delivered", || hub.stats().cursor_index == 6);
        let got = lines(&spool);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(hub.recent().len(), 4, "the ring is reloaded from the spool");
        hub.stop();
    }
}
