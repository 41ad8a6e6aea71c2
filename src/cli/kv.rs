//! `aspen kv ...`: put, get, del, ls, txn, lease, watch.

use clap::{Args, Subcommand};

use super::output::*;
use super::{ClientArgs, OutputFormat};
use crate::client::{Client, WatchItem};
use crate::error::{Error, ErrorKind, Result};
use crate::kv::*;
use crate::limits::DEFAULT_LIST_LIMIT;

#[derive(Subcommand, Debug)]
pub enum KvCmd {
    /// Write VALUE (or stdin when VALUE is omitted or "-") to KEY; missing parent directories are created.
    Put(PutArgs),
    /// Print the value of KEY (exact bytes; -w json for metadata too).
    Get { key: String },
    /// Delete KEY (an empty directory too); with --prefix, KEY and everything below it.
    Del {
        key: String,
        #[arg(long)]
        prefix: bool,
    },
    /// List the children of directory PREFIX, or with -r every key at or below it.
    Ls {
        #[arg(default_value = "")]
        prefix: String,
        #[arg(short, long)]
        recursive: bool,
        /// Most entries to print (0: all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
    },
    /// Run a transaction read from stdin (compares, blank line, success ops, blank line, failure ops).
    Txn,
    /// Leases: keys attached to a lease are deleted when it expires or is revoked.
    #[command(subcommand)]
    Lease(LeaseCmd),
    /// Print changes at or below PREFIX as they are applied.
    Watch {
        #[arg(default_value = "")]
        prefix: String,
        /// Start from this revision (replaying history) instead of now.
        #[arg(long, default_value_t = 0)]
        rev: u64,
    },
}

