//! Serves wire requests with the node's API, checking that raft traffic comes from peers.

use std::sync::Arc;

use crate::error::{Error, ErrorKind};
use crate::net::proto::{Request, Response, Role};
use crate::net::server::{Handler, Replier};
use crate::node::Node;

pub struct NodeHandler {
    pub node: Arc<Node>,
}

fn peers_only() -> Response {
    Response::Failed(Error::new(
        ErrorKind::PermissionDenied,
        "raft requests are for peers only",
    ))
}

impl Handler for NodeHandler {
    async fn handle(self: Arc<Self>, role: Role, req: Request, reply: Replier) {
        let node = &self.node;
        let is_peer = matches!(role, Role::Peer { .. });
        let resp = match req {
            Request::Append(rpc) if is_peer => {
                Response::Append(node.raft.append_entries(rpc).await)
            }
            Request::Vote(rpc) if is_peer => Response::Vote(node.raft.vote(rpc).await),
            Request::InstallSnapshot(rpc) if is_peer => {
                Response::InstallSnapshot(node.raft.install_snapshot(rpc).await)
            }
            Request::Propose { commands } if is_peer => {
                Response::Write(node.propose_here(commands).await)
            }
            Request::Append(_)
            | Request::Vote(_)
            | Request::InstallSnapshot(_)
            | Request::Propose { .. } => peers_only(),
            Request::Write {
                origin, commands, ..
            } => Response::Write(node.write(origin, commands).await),
            Request::Read {
                query,
                consistency,
                hops,
            } => Response::Read(node.read(query, consistency, hops).await),
            Request::Watch {
                prefix,
                from_revision,
            } => {
                super::watch::stream(node.clone(), prefix, from_revision, &reply).await;
                return;
            }
            Request::Status => Response::Status(node.status()),
            Request::Init { members } => Response::Done(node.initialize(members).await),
            req @ (Request::AddLearner { .. } | Request::ChangeMembership { .. }) => {
                Response::Done(node.membership(req).await)
            }
            Request::TriggerSnapshot => Response::Done(node.snapshot_now().await),
            Request::HookRecent => Response::HookRecent(Ok(node.hook_recent())),
            Request::Secret { origin, request } => {
                Response::Secret(node.secret(origin, request).await)
            }
            Request::HookTail { pattern } => {
                super::hook_tail::stream(node.clone(), pattern, &reply).await;
                return;
            }
        };
        reply.send(resp).await;
    }
}
