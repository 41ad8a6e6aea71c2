//! The deterministic KV v2 rules, applied inside a raft entry through the KV applier's
//! staged storage (a failed command leaves nothing behind; every node computes the same).
//!
//! - A write makes version `current + 1`. `cas: Some(n)` holds only while the current
//!   version is `n` (0: none yet); a secret with `cas_required` refuses writes without it.
//!   The check runs here, at apply, so concurrent writers cannot both pass it.
//! - Versions `oldest..=current` are kept; beyond `max_versions` the oldest are removed
//!   (at writes and settings changes). Versions older than `delete_version_after` (by the
//!   leader's stamped clock) are marked deleted at the next write.
//! - Delete and undelete flip a version's deletion time; destroy drops its ciphertext for
//!   good (the record stays, so metadata shows it). Versions not kept are skipped.
//! - Only age ciphertext is stored: a value that does not start with the age header is
//!   refused, a last guard against plaintext reaching the state.

use super::layout as l;
use super::types::*;
use crate::error::{Error, ErrorKind, Result};
use crate::kv::apply::Applier;
use crate::limits::*;
use crate::store::{decode, encode};

/// First bytes of every binary age file.
pub const AGE_MAGIC: &[u8] = b"age-encryption.org/v1\n";

/// Applies one secret command.
pub fn run(a: &mut Applier<'_>, cmd: &SecretCommand) -> Result<SecretOutcome> {
    check(cmd)?;
    match cmd {
        SecretCommand::Put {
            path,
            ciphertext,
            cas,
        } => put(a, path, ciphertext, *cas),
        SecretCommand::Delete { path, versions } => mark(a, path, versions, Mark::Delete),
        SecretCommand::Undelete { path, versions } => mark(a, path, versions, Mark::Undelete),
        SecretCommand::Destroy { path, versions } => mark(a, path, versions, Mark::Destroy),
        SecretCommand::SetMeta { path, update } => set_meta(a, path, update),
        SecretCommand::DeleteAll { path } => delete_all(a, path),
        SecretCommand::SetRecipients { recipients } => {
            let rec = RecipientsRecord {
                recipients: recipients.clone(),
            };
            a.set_raw(l::recipients_key(), Some(encode(&rec)?));
            Ok(SecretOutcome::Done)
        }
    }
}

/// Shape checks that do not depend on the store (also run before proposing).
pub fn check(cmd: &SecretCommand) -> Result<()> {
    if let Some(path) = cmd.path() {
        validate_path(path)?;
    }
    match cmd {
        SecretCommand::Put { ciphertext, .. } => {
            if ciphertext.len() > MAX_SECRET_CIPHERTEXT_BYTES {
                return Err(Error::new(
                    ErrorKind::TooBig,
                    format!("secret ciphertext over {MAX_SECRET_CIPHERTEXT_BYTES} bytes"),
                ));
            }
            if !ciphertext.starts_with(AGE_MAGIC) {
                return Err(Error::invalid("secret value is not age ciphertext"));
            }
        }
        SecretCommand::Delete { versions, .. } | SecretCommand::Undelete { versions, .. } => {
            check_versions(versions)?
        }
        SecretCommand::Destroy { versions, .. } => {
            check_versions(versions)?;
            if versions.is_empty() {
                return Err(Error::invalid("destroy needs the versions to destroy"));
            }
        }
        SecretCommand::SetMeta { update, .. } => check_update(update)?,
        SecretCommand::DeleteAll { .. } => {}
        SecretCommand::SetRecipients { recipients } => check_recipients(recipients)?,
    }
    Ok(())
}

fn check_versions(versions: &[u64]) -> Result<()> {
    if versions.len() > MAX_SECRET_VERSIONS_PER_COMMAND {
        return Err(Error::invalid(format!(
            "at most {MAX_SECRET_VERSIONS_PER_COMMAND} versions per command"
        )));
    }
    if versions.contains(&0) {
        return Err(Error::invalid("versions start at 1"));
    }
    Ok(())
}

