//! `aspen cluster ...`: initialize, add and promote learners, remove nodes, show status.

use std::collections::{BTreeMap, BTreeSet};

use clap::Subcommand;
use serde_json::json;

use super::output::{print_json, print_line};
use super::{ClientArgs, OutputFormat};
use crate::error::{Error, Result};
use crate::raft::types::NodeId;

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Initialize a new cluster through the first endpoint, with voters ID=ADDR (default: that node alone).
    Init { members: Vec<String> },
    /// Add node ID at ADDR as a learner (it receives the log or a snapshot).
    AddLearner { id: NodeId, addr: String },
    /// Make learner ID a voter.
    Promote { id: NodeId },
    /// Remove node ID from the cluster.
    Remove { id: NodeId },
    /// Show the node's view of the cluster.
    Status,
}

pub async fn run(cmd: ClusterCmd, c: &ClientArgs) -> Result<()> {
    let client = c.client()?;
    let done = |what: &str| match c.write_out {
        OutputFormat::Json => print_json(&json!({"ok": true, "action": what})),
        OutputFormat::Simple => print_line("OK"),
    };
    match cmd {
        ClusterCmd::Init { members } => {
            let mut map = BTreeMap::new();
            for m in members {
                let (id, addr) = m
                    .split_once('=')
                    .ok_or_else(|| Error::invalid(format!("{m:?} is not ID=ADDR")))?;
                let id: NodeId = id
                    .parse()
                    .map_err(|_| Error::invalid(format!("bad node id in {m:?}")))?;
                map.insert(id, addr.to_string());
            }
            if map.is_empty() {
                let s = client.status().await?;
                map.insert(s.id, s.addr);
            }
            client.init(map).await?;
            done("init")
        }
        ClusterCmd::AddLearner { id, addr } => {
            client.add_learner(id, addr).await?;
            done("add-learner")
        }
        ClusterCmd::Promote { id } => {
            client
                .change_membership(BTreeSet::from([id]), BTreeSet::new())
                .await?;
            done("promote")
        }
        ClusterCmd::Remove { id } => {
            client
                .change_membership(BTreeSet::new(), BTreeSet::from([id]))
                .await?;
            done("remove")
        }
        ClusterCmd::Status => {
            let s = client.status().await?;
            match c.write_out {
                OutputFormat::Json => print_json(&json!({
                    "id": s.id, "addr": s.addr, "role": s.role, "leader": s.leader,
                    "leader_addr": s.leader_addr, "term": s.term, "last_log_index": s.last_log_index,
                    "last_applied": s.last_applied, "snapshot_index": s.snapshot_index,
                    "revision": s.revision, "initialized": s.initialized,
                    "members": s.members.iter().map(|m| json!({
                        "id": m.id, "addr": m.addr, "voter": m.voter, "matched": m.matched,
                    })).collect::<Vec<_>>(),
                })),
                OutputFormat::Simple => {
                    print_line(&format!(
                        "node {} ({}) is {}; leader: {}; term {}; applied {}; revision {}",
                        s.id,
                        s.addr,
                        s.role,
                        s.leader.map_or("none".to_string(), |l| l.to_string()),
                        s.term,
                        s.last_applied.map_or("-".to_string(), |a| a.to_string()),
                        s.revision
                    ))?;
                    for m in &s.members {
                        print_line(&format!(
                            "  {} {} {}{}",
                            m.id,
                            m.addr,
                            if m.voter { "voter" } else { "learner" },
                            m.matched.map_or(String::new(), |x| format!(" matched={x}"))
                        ))?;
                    }
                    Ok(())
                }
            }
        }
    }
}
