//! The deterministic KV state machine: applies the commands of one raft entry to a
//! layered overlay over a consistent view of the `state` keyspace, producing the writes
//! to commit (one fjall batch), one result per command and the change events.
//!
//! Rules that keep every node identical: no clocks (time comes from the leader's stamp
//! in the entry), no randomness, no hash-ordered iteration, limits are constants. A
//! command either applies completely or not at all: its writes go to a `pending` layer
//! that is merged on success and dropped on error.

use std::collections::BTreeMap;

use crate::error::{Error, ErrorKind, Result};
use crate::kv::key::{self, validate_key};
use crate::kv::layout::{self, LeaseRecord, SmMeta};
use crate::kv::types::*;
use crate::limits::*;
use crate::store::{decode, encode, prefix_end, View};

/// Writes staged on top of a view: `None` deletes.
type Layer = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Applies the commands of one raft entry.
pub struct Applier<'v> {
    view: &'v View,
    committed: Layer,
    pending: Layer,
    events: Vec<Event>,
    pending_events: Vec<Event>,
    meta: SmMeta,
    log_index: u64,
    origin: u64,
    /// Revision the current command writes at.
    rev: u64,
    wrote: bool,
}

/// Everything one entry produced.
pub struct Applied {
    pub writes: Layer,
    pub events: Vec<Event>,
    pub meta: SmMeta,
}

impl<'v> Applier<'v> {
    pub fn new(view: &'v View, meta: SmMeta, log_index: u64, stamp_ns: i64) -> Self {
        let mut meta = meta;
        meta.last_stamp_ns = meta.last_stamp_ns.max(stamp_ns);
        Applier {
            view,
            committed: Layer::new(),
            pending: Layer::new(),
            events: Vec::new(),
            pending_events: Vec::new(),
            meta,
            log_index,
            origin: 0,
            rev: 0,
            wrote: false,
        }
    }

    pub(crate) fn now(&self) -> i64 {
        self.meta.last_stamp_ns
    }

    /// Applies one command atomically.
    pub fn apply(&mut self, origin: u64, command: &Command) -> CommandResult {
        self.origin = origin;
        self.rev = self.meta.revision + 1;
        self.wrote = false;
        let saved_lease_id = self.meta.next_lease_id;
        let result = self.run(command);
        match result {
            Ok(mut ok) => {
                let pending = std::mem::take(&mut self.pending);
                self.committed.extend(pending);
                self.events.append(&mut self.pending_events);
                if self.wrote {
                    self.meta.revision = self.rev;
                }
                set_revision(&mut ok, self.meta.revision);
                Ok(ok)
            }
            Err(e) => {
                self.pending.clear();
                self.pending_events.clear();
                self.meta.next_lease_id = saved_lease_id;
                Err(e)
            }
        }
    }

    /// Finishes the entry: history records, trimming and the meta record join the writes.
    pub fn finish(mut self) -> Result<Applied> {
        let mut seq_by_rev: BTreeMap<u64, u32> = BTreeMap::new();
        for event in &self.events {
            let seq = seq_by_rev.entry(event.revision).or_insert(0);
            self.committed.insert(
                layout::history_key(event.revision, *seq),
                Some(encode(event)?),
            );
            *seq = seq.saturating_add(1);
        }
        self.trim_history()?;
        Ok(Applied {
            writes: self.committed,
            events: self.events,
            meta: self.meta,
        })
    }

    fn trim_history(&mut self) -> Result<()> {
        let cutoff = self.meta.revision.saturating_sub(WATCH_HISTORY_REVISIONS);
        if cutoff <= self.meta.history_low {
            return Ok(());
        }
        let from = layout::history_key(self.meta.history_low, 0);
        let to = layout::history_key(cutoff, 0);
        let old = self
            .view
            .scan(&from, Some(&to), MAX_HISTORY_TRIM_PER_ENTRY + 1)?;
        let complete = old.len() <= MAX_HISTORY_TRIM_PER_ENTRY;
        let mut next_low = cutoff;
        for (i, (k, _)) in old.iter().enumerate() {
            if i == MAX_HISTORY_TRIM_PER_ENTRY {
                next_low = history_revision(k).unwrap_or(cutoff);
                break;
            }
            self.committed.insert(k.to_vec(), None);
        }
        self.meta.history_low = if complete { cutoff } else { next_low };
        Ok(())
    }

    // ---- raw layered access ----

    pub(crate) fn get_raw(&self, k: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(v) = self.pending.get(k) {
            return Ok(v.clone());
        }
        if let Some(v) = self.committed.get(k) {
            return Ok(v.clone());
        }
        Ok(self.view.get(k)?.map(|s| s.to_vec()))
    }

