//! The client library: talks to any node of a cluster over the wire protocol. Nodes forward
//! writes and linearizable reads to the leader, so a client only needs one live endpoint;
//! it moves to the next endpoint when a connection cannot be made or is lost.
//!
//! Retry rules: a request that was never sent (no connection) is retried on the next
//! endpoint. Reads are also retried on retryable errors, on the next endpoint. Writes whose outcome is unknown
//! (connection lost after sending, timeout) are reported, never silently repeated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, Mutex};

use crate::error::{Error, ErrorKind, Result};
use crate::kv::{Command, CommandResult, Event, ReadQuery, ReadResult, WriteResult};
use crate::limits::*;
use crate::net::proto::{ClusterStatus, Consistency, HookRecent, Request, Response, Role};
use crate::net::rpc::RpcConn;
use crate::raft::types::NodeId;

pub struct Client {
    endpoints: Vec<String>,
    token: Arc<Vec<u8>>,
    current: AtomicUsize,
    conn: Mutex<Option<Arc<RpcConn>>>,
    /// Identifies this client's writes in change events (so a mount can skip its own).
    pub origin: u64,
    timeout: Duration,
}

/// What a watch delivers.
#[derive(Debug)]
pub enum WatchItem {
    Events(Vec<Event>),
    /// The node installed a snapshot: re-read whatever is cached.
    Reset {
        revision: u64,
    },
}

pub struct WatchStream {
    rx: mpsc::Receiver<Response>,
    _conn: Arc<RpcConn>,
}

impl WatchStream {
    /// The next item; `Err` when the stream ended (with the node's reason).
    pub async fn next(&mut self) -> Result<WatchItem> {
        match self.rx.recv().await {
            Some(Response::Events(e)) => Ok(WatchItem::Events(e)),
            Some(Response::Reset { revision }) => Ok(WatchItem::Reset { revision }),
            Some(Response::StreamEnd(Some(e))) | Some(Response::Failed(e)) => Err(e),
            Some(Response::StreamEnd(None)) => Err(Error::io("watch ended")),
            Some(_) => Err(Error::internal("unexpected frame in a watch stream")),
            None => Err(Error::io("connection lost")),
        }
    }
}

/// A `hooks tail` stream.
pub struct HookStream {
    rx: mpsc::Receiver<Response>,
    _conn: Arc<RpcConn>,
}

impl HookStream {
    /// The next JSON lines (newline included); `Err` when the stream ended.
    pub async fn next(&mut self) -> Result<Vec<String>> {
        match self.rx.recv().await {
            Some(Response::HookLines(lines)) => Ok(lines),
            Some(Response::StreamEnd(Some(e))) | Some(Response::Failed(e)) => Err(e),
            Some(Response::StreamEnd(None)) => Err(Error::io("hook stream ended")),
            Some(_) => Err(Error::internal("unexpected frame in a hook stream")),
            None => Err(Error::io("connection lost")),
        }
    }
}

impl Client {
    pub fn new(endpoints: Vec<String>, token: Vec<u8>) -> Result<Client> {
        if endpoints.is_empty() {
            return Err(Error::invalid("no endpoints given"));
        }
        Ok(Client {
            endpoints,
            token: Arc::new(token),
            current: AtomicUsize::new(0),
            conn: Mutex::new(None),
            origin: rand::random::<u64>() | 1,
            timeout: Duration::from_millis(CLIENT_REQUEST_TIMEOUT_MS + 2_000),
        })
    }

    fn endpoint(&self, offset: usize) -> &str {
        let i = (self.current.load(Ordering::Relaxed) + offset) % self.endpoints.len();
        self.endpoints.get(i).map(String::as_str).unwrap_or("")
    }

