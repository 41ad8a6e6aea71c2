//! `aspen secrets ...`: KV v2 secrets (put, get, delete, undelete, destroy, metadata, ls)
//! and the cluster's recipient set. Values travel to the node, which encrypts them with
//! age before they are replicated; `get` prints what the node decrypted.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::output::*;
use super::{ClientArgs, OutputFormat};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::limits::MAX_SECRET_LIST_ENTRIES;
use crate::secrets::*;

#[derive(Subcommand, Debug)]
pub enum SecretsCmd {
    /// Versioned key/value secrets (Vault KV v2 semantics).
    #[command(subcommand)]
    Kv(KvCmd),
    /// The age recipients new secret values are encrypted to.
    #[command(subcommand)]
    Recipients(RecipientsCmd),
    /// Write a new age identity file (keys.txt format, mode 0600) and print its public key.
    Keygen { file: std::path::PathBuf },
}

#[derive(Subcommand, Debug)]
pub enum KvCmd {
    /// Write a new version of PATH from VALUE, or from stdin when VALUE is omitted or "-"
    /// (stdin keeps the value out of the process list).
    Put {
        path: String,
        value: Option<String>,
        /// Only if the current version is N (0: the secret has no version yet).
        #[arg(long)]
        cas: Option<u64>,
    },
    /// Print the latest version of PATH (exact bytes; -w json adds the version).
    Get {
        path: String,
        #[arg(long)]
        version: Option<u64>,
    },
    /// Soft-delete the latest version, or --versions.
    Delete {
        path: String,
        #[arg(long, value_delimiter = ',')]
        versions: Vec<u64>,
    },
    /// Restore soft-deleted versions.
    Undelete {
        path: String,
        #[arg(long, value_delimiter = ',', required = true)]
        versions: Vec<u64>,
    },
    /// Remove versions' values for good.
    Destroy {
        path: String,
        #[arg(long, value_delimiter = ',', required = true)]
        versions: Vec<u64>,
    },
    /// A secret's settings and versions (never values).
    #[command(subcommand)]
    Metadata(MetadataCmd),
    /// List secret paths at or below PREFIX.
    Ls {
        #[arg(default_value = "")]
        prefix: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum MetadataCmd {
    Get {
        path: String,
    },
    /// Change settings (creating the secret's metadata if needed); others stay.
    Put(MetaArgs),
    /// Remove the secret: every version and its metadata.
    Delete {
        path: String,
    },
}

#[derive(Args, Debug)]
pub struct MetaArgs {
    pub path: String,
    /// Versions kept, oldest removed beyond (0: the default, 10).
    #[arg(long)]
    pub max_versions: Option<u32>,
    /// Require --cas on every write.
    #[arg(long)]
    pub cas_required: Option<bool>,
    /// Versions read as deleted this long after their write: seconds, or with s/m/h/d (0: never).
    #[arg(long)]
    pub delete_version_after: Option<String>,
    /// Custom metadata KEY=VALUE (repeatable; replaces the whole map).
    #[arg(long = "custom")]
    pub custom: Vec<String>,
    /// Remove all custom metadata.
    #[arg(long, conflicts_with = "custom")]
    pub clear_custom: bool,
}

#[derive(Subcommand, Debug)]
pub enum RecipientsCmd {
    /// Print the recipient set (empty: each node encrypts to its own identity).
    Get,
    /// Replace the recipient set with these age x25519 public keys (age1...).
    Set {
        #[arg(required = true)]
        recipients: Vec<String>,
    },
}

pub async fn run(cmd: SecretsCmd, c: &ClientArgs) -> Result<()> {
    if let SecretsCmd::Keygen { file } = &cmd {
        return print_line(&Keyring::generate_file(file)?);
    }
    let client = c.client()?;
    match cmd {
        SecretsCmd::Keygen { .. } => Ok(()),
        SecretsCmd::Kv(k) => run_kv(k, &client, c).await,
        SecretsCmd::Recipients(RecipientsCmd::Get) => {
            let rs = match query(&client, c, SecretQuery::Recipients).await? {
                SecretAnswer::Recipients(r) => r,
                _ => return Err(unexpected()),
            };
            match c.write_out {
                OutputFormat::Json => print_json(&json!({ "recipients": rs })),
                OutputFormat::Simple => rs.iter().try_for_each(|r| print_line(r)),
            }
        }
        SecretsCmd::Recipients(RecipientsCmd::Set { recipients }) => {
            let o = command(&client, SecretCommand::SetRecipients { recipients }).await?;
            print_outcome(c, &o, String::new)
        }
    }
}

fn unexpected() -> Error {
    Error::internal("unexpected answer from the node")
}

async fn command(client: &Client, cmd: SecretCommand) -> Result<SecretOutcome> {
    match client.secret(SecretRequest::Command(cmd)).await? {
        SecretReply::Outcome(o) => Ok(o),
        _ => Err(unexpected()),
    }
}

async fn query(client: &Client, c: &ClientArgs, q: SecretQuery) -> Result<SecretAnswer> {
    let req = SecretRequest::Query {
        query: q,
        consistency: c.consistency(),
    };
    match client.secret(req).await? {
        SecretReply::Answer(a) => Ok(a),
        _ => Err(unexpected()),
    }
}

fn print_outcome(c: &ClientArgs, o: &SecretOutcome, simple: impl FnOnce() -> String) -> Result<()> {
    match c.write_out {
        OutputFormat::Json => print_json(&secret_outcome_json(o)),
        OutputFormat::Simple => {
            let line = simple();
            if line.is_empty() {
                Ok(())
            } else {
                print_line(&line)
            }
        }
    }
}

fn versions_line(o: &SecretOutcome) -> String {
    match o {
        SecretOutcome::Changed { versions } => versions
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

async fn run_kv(cmd: KvCmd, client: &Client, c: &ClientArgs) -> Result<()> {
    match cmd {
        KvCmd::Put { path, value, cas } => {
            let value = match value.as_deref() {
                None | Some("-") => read_stdin()?,
                Some(v) => v.as_bytes().to_vec(),
            };
            let path = normalize(&path);
            let req = SecretRequest::Put {
                path: path.clone(),
                value,
                cas,
            };
            let version = match client.secret(req).await? {
                SecretReply::Outcome(SecretOutcome::Written { version }) => version,
                _ => return Err(unexpected()),
            };
            match c.write_out {
                OutputFormat::Json => print_json(&json!({"path": path, "version": version})),
                OutputFormat::Simple => print_line(&format!("{path} version {version}")),
            }
        }
        KvCmd::Get { path, version } => {
            let path = normalize(&path);
            let req = SecretRequest::Get {
                path: path.clone(),
                version,
                consistency: c.consistency(),
            };
            let v = match client.secret(req).await? {
                SecretReply::Value(v) => v,
                _ => return Err(unexpected()),
            };
            match c.write_out {
                OutputFormat::Json => {
                    let mut j =
                        json!({"path": path, "version": v.version, "created_ns": v.created_ns});
                    insert_bytes(&mut j, "value", &v.data);
                    print_json(&j)
                }
                OutputFormat::Simple => print_bytes(&v.data),
            }
        }
        KvCmd::Delete { path, versions } => {
            let path = normalize(&path);
            let o = command(client, SecretCommand::Delete { path, versions }).await?;
            print_outcome(c, &o, || versions_line(&o))
        }
        KvCmd::Undelete { path, versions } => {
            let path = normalize(&path);
            let o = command(client, SecretCommand::Undelete { path, versions }).await?;
            print_outcome(c, &o, || versions_line(&o))
        }
        KvCmd::Destroy { path, versions } => {
            let path = normalize(&path);
            let o = command(client, SecretCommand::Destroy { path, versions }).await?;
            print_outcome(c, &o, || versions_line(&o))
        }
        KvCmd::Metadata(MetadataCmd::Get { path }) => {
            let path = normalize(&path);
            match query(client, c, SecretQuery::Metadata { path: path.clone() }).await? {
                SecretAnswer::Metadata(Some(m)) => print_metadata(c, &m),
                SecretAnswer::Metadata(None) => Err(Error::not_found(format!("secret {path:?}"))),
                _ => Err(unexpected()),
            }
        }
        KvCmd::Metadata(MetadataCmd::Put(a)) => {
            let path = normalize(&a.path);
            let update = meta_update(&a)?;
            let o = command(client, SecretCommand::SetMeta { path, update }).await?;
            print_outcome(c, &o, String::new)
        }
        KvCmd::Metadata(MetadataCmd::Delete { path }) => {
            let path = normalize(&path);
            let o = command(client, SecretCommand::DeleteAll { path }).await?;
            print_outcome(c, &o, String::new)
        }
        KvCmd::Ls { prefix } => ls(client, c, &normalize(&prefix)).await,
    }
}

fn normalize(path: &str) -> String {
    path.trim_matches('/').to_string()
}

fn meta_update(a: &MetaArgs) -> Result<MetaUpdate> {
    let custom = if a.clear_custom {
        Some(Vec::new())
    } else if a.custom.is_empty() {
        None
    } else {
        let mut map = std::collections::BTreeMap::new();
        for kv in &a.custom {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| Error::invalid(format!("--custom {kv:?} is not KEY=VALUE")))?;
            map.insert(k.to_string(), v.to_string());
        }
        Some(map.into_iter().collect())
    };
    Ok(MetaUpdate {
        max_versions: a.max_versions,
        cas_required: a.cas_required,
        delete_version_after_secs: a
            .delete_version_after
            .as_deref()
            .map(parse_duration_secs)
            .transpose()?,
        custom,
    })
}

/// `90`, `90s`, `15m`, `2h`, `7d` as seconds.
pub fn parse_duration_secs(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().last() {
        Some((i, u)) if u.is_ascii_alphabetic() => (s.get(..i).unwrap_or(""), u),
        _ => (s, 's'),
    };
    let n: u64 = num.parse().map_err(|_| {
        Error::invalid(format!(
            "{s:?}: expected a duration like 90, 90s, 15m, 2h, 7d"
        ))
    })?;
    let mul = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => {
            return Err(Error::invalid(format!(
                "{s:?}: unknown unit (s, m, h or d)"
            )))
        }
    };
    n.checked_mul(mul)
        .ok_or_else(|| Error::invalid(format!("{s:?}: too long")))
}

fn metadata_json(m: &SecretMetadata) -> Value {
    let versions: Vec<Value> = m
        .versions
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "created_ns": v.created_ns,
                "deleted_ns": v.deleted_ns,
                "destroyed": v.destroyed,
            })
        })
        .collect();
    let custom: serde_json::Map<String, Value> = m
        .custom
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "path": m.path,
        "current_version": m.current_version,
        "oldest_version": m.oldest_version,
        "created_ns": m.created_ns,
        "updated_ns": m.updated_ns,
        "max_versions": m.max_versions,
        "cas_required": m.cas_required,
        "delete_version_after_secs": m.delete_version_after_secs,
        "custom_metadata": custom,
        "versions": versions,
    })
}

