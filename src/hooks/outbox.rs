//! The node-local hook outbox and delivery cursor, in the `hooks` keyspace.
//!
//! Apply stages an entry's events in the same fjall batch as the entry's state changes,
//! so the outbox is always consistent with the applied state: after a crash, raft
//! replays exactly the entries whose writes (events included) were lost. The delivery
//! thread takes events from the outbox in log order, delivers them, then removes them
//! and records the cursor (the key of the last delivered event) in one batch. A restart
//! resumes after the cursor: nothing lost, nothing repeated (delivery itself skips what
//! it finds already delivered, for a crash between delivery and the cursor write).
//!
//! | key                                      | value                         |
//! |------------------------------------------|-------------------------------|
//! | `O`, log index (u64 BE), seq (u32 BE)    | `HookEvent`                   |
//! | `Ccursor`                                | `(u64, u32)` last delivered   |
//!
//! Nothing here is replicated or part of a snapshot.

use fjall::OwnedWriteBatch;

use crate::error::{Error, Result};
use crate::hooks::event::HookEvent;
use crate::store::{decode, encode, Store};

const TAG_OUTBOX: u8 = b'O';
const CURSOR_KEY: &[u8] = b"Ccursor";

/// Position of one event in the outbox: log index, then its order within the entry.
pub type OutboxKey = (u64, u32);

fn record_key(key: OutboxKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(13);
    k.push(TAG_OUTBOX);
    k.extend_from_slice(&key.0.to_be_bytes());
    k.extend_from_slice(&key.1.to_be_bytes());
    k
}

fn parse_key(k: &[u8]) -> Result<OutboxKey> {
    let bad = || Error::corrupt("malformed hook outbox key");
    let index: [u8; 8] = k.get(1..9).ok_or_else(bad)?.try_into().map_err(|_| bad())?;
    let seq: [u8; 4] = k
        .get(9..13)
        .ok_or_else(bad)?
        .try_into()
        .map_err(|_| bad())?;
    if k.len() != 13 || k.first() != Some(&TAG_OUTBOX) {
        return Err(bad());
    }
    Ok((u64::from_be_bytes(index), u32::from_be_bytes(seq)))
}

/// The outbox of one node.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
}

impl Outbox {
    pub fn new(store: Store) -> Outbox {
        Outbox { store }
    }

    /// Adds an entry's events to the apply batch.
    pub fn stage(
        &self,
        batch: &mut OwnedWriteBatch,
        index: u64,
        events: &[HookEvent],
    ) -> Result<()> {
        for (seq, e) in events.iter().enumerate() {
            let seq = u32::try_from(seq).unwrap_or(u32::MAX);
            batch.insert(&self.store.hooks, record_key((index, seq)), encode(e)?);
        }
        Ok(())
    }

    /// The key of the last delivered event.
    pub fn cursor(&self) -> Result<Option<OutboxKey>> {
        match self.store.hooks.get(CURSOR_KEY)? {
            Some(v) => Ok(Some(decode(&v, "hook cursor")?)),
            None => Ok(None),
        }
    }

    /// The outbox records after `after` (all of them for `None`).
    fn range_after(&self, after: Option<OutboxKey>) -> fjall::Iter {
        let from = match after {
            Some((i, s)) => match s.checked_add(1) {
                Some(s) => record_key((i, s)),
                None => record_key((i.saturating_add(1), 0)),
            },
            None => vec![TAG_OUTBOX],
        };
        self.store.hooks.range(from..vec![TAG_OUTBOX + 1])
    }

    /// Undelivered events after `after`, in order, at most `limit`.
    pub fn page(
        &self,
        after: Option<OutboxKey>,
        limit: usize,
    ) -> Result<Vec<(OutboxKey, HookEvent)>> {
        let mut out = Vec::new();
        for guard in self.range_after(after) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = guard.into_inner()?;
            out.push((parse_key(&k)?, decode(&v, "hook event")?));
        }
        Ok(out)
    }

    /// Removes delivered events and records `cursor` (the batch reaches the OS, so a killed
    /// process keeps it; a power loss may repeat the last events, which delivery skips).
    pub fn advance(&self, delivered: &[OutboxKey], cursor: OutboxKey) -> Result<()> {
        let mut batch = self.store.db.batch();
        for k in delivered {
            batch.remove(&self.store.hooks, record_key(*k));
        }
        batch.insert(&self.store.hooks, CURSOR_KEY, encode(&cursor)?);
        batch.commit()?;
        Ok(())
    }

    /// Removes records at or before the cursor (an entry re-applied after a crash whose
    /// events were delivered already), at most `limit`; returns how many.
    pub fn drop_delivered(&self, cursor: OutboxKey, limit: usize) -> Result<usize> {
        let to = record_key(cursor);
        let mut stale = Vec::new();
        for guard in self.store.hooks.range(vec![TAG_OUTBOX]..=to) {
            if stale.len() >= limit {
                break;
            }
            let (k, _) = guard.into_inner()?;
            stale.push(k);
        }
        let n = stale.len();
        if n > 0 {
            let mut batch = self.store.db.batch();
            for k in stale {
                batch.remove(&self.store.hooks, k);
            }
            batch.commit()?;
        }
        Ok(n)
    }

    /// Undelivered events, counted up to `limit` (more counts as `limit`).
    pub fn count(&self, after: Option<OutboxKey>, limit: usize) -> Result<usize> {
        let mut n = 0;
        for guard in self.range_after(after) {
            if n >= limit {
                break;
            }
            parse_key(&guard.key()?)?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_page_advance_and_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let outbox = Outbox::new(store.clone());
        let mut batch = store.db.batch();
        let evs = vec![
            HookEvent::new("kv.write", 5, 1, 1),
            HookEvent::new("kv.delete", 5, 1, 1),
        ];
        outbox.stage(&mut batch, 5, &evs).unwrap();
        outbox
            .stage(&mut batch, 7, &[HookEvent::new("kv.write", 7, 2, 1)])
            .unwrap();
        batch.commit().unwrap();
        assert_eq!(outbox.cursor().unwrap(), None);
        let page = outbox.page(None, 2).unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[1].0, (5, 1));
        assert_eq!(page[1].1.kind, "kv.delete");
        outbox.advance(&[(5, 0), (5, 1)], (5, 1)).unwrap();
        assert_eq!(outbox.cursor().unwrap(), Some((5, 1)));
        let rest = outbox.page(outbox.cursor().unwrap(), 10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0, (7, 0));
        assert_eq!(outbox.count(Some((5, 1)), 10).unwrap(), 1);
        // A replayed entry at or before the cursor is dropped, not delivered again.
        let mut batch = store.db.batch();
        outbox
            .stage(&mut batch, 5, &[HookEvent::new("kv.write", 5, 1, 1)])
            .unwrap();
        batch.commit().unwrap();
        assert_eq!(outbox.drop_delivered((5, 1), 10).unwrap(), 1);
        assert_eq!(outbox.page(None, 10).unwrap().len(), 1);
    }
}