    /// A connection to some endpoint, trying each once.
    async fn conn(&self) -> Result<Arc<RpcConn>> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.is_closed() {
                return Ok(c.clone());
            }
        }
        let mut last = Error::new(ErrorKind::Unavailable, "no endpoint reachable");
        for offset in 0..self.endpoints.len() {
            let addr = self.endpoint(offset).to_string();
            match RpcConn::connect(&addr, Role::Client, &self.token).await {
                Ok(c) => {
                    let c = Arc::new(c);
                    self.current.fetch_add(offset, Ordering::Relaxed);
                    *slot = Some(c.clone());
                    return Ok(c);
                }
                Err(e) if e.kind == ErrorKind::PermissionDenied => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn drop_conn(&self) {
        *self.conn.lock().await = None;
        self.current.fetch_add(1, Ordering::Relaxed);
    }

    /// One request; `retry_after_send` allows repeating it when the answer was lost.
    async fn call(&self, req: Request, retry_after_send: bool) -> Result<Response> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let conn = match self.conn().await {
                Ok(c) => c,
                Err(e) if e.kind == ErrorKind::PermissionDenied => return Err(e),
                Err(e) if attempt >= CLIENT_MAX_ATTEMPTS => return Err(e),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(CLIENT_RETRY_BACKOFF_MS)).await;
                    continue;
                }
            };
            match conn.call(&req, self.timeout).await {
                Ok(Response::Failed(e)) => return Err(e),
                Ok(resp) => return Ok(resp),
                Err(e) => {
                    self.drop_conn().await;
                    if !retry_after_send || attempt >= CLIENT_MAX_ATTEMPTS {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_millis(CLIENT_RETRY_BACKOFF_MS)).await;
                }
            }
        }
    }

    pub async fn write(&self, commands: Vec<Command>) -> Result<Vec<CommandResult>> {
        let req = Request::Write {
            origin: self.origin,
            commands,
            hops: 0,
        };
        match self.call(req, false).await? {
            Response::Write(r) => r,
            _ => Err(Error::internal("unexpected response to a write")),
        }
    }

    pub async fn write_one(&self, command: Command) -> Result<WriteResult> {
        let mut r = self.write(vec![command]).await?;
        r.pop().unwrap_or_else(|| Err(Error::internal("no result")))
    }

    /// A read; retried on other endpoints or after a pause while the cluster has no leader,
    /// until the request timeout, then the last error.
    pub async fn read(&self, query: ReadQuery, consistency: Consistency) -> Result<ReadResult> {
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(CLIENT_REQUEST_TIMEOUT_MS);
        loop {
            let req = Request::Read {
                query: query.clone(),
                consistency,
                hops: 0,
            };
            let r = match tokio::time::timeout_at(deadline, self.call(req, true)).await {
                Ok(resp) => match resp? {
                    Response::Read(r) => r,
                    _ => return Err(Error::internal("unexpected response to a read")),
                },
                Err(_) => {
                    // The next call starts with another node.
                    self.drop_conn().await;
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        "no answer within the request timeout",
                    ));
                }
            };
            match r {
                Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                    // This node cannot serve it now (no leader, cut off from the
                    // quorum): ask the next one, as a node behind a partition would
                    // otherwise hold the client forever.
                    self.drop_conn().await;
                    tokio::time::sleep(Duration::from_millis(CLIENT_RETRY_BACKOFF_MS)).await;
                }
                other => return other,
            }
        }
    }

    pub async fn status(&self) -> Result<ClusterStatus> {
        match self.call(Request::Status, true).await? {
            Response::Status(s) => s,
            _ => Err(Error::internal("unexpected response to status")),
        }
    }

    async fn done(&self, req: Request) -> Result<()> {
        match self.call(req, false).await? {
            Response::Done(r) => r,
            _ => Err(Error::internal("unexpected response")),
        }
    }

    pub async fn init(&self, members: BTreeMap<NodeId, String>) -> Result<()> {
        self.done(Request::Init { members }).await
    }

    pub async fn add_learner(&self, id: NodeId, addr: String) -> Result<()> {
        self.done(Request::AddLearner { id, addr, hops: 0 }).await
    }

    pub async fn change_membership(
        &self,
        voters: BTreeSet<NodeId>,
        remove: BTreeSet<NodeId>,
    ) -> Result<()> {
        self.done(Request::ChangeMembership {
            voters,
            remove,
            hops: 0,
        })
        .await
    }

    pub async fn snapshot(&self) -> Result<()> {
        self.done(Request::TriggerSnapshot).await
    }

    /// Follows changes at or below `prefix` from `from_revision` (0: from now), on a
    /// connection of its own.
    pub async fn watch(&self, prefix: &str, from_revision: u64) -> Result<WatchStream> {
        let req = Request::Watch {
            prefix: prefix.to_string(),
            from_revision,
        };
        let (rx, conn) = self.open_stream(&req).await?;
        Ok(WatchStream { rx, _conn: conn })
    }

    /// Sends a streaming request on a connection of its own, to the first endpoint
    /// that answers.
    async fn open_stream(&self, req: &Request) -> Result<(mpsc::Receiver<Response>, Arc<RpcConn>)> {
        let mut last = Error::new(ErrorKind::Unavailable, "no endpoint reachable");
        for offset in 0..self.endpoints.len() {
            let addr = self.endpoint(offset).to_string();
            match RpcConn::connect(&addr, Role::Client, &self.token).await {
                Ok(c) => {
                    let conn = Arc::new(c);
                    let rx = conn.stream(req).await?;
                    return Ok((rx, conn));
                }
                Err(e) if e.kind == ErrorKind::PermissionDenied => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Follows the hook events one node delivers from now on whose type matches
    /// `pattern` (`*` one segment, `>` the rest).
    pub async fn hook_tail(&self, pattern: &str) -> Result<HookStream> {
        let req = Request::HookTail {
            pattern: pattern.to_string(),
        };
        let (rx, conn) = self.open_stream(&req).await?;
        Ok(HookStream { rx, _conn: conn })
    }

    /// A secrets request. Only reads are retried after a lost answer (a repeated put
    /// would make another version).
    pub async fn secret(
        &self,
        request: crate::secrets::SecretRequest,
    ) -> Result<crate::secrets::SecretReply> {
        use crate::secrets::SecretRequest as R;
        let retry = matches!(request, R::Get { .. } | R::Query { .. });
        let req = Request::Secret {
            origin: self.origin,
            request,
        };
        match self.call(req, retry).await? {
            Response::Secret(r) => r,
            _ => Err(Error::internal("unexpected response to a secrets request")),
        }
    }

    /// The recent hook events of the node this client talks to, and its delivery figures.
    pub async fn hook_recent(&self) -> Result<HookRecent> {
        match self.call(Request::HookRecent, true).await? {
            Response::HookRecent(r) => r,
            _ => Err(Error::internal("unexpected response to hook-recent")),
        }
    }
}