    pub(crate) fn set_raw(&mut self, k: Vec<u8>, v: Option<Vec<u8>>) {
        self.pending.insert(k, v);
    }

    /// Live keys in `[from, to)` (to = None: unbounded), ascending, at most `limit`.
    pub(crate) fn scan_raw(
        &self,
        from: &[u8],
        to: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let in_range = |k: &Vec<u8>| k.as_slice() >= from && to.is_none_or(|t| k.as_slice() < t);
        let mut overlay: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        for (k, v) in self.committed.iter().chain(self.pending.iter()) {
            if in_range(k) {
                overlay.insert(k.clone(), v.clone());
            }
        }
        let base = self
            .view
            .scan(from, to, limit.saturating_add(overlay.len()))?;
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for (k, v) in base {
            if !overlay.contains_key(k.as_ref()) {
                merged.insert(k.to_vec(), v.to_vec());
            }
        }
        for (k, v) in overlay {
            if let Some(v) = v {
                merged.insert(k, v);
            }
        }
        Ok(merged.into_iter().take(limit).collect())
    }

    pub(crate) fn scan_prefix(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let end = prefix_end(prefix);
        self.scan_raw(prefix, end.as_deref(), limit)
    }

    // ---- entries ----

    fn load(&self, key: &str) -> Result<Option<EntryRecord>> {
        match self.get_raw(&layout::entry_key(key))? {
            Some(bytes) => Ok(Some(decode(&bytes, "entry")?)),
            None => Ok(None),
        }
    }

    /// Writes an entry (new or replaced) and records the put event. A new entry also
    /// updates its parent directory (times, subdirectory count).
    fn store(&mut self, key: &str, rec: &EntryRecord, is_new: bool) -> Result<()> {
        self.set_raw(layout::entry_key(key), Some(encode(rec)?));
        if is_new {
            let (parent, _) = key::split(key);
            self.touch_parent(parent, if rec.kind == EntryKind::Dir { 1 } else { 0 })?;
        }
        self.event(EventKind::Put, key, Some(rec.clone()));
        Ok(())
    }

    /// Removes an entry with its lease attachment, and updates its parent directory.
    fn remove(&mut self, key: &str, rec: &EntryRecord, kind: EventKind) -> Result<()> {
        self.set_raw(layout::entry_key(key), None);
        let (parent, _) = key::split(key);
        self.touch_parent(parent, if rec.kind == EntryKind::Dir { -1 } else { 0 })?;
        if rec.lease != 0 {
            self.detach(rec.lease, key)?;
        }
        self.event(kind, key, None);
        Ok(())
    }

    /// A child of `dir` was added or removed: its mtime and ctime become now, and its
    /// subdirectory count moves by `subdirs`. Not an event: the directory entry itself
    /// (its revision, version, metadata set by users) did not change.
    fn touch_parent(&mut self, dir: &str, subdirs: i64) -> Result<()> {
        if dir.is_empty() {
            return Ok(());
        }
        let Some(mut rec) = self.load(dir)? else {
            return Ok(());
        };
        rec.mtime_ns = self.now();
        rec.ctime_ns = self.now();
        rec.subdirs = rec.subdirs.saturating_add_signed(subdirs);
        self.set_raw(layout::entry_key(dir), Some(encode(&rec)?));
        Ok(())
    }

    fn event(&mut self, kind: EventKind, key: &str, entry: Option<EntryRecord>) {
        self.wrote = true;
        self.pending_events.push(Event {
            revision: self.rev,
            kind,
            key: key.to_string(),
            entry,
            origin: self.origin,
            log_index: self.log_index,
        });
    }

    fn has_children(&self, dir: &str) -> Result<bool> {
        Ok(!self.scan_prefix(&layout::dir_prefix(dir), 1)?.is_empty())
    }

    /// Everything below directory `dir` (not `dir` itself), each directory before its
    /// children, at most `limit` entries (more is an error of `over_kind`).
    fn descendants(
        &self,
        dir: &str,
        limit: usize,
        over_kind: ErrorKind,
    ) -> Result<Vec<(String, EntryRecord)>> {
        let mut out: Vec<(String, EntryRecord)> = Vec::new();
        let mut pending_dirs = vec![dir.to_string()];
        while let Some(d) = pending_dirs.pop() {
            let room = limit.saturating_sub(out.len());
            let children = self.scan_prefix(&layout::dir_prefix(&d), room + 1)?;
            if children.len() > room {
                return Err(Error::new(
                    over_kind,
                    format!("{dir:?} has more than {limit} entries below it"),
                ));
            }
            for (k, v) in children {
                let key = layout::key_of(&k)?;
                let rec: EntryRecord = decode(&v, "entry")?;
                if rec.kind == EntryKind::Dir {
                    pending_dirs.push(key.clone());
                }
                out.push((key, rec));
            }
        }
        Ok(out)
    }

