//! Group commit. Client commands queue here; a loop packs whatever is waiting (up to
//! `MAX_BATCH_COMMANDS` / `MAX_BATCH_BYTES`) into one raft entry, so many concurrent writes
//! share one log append, one fsync per node and one apply. Up to `MAX_INFLIGHT_PROPOSALS`
//! entries are in flight at once; while they are, new commands accumulate into the next.
//!
//! On a follower the same batch is forwarded to the leader as one `Propose` request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use openraft::ServerState;
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::error::{Error, ErrorKind, Result};
use crate::kv::{Command, CommandResult};
use crate::limits::*;
use crate::net::proto::{Request, Response};
use crate::raft::network::PeerPool;
use crate::raft::types::{Raft, RaftRequest};

pub struct Proposal {
    pub origin: u64,
    pub command: Command,
    pub reply: oneshot::Sender<CommandResult>,
}

/// Rough encoded size of a command, for batch limits.
pub fn command_size(c: &Command) -> usize {
    use crate::kv::{Command as C, TxnOp};
    let op_size = |op: &TxnOp| match op {
        TxnOp::Put(p) => p.key.len() + p.value.len() + 64,
        TxnOp::Delete { key } | TxnOp::Get { key } => key.len() + 16,
        TxnOp::DeletePrefix { prefix } => prefix.len() + 16,
    };
    64 + match c {
        C::Put(p) => {
            p.key.len()
                + p.value.len()
                + p.xattrs
                    .as_ref()
                    .map_or(0, |x| x.iter().map(|(n, v)| n.len() + v.len()).sum())
        }
        C::SetAttr { key, change } => {
            key.len()
                + change
                    .set_xattr
                    .as_ref()
                    .map_or(0, |(n, v, _)| n.len() + v.len())
        }
        C::Delete { key, .. } => key.len(),
        C::DeletePrefix { prefix } => prefix.len(),
        C::Rename { from, to, .. } => from.len() + to.len(),
        C::Txn(t) => {
            t.compare
                .iter()
                .map(|c| {
                    c.key.len()
                        + 32
                        + match &c.target {
                            crate::kv::CompareTarget::Value(v) => v.len(),
                            _ => 0,
                        }
                })
                .sum::<usize>()
                + t.success.iter().map(op_size).sum::<usize>()
                + t.failure.iter().map(op_size).sum::<usize>()
        }
        C::LeaseGrant { .. } | C::LeaseKeepAlive { .. } | C::LeaseRevoke { .. } => 0,
        C::ExpireLeases { ids } => ids.len() * 8,
        C::Secret(s) => {
            let names = s.path().map_or(0, str::len) + 64;
            match s {
                crate::secrets::SecretCommand::Put { ciphertext, .. } => names + ciphertext.len(),
                crate::secrets::SecretCommand::Delete { versions, .. }
                | crate::secrets::SecretCommand::Undelete { versions, .. }
                | crate::secrets::SecretCommand::Destroy { versions, .. } => {
                    names + versions.len() * 8
                }
                crate::secrets::SecretCommand::SetMeta { update, .. } => {
                    names
                        + update
                            .custom
                            .as_ref()
                            .map_or(0, |c| c.iter().map(|(k, v)| k.len() + v.len() + 8).sum())
                }
                crate::secrets::SecretCommand::DeleteAll { .. } => names,
                crate::secrets::SecretCommand::SetRecipients { recipients } => {
                    names + recipients.iter().map(|r| r.len() + 8).sum::<usize>()
                }
            }
        }
        C::Topic(t) => {
            let names = t.topic().len() + 2 * crate::limits::MAX_NAME_BYTES;
            match t {
                crate::topics::TopicCommand::Publish { messages, .. } => {
                    names + messages.iter().map(|m| m.len() + 8).sum::<usize>()
                }
                _ => names,
            }
        }
    }
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Starts the batching loop; returns the queue to push proposals into.
pub fn start(raft: Raft, pool: PeerPool) -> mpsc::Sender<Proposal> {
    let (tx, mut rx) = mpsc::channel::<Proposal>(PROPOSAL_QUEUE_LEN);
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_INFLIGHT_PROPOSALS));
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let Some(first) = rx.recv().await else { break };
            let mut bytes = command_size(&first.command);
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH_COMMANDS && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(p) => {
                        bytes += command_size(&p.command);
                        batch.push(p);
                    }
                    Err(_) => break,
                }
            }
            let raft = raft.clone();
            let pool = pool.clone();
            tokio::spawn(async move {
                let (commands, replies): (Vec<_>, Vec<_>) = batch
                    .into_iter()
                    .map(|p| ((p.origin, p.command), p.reply))
                    .unzip();
                let n = commands.len();
                let results = submit(&raft, &pool, commands).await;
                match results {
                    Ok(results) if results.len() == n => {
                        for (reply, result) in replies.into_iter().zip(results) {
                            let _ = reply.send(result);
                        }
                    }
                    Ok(results) => {
                        let e =
                            Error::internal(format!("{} results for {n} commands", results.len()));
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
                drop(permit);
            });
        }
    });
    tx
}

