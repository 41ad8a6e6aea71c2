//! Reads over a consistent view of the state keyspace: point gets, directory listings
//! through the child index, path-prefix ranges, leases. Pages are bounded by entry count
//! and by bytes.

use crate::error::{Error, Result};
use crate::kv::key;
use crate::kv::layout::{self, LeaseRecord, SmMeta};
use crate::kv::types::*;
use crate::limits::{MAX_LIST_LIMIT, MAX_LIST_PAGE_BYTES};
use crate::store::{decode, View};

pub fn get(view: &View, key: &str) -> Result<Option<EntryRecord>> {
    match view.get(&layout::entry_key(key))? {
        Some(bytes) => Ok(Some(decode(&bytes, "entry")?)),
        None => Ok(None),
    }
}

pub fn meta(view: &View) -> Result<SmMeta> {
    match view.get(layout::META_KEY)? {
        Some(bytes) => decode(&bytes, "state machine meta"),
        None => Ok(SmMeta::default()),
    }
}

/// Answers one query.
pub fn query(view: &View, q: &ReadQuery) -> Result<ReadResult> {
    match q {
        ReadQuery::Get { key } => {
            let key = key::normalize(key);
            key::validate_key(key)?;
            Ok(ReadResult::Entry(get(view, key)?))
        }
        ReadQuery::Stat { key } => {
            let key = key::normalize(key);
            key::validate_key(key)?;
            Ok(ReadResult::Meta(get(view, key)?.map(|r| r.meta())))
        }
        ReadQuery::ListDir { dir, after, limit } => {
            let (entries, more) =
                list_dir(view, key::normalize(dir), after.as_deref(), clamp(*limit))?;
            Ok(ReadResult::Dir { entries, more })
        }
        ReadQuery::Range {
            prefix,
            after,
            limit,
            keys_only,
        } => {
            let (entries, more) = range(
                view,
                key::normalize(prefix),
                after.as_deref(),
                clamp(*limit),
                *keys_only,
            )?;
            Ok(ReadResult::Range { entries, more })
        }
        ReadQuery::Revision => Ok(ReadResult::Revision(meta(view)?.revision)),
        ReadQuery::LeaseList => Ok(ReadResult::Leases(leases(view)?)),
        ReadQuery::Stats => Err(Error::internal("stats are answered by the node")),
        ReadQuery::Topic(q) => crate::topics::read::query(view, q).map(ReadResult::Topic),
        ReadQuery::Secret(q) => crate::secrets::read::query(view, q).map(ReadResult::Secret),
    }
}

fn clamp(limit: u32) -> usize {
    (limit as usize).clamp(1, MAX_LIST_LIMIT)
}