    /// The entry at `key` and everything below it, each directory before its children,
    /// at most `limit` entries (more is an error of `over_kind`).
    fn subtree(
        &self,
        key: &str,
        rec: EntryRecord,
        limit: usize,
        over_kind: ErrorKind,
    ) -> Result<Vec<(String, EntryRecord)>> {
        let is_dir = rec.kind == EntryKind::Dir;
        let mut out = vec![(key.to_string(), rec)];
        if is_dir {
            out.extend(self.descendants(key, limit.saturating_sub(1), over_kind)?);
        }
        Ok(out)
    }

    /// Ensures `dir` exists as a directory, creating it (and its parents) when allowed.
    fn ensure_dir(&mut self, dir: &str, create: bool, uid: u32, gid: u32) -> Result<()> {
        if dir.is_empty() {
            return Ok(());
        }
        match self.load(dir)? {
            Some(rec) if rec.kind == EntryKind::Dir => Ok(()),
            Some(_) => Err(Error::new(
                ErrorKind::NotDir,
                format!("{dir:?} is not a directory"),
            )),
            None if create => {
                let (parent, _) = key::split(dir);
                self.ensure_dir(parent, true, uid, gid)?;
                let rec = self.new_record(
                    EntryKind::Dir,
                    Vec::new(),
                    EntryKind::Dir.default_mode(),
                    uid,
                    gid,
                    None,
                );
                self.store(dir, &rec, true)
            }
            None => Err(Error::new(
                ErrorKind::NotFound,
                format!("directory {dir:?} does not exist"),
            )),
        }
    }

    fn new_record(
        &self,
        kind: EntryKind,
        value: Vec<u8>,
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: Option<i64>,
    ) -> EntryRecord {
        EntryRecord {
            kind,
            value,
            mode: mode & 0o7777,
            uid,
            gid,
            mtime_ns: mtime.unwrap_or(self.now()),
            // A new entry's change time is its creation: the given time when the creator
            // chose one (a file system commits a create it showed earlier).
            ctime_ns: mtime.unwrap_or(self.now()),
            create_revision: self.rev,
            mod_revision: self.rev,
            version: 1,
            lease: 0,
            xattrs: Vec::new(),
            rdev: 0,
            subdirs: 0,
        }
    }

    // ---- leases ----

    fn load_lease(&self, id: u64) -> Result<Option<LeaseRecord>> {
        match self.get_raw(&layout::lease_key(id))? {
            Some(b) => Ok(Some(decode(&b, "lease")?)),
            None => Ok(None),
        }
    }

    fn save_lease(&mut self, lease: &LeaseRecord) -> Result<()> {
        self.set_raw(layout::lease_key(lease.id), Some(encode(lease)?));
        Ok(())
    }

    fn attach(&mut self, id: u64, key: &str) -> Result<()> {
        let mut lease = self
            .load_lease(id)?
            .ok_or_else(|| Error::not_found(format!("lease {id}")))?;
        if lease.keys as usize >= MAX_KEYS_PER_LEASE {
            return Err(Error::new(
                ErrorKind::TooBig,
                format!("lease {id} already has {MAX_KEYS_PER_LEASE} keys"),
            ));
        }
        lease.keys += 1;
        self.save_lease(&lease)?;
        self.set_raw(layout::attach_key(id, key), Some(Vec::new()));
        Ok(())
    }

    fn detach(&mut self, id: u64, key: &str) -> Result<()> {
        self.set_raw(layout::attach_key(id, key), None);
        if let Some(mut lease) = self.load_lease(id)? {
            lease.keys = lease.keys.saturating_sub(1);
            self.save_lease(&lease)?;
        }
        Ok(())
    }

    fn revoke(&mut self, id: u64, kind: EventKind) -> Result<u64> {
        let attached = self.scan_prefix(&layout::attach_prefix(id), MAX_KEYS_PER_LEASE + 1)?;
        let mut deleted = 0;
        let prefix_len = layout::attach_prefix(id).len();
        for (k, _) in attached {
            let key = String::from_utf8(k.get(prefix_len..).unwrap_or_default().to_vec())
                .map_err(|_| Error::corrupt("lease attachment key is not UTF-8"))?;
            self.set_raw(k, None);
            if let Some(rec) = self.load(&key)? {
                // A directory with children stays: a lease never removes other keys.
                if rec.kind == EntryKind::Dir && self.has_children(&key)? {
                    let mut rec = rec;
                    rec.lease = 0;
                    self.store(&key, &rec, false)?;
                    continue;
                }
                let mut rec = rec;
                rec.lease = 0;
                self.remove(&key, &rec, kind)?;
                deleted += 1;
            }
        }
        self.set_raw(layout::lease_key(id), None);
        Ok(deleted)
    }