/// Proposes one batch as one entry on the leader (here, or forwarded), retrying while
/// no leader is known. Errors after the entry may have been proposed are reported as
/// `Timeout`/`Io` (outcome unknown), never retried.
pub async fn submit(
    raft: &Raft,
    pool: &PeerPool,
    commands: Vec<(u64, Command)>,
) -> Result<Vec<CommandResult>> {
    let deadline = Instant::now() + Duration::from_millis(CLIENT_REQUEST_TIMEOUT_MS);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "no leader: the cluster has no quorum",
            ));
        }
        let entry = RaftRequest::V1 {
            stamp_ns: now_ns(),
            commands: commands.clone(),
        };
        // openraft answers ForwardToLeader both when this node is not the leader
        // (nothing was appended) and when it lost leadership with the entry in its log,
        // which it then truncated: another node may still hold that entry and commit
        // it, so proposing it again could apply it twice. Forward only what a follower
        // rejected; a leader's pending write that lost leadership has an unknown outcome.
        let was_leader = raft.metrics().borrow().state == ServerState::Leader;
        let write = tokio::time::timeout(remaining, raft.client_write(entry)).await;
        let forward_to = match write {
            Err(_) => return Err(Error::new(
                ErrorKind::Timeout,
                "no commit within the request timeout (no quorum?); the write may or may not apply",
            )),
            Ok(Ok(resp)) => return Ok(resp.data.results),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) if was_leader => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    "leadership changed while the write was pending; it may or may not apply",
                ))
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                f.leader_node.map(|n| n.addr)
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                return Err(Error::internal(format!("unexpected membership error: {e}")))
            }
            Ok(Err(RaftError::Fatal(e))) => {
                return Err(Error::new(
                    ErrorKind::ShuttingDown,
                    format!("raft stopped: {e}"),
                ))
            }
        };
        if let Some(addr) = forward_to {
            let req = Request::Propose {
                commands: commands.clone(),
            };
            match pool.call(&addr, &req, remaining).await {
                Ok(Response::Write(Ok(results))) => return Ok(results),
                Ok(Response::Write(Err(e)))
                    if e.kind == ErrorKind::NotLeader || e.kind == ErrorKind::Unavailable => {}
                Ok(Response::Write(Err(e))) => return Err(e),
                Ok(Response::Failed(e)) => return Err(e),
                Ok(_) => {
                    return Err(Error::internal(
                        "unexpected response to a forwarded proposal",
                    ))
                }
                // Never connected: nothing was proposed, so trying again is safe.
                Err(e) if e.kind == ErrorKind::Unavailable => {}
                Err(e) => return Err(e),
            }
        }
        tokio::time::sleep(Duration::from_millis(CLIENT_RETRY_BACKOFF_MS)).await;
    }
}
