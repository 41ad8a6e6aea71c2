//! Printing results for people (`-w simple`) and for scripts (`-w json`, one JSON value
//! per line). Values are binary-safe: `simple` writes their exact bytes, `json` gives a
//! UTF-8 `value` or, when the bytes are not UTF-8, `value_base64`.

use std::io::Write;

use base64::Engine;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::kv::{EntryMeta, EntryRecord, Event, EventKind, LeaseInfo, WriteResult};

pub fn meta_json(key: &str, m: &EntryMeta) -> Value {
    json!({
        "key": key,
        "kind": m.kind.name(),
        "size": m.size,
        "mode": format!("{:04o}", m.mode),
        "uid": m.uid,
        "gid": m.gid,
        "mtime_ns": m.mtime_ns,
        "ctime_ns": m.ctime_ns,
        "create_revision": m.create_revision,
        "mod_revision": m.mod_revision,
        "version": m.version,
        "lease": m.lease,
        "nlink": m.nlink,
        "rdev": m.rdev,
    })
}

pub fn entry_json(key: &str, rec: &EntryRecord) -> Value {
    let mut v = meta_json(key, &rec.meta());
    insert_bytes(&mut v, "value", &rec.value);
    v
}

/// Adds `bytes` to a JSON object as `NAME` (UTF-8) or `NAME_base64`.
pub fn insert_bytes(v: &mut Value, name: &str, bytes: &[u8]) {
    if let Some(obj) = v.as_object_mut() {
        match std::str::from_utf8(bytes) {
            Ok(s) => obj.insert(name.into(), json!(s)),
            Err(_) => obj.insert(
                format!("{name}_base64"),
                json!(base64::engine::general_purpose::STANDARD.encode(bytes)),
            ),
        };
    }
}

/// Reads stdin to the end, at most `MAX_VALUE_BYTES_CEILING` + 1 bytes (so an
/// oversized input is refused by the size check, not truncated silently).
pub fn read_stdin() -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::io::stdin()
        .take(crate::limits::MAX_VALUE_BYTES_CEILING as u64 + 1)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// Prints a write's result: JSON, or the line `simple` makes.
pub fn print_result(
    c: &super::ClientArgs,
    r: &WriteResult,
    simple: impl FnOnce() -> String,
) -> Result<()> {
    match c.write_out {
        super::OutputFormat::Json => print_json(&result_json(r)),
        super::OutputFormat::Simple => print_line(&simple()),
    }
}

pub fn lease_json(l: &LeaseInfo) -> Value {
    json!({"id": l.id, "ttl_secs": l.ttl_secs, "expires_at_ns": l.expires_at_ns})
}

pub fn result_json(r: &WriteResult) -> Value {
    match r {
        WriteResult::Put { revision, entry } => {
            json!({"revision": revision, "entry": meta_json("", entry)})
        }
        WriteResult::Deleted { revision, deleted } => {
            json!({"revision": revision, "deleted": deleted})
        }
        WriteResult::Renamed { revision, moved } => json!({"revision": revision, "moved": moved}),
        WriteResult::Txn {
            revision,
            succeeded,
            results,
        } => {
            let rs: Vec<Value> = results
                .iter()
                .map(|r| match r {
                    crate::kv::TxnOpResult::Put(m) => json!({"put": meta_json("", m)}),
                    crate::kv::TxnOpResult::Deleted(n) => json!({"deleted": n}),
                    crate::kv::TxnOpResult::Get(Some(e)) => json!({"get": entry_json("", e)}),
                    crate::kv::TxnOpResult::Get(None) => json!({"get": null}),
                })
                .collect();
            json!({"revision": revision, "succeeded": succeeded, "results": rs})
        }
        WriteResult::Lease { revision, lease } => {
            json!({"revision": revision, "lease": lease_json(lease)})
        }
        WriteResult::LeaseRevoked { revision, deleted } => {
            json!({"revision": revision, "deleted": deleted})
        }
        WriteResult::Expired { revision, leases } => {
            json!({"revision": revision, "expired": leases})
        }
        WriteResult::Topic { outcome, .. } => topic_outcome_json(outcome),
        WriteResult::Secret { outcome, .. } => secret_outcome_json(outcome),
    }
}

pub fn topic_outcome_json(o: &crate::topics::TopicOutcome) -> Value {
    use crate::topics::TopicOutcome as O;
    match o {
        O::Done => json!({"ok": true}),
        O::Published { first, count } => json!({"first_offset": first, "count": count}),
        O::Claimed(Some(c)) => {
            json!({"offset": c.offset, "deliveries": c.deliveries, "deadline_ns": c.deadline_ns})
        }
        O::Claimed(None) => json!({"offset": null}),
        O::Removed { messages } => json!({"removed_messages": messages}),
        O::ClaimedBatch(cs) => json!({"offsets": cs.iter().map(|c| c.offset).collect::<Vec<_>>()}),
        O::Acked { count } => json!({"acknowledged": count}),
    }
}

pub fn secret_outcome_json(o: &crate::secrets::SecretOutcome) -> Value {
    use crate::secrets::SecretOutcome as O;
    match o {
        O::Written { version } => json!({"version": version}),
        O::Changed { versions } => json!({"versions": versions}),
        O::Done => json!({"ok": true}),
        O::Removed { versions } => json!({"removed_versions": versions}),
    }
}

pub fn event_json(e: &Event) -> Value {
    let kind = match e.kind {
        EventKind::Put => "PUT",
        EventKind::Delete => "DELETE",
        EventKind::Expire => "EXPIRE",
    };
    let mut v = match &e.entry {
        Some(rec) => entry_json(&e.key, rec),
        None => json!({"key": e.key}),
    };
    if let Some(obj) = v.as_object_mut() {
        obj.insert("type".into(), json!(kind));
        obj.insert("revision".into(), json!(e.revision));
    }
    v
}

/// Prints one JSON value on its own line.
pub fn print_json(v: &Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v).map_err(|e| Error::io(e.to_string()))?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Writes raw bytes to stdout.
pub fn print_bytes(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

pub fn print_line(s: &str) -> Result<()> {
    print_bytes(format!("{s}\n").as_bytes())
}