    // ---- commands ----

    fn run(&mut self, command: &Command) -> CommandResult {
        match command {
            Command::Put(op) => {
                let entry = self.put(op)?;
                Ok(WriteResult::Put { revision: 0, entry })
            }
            Command::SetAttr { key, change } => {
                let entry = self.set_attr(key, change)?;
                Ok(WriteResult::Put { revision: 0, entry })
            }
            Command::Delete { key, mode } => {
                let deleted = self.delete(key, *mode)?;
                Ok(WriteResult::Deleted {
                    revision: 0,
                    deleted,
                })
            }
            Command::DeletePrefix { prefix } => {
                let deleted = self.delete_prefix(prefix)?;
                Ok(WriteResult::Deleted {
                    revision: 0,
                    deleted,
                })
            }
            Command::Rename { from, to, mode } => {
                let moved = self.rename(from, to, *mode)?;
                Ok(WriteResult::Renamed { revision: 0, moved })
            }
            Command::Txn(txn) => self.txn(txn),
            Command::Topic(cmd) => {
                let outcome = crate::topics::apply::run(self, cmd)?;
                Ok(WriteResult::Topic {
                    revision: 0,
                    outcome,
                })
            }
            Command::Secret(cmd) => {
                let outcome = crate::secrets::apply::run(self, cmd)?;
                Ok(WriteResult::Secret {
                    revision: 0,
                    outcome,
                })
            }
            Command::LeaseGrant { ttl_secs, id } => {
                if !(MIN_LEASE_TTL_SECS..=MAX_LEASE_TTL_SECS).contains(ttl_secs) {
                    return Err(Error::invalid(format!(
                        "lease TTL must be between {MIN_LEASE_TTL_SECS} and {MAX_LEASE_TTL_SECS} seconds"
                    )));
                }
                let id = if *id == 0 {
                    self.meta.next_lease_id = self.meta.next_lease_id.max(1);
                    let id = self.meta.next_lease_id;
                    self.meta.next_lease_id += 1;
                    id
                } else {
                    if self.load_lease(*id)?.is_some() {
                        return Err(Error::new(
                            ErrorKind::AlreadyExists,
                            format!("lease {id} exists"),
                        ));
                    }
                    self.meta.next_lease_id = self.meta.next_lease_id.max(id.saturating_add(1));
                    *id
                };
                let lease = LeaseRecord {
                    id,
                    ttl_secs: *ttl_secs,
                    expires_at_ns: self.deadline(*ttl_secs),
                    keys: 0,
                };
                self.save_lease(&lease)?;
                Ok(WriteResult::Lease {
                    revision: 0,
                    lease: lease_info(&lease),
                })
            }
            Command::LeaseKeepAlive { id } => {
                let mut lease = self
                    .load_lease(*id)?
                    .ok_or_else(|| Error::not_found(format!("lease {id}")))?;
                lease.expires_at_ns = self.deadline(lease.ttl_secs);
                self.save_lease(&lease)?;
                Ok(WriteResult::Lease {
                    revision: 0,
                    lease: lease_info(&lease),
                })
            }
            Command::LeaseRevoke { id } => {
                if self.load_lease(*id)?.is_none() {
                    return Err(Error::not_found(format!("lease {id}")));
                }
                let deleted = self.revoke(*id, EventKind::Delete)?;
                Ok(WriteResult::LeaseRevoked {
                    revision: 0,
                    deleted,
                })
            }
            Command::ExpireLeases { ids } => {
                let mut expired = Vec::new();
                for id in ids.iter().take(MAX_LEASES_PER_EXPIRY) {
                    if let Some(lease) = self.load_lease(*id)? {
                        if lease.expires_at_ns <= self.now() {
                            self.revoke(*id, EventKind::Expire)?;
                            expired.push(*id);
                        }
                    }
                }
                Ok(WriteResult::Expired {
                    revision: 0,
                    leases: expired,
                })
            }
        }
    }

    fn deadline(&self, ttl_secs: u64) -> i64 {
        let ttl_ns = i64::try_from(ttl_secs.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX);
        self.now().saturating_add(ttl_ns)
    }

