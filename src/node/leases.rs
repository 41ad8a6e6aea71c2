//! Lease expiry: while this node leads, it looks for leases whose deadline passed (by its
//! own clock) and proposes their expiry. The state machine re-checks each deadline against
//! the leader-stamped time of the entry, so expiry stays deterministic on every node.
//! The same loop trims topics whose oldest message outlived the topic's age limit
//! (retention otherwise runs only at publishes).

use std::sync::Weak;
use std::time::Duration;

use crate::kv::{self, Command};
use crate::limits::{LEASE_CHECK_INTERVAL_MS, MAX_LEASES_PER_EXPIRY, MAX_TOPIC_TRIMS_PER_CHECK};
use crate::node::{now_ns, Node};

pub async fn expire_loop(node: Weak<Node>) {
    let mut tick = tokio::time::interval(Duration::from_millis(LEASE_CHECK_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(node) = node.upgrade() else { return };
        let leading = node.raft.metrics().borrow().current_leader == Some(node.id);
        if !leading {
            continue;
        }
        let expired = match node
            .shared()
            .view()
            .and_then(|v| kv::read::expired_leases(&v, now_ns(), MAX_LEASES_PER_EXPIRY))
        {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "cannot scan leases");
                continue;
            }
        };
        let aged = node
            .shared()
            .view()
            .and_then(|v| crate::topics::read::aged_topics(&v, now_ns(), MAX_TOPIC_TRIMS_PER_CHECK))
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot scan topics for retention");
                Vec::new()
            });
        let mut commands: Vec<Command> = aged
            .into_iter()
            .map(|topic| Command::Topic(crate::topics::TopicCommand::Trim { topic }))
            .collect();
        if !expired.is_empty() {
            commands.push(Command::ExpireLeases { ids: expired });
        }
        for command in commands {
            let what = command.name();
            match node.enqueue(0, command) {
                Ok(rx) => {
                    if let Ok(Err(e)) = rx.await {
                        tracing::warn!(error = %e, what, "leader housekeeping failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, what, "cannot queue leader housekeeping"),
            }
        }
    }
}
