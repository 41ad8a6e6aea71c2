//! A node: opens the store, runs raft, serves the wire protocol, and offers the KV API
//! (writes through group commit, linearizable or local reads, watches, membership) to the
//! request handler, the in-process file-system backend and the CLI.

mod handler;
mod hook_tail;
mod leases;
pub mod proposer;
mod secrets;
mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{Error, ErrorKind, Result};
use crate::hooks::{HookConfig, HookHub};
use crate::kv::{self, Command, CommandResult, ReadQuery, ReadResult};
use crate::limits::*;
use crate::net::auth::Keys;
use crate::net::proto::{ClusterStatus, Consistency, MemberStatus, Request, Response};
use crate::raft::lease::LeaseTracker;
use crate::raft::log_store::LogStore;
use crate::raft::network::{Network, PeerPool};
use crate::raft::state_machine::{Applied, Shared, StateMachine};
use crate::raft::types::{NodeId, Raft, RaftRequest};
use crate::store::Store;

pub use proposer::{command_size, now_ns};

/// How a node joins a cluster on start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// Nothing: wait to be initialized or added by others.
    None,
    /// Initialize a new cluster with these voters if this node's log is empty.
    Init(BTreeMap<NodeId, String>),
    /// Ask the cluster at this address to add this node (learner, then voter).
    Join(String),
}

#[derive(Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    pub data_dir: PathBuf,
    pub listen: String,
    /// Address other nodes and clients use to reach this node (default: `listen`).
    pub advertise: Option<String>,
    pub keys: Keys,
    pub max_value_bytes: usize,
    pub bootstrap: Bootstrap,
    pub hooks: HookConfig,
    /// This node's age identity file (`keys.txt` format) for secrets; `None`: the node
    /// serves secret metadata only.
    pub age_identity: Option<PathBuf>,
}

