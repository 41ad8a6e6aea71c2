//! Answers to secret queries from a consistent view of the applied state: ciphertext and
//! metadata only (decryption is the serving node's business, in `keyring`). Listings are
//! bounded by `MAX_SECRET_LIST_ENTRIES`.

use super::apply::{effective_max, kept};
use super::layout as l;
use super::types::*;
use crate::error::Result;
use crate::limits::MAX_SECRET_LIST_ENTRIES;
use crate::store::{decode, prefix_end, View};

pub fn query(view: &View, q: &SecretQuery) -> Result<SecretAnswer> {
    match q {
        SecretQuery::Version { path, version } => {
            validate_path(path)?;
            version_of(view, path, *version).map(SecretAnswer::Version)
        }
        SecretQuery::Metadata { path } => {
            validate_path(path)?;
            metadata(view, path).map(SecretAnswer::Metadata)
        }
        SecretQuery::List {
            prefix,
            after,
            limit,
        } => {
            let (paths, more) = list(view, prefix, after.as_deref(), *limit)?;
            Ok(SecretAnswer::Paths { paths, more })
        }
        SecretQuery::Recipients => recipients(view).map(SecretAnswer::Recipients),
    }
}

fn load_meta(view: &View, path: &str) -> Result<Option<SecretMetaRecord>> {
    match view.get(&l::meta_key(path))? {
        Some(b) => Ok(Some(decode(&b, "secret metadata")?)),
        None => Ok(None),
    }
}

fn load_version(view: &View, path: &str, v: u64) -> Result<Option<VersionRecord>> {
    match view.get(&l::version_key(path, v))? {
        Some(b) => Ok(Some(decode(&b, "secret version")?)),
        None => Ok(None),
    }
}

fn version_of(view: &View, path: &str, version: Option<u64>) -> Result<Option<SealedVersion>> {
    let Some(m) = load_meta(view, path)? else {
        return Ok(None);
    };
    let v = version.unwrap_or(m.current_version);
    if !kept(&m)?.contains(&v) {
        return Ok(None);
    }
    let Some(rec) = load_version(view, path, v)? else {
        return Ok(None);
    };
    let live = rec.deleted_ns.is_none() && !rec.destroyed;
    Ok(Some(SealedVersion {
        version: v,
        created_ns: rec.created_ns,
        deleted_ns: rec.deleted_ns,
        destroyed: rec.destroyed,
        delete_version_after_secs: m.delete_version_after_secs,
        ciphertext: if live { rec.ciphertext } else { Vec::new() },
    }))
}

fn metadata(view: &View, path: &str) -> Result<Option<SecretMetadata>> {
    let Some(m) = load_meta(view, path)? else {
        return Ok(None);
    };
    let mut versions = Vec::new();
    for v in kept(&m)? {
        if let Some(rec) = load_version(view, path, v)? {
            versions.push(VersionInfo {
                version: v,
                created_ns: rec.created_ns,
                deleted_ns: rec.deleted_ns,
                destroyed: rec.destroyed,
            });
        }
    }
    Ok(Some(SecretMetadata {
        path: path.to_string(),
        current_version: m.current_version,
        oldest_version: m.oldest_version,
        created_ns: m.created_ns,
        updated_ns: m.updated_ns,
        max_versions: effective_max(&m),
        cas_required: m.cas_required,
        delete_version_after_secs: m.delete_version_after_secs,
        custom: m.custom,
        versions,
    }))
}

/// Paths at or below `prefix` (path semantics), after `after`, at most `limit`.
fn list(view: &View, prefix: &str, after: Option<&str>, limit: u32) -> Result<(Vec<String>, bool)> {
    let prefix = prefix.trim_matches('/');
    if !prefix.is_empty() {
        validate_path(prefix)?;
    }
    let limit = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_SECRET_LIST_ENTRIES);
    let mut out = Vec::new();
    // The secret named exactly `prefix`, then everything below `prefix/`.
    if !prefix.is_empty() && after.is_none_or(|a| a < prefix) && load_meta(view, prefix)?.is_some()
    {
        out.push(prefix.to_string());
    }
    let below = if prefix.is_empty() {
        l::metas_prefix()
    } else {
        l::meta_key(&format!("{prefix}/"))
    };
    let start = match after {
        Some(a) if l::meta_key(a) >= below => {
            let mut k = l::meta_key(a);
            k.push(0);
            k
        }
        _ => below.clone(),
    };
    let end = prefix_end(&below);
    let rows = view.scan(&start, end.as_deref(), limit.saturating_add(1))?;
    for (k, _) in rows {
        out.push(l::path_of(&k)?);
    }
    let more = out.len() > limit;
    out.truncate(limit);
    Ok((out, more))
}

fn recipients(view: &View) -> Result<Vec<String>> {
    match view.get(&l::recipients_key())? {
        Some(b) => Ok(decode::<RecipientsRecord>(&b, "secret recipients")?.recipients),
        None => Ok(Vec::new()),
    }
}