fn print_metadata(c: &ClientArgs, m: &SecretMetadata) -> Result<()> {
    if c.write_out == OutputFormat::Json {
        return print_json(&metadata_json(m));
    }
    print_line(&format!("path: {}", m.path))?;
    print_line(&format!("current_version: {}", m.current_version))?;
    print_line(&format!("oldest_version: {}", m.oldest_version))?;
    print_line(&format!("max_versions: {}", m.max_versions))?;
    print_line(&format!("cas_required: {}", m.cas_required))?;
    print_line(&format!(
        "delete_version_after: {}s",
        m.delete_version_after_secs
    ))?;
    for (k, v) in &m.custom {
        print_line(&format!("custom.{k}: {v}"))?;
    }
    for v in &m.versions {
        let state = if v.destroyed {
            "destroyed"
        } else if v.deleted_ns.is_some() {
            "deleted"
        } else {
            "live"
        };
        print_line(&format!(
            "version {}: {state} created_ns={}",
            v.version, v.created_ns
        ))?;
    }
    Ok(())
}

async fn ls(client: &Client, c: &ClientArgs, prefix: &str) -> Result<()> {
    let mut after: Option<String> = None;
    let mut all = Vec::new();
    loop {
        let q = SecretQuery::List {
            prefix: prefix.to_string(),
            after: after.clone(),
            limit: MAX_SECRET_LIST_ENTRIES as u32,
        };
        let (paths, more) = match query(client, c, q).await? {
            SecretAnswer::Paths { paths, more } => (paths, more),
            _ => return Err(unexpected()),
        };
        after = paths.last().cloned();
        match c.write_out {
            OutputFormat::Json => all.extend(paths),
            OutputFormat::Simple => paths.iter().try_for_each(|p| print_line(p))?,
        }
        if !more || after.is_none() {
            break;
        }
    }
    if c.write_out == OutputFormat::Json {
        print_json(&json!({ "paths": all }))?;
    }
    Ok(())
}
