//! openraft's network on Aspen's transport: one pooled, authenticated connection per peer
//! address, shared by raft replication and by request forwarding to the leader.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use tokio::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};
use crate::limits::{MAX_FRAME_BYTES, PEER_RPC_TIMEOUT_MS};
use crate::net::proto::{Request, Response, Role};
use crate::net::rpc::RpcConn;
use crate::raft::lease::LeaseTracker;
use crate::raft::types::{NodeId, RaftNode, TypeConfig};

/// One peer's connection, created on first use and replaced when it breaks.
type Slot = Arc<Mutex<Option<Arc<RpcConn>>>>;

/// Authenticated connections to other nodes, by address.
#[derive(Clone)]
pub struct PeerPool {
    self_id: NodeId,
    /// The IP this node listens on; connections to peers leave from it.
    local_ip: Option<std::net::IpAddr>,
    secret: Arc<Vec<u8>>,
    conns: Arc<Mutex<HashMap<String, Slot>>>,
}

impl PeerPool {
    pub fn new(self_id: NodeId, secret: Vec<u8>, local_ip: Option<std::net::IpAddr>) -> PeerPool {
        PeerPool {
            self_id,
            local_ip,
            secret: Arc::new(secret),
            conns: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A live connection to `addr`, connecting if needed.
    pub async fn get(&self, addr: &str) -> Result<Arc<RpcConn>> {
        let slot = {
            let mut conns = self.conns.lock().await;
            conns.entry(addr.to_string()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        if let Some(conn) = slot.as_ref() {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
        }
        let conn = Arc::new(
            RpcConn::connect_from(
                addr,
                self.local_ip,
                Role::Peer {
                    node_id: self.self_id,
                },
                &self.secret,
            )
            .await?,
        );
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// One request to the node at `addr`.
    pub async fn call(&self, addr: &str, req: &Request, timeout: Duration) -> Result<Response> {
        let conn = self.get(addr).await?;
        conn.call(req, timeout).await
    }
}

pub struct Network {
    pub pool: PeerPool,
    pub lease: LeaseTracker,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &RaftNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            pool: self.pool.clone(),
            lease: self.lease.clone(),
        }
    }
}

pub struct PeerClient {
    target: NodeId,
    addr: String,
    pool: PeerPool,
    lease: LeaseTracker,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, RaftNode, RaftError<NodeId, E>>;

impl PeerClient {
    async fn call<E: std::error::Error>(
        &self,
        req: Request,
        timeout: Duration,
    ) -> std::result::Result<Response, RpcErr<E>> {
        match self.pool.call(&self.addr, &req, timeout).await {
            Ok(resp) => Ok(resp),
            Err(e) => Err(match e.kind {
                ErrorKind::Unavailable | ErrorKind::PermissionDenied => {
                    RPCError::Unreachable(Unreachable::new(&e))
                }
                ErrorKind::TooBig => {
                    RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(1))
                }
                _ => RPCError::Network(NetworkError::new(&e)),
            }),
        }
    }

    fn unexpected<E: std::error::Error>(&self, resp: Response) -> RpcErr<E> {
        let e = match resp {
            Response::Failed(e) => e,
            other => Error::internal(format!("unexpected response {}", variant_name(&other))),
        };
        RPCError::Network(NetworkError::new(&e))
    }
}

fn variant_name(r: &Response) -> &'static str {
    match r {
        Response::Append(_) => "Append",
        Response::Vote(_) => "Vote",
        Response::InstallSnapshot(_) => "InstallSnapshot",
        Response::Write(_) => "Write",
        Response::Read(_) => "Read",
        Response::Events(_) => "Events",
        Response::Reset { .. } => "Reset",
        Response::StreamEnd(_) => "StreamEnd",
        Response::Status(_) => "Status",
        Response::Done(_) => "Done",
        Response::HookRecent(_) => "HookRecent",
        Response::HookLines(_) => "HookLines",
        Response::Secret(_) => "Secret",
        Response::Failed(_) => "Failed",
    }
}

/// Rough encoded size of an append request, to split oversized ones before sending.
fn append_size(rpc: &AppendEntriesRequest<TypeConfig>) -> usize {
    use openraft::EntryPayload;
    rpc.entries
        .iter()
        .map(|e| match &e.payload {
            EntryPayload::Normal(crate::raft::RaftRequest::V1 { commands, .. }) => {
                commands
                    .iter()
                    .map(|(_, c)| crate::node::command_size(c))
                    .sum::<usize>()
                    + 64
            }
            _ => 256,
        })
        .sum()
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> std::result::Result<AppendEntriesResponse<NodeId>, RpcErr> {
        let n = rpc.entries.len() as u64;
        if n > 1 && append_size(&rpc) > MAX_FRAME_BYTES / 2 {
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint((n / 2).max(1)),
            ));
        }
        let vote = rpc.vote;
        let sent = std::time::Instant::now();
        match self.call(Request::Append(rpc), option.hard_ttl()).await {
            Ok(Response::Append(Ok(r))) => {
                // Anything but a higher vote means the follower accepts this leader.
                if !matches!(r, AppendEntriesResponse::HigherVote(_)) {
                    self.lease.acked(self.target, vote, sent);
                }
                Ok(r)
            }
            Ok(Response::Append(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(self.unexpected(other)),
            Err(RPCError::PayloadTooLarge(_)) if n > 1 => Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint((n / 2).max(1)),
            )),
            Err(e) => Err(e),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> std::result::Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        match self
            .call(Request::InstallSnapshot(rpc), option.hard_ttl())
            .await
        {
            Ok(Response::InstallSnapshot(Ok(r))) => Ok(r),
            Ok(Response::InstallSnapshot(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(self.unexpected(other)),
            Err(e) => Err(e),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> std::result::Result<VoteResponse<NodeId>, RpcErr> {
        let timeout = option
            .hard_ttl()
            .min(Duration::from_millis(PEER_RPC_TIMEOUT_MS));
        match self.call(Request::Vote(rpc), timeout).await {
            Ok(Response::Vote(Ok(r))) => Ok(r),
            Ok(Response::Vote(Err(e))) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(other) => Err(self.unexpected(other)),
            Err(e) => Err(e),
        }
    }
}