    fn put(&mut self, op: &PutOp) -> Result<EntryMeta> {
        validate_key(&op.key)?;
        validate_put(op)?;
        let (parent, _) = key::split(&op.key);
        let uid = op.uid.unwrap_or(0);
        let gid = op.gid.unwrap_or(0);
        self.ensure_dir(parent, op.create_parents, uid, gid)?;
        let existing = self.load(&op.key)?;
        check_condition(&op.key, existing.as_ref(), &op.condition)?;
        let rec = match existing {
            Some(old) => {
                match (old.kind, op.kind) {
                    (EntryKind::Dir, EntryKind::Dir) => {}
                    (EntryKind::Dir, _) => {
                        return Err(Error::new(
                            ErrorKind::IsDir,
                            format!("{:?} is a directory", op.key),
                        ))
                    }
                    (_, EntryKind::Dir) => {
                        return Err(Error::new(
                            ErrorKind::AlreadyExists,
                            format!("{:?} exists and is not a directory", op.key),
                        ))
                    }
                    _ => {}
                }
                let mut rec = old.clone();
                rec.kind = op.kind;
                rec.value = op.value.clone();
                rec.rdev = op.rdev;
                rec.mode = op.mode.map(|m| m & 0o7777).unwrap_or(old.mode);
                rec.uid = op.uid.unwrap_or(old.uid);
                rec.gid = op.gid.unwrap_or(old.gid);
                rec.mtime_ns = op.mtime_ns.unwrap_or(self.now());
                rec.ctime_ns = self.now();
                rec.mod_revision = self.rev;
                rec.version = old.version.saturating_add(1);
                if let Some(x) = &op.xattrs {
                    rec.xattrs = x.clone();
                }
                self.set_lease(&op.key, &mut rec, op.lease)?;
                self.store(&op.key, &rec, false)?;
                rec
            }
            None => {
                let mode = op.mode.unwrap_or(op.kind.default_mode());
                let mut rec =
                    self.new_record(op.kind, op.value.clone(), mode, uid, gid, op.mtime_ns);
                rec.rdev = op.rdev;
                if let Some(x) = &op.xattrs {
                    rec.xattrs = x.clone();
                }
                self.set_lease(&op.key, &mut rec, op.lease)?;
                self.store(&op.key, &rec, true)?;
                rec
            }
        };
        Ok(rec.meta())
    }

    fn set_lease(&mut self, key: &str, rec: &mut EntryRecord, lease: Option<u64>) -> Result<()> {
        let Some(new) = lease else { return Ok(()) };
        if new == rec.lease {
            return Ok(());
        }
        if rec.lease != 0 {
            self.detach(rec.lease, key)?;
        }
        if new != 0 {
            self.attach(new, key)?;
        }
        rec.lease = new;
        Ok(())
    }