pub struct Node {
    pub id: NodeId,
    pub addr: String,
    pub raft: Raft,
    shared: Shared,
    proposals: mpsc::Sender<proposer::Proposal>,
    pool: PeerPool,
    lease: LeaseTracker,
    max_value_bytes: usize,
    hooks: Arc<HookHub>,
    keyring: crate::secrets::Keyring,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Node {
    /// Opens the data dir, starts raft and the server; returns once the node listens.
    pub async fn start(config: NodeConfig) -> Result<Arc<Node>> {
        if config.max_value_bytes == 0 || config.max_value_bytes > MAX_VALUE_BYTES_CEILING {
            return Err(Error::invalid(format!(
                "--max-value-bytes must be between 1 and {MAX_VALUE_BYTES_CEILING}"
            )));
        }
        let keyring = match &config.age_identity {
            Some(path) => crate::secrets::Keyring::load(path)?,
            None => crate::secrets::Keyring::empty(),
        };
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {}: {e}", config.listen)))?;
        let addr = match &config.advertise {
            Some(a) => a.clone(),
            None => listener
                .local_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| config.listen.clone()),
        };
        let store = Store::open(&config.data_dir)?;
        let log = LogStore::open(store.clone())?;
        log.check_node_id(config.id)?;
        let (applied_tx, _) = broadcast::channel(EVENT_BROADCAST_CAPACITY);
        let hooks = HookHub::start(store.clone(), config.id, &config.data_dir, &config.hooks)?;
        let mut sm = StateMachine::open(store, applied_tx)?;
        sm.set_hooks(hooks.clone());
        let shared = sm.shared();
        // Peer connections leave from the listen address (unless it is a wildcard), so
        // that a multi-homed host uses its cluster interface.
        let local_ip = listener
            .local_addr()
            .ok()
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified());
        let pool = PeerPool::new(config.id, config.keys.cluster_secret.clone(), local_ip);
        let raft_config = Arc::new(crate::raft::config("aspen")?);
        let lease = LeaseTracker::default();
        let raft = match Raft::new(
            config.id,
            raft_config,
            Network {
                pool: pool.clone(),
                lease: lease.clone(),
            },
            log,
            sm,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                hooks.stop();
                return Err(Error::internal(format!("raft failed to start: {e}")));
            }
        };
        let proposals = proposer::start(raft.clone(), pool.clone());
        let node = Arc::new(Node {
            id: config.id,
            addr: addr.clone(),
            raft,
            shared,
            proposals,
            pool,
            lease,
            max_value_bytes: config.max_value_bytes,
            hooks,
            keyring,
            tasks: std::sync::Mutex::new(Vec::new()),
        });
        let server = tokio::spawn(crate::net::server::serve(
            listener,
            config.id,
            config.keys.clone(),
            Arc::new(handler::NodeHandler { node: node.clone() }),
        ));
        let ticker = tokio::spawn(leases::expire_loop(Arc::downgrade(&node)));
        node.track(server);
        node.track(ticker);
        match config.bootstrap {
            Bootstrap::None => {}
            Bootstrap::Init(mut members) => {
                members.entry(config.id).or_insert_with(|| addr.clone());
                node.initialize(members).await?;
            }
            Bootstrap::Join(target) => {
                let joiner = node.clone();
                node.track(tokio::spawn(async move { joiner.join(target).await }));
            }
        }
        tracing::info!(id = config.id, %addr, "node started");
        Ok(node)
    }

    fn track(&self, task: JoinHandle<()>) {
        if let Ok(mut t) = self.tasks.lock() {
            t.push(task);
        }
    }

    /// Stops serving and shuts raft down.
    pub async fn shutdown(&self) {
        if let Ok(mut t) = self.tasks.lock() {
            for task in t.drain(..) {
                task.abort();
            }
        }
        let _ = self.raft.shutdown().await;
        let hooks = self.hooks.clone();
        let _ = tokio::task::spawn_blocking(move || hooks.stop()).await;
    }

    /// This node's hook events: delivery, recent ring, tail streams.
    pub fn hooks(&self) -> &Arc<HookHub> {
        &self.hooks
    }

    /// The recent hook events and delivery figures (what `/hooks` shows).
    pub fn hook_recent(&self) -> crate::net::proto::HookRecent {
        crate::net::proto::HookRecent {
            events: self.hooks.recent(),
            stats: self.hooks.stats(),
        }
    }

    pub fn max_value_bytes(&self) -> usize {
        self.max_value_bytes
    }

    /// Changes applied on this node, as they are applied.
    pub fn subscribe(&self) -> broadcast::Receiver<Applied> {
        self.shared.applied_tx.subscribe()
    }

    // ---- writes ----

    /// Checks done before proposing: shape, key syntax and this node's value limit.
    pub fn check_command(&self, c: &Command) -> Result<()> {
        let too_big = |n: usize| {
            Error::new(
                ErrorKind::TooBig,
                format!(
                    "value of {n} bytes exceeds the {}-byte limit",
                    self.max_value_bytes
                ),
            )
        };
        let check_put = |p: &kv::PutOp| -> Result<()> {
            kv::key::validate_key(&p.key)?;
            if p.value.len() > self.max_value_bytes {
                return Err(too_big(p.value.len()));
            }
            kv::apply::validate_put(p)
        };
        match c {
            Command::Put(p) => check_put(p)?,
            Command::SetAttr { key, change } => {
                kv::key::validate_key(key)?;
                if let Some(size) = change.size {
                    if size > self.max_value_bytes as u64 {
                        return Err(too_big(usize::try_from(size).unwrap_or(usize::MAX)));
                    }
                }
            }
            Command::Delete { key, .. } => kv::key::validate_key(key)?,
            Command::DeletePrefix { prefix } => {
                let p = kv::key::normalize(prefix);
                if !p.is_empty() {
                    kv::key::validate_key(p)?;
                }
            }
            Command::Rename { from, to, .. } => {
                kv::key::validate_key(from)?;
                kv::key::validate_key(to)?;
            }
            Command::Txn(t) => {
                for op in t.success.iter().chain(t.failure.iter()) {
                    if let kv::TxnOp::Put(p) = op {
                        check_put(p)?;
                    }
                }
            }
            Command::LeaseGrant { .. }
            | Command::LeaseKeepAlive { .. }
            | Command::LeaseRevoke { .. } => {}
            Command::ExpireLeases { .. } => {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    "lease expiry is internal to the cluster",
                ))
            }
            Command::Secret(s) => crate::secrets::apply::check(s)?,
            Command::Topic(t) => {
                crate::topics::validate_topic_name(t.topic())?;
                match t {
                    crate::topics::TopicCommand::Publish { messages, .. } => {
                        crate::topics::apply::check_batch(messages)?
                    }
                    crate::topics::TopicCommand::Create { config, .. }
                    | crate::topics::TopicCommand::Configure { config, .. } => {
                        crate::topics::apply::check_config(config)?
                    }
                    crate::topics::TopicCommand::CreateGroup {
                        group, settings, ..
                    } => {
                        crate::topics::validate_topic_name(group)?;
                        crate::topics::apply::check_settings(settings)?
                    }
                    _ => {}
                }
            }
        }
        if command_size(c) > MAX_REQUEST_BYTES {
            return Err(Error::new(
                ErrorKind::TooBig,
                format!("request over {MAX_REQUEST_BYTES} bytes"),
            ));
        }
        Ok(())
    }

    /// Applies commands through raft; one result per command. Acknowledged results are
    /// committed on a quorum (their log entries fsynced on a majority).
    pub async fn write(&self, origin: u64, commands: Vec<Command>) -> Result<Vec<CommandResult>> {
        let mut waiting = Vec::with_capacity(commands.len());
        for command in commands {
            let checked = match &command {
                // Secret commands come only from the secrets API (`Node::secret`), which
                // encrypts values before they become commands.
                Command::Secret(_) => Err(Error::new(
                    ErrorKind::PermissionDenied,
                    "secret commands go through the secrets API (aspen secrets)",
                )),
                c => self.check_command(c),
            };
            if let Err(e) = checked {
                let (tx, rx) = oneshot::channel();
                let _ = tx.send(Err(e));
                waiting.push(rx);
                continue;
            }
            waiting.push(self.enqueue(origin, command)?);
        }
        let mut results = Vec::with_capacity(waiting.len());
        for rx in waiting {
            results.push(
                rx.await.unwrap_or_else(|_| {
                    Err(Error::new(ErrorKind::ShuttingDown, "node is stopping"))
                }),
            );
        }
        Ok(results)
    }

    /// One checked command, secret commands included (for the secrets API).
    async fn write_checked(&self, origin: u64, command: Command) -> Result<kv::WriteResult> {
        self.check_command(&command)?;
        let rx = self.enqueue(origin, command)?;
        rx.await
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::ShuttingDown, "node is stopping")))
    }

    /// Queues a command without checks (internal commands such as lease expiry).
    fn enqueue(&self, origin: u64, command: Command) -> Result<oneshot::Receiver<CommandResult>> {
        let (tx, rx) = oneshot::channel();
        self.proposals
            .try_send(proposer::Proposal {
                origin,
                command,
                reply: tx,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Error::new(
                    ErrorKind::Unavailable,
                    format!("node overloaded: {PROPOSAL_QUEUE_LEN} writes already queued"),
                ),
                mpsc::error::TrySendError::Closed(_) => {
                    Error::new(ErrorKind::ShuttingDown, "node is stopping")
                }
            })?;
        Ok(rx)
    }

    /// One command; the error of a failed command becomes the error.
    pub async fn write_one(&self, origin: u64, command: Command) -> Result<kv::WriteResult> {
        let mut results = self.write(origin, vec![command]).await?;
        results
            .pop()
            .unwrap_or_else(|| Err(Error::internal("no result")))
    }

    /// Proposes a forwarded batch here, without forwarding again.
    async fn propose_here(&self, commands: Vec<(u64, Command)>) -> Result<Vec<CommandResult>> {
        let entry = RaftRequest::V1 {
            stamp_ns: now_ns(),
            commands,
        };
        let timeout = Duration::from_millis(CLIENT_REQUEST_TIMEOUT_MS);
        match tokio::time::timeout(timeout, self.raft.client_write(entry)).await {
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                "no commit within the request timeout",
            )),
            Ok(Ok(resp)) => Ok(resp.data.results),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => Err(Error::new(
                ErrorKind::NotLeader,
                format!("node {} is not the leader", self.id),
            )),
            Ok(Err(e)) => Err(Error::new(ErrorKind::Unavailable, e.to_string())),
        }
    }

    // ---- reads ----

    /// Answers a query from this node's applied state.
    pub fn read_local(&self, query: &ReadQuery) -> Result<ReadResult> {
        if let ReadQuery::Stats = query {
            return self.store_stats().map(ReadResult::Stats);
        }
        let view = self.shared.view()?;
        kv::read::query(&view, query)
    }

    /// Confirms leadership and waits until the read index is applied: at once while the
    /// leader lease holds, otherwise with a heartbeat round to a quorum.
    async fn read_barrier(&self) -> Result<()> {
        if self.lease.holds_lease(&self.raft, self.id) {
            return Ok(());
        }
        match self.raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f))) => Err(Error::new(
                ErrorKind::NotLeader,
                f.leader_node.map(|n| n.addr).unwrap_or_default(),
            )),
            Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(e))) => Err(Error::new(
                ErrorKind::Unavailable,
                format!("no quorum: {e}"),
            )),
            Err(RaftError::Fatal(e)) => Err(Error::new(ErrorKind::ShuttingDown, e.to_string())),
        }
    }

    /// A read at the requested consistency; linearizable reads on a follower go to the leader.
    pub async fn read(
        &self,
        query: ReadQuery,
        consistency: Consistency,
        hops: u8,
    ) -> Result<ReadResult> {
        if consistency == Consistency::Local || cfg!(feature = "broken-reads") {
            return self.read_local(&query);
        }
        let timeout = Duration::from_millis(CLIENT_REQUEST_TIMEOUT_MS);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let barrier = tokio::time::timeout_at(deadline, self.read_barrier())
                .await
                .map_err(|_| {
                    Error::new(
                        ErrorKind::Unavailable,
                        "no quorum to confirm a linearizable read",
                    )
                })?;
            match barrier {
                Ok(()) => return self.read_local(&query),
                Err(e)
                    if e.kind == ErrorKind::NotLeader
                        && !e.message.is_empty()
                        && hops < MAX_FORWARD_HOPS =>
                {
                    let req = Request::Read {
                        query: query.clone(),
                        consistency,
                        hops: hops + 1,
                    };
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    match self.pool.call(&e.message, &req, left).await {
                        Ok(Response::Read(r)) => match r {
                            Err(e) if e.is_retryable() => {}
                            other => return other,
                        },
                        Ok(Response::Failed(e)) => return Err(e),
                        Ok(_) => {
                            return Err(Error::internal("unexpected response to a forwarded read"))
                        }
                        Err(e) if e.kind == ErrorKind::Unavailable => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(e) if e.is_retryable() => {}
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "no leader to confirm a linearizable read",
                ));
            }
            tokio::time::sleep(Duration::from_millis(CLIENT_RETRY_BACKOFF_MS)).await;
        }
    }

    /// Space figures of the file system holding the data dir (statvfs).
    fn store_stats(&self) -> Result<kv::StoreStats> {
        use std::os::unix::ffi::OsStrExt;
        let dir = &self.shared.store.snapshot_dir;
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| Error::internal("data dir path has a NUL"))?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `path` is a valid C string and `st` a writable statvfs.
        let rc = unsafe { libc::statvfs(path.as_ptr(), &mut st) };
        if rc != 0 {
            return Err(Error::io(format!(
                "statvfs: {}",
                std::io::Error::last_os_error()
            )));
        }
        let frsize = st.f_frsize as u64;
        Ok(kv::StoreStats {
            total_bytes: st.f_blocks as u64 * frsize,
            free_bytes: st.f_bfree as u64 * frsize,
            available_bytes: st.f_bavail as u64 * frsize,
            records: self.shared.store.state.approximate_len() as u64,
            max_value_bytes: self.max_value_bytes as u64,
        })
    }

    /// The current store revision on this node.
    pub fn revision(&self) -> Result<u64> {
        Ok(kv::read::meta(&self.shared.view()?)?.revision)
    }

    // ---- cluster ----

    pub async fn initialize(&self, members: BTreeMap<NodeId, String>) -> Result<()> {
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| Error::internal(e.to_string()))?
        {
            return Ok(());
        }
        let nodes: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode { addr }))
            .collect();
        match self.raft.initialize(nodes).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(openraft::error::InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(Error::invalid(format!("cannot initialize: {e}"))),
        }
    }

    fn leader_addr(&self) -> Option<String> {
        let m = self.raft.metrics().borrow().clone();
        let leader = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
    }

    /// Runs a membership change on the leader (here, or forwarded there).
    pub async fn membership(&self, req: Request) -> Result<()> {
        let hops = match &req {
            Request::AddLearner { hops, .. } | Request::ChangeMembership { hops, .. } => *hops,
            _ => return Err(Error::internal("not a membership request")),
        };
        let result = match &req {
            Request::AddLearner { id, addr, .. } => self
                .raft
                .add_learner(*id, BasicNode { addr: addr.clone() }, true)
                .await
                .map(|_| ()),
            Request::ChangeMembership { voters, remove, .. } => {
                self.change_members(voters, remove).await
            }
            _ => return Err(Error::internal("not a membership request")),
        };
        match result {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                let Some(addr) = self.leader_addr() else {
                    return Err(Error::new(ErrorKind::Unavailable, "no leader known"));
                };
                if hops >= MAX_FORWARD_HOPS {
                    return Err(Error::new(ErrorKind::NotLeader, addr));
                }
                let forwarded = match req {
                    Request::AddLearner { id, addr, .. } => Request::AddLearner {
                        id,
                        addr,
                        hops: hops + 1,
                    },
                    Request::ChangeMembership { voters, remove, .. } => Request::ChangeMembership {
                        voters,
                        remove,
                        hops: hops + 1,
                    },
                    other => other,
                };
                match self
                    .pool
                    .call(
                        &addr,
                        &forwarded,
                        Duration::from_millis(JOIN_CATCH_UP_TIMEOUT_MS),
                    )
                    .await?
                {
                    Response::Done(r) => r,
                    Response::Failed(e) => Err(e),
                    _ => Err(Error::internal(
                        "unexpected response to a membership change",
                    )),
                }
            }
            Err(e) => Err(Error::invalid(format!("membership change refused: {e}"))),
        }
    }

    async fn change_members(
        &self,
        voters: &BTreeSet<NodeId>,
        remove: &BTreeSet<NodeId>,
    ) -> std::result::Result<(), RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>> {
        if !voters.is_empty() {
            self.raft
                .change_membership(ChangeMembers::AddVoterIds(voters.clone()), false)
                .await?;
        }
        if !remove.is_empty() {
            let m = self.raft.metrics().borrow().membership_config.clone();
            let current_voters: BTreeSet<NodeId> = m.membership().voter_ids().collect();
            let voters_to_remove: BTreeSet<NodeId> =
                remove.intersection(&current_voters).copied().collect();
            if !voters_to_remove.is_empty() {
                self.raft
                    .change_membership(ChangeMembers::RemoveVoters(voters_to_remove), false)
                    .await?;
            }
            let m = self.raft.metrics().borrow().membership_config.clone();
            let learners: BTreeSet<NodeId> = m
                .membership()
                .learner_ids()
                .filter(|id| remove.contains(id))
                .collect();
            if !learners.is_empty() {
                self.raft
                    .change_membership(ChangeMembers::RemoveNodes(learners), false)
                    .await?;
            }
        }
        Ok(())
    }

    /// `--join`: ask the cluster at `target` to add this node as a learner, then as a voter.
    async fn join(self: Arc<Self>, target: String) {
        let mut delay = Duration::from_millis(CLIENT_RETRY_BACKOFF_MS);
        loop {
            let already_voter = {
                let m = self.raft.metrics().borrow().clone();
                m.membership_config
                    .membership()
                    .voter_ids()
                    .any(|id| id == self.id)
            };
            if already_voter {
                return;
            }
            let steps = [
                Request::AddLearner {
                    id: self.id,
                    addr: self.addr.clone(),
                    hops: 0,
                },
                Request::ChangeMembership {
                    voters: BTreeSet::from([self.id]),
                    remove: BTreeSet::new(),
                    hops: 0,
                },
            ];
            let mut ok = true;
            for step in &steps {
                match self
                    .pool
                    .call(
                        &target,
                        step,
                        Duration::from_millis(JOIN_CATCH_UP_TIMEOUT_MS),
                    )
                    .await
                {
                    Ok(Response::Done(Ok(()))) => {}
                    Ok(Response::Done(Err(e))) | Ok(Response::Failed(e)) | Err(e) => {
                        tracing::warn!(%target, error = %e, "join attempt failed; retrying");
                        ok = false;
                        break;
                    }
                    Ok(_) => {
                        ok = false;
                        break;
                    }
                }
            }
            if ok {
                tracing::info!(%target, "joined the cluster as a voter");
                return;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    pub fn status(&self) -> Result<ClusterStatus> {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let matched: BTreeMap<NodeId, Option<u64>> = match &m.replication {
            Some(r) => r.iter().map(|(id, l)| (*id, l.map(|l| l.index))).collect(),
            None => BTreeMap::new(),
        };
        let members = membership
            .nodes()
            .map(|(id, n)| MemberStatus {
                id: *id,
                addr: n.addr.clone(),
                voter: voters.contains(id),
                matched: matched.get(id).copied().flatten(),
            })
            .collect();
        let role = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        let leader_addr = m
            .current_leader
            .and_then(|l| membership.get_node(&l).map(|n| n.addr.clone()));
        Ok(ClusterStatus {
            id: self.id,
            addr: self.addr.clone(),
            role: role.to_string(),
            leader: m.current_leader,
            leader_addr,
            term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            revision: self.revision().unwrap_or(0),
            members,
            initialized: m.membership_config.log_id().is_some(),
        })
    }

    /// Builds a snapshot of everything applied so far, waits for it, then purges the log
    /// up to it (a node that later falls behind or joins receives the snapshot).
    pub async fn snapshot_now(&self) -> Result<()> {
        let mut rx = self.raft.metrics();
        let target = rx.borrow().last_applied;
        let current = rx.borrow().snapshot;
        if current < target {
            self.raft
                .trigger()
                .snapshot()
                .await
                .map_err(|e| Error::internal(e.to_string()))?;
        }
        let wait = async {
            loop {
                if rx.borrow().snapshot >= target {
                    return Ok(());
                }
                if rx.changed().await.is_err() {
                    return Err(Error::new(ErrorKind::ShuttingDown, "raft stopped"));
                }
            }
        };
        tokio::time::timeout(Duration::from_millis(SNAPSHOT_TIMEOUT_MS), wait)
            .await
            .map_err(|_| Error::new(ErrorKind::Timeout, "snapshot did not finish in time"))??;
        let snapshot = self.raft.metrics().borrow().snapshot;
        if let Some(snap) = snapshot {
            self.raft
                .trigger()
                .purge_log(snap.index)
                .await
                .map_err(|e| Error::internal(e.to_string()))?;
        }
        Ok(())
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}