fn check_update(u: &MetaUpdate) -> Result<()> {
    if u.max_versions.is_some_and(|m| m > MAX_SECRET_MAX_VERSIONS) {
        return Err(Error::invalid(format!(
            "max_versions is at most {MAX_SECRET_MAX_VERSIONS}"
        )));
    }
    if u.delete_version_after_secs
        .is_some_and(|s| s > MAX_SECRET_DELETE_AFTER_SECS)
    {
        return Err(Error::invalid(format!(
            "delete_version_after is at most {MAX_SECRET_DELETE_AFTER_SECS} seconds"
        )));
    }
    if let Some(custom) = &u.custom {
        if custom.len() > MAX_SECRET_CUSTOM_ENTRIES {
            return Err(Error::invalid(format!(
                "at most {MAX_SECRET_CUSTOM_ENTRIES} custom metadata entries"
            )));
        }
        let mut prev: Option<&str> = None;
        for (k, v) in custom {
            if k.is_empty() || k.len() > MAX_SECRET_CUSTOM_KEY_BYTES {
                return Err(Error::invalid(format!(
                    "custom metadata keys have 1 to {MAX_SECRET_CUSTOM_KEY_BYTES} bytes"
                )));
            }
            if v.len() > MAX_SECRET_CUSTOM_VALUE_BYTES {
                return Err(Error::invalid(format!(
                    "custom metadata {k:?}: values have at most {MAX_SECRET_CUSTOM_VALUE_BYTES} bytes"
                )));
            }
            if prev.is_some_and(|p| p >= k.as_str()) {
                return Err(Error::invalid(
                    "custom metadata keys must be unique and sorted",
                ));
            }
            prev = Some(k);
        }
    }
    Ok(())
}

/// Checks a recipient set: 1 to `MAX_SECRET_RECIPIENTS` age x25519 public keys.
pub fn check_recipients(recipients: &[String]) -> Result<()> {
    if recipients.is_empty() || recipients.len() > MAX_SECRET_RECIPIENTS {
        return Err(Error::invalid(format!(
            "a recipient set has 1 to {MAX_SECRET_RECIPIENTS} recipients"
        )));
    }
    for r in recipients {
        if r.len() > MAX_SECRET_RECIPIENT_BYTES {
            return Err(Error::invalid("recipient too long"));
        }
        r.parse::<age::x25519::Recipient>()
            .map_err(|e| Error::invalid(format!("{r:?} is not an age x25519 recipient: {e}")))?;
    }
    Ok(())
}

fn load_meta(a: &Applier<'_>, path: &str) -> Result<Option<SecretMetaRecord>> {
    match a.get_raw(&l::meta_key(path))? {
        Some(b) => Ok(Some(decode(&b, "secret metadata")?)),
        None => Ok(None),
    }
}

fn load_version(a: &Applier<'_>, path: &str, v: u64) -> Result<Option<VersionRecord>> {
    match a.get_raw(&l::version_key(path, v))? {
        Some(b) => Ok(Some(decode(&b, "secret version")?)),
        None => Ok(None),
    }
}

fn store<T: serde::Serialize>(a: &mut Applier<'_>, key: Vec<u8>, value: &T) -> Result<()> {
    a.set_raw(key, Some(encode(value)?));
    Ok(())
}

fn new_meta(now: i64) -> SecretMetaRecord {
    SecretMetaRecord {
        current_version: 0,
        oldest_version: 0,
        created_ns: now,
        updated_ns: now,
        max_versions: 0,
        cas_required: false,
        delete_version_after_secs: 0,
        custom: Vec::new(),
    }
}

/// The `max_versions` in force.
pub fn effective_max(m: &SecretMetaRecord) -> u32 {
    if m.max_versions == 0 {
        DEFAULT_SECRET_MAX_VERSIONS
    } else {
        m.max_versions
    }
}

fn put(
    a: &mut Applier<'_>,
    path: &str,
    ciphertext: &[u8],
    cas: Option<u64>,
) -> Result<SecretOutcome> {
    let now = a.now();
    let mut m = load_meta(a, path)?.unwrap_or_else(|| new_meta(now));
    match cas {
        None if m.cas_required => {
            return Err(Error::new(
                ErrorKind::CompareFailed,
                format!("secret {path:?} requires cas: give the version you expect to replace"),
            ))
        }
        Some(expected) if expected != m.current_version => {
            return Err(Error::new(
                ErrorKind::CompareFailed,
                format!(
                    "cas {expected} does not match secret {path:?}: its current version is {}",
                    m.current_version
                ),
            ))
        }
        _ => {}
    }
    expire(a, path, &m, now)?;
    let version = m.current_version.saturating_add(1);
    let rec = VersionRecord {
        created_ns: now,
        deleted_ns: None,
        destroyed: false,
        ciphertext: ciphertext.to_vec(),
    };
    store(a, l::version_key(path, version), &rec)?;
    if m.oldest_version == 0 {
        m.oldest_version = version;
    }
    m.current_version = version;
    m.updated_ns = now;
    prune(a, path, &mut m)?;
    store(a, l::meta_key(path), &m)?;
    Ok(SecretOutcome::Written { version })
}