#[derive(Args, Debug)]
pub struct PutArgs {
    pub key: String,
    pub value: Option<String>,
    /// Attach the key to this lease.
    #[arg(long)]
    pub lease: Option<u64>,
    /// Only if the key does not exist.
    #[arg(long)]
    pub if_absent: bool,
    /// Only if the key's mod_revision is N (0: absent).
    #[arg(long)]
    pub if_mod_rev: Option<u64>,
    /// Only if the key's version is N (0: absent).
    #[arg(long)]
    pub if_version: Option<u64>,
    /// Only if the key's current value is V.
    #[arg(long)]
    pub if_value: Option<String>,
    /// Permission bits, octal (e.g. 600).
    #[arg(long)]
    pub mode: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum LeaseCmd {
    /// Grant a lease of TTL seconds; prints its id.
    Grant { ttl: u64 },
    /// Renew a lease once, or every third of its TTL with --forever.
    Keepalive {
        id: u64,
        #[arg(long)]
        forever: bool,
    },
    /// Revoke a lease, deleting its keys.
    Revoke { id: u64 },
    /// List leases.
    Ls,
}

pub async fn run(cmd: KvCmd, c: &ClientArgs) -> Result<()> {
    match cmd {
        KvCmd::Put(a) => put(a, c).await,
        KvCmd::Get { key } => {
            let client = c.client()?;
            let key = key::normalize(&key).to_string();
            match client
                .read(ReadQuery::Get { key: key.clone() }, c.consistency())
                .await?
            {
                ReadResult::Entry(Some(rec)) => match c.write_out {
                    OutputFormat::Json => print_json(&entry_json(&key, &rec)),
                    OutputFormat::Simple if rec.kind == EntryKind::Dir => Err(Error::new(
                        ErrorKind::IsDir,
                        format!("{key}: is a directory (use aspen kv ls)"),
                    )),
                    OutputFormat::Simple => print_bytes(&rec.value),
                },
                ReadResult::Entry(None) => Err(Error::not_found(&key)),
                _ => Err(Error::internal("unexpected read result")),
            }
        }
        KvCmd::Del { key, prefix } => {
            let client = c.client()?;
            let key = key::normalize(&key).to_string();
            let cmd = if prefix {
                Command::DeletePrefix { prefix: key }
            } else {
                Command::Delete {
                    key,
                    mode: DeleteMode::Any,
                }
            };
            let r = client.write_one(cmd).await?;
            print_result(c, &r, || match &r {
                WriteResult::Deleted { deleted, .. } => deleted.to_string(),
                _ => String::new(),
            })
        }
        KvCmd::Ls {
            prefix,
            recursive,
            limit,
        } => ls(&c.client()?, c, key::normalize(&prefix), recursive, limit).await,
        KvCmd::Txn => {
            let text = String::from_utf8(read_stdin()?)
                .map_err(|_| Error::invalid("transaction input is not UTF-8"))?;
            let txn = super::txn_parse::parse(&text)?;
            let r = c.client()?.write_one(Command::Txn(txn)).await?;
            match (&r, c.write_out) {
                (_, OutputFormat::Json) => print_json(&result_json(&r)),
                (
                    WriteResult::Txn {
                        succeeded, results, ..
                    },
                    OutputFormat::Simple,
                ) => {
                    print_line(if *succeeded { "SUCCESS" } else { "FAILURE" })?;
                    for res in results {
                        match res {
                            TxnOpResult::Put(_) => print_line("OK")?,
                            TxnOpResult::Deleted(n) => print_line(&n.to_string())?,
                            TxnOpResult::Get(Some(e)) => {
                                print_bytes(&e.value)?;
                                print_line("")?;
                            }
                            TxnOpResult::Get(None) => print_line("")?,
                        }
                    }
                    Ok(())
                }
                _ => Err(Error::internal("unexpected transaction result")),
            }
        }
        KvCmd::Lease(l) => lease(l, c).await,
        KvCmd::Watch { prefix, rev } => watch(&c.client()?, c, key::normalize(&prefix), rev).await,
    }
}

async fn put(a: PutArgs, c: &ClientArgs) -> Result<()> {
    let value = match a.value.as_deref() {
        None | Some("-") => read_stdin()?,
        Some(v) => v.as_bytes().to_vec(),
    };
    let mut op = PutOp::file(key::normalize(&a.key).to_string(), value);
    op.lease = a.lease;
    if let Some(m) = &a.mode {
        op.mode = Some(
            u32::from_str_radix(m, 8)
                .map_err(|_| Error::invalid(format!("--mode {m:?} is not octal")))?,
        );
    }
    let conditions = [
        a.if_absent.then_some(PutCondition::MustNotExist),
        a.if_mod_rev.map(PutCondition::ModRevision),
        a.if_version.map(PutCondition::Version),
        a.if_value
            .as_ref()
            .map(|v| PutCondition::Value(v.as_bytes().to_vec())),
    ];
    let mut given = conditions.into_iter().flatten();
    if let Some(cond) = given.next() {
        op.condition = cond;
    }
    if given.next().is_some() {
        return Err(Error::invalid(
            "give at most one of --if-absent, --if-mod-rev, --if-version, --if-value",
        ));
    }
    let r = c.client()?.write_one(Command::Put(op)).await?;
    print_result(c, &r, || "OK".to_string())
}

async fn ls(
    client: &Client,
    c: &ClientArgs,
    prefix: &str,
    recursive: bool,
    limit: usize,
) -> Result<()> {
    let mut printed = 0usize;
    let mut after: Option<String> = None;
    let page = DEFAULT_LIST_LIMIT as u32;
    loop {
        let query = if recursive {
            ReadQuery::Range {
                prefix: prefix.to_string(),
                after: after.clone(),
                limit: page,
                keys_only: true,
            }
        } else {
            ReadQuery::ListDir {
                dir: prefix.to_string(),
                after: after.clone(),
                limit: page,
            }
        };
        let (rows, more): (Vec<(String, EntryMeta)>, bool) =
            match client.read(query, c.consistency()).await? {
                ReadResult::Dir { entries, more } => (entries, more),
                ReadResult::Range { entries, more } => (
                    entries.into_iter().map(|(k, r)| (k, r.meta())).collect(),
                    more,
                ),
                _ => return Err(Error::internal("unexpected read result")),
            };
        for (name, meta) in &rows {
            if limit != 0 && printed >= limit {
                return Ok(());
            }
            let full = if recursive {
                name.clone()
            } else {
                key::join(prefix, name)
            };
            match c.write_out {
                OutputFormat::Json => print_json(&meta_json(&full, meta))?,
                OutputFormat::Simple => {
                    let shown = if recursive { full } else { name.clone() };
                    let suffix = if meta.kind == EntryKind::Dir { "/" } else { "" };
                    print_line(&format!("{shown}{suffix}"))?
                }
            }
            printed += 1;
        }
        match rows.last() {
            Some((name, _)) if more => after = Some(name.clone()),
            _ => return Ok(()),
        }
    }
}

async fn lease(cmd: LeaseCmd, c: &ClientArgs) -> Result<()> {
    match cmd {
        LeaseCmd::Grant { ttl } => {
            let r = c
                .client()?
                .write_one(Command::LeaseGrant {
                    ttl_secs: ttl,
                    id: 0,
                })
                .await?;
            print_result(c, &r, || match &r {
                WriteResult::Lease { lease, .. } => lease.id.to_string(),
                _ => String::new(),
            })
        }
        LeaseCmd::Keepalive { id, forever } => {
            let client = c.client()?;
            loop {
                let r = client.write_one(Command::LeaseKeepAlive { id }).await?;
                let ttl = match &r {
                    WriteResult::Lease { lease, .. } => lease.ttl_secs,
                    _ => 1,
                };
                print_result(c, &r, || format!("lease {id} renewed for {ttl}s"))?;
                if !forever {
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis((ttl * 1000 / 3).max(200)))
                    .await;
            }
        }
        LeaseCmd::Revoke { id } => {
            let r = c.client()?.write_one(Command::LeaseRevoke { id }).await?;
            print_result(c, &r, || match &r {
                WriteResult::LeaseRevoked { deleted, .. } => {
                    format!("lease {id} revoked, {deleted} keys deleted")
                }
                _ => String::new(),
            })
        }
        LeaseCmd::Ls => match c
            .client()?
            .read(ReadQuery::LeaseList, c.consistency())
            .await?
        {
            ReadResult::Leases(ls) => {
                for l in ls {
                    match c.write_out {
                        OutputFormat::Json => print_json(&lease_json(&l))?,
                        OutputFormat::Simple => {
                            print_line(&format!("{} ttl={}s", l.id, l.ttl_secs))?
                        }
                    }
                }
                Ok(())
            }
            _ => Err(Error::internal("unexpected read result")),
        },
    }
}

async fn watch(client: &Client, c: &ClientArgs, prefix: &str, rev: u64) -> Result<()> {
    let mut stream = client.watch(prefix, rev).await?;
    loop {
        match stream.next().await? {
            WatchItem::Events(events) => {
                for e in events {
                    match c.write_out {
                        OutputFormat::Json => print_json(&event_json(&e))?,
                        OutputFormat::Simple => {
                            let kind = match e.kind {
                                EventKind::Put => "PUT",
                                EventKind::Delete => "DELETE",
                                EventKind::Expire => "EXPIRE",
                            };
                            match &e.entry {
                                Some(rec) => {
                                    print_line(&format!("{kind} {} {}", e.revision, e.key))?;
                                    print_bytes(&rec.value)?;
                                    print_line("")?;
                                }
                                None => print_line(&format!("{kind} {} {}", e.revision, e.key))?,
                            }
                        }
                    }
                }
            }
            WatchItem::Reset { revision } => match c.write_out {
                OutputFormat::Json => {
                    print_json(&serde_json::json!({"type": "RESET", "revision": revision}))?
                }
                OutputFormat::Simple => print_line(&format!("RESET {revision}"))?,
            },
        }
    }
}
