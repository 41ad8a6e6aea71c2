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
    let prefix = layout::child_prefix(dir);
    let mut from = prefix.clone();
    if let Some(a) = after {
        from.extend_from_slice(a.as_bytes());
        from.push(0); // strictly after `a`
    }
    let end = crate::store::prefix_end(&prefix);
    let rows = view.scan(&from, end.as_deref(), limit + 1)?;
    let more = rows.len() > limit;
    let mut out = Vec::with_capacity(rows.len().min(limit));
    for (k, _) in rows.into_iter().take(limit) {
        let name = std::str::from_utf8(k.get(prefix.len()..).unwrap_or_default())
            .map_err(|_| Error::corrupt("child name is not UTF-8"))?
            .to_string();
        let child = key::join(dir, &name);
        match get(view, &child)? {
            Some(rec) => out.push((name, rec.meta())),
            None => {
                return Err(Error::corrupt(format!(
                    "directory index names missing entry {child:?}"
                )))
            }
        }
    }
    Ok((out, more))
}

/// Entries at or below `prefix` (path semantics) with keys after `after`.
pub fn range(
    view: &View,
    prefix: &str,
    after: Option<&str>,
    limit: usize,
    keys_only: bool,
) -> Result<(Vec<(String, EntryRecord)>, bool)> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    let mut push =
        |k: String, mut rec: EntryRecord, out: &mut Vec<(String, EntryRecord)>| -> bool {
            if keys_only {
                rec.value.clear();
            }
            bytes = bytes.saturating_add(rec.value.len() + k.len());
            out.push((k, rec));
            out.len() < limit && bytes < MAX_LIST_PAGE_BYTES
        };
    // The prefix entry itself sorts first.
    if !prefix.is_empty() && after.is_none_or(|a| a < prefix) {
        key::validate_key(prefix)?;
        if let Some(rec) = get(view, prefix)? {
            if !push(prefix.to_string(), rec, &mut out) {
                let more = has_more_below(view, prefix)?;
                return Ok((out, more));
            }
        }
    }
    let below = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let scan_prefix = layout::entry_key(&below);
    let mut from = scan_prefix.clone();
    if let Some(a) = after.filter(|a| a.as_bytes() >= below.as_bytes()) {
        from = layout::entry_key(a);
        from.push(0);
    }
    let end = crate::store::prefix_end(&scan_prefix);
    let room = limit.saturating_sub(out.len());
    let rows = view.scan(&from, end.as_deref(), room + 1)?;
    let mut more = false;
    let total = rows.len();
    for (i, (k, v)) in rows.into_iter().enumerate() {
        if i >= room {
            more = true;
            break;
        }
        let name = std::str::from_utf8(k.get(1..).unwrap_or_default())
            .map_err(|_| Error::corrupt("entry key is not UTF-8"))?
            .to_string();
        let rec: EntryRecord = decode(&v, "entry")?;
        if !push(name, rec, &mut out) {
            more = i + 1 < total;
            break;
        }
    }
    Ok((out, more))
}

fn has_more_below(view: &View, prefix: &str) -> Result<bool> {
    let scan_prefix = layout::entry_key(&format!("{prefix}/"));
    Ok(!view.scan_prefix(&scan_prefix, 1)?.is_empty())
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