/// Direct children of `dir` with names after `after`.
pub fn list_dir(
    view: &View,
    dir: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<(Vec<(String, EntryMeta)>, bool)> {
    if !dir.is_empty() {
        key::validate_key(dir)?;
        match get(view, dir)? {
            Some(rec) if rec.kind == EntryKind::Dir => {}
            Some(_) => {
                return Err(Error::new(
                    crate::error::ErrorKind::NotDir,
                    format!("{dir:?} is not a directory"),
                ))
            }
            None => return Err(Error::not_found(dir)),
        }
    }
    let prefix = layout::dir_prefix(dir);
    let mut from = prefix.clone();
    if let Some(a) = after {
        from.extend_from_slice(a.as_bytes());
        from.push(0); // strictly after `a`
    }
    let end = crate::store::prefix_end(&prefix);
    let rows = view.scan(&from, end.as_deref(), limit + 1)?;
    let more = rows.len() > limit;
    let mut out = Vec::with_capacity(rows.len().min(limit));
    for (k, v) in rows.into_iter().take(limit) {
        let name = layout::name_of(&k, prefix.len())?.to_string();
        out.push((name, decode_meta(&v)?));
    }
    Ok((out, more))
}

/// An entry's metadata straight from its record, without copying the value.
fn decode_meta(bytes: &[u8]) -> Result<EntryMeta> {
    let rec: EntryRecordRef = crate::store::decode_borrowed(bytes, "entry")?;
    Ok(rec.meta())
}

/// Entries at or below `prefix` (path semantics), depth first with each directory before
/// its children and children in name order; `after` continues after that key.
pub fn range(
    view: &View,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
    keys_only: bool,
) -> Result<(Vec<(String, EntryRecord)>, bool)> {
    let mut out: Vec<(String, EntryRecord)> = Vec::new();
    let mut bytes = 0usize;
    // Directories being walked, deepest last, each with the last name visited in it.
    let mut stack: Vec<(String, Option<String>)> = Vec::new();
    match after {
        None if prefix.is_empty() => stack.push((String::new(), None)),
        None => {
            key::validate_key(prefix)?;
            let Some(mut rec) = get(view, prefix)? else {
                return Ok((out, false));
            };
            if rec.kind == EntryKind::Dir {
                stack.push((prefix.to_string(), None));
            }
            if keys_only {
                rec.value.clear();
            }
            bytes += rec.value.len() + prefix.len();
            out.push((prefix.to_string(), rec));
        }
        Some(a) => {
            let a = key::normalize(a);
            key::validate_key(a)?;
            if !key::is_within(a, prefix) || a == prefix && prefix.is_empty() {
                return Err(Error::invalid(format!("{a:?} is not below {prefix:?}")));
            }
            let mut frames = Vec::new();
            if get(view, a)?.is_some_and(|r| r.kind == EntryKind::Dir) {
                frames.push((a.to_string(), None));
            }
            let mut k = a;
            while k != prefix {
                let (parent, name) = key::split(k);
                frames.push((parent.to_string(), Some(name.to_string())));
                k = parent;
            }
            frames.reverse();
            stack = frames;
        }
    }
    let mut more = false;
    while let Some((dir, cursor)) = stack.last().cloned() {
        let dir_prefix = layout::dir_prefix(&dir);
        let mut from = dir_prefix.clone();
        if let Some(c) = &cursor {
            from.extend_from_slice(c.as_bytes());
            from.push(0);
        }
        let end = crate::store::prefix_end(&dir_prefix);
        let rows = view.scan(&from, end.as_deref(), 1)?;
        let Some((k, v)) = rows.first() else {
            stack.pop();
            continue;
        };
        if out.len() >= limit || bytes >= MAX_LIST_PAGE_BYTES {
            more = true;
            break;
        }
        let name = layout::name_of(k, dir_prefix.len())?.to_string();
        let child = key::join(&dir, &name);
        let mut rec: EntryRecord = decode(v, "entry")?;
        if let Some(top) = stack.last_mut() {
            top.1 = Some(name);
        }
        if keys_only {
            rec.value.clear();
        }
        bytes += rec.value.len() + child.len();
        if rec.kind == EntryKind::Dir {
            stack.push((child.clone(), None));
        }
        out.push((child, rec));
    }
    Ok((out, more))
}

pub fn leases(view: &View) -> Result<Vec<LeaseInfo>> {
    let rows = view.scan_prefix(&[layout::TAG_LEASE], MAX_LIST_LIMIT)?;
    rows.iter()
        .map(|(_, v)| {
            let l: LeaseRecord = decode(v, "lease")?;
            Ok(LeaseInfo {
                id: l.id,
                ttl_secs: l.ttl_secs,
                expires_at_ns: l.expires_at_ns,
            })
        })
        .collect()
}

/// Lease ids whose deadline is at or before `now_ns`, at most `limit`.
pub fn expired_leases(view: &View, now_ns: i64, limit: usize) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for l in leases(view)? {
        if l.expires_at_ns <= now_ns {
            out.push(l.id);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

/// One page of watch history starting at raw history key `from` (see
/// `layout::history_key`); returns the events and, when the page was full, the key to
/// continue from.
pub fn history_page(
    view: &View,
    from: &[u8],
    limit: usize,
) -> Result<(Vec<Event>, Option<Vec<u8>>)> {
    let end = crate::store::prefix_end(&[layout::TAG_HISTORY]);
    let rows = view.scan(from, end.as_deref(), limit)?;
    let next = match rows.last() {
        Some((k, _)) if rows.len() >= limit => {
            let mut n = k.to_vec();
            n.push(0);
            Some(n)
        }
        _ => None,
    };
    let events = rows
        .iter()
        .map(|(_, v)| decode(v, "history event"))
        .collect::<Result<Vec<Event>>>()?;
    Ok((events, next))
}