    fn set_attr(&mut self, key: &str, change: &AttrChange) -> Result<EntryMeta> {
        validate_key(key)?;
        let mut rec = self.load(key)?.ok_or_else(|| Error::not_found(key))?;
        if let Some(mode) = change.mode {
            rec.mode = mode & 0o7777;
        }
        if let Some(uid) = change.uid {
            rec.uid = uid;
        }
        if let Some(gid) = change.gid {
            rec.gid = gid;
        }
        if let Some(size) = change.size {
            match rec.kind {
                EntryKind::File => {}
                EntryKind::Dir => {
                    return Err(Error::new(
                        ErrorKind::IsDir,
                        format!("{key:?} is a directory"),
                    ))
                }
                other => {
                    return Err(Error::invalid(format!(
                        "{key:?} is a {}, not a file",
                        other.name()
                    )))
                }
            }
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if size > MAX_VALUE_BYTES_CEILING {
                return Err(Error::new(
                    ErrorKind::TooBig,
                    format!("size {size} exceeds the value limit"),
                ));
            }
            rec.value.resize(size, 0);
            rec.mtime_ns = self.now();
        }
        if let Some(mtime) = change.mtime_ns {
            rec.mtime_ns = mtime.unwrap_or(self.now());
        }
        if let Some((name, value, mode)) = &change.set_xattr {
            validate_xattr(name, value)?;
            let pos = rec.xattrs.iter().position(|(n, _)| n == name);
            match (pos, mode) {
                (Some(_), XattrMode::Create) => {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!("xattr {name} exists"),
                    ))
                }
                (None, XattrMode::Replace) => {
                    return Err(Error::new(
                        ErrorKind::NoData,
                        format!("xattr {name} does not exist"),
                    ))
                }
                (Some(i), _) => {
                    if let Some(slot) = rec.xattrs.get_mut(i) {
                        slot.1 = value.clone();
                    }
                }
                (None, _) => {
                    if rec.xattrs.len() >= MAX_XATTRS_PER_ENTRY {
                        return Err(Error::new(
                            ErrorKind::NoSpace,
                            format!("more than {MAX_XATTRS_PER_ENTRY} xattrs"),
                        ));
                    }
                    rec.xattrs.push((name.clone(), value.clone()));
                    rec.xattrs.sort();
                }
            }
        }
        if let Some(name) = &change.remove_xattr {
            let before = rec.xattrs.len();
            rec.xattrs.retain(|(n, _)| n != name);
            if rec.xattrs.len() == before {
                return Err(Error::new(
                    ErrorKind::NoData,
                    format!("xattr {name} does not exist"),
                ));
            }
        }
        rec.ctime_ns = self.now();
        rec.mod_revision = self.rev;
        rec.version = rec.version.saturating_add(1);
        self.store(key, &rec, false)?;
        Ok(rec.meta())
    }

    fn delete(&mut self, key: &str, mode: DeleteMode) -> Result<u64> {
        validate_key(key)?;
        let Some(rec) = self.load(key)? else {
            return match mode {
                DeleteMode::Any => Ok(0),
                _ => Err(Error::not_found(key)),
            };
        };
        match (rec.kind, mode) {
            (EntryKind::Dir, DeleteMode::NonDir) => {
                return Err(Error::new(
                    ErrorKind::IsDir,
                    format!("{key:?} is a directory"),
                ))
            }
            (kind, DeleteMode::EmptyDir) if kind != EntryKind::Dir => {
                return Err(Error::new(
                    ErrorKind::NotDir,
                    format!("{key:?} is not a directory"),
                ))
            }
            _ => {}
        }
        if rec.kind == EntryKind::Dir && self.has_children(key)? {
            return Err(Error::new(
                ErrorKind::NotEmpty,
                format!("directory {key:?} is not empty"),
            ));
        }
        self.remove(key, &rec, EventKind::Delete)?;
        Ok(1)
    }

    fn delete_prefix(&mut self, prefix: &str) -> Result<u64> {
        let prefix = key::normalize(prefix);
        if !prefix.is_empty() {
            validate_key(prefix)?;
        }
        let mut victims: Vec<(String, EntryRecord)> = Vec::new();
        if prefix.is_empty() {
            victims = self
                .descendants("", MAX_DELETE_PREFIX_KEYS, ErrorKind::TooBig)
                .map_err(|e| {
                    if e.kind == ErrorKind::TooBig {
                        too_many_to_delete()
                    } else {
                        e
                    }
                })?;
        } else if let Some(rec) = self.load(prefix)? {
            victims = self
                .subtree(prefix, rec, MAX_DELETE_PREFIX_KEYS + 1, ErrorKind::TooBig)
                .map_err(|e| {
                    if e.kind == ErrorKind::TooBig {
                        too_many_to_delete()
                    } else {
                        e
                    }
                })?;
        }
        let count = victims.len() as u64;
        // Innermost first, so a watcher never sees a child outlive its directory.
        for (k, rec) in victims.iter().rev() {
            self.remove(k, rec, EventKind::Delete)?;
        }
        Ok(count)
    }

    fn rename(&mut self, from: &str, to: &str, mode: RenameMode) -> Result<u64> {
        validate_key(from)?;
        validate_key(to)?;
        let src = self.load(from)?.ok_or_else(|| Error::not_found(from))?;
        if from == to {
            return Ok(0);
        }
        if key::is_within(to, from) {
            return Err(Error::invalid(format!(
                "cannot move {from:?} inside itself"
            )));
        }
        if mode == RenameMode::Exchange && key::is_within(from, to) {
            return Err(Error::invalid(format!(
                "cannot exchange {from:?} with its ancestor {to:?}"
            )));
        }
        let (to_parent, _) = key::split(to);
        self.ensure_dir(to_parent, false, 0, 0)?;
        let dst = self.load(to)?;
        let moving = self.subtree(
            from,
            src.clone(),
            MAX_RENAME_ENTRIES + 1,
            ErrorKind::CrossDevice,
        )?;
        let mut swapped: Vec<(String, EntryRecord)> = Vec::new();
        match (mode, dst) {
            (RenameMode::NoReplace, Some(_)) => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{to:?} exists"),
                ))
            }
            (RenameMode::Exchange, None) => return Err(Error::not_found(to)),
            (RenameMode::Exchange, Some(d)) => {
                swapped = self.subtree(to, d, MAX_RENAME_ENTRIES + 1, ErrorKind::CrossDevice)?;
                if moving.len() + swapped.len() > MAX_RENAME_ENTRIES {
                    return Err(Error::new(
                        ErrorKind::CrossDevice,
                        "exchange moves too many entries",
                    ));
                }
            }
            (RenameMode::Replace, Some(d)) => {
                match (src.kind == EntryKind::Dir, d.kind == EntryKind::Dir) {
                    (true, false) => {
                        return Err(Error::new(
                            ErrorKind::NotDir,
                            format!("{to:?} is not a directory"),
                        ))
                    }
                    (false, true) => {
                        return Err(Error::new(
                            ErrorKind::IsDir,
                            format!("{to:?} is a directory"),
                        ))
                    }
                    (true, true) if self.has_children(to)? => {
                        return Err(Error::new(
                            ErrorKind::NotEmpty,
                            format!("directory {to:?} is not empty"),
                        ))
                    }
                    _ => {}
                }
                self.remove(to, &d, EventKind::Delete)?;
            }
            (_, None) => {}
        }
        let moved = (moving.len() + swapped.len()) as u64;
        for (k, rec) in moving.iter().rev().chain(swapped.iter().rev()) {
            self.remove(k, rec, EventKind::Delete)?;
        }
        self.reinsert(from, to, moving)?;
        self.reinsert(to, from, swapped)?;
        Ok(moved)
    }

    /// Re-creates a removed subtree rooted at `old_root` under `new_root`.
    fn reinsert(
        &mut self,
        old_root: &str,
        new_root: &str,
        entries: Vec<(String, EntryRecord)>,
    ) -> Result<()> {
        for (i, (old_key, mut rec)) in entries.into_iter().enumerate() {
            let suffix = old_key.get(old_root.len()..).unwrap_or_default();
            let new_key = format!("{new_root}{suffix}");
            rec.mod_revision = self.rev;
            if rec.lease != 0 {
                self.set_raw(layout::attach_key(rec.lease, &new_key), Some(Vec::new()));
                if let Some(mut lease) = self.load_lease(rec.lease)? {
                    lease.keys = lease.keys.saturating_add(1);
                    self.save_lease(&lease)?;
                }
            }
            if i == 0 {
                // The moved entry: its ctime and its new parent change.
                rec.ctime_ns = self.now();
                self.store(&new_key, &rec, true)?;
            } else {
                // Entries below it keep their times and link counts (POSIX touches only
                // the two parents of a rename).
                self.place(&new_key, &rec)?;
            }
        }
        Ok(())
    }

    /// Writes an entry without touching its parent.
    fn place(&mut self, key: &str, rec: &EntryRecord) -> Result<()> {
        self.set_raw(layout::entry_key(key), Some(encode(rec)?));
        self.event(EventKind::Put, key, Some(rec.clone()));
        Ok(())
    }

    fn txn(&mut self, txn: &Txn) -> CommandResult {
        if txn.compare.len() > MAX_TXN_OPS
            || txn.success.len() > MAX_TXN_OPS
            || txn.failure.len() > MAX_TXN_OPS
        {
            return Err(Error::new(ErrorKind::TooBig, format!("a transaction holds at most {MAX_TXN_OPS} compares and {MAX_TXN_OPS} operations per branch")));
        }
        let mut succeeded = true;
        for cmp in &txn.compare {
            validate_key(&cmp.key)?;
            let rec = self.load(&cmp.key)?;
            if !compare_holds(rec.as_ref(), cmp) {
                succeeded = false;
                break;
            }
        }
        let ops = if succeeded {
            &txn.success
        } else {
            &txn.failure
        };
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            results.push(match op {
                TxnOp::Put(p) => TxnOpResult::Put(self.put(p)?),
                TxnOp::Delete { key } => TxnOpResult::Deleted(self.delete(key, DeleteMode::Any)?),
                TxnOp::DeletePrefix { prefix } => TxnOpResult::Deleted(self.delete_prefix(prefix)?),
                TxnOp::Get { key } => {
                    validate_key(key)?;
                    TxnOpResult::Get(self.load(key)?)
                }
            });
        }
        Ok(WriteResult::Txn {
            revision: 0,
            succeeded,
            results,
        })
    }
}