/// Marks versions past `delete_version_after` as deleted at their expiry time.
fn expire(a: &mut Applier<'_>, path: &str, m: &SecretMetaRecord, now: i64) -> Result<()> {
    if m.delete_version_after_secs == 0 {
        return Ok(());
    }
    for v in kept(m)? {
        let Some(mut rec) = load_version(a, path, v)? else {
            continue;
        };
        if rec.deleted_ns.is_some() || rec.destroyed {
            continue;
        }
        if let Some(at) = expiry(rec.created_ns, m.delete_version_after_secs) {
            if at <= now {
                rec.deleted_ns = Some(at);
                store(a, l::version_key(path, v), &rec)?;
            }
        }
    }
    Ok(())
}

/// The kept versions, `oldest..=current` (empty while there is none). A record claiming
/// more than `MAX_SECRET_MAX_VERSIONS` (plus the one a write adds) is corrupt, which
/// bounds every loop over versions.
pub fn kept(m: &SecretMetaRecord) -> Result<std::ops::RangeInclusive<u64>> {
    if m.oldest_version == 0 {
        // An empty range: no version yet.
        return Ok(std::ops::RangeInclusive::new(1, 0));
    }
    let span = m
        .current_version
        .checked_sub(m.oldest_version)
        .ok_or_else(|| Error::corrupt("secret metadata: oldest version above current"))?;
    if span > u64::from(MAX_SECRET_MAX_VERSIONS) {
        return Err(Error::corrupt("secret metadata: too many kept versions"));
    }
    Ok(m.oldest_version..=m.current_version)
}

/// Removes the oldest versions beyond `max_versions`.
fn prune(a: &mut Applier<'_>, path: &str, m: &mut SecretMetaRecord) -> Result<()> {
    let range = kept(m)?;
    let keep = u64::from(effective_max(m));
    let lowest_kept = m.current_version.saturating_sub(keep).saturating_add(1);
    for v in range {
        if v >= lowest_kept {
            break;
        }
        a.set_raw(l::version_key(path, v), None);
        m.oldest_version = v.saturating_add(1);
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Mark {
    Delete,
    Undelete,
    Destroy,
}

fn mark(a: &mut Applier<'_>, path: &str, versions: &[u64], how: Mark) -> Result<SecretOutcome> {
    let m = load_meta(a, path)?.ok_or_else(|| Error::not_found(format!("secret {path:?}")))?;
    let now = a.now();
    let targets: Vec<u64> = match (how, versions.is_empty()) {
        (Mark::Delete, true) if m.current_version > 0 => vec![m.current_version],
        (_, true) => {
            return Err(Error::invalid("name the versions (--versions)"));
        }
        (_, false) => versions.to_vec(),
    };
    let mut changed = Vec::new();
    for v in targets {
        if v < m.oldest_version || v > m.current_version || changed.contains(&v) {
            continue;
        }
        let Some(mut rec) = load_version(a, path, v)? else {
            continue;
        };
        let did = match how {
            Mark::Delete if rec.deleted_ns.is_none() && !rec.destroyed => {
                rec.deleted_ns = Some(now);
                true
            }
            Mark::Undelete if rec.deleted_ns.is_some() && !rec.destroyed => {
                rec.deleted_ns = None;
                true
            }
            Mark::Destroy if !rec.destroyed => {
                rec.destroyed = true;
                rec.ciphertext = Vec::new();
                true
            }
            _ => false,
        };
        if did {
            store(a, l::version_key(path, v), &rec)?;
            changed.push(v);
        }
    }
    changed.sort_unstable();
    Ok(SecretOutcome::Changed { versions: changed })
}

fn set_meta(a: &mut Applier<'_>, path: &str, u: &MetaUpdate) -> Result<SecretOutcome> {
    let now = a.now();
    let mut m = load_meta(a, path)?.unwrap_or_else(|| new_meta(now));
    if let Some(x) = u.max_versions {
        m.max_versions = x;
    }
    if let Some(x) = u.cas_required {
        m.cas_required = x;
    }
    if let Some(x) = u.delete_version_after_secs {
        m.delete_version_after_secs = x;
    }
    if let Some(x) = &u.custom {
        m.custom = x.clone();
    }
    m.updated_ns = now;
    prune(a, path, &mut m)?;
    store(a, l::meta_key(path), &m)?;
    Ok(SecretOutcome::Done)
}

fn delete_all(a: &mut Applier<'_>, path: &str) -> Result<SecretOutcome> {
    let m = load_meta(a, path)?.ok_or_else(|| Error::not_found(format!("secret {path:?}")))?;
    let mut removed = 0u64;
    for v in kept(&m)? {
        a.set_raw(l::version_key(path, v), None);
        removed = removed.saturating_add(1);
    }
    a.set_raw(l::meta_key(path), None);
    Ok(SecretOutcome::Removed { versions: removed })
}