/// Most history records one entry deletes while trimming (the rest go with later entries).
const MAX_HISTORY_TRIM_PER_ENTRY: usize = 10_000;

fn too_many_to_delete() -> Error {
    Error::new(
        ErrorKind::TooBig,
        format!("more than {MAX_DELETE_PREFIX_KEYS} keys under the prefix; delete it in parts"),
    )
}

fn history_revision(k: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = k.get(1..9)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

fn set_revision(result: &mut WriteResult, rev: u64) {
    match result {
        WriteResult::Put { revision, .. }
        | WriteResult::Deleted { revision, .. }
        | WriteResult::Renamed { revision, .. }
        | WriteResult::Txn { revision, .. }
        | WriteResult::Lease { revision, .. }
        | WriteResult::LeaseRevoked { revision, .. }
        | WriteResult::Expired { revision, .. }
        | WriteResult::Topic { revision, .. }
        | WriteResult::Secret { revision, .. } => *revision = rev,
    }
}

fn lease_info(l: &LeaseRecord) -> LeaseInfo {
    LeaseInfo {
        id: l.id,
        ttl_secs: l.ttl_secs,
        expires_at_ns: l.expires_at_ns,
    }
}

/// Size and shape checks that do not depend on the store (also run before proposing).
pub fn validate_put(op: &PutOp) -> Result<()> {
    if op.value.len() > MAX_VALUE_BYTES_CEILING {
        return Err(Error::new(
            ErrorKind::TooBig,
            format!("value is {} bytes", op.value.len()),
        ));
    }
    match op.kind {
        EntryKind::Dir if !op.value.is_empty() => {
            return Err(Error::invalid("a directory has no value"))
        }
        EntryKind::Symlink if op.value.is_empty() || op.value.len() > MAX_SYMLINK_TARGET_BYTES => {
            return Err(Error::new(
                ErrorKind::NameTooLong,
                "symlink target is empty or too long",
            ))
        }
        EntryKind::Symlink if op.value.contains(&0) => {
            return Err(Error::invalid("NUL in symlink target"))
        }
        kind if kind.is_special() && !op.value.is_empty() => {
            return Err(Error::invalid(format!("a {} has no value", kind.name())))
        }
        _ => {}
    }
    if let Some(x) = &op.xattrs {
        if x.len() > MAX_XATTRS_PER_ENTRY {
            return Err(Error::new(
                ErrorKind::NoSpace,
                format!("more than {MAX_XATTRS_PER_ENTRY} xattrs"),
            ));
        }
        for (n, v) in x {
            validate_xattr(n, v)?;
        }
    }
    Ok(())
}

fn validate_xattr(name: &str, value: &[u8]) -> Result<()> {
    if name.is_empty() || name.len() > MAX_XATTR_NAME_BYTES || name.contains('\0') {
        return Err(Error::new(
            ErrorKind::NameTooLong,
            "xattr name is empty or too long",
        ));
    }
    if name.starts_with("user.aspen.") {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            format!("{name} is read-only metadata"),
        ));
    }
    if value.len() > MAX_XATTR_VALUE_BYTES {
        return Err(Error::new(
            ErrorKind::TooBig,
            format!("xattr value over {MAX_XATTR_VALUE_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn check_condition(key: &str, existing: Option<&EntryRecord>, cond: &PutCondition) -> Result<()> {
    let failed = |what: String| {
        Err(Error::new(
            ErrorKind::CompareFailed,
            format!("{key:?}: {what}"),
        ))
    };
    match (cond, existing) {
        (PutCondition::Any, _) => Ok(()),
        (PutCondition::MustNotExist, Some(_)) => Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{key:?} exists"),
        )),
        (PutCondition::MustNotExist, None) => Ok(()),
        (PutCondition::MustExist, None) => Err(Error::not_found(key)),
        (PutCondition::MustExist, Some(_)) => Ok(()),
        (PutCondition::ModRevision(want), e) => {
            let have = e.map_or(0, |r| r.mod_revision);
            if have == *want {
                Ok(())
            } else {
                failed(format!("mod_revision is {have}, expected {want}"))
            }
        }
        (PutCondition::Version(want), e) => {
            let have = e.map_or(0, |r| r.version);
            if have == *want {
                Ok(())
            } else {
                failed(format!("version is {have}, expected {want}"))
            }
        }
        (PutCondition::Value(want), Some(r)) if &r.value == want => Ok(()),
        (PutCondition::Value(_), _) => failed("value differs".to_string()),
    }
}

fn compare_holds(rec: Option<&EntryRecord>, cmp: &Compare) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match &cmp.target {
        CompareTarget::Value(v) => rec.map(|r| r.value.as_slice().cmp(v.as_slice())),
        CompareTarget::Version(v) => Some(rec.map_or(0, |r| r.version).cmp(v)),
        CompareTarget::ModRevision(v) => Some(rec.map_or(0, |r| r.mod_revision).cmp(v)),
        CompareTarget::CreateRevision(v) => Some(rec.map_or(0, |r| r.create_revision).cmp(v)),
        CompareTarget::Lease(v) => Some(rec.map_or(0, |r| r.lease).cmp(v)),
    };
    match (ord, cmp.op) {
        (None, _) => false,
        (Some(o), CompareOp::Equal) => o == Ordering::Equal,
        (Some(o), CompareOp::NotEqual) => o != Ordering::Equal,
        (Some(o), CompareOp::Less) => o == Ordering::Less,
        (Some(o), CompareOp::Greater) => o == Ordering::Greater,
    }
}
