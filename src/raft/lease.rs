//! Leader leases for linearizable reads without a network round trip.
//!
//! The peer network records, per follower, when the last append-entries request that the
//! follower accepted (for the leader's current vote) was *sent*. If a quorum of voters,
//! counting the leader itself, accepted requests sent within the last
//! `LEADER_LEASE_MS`, no other leader can exist yet: a follower that accepted a request
//! at time t does not start an election before t + `ELECTION_TIMEOUT_MIN_MS`, and the
//! lease is half of that, which leaves room for scheduling delays and clock-rate drift.
//! The leader can then serve a read from its own applied state, provided it has applied
//! an entry of its own term (so everything committed by earlier leaders is applied too).
//! Otherwise reads fall back to openraft's read index (a heartbeat round to a quorum).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::{ServerState, Vote};

use crate::limits::LEADER_LEASE_MS;
use crate::raft::types::{NodeId, Raft};

/// Per follower: the vote of the last request it accepted, and when that was sent.
type Acks = BTreeMap<NodeId, (Vote<NodeId>, Instant)>;

/// Acknowledgements by followers, shared by the network (which records) and reads.
#[derive(Clone, Default)]
pub struct LeaseTracker {
    acks: Arc<Mutex<Acks>>,
}

impl LeaseTracker {
    /// `target` accepted an append-entries request carrying `vote`, sent at `sent`.
    pub fn acked(&self, target: NodeId, vote: Vote<NodeId>, sent: Instant) {
        if let Ok(mut acks) = self.acks.lock() {
            let newer = match acks.get(&target) {
                Some((v, t)) => *v != vote || *t < sent,
                None => true,
            };
            if newer {
                acks.insert(target, (vote, sent));
            }
        }
    }

    /// Whether this node holds a valid leader lease right now and may serve linearizable
    /// reads from its applied state.
    pub fn holds_lease(&self, raft: &Raft, self_id: NodeId) -> bool {
        let m = raft.metrics().borrow().clone();
        if m.state != ServerState::Leader
            || m.current_leader != Some(self_id)
            || !m.vote.is_committed()
        {
            return false;
        }
        // Entries of earlier terms are applied once one of this term is.
        match m.last_applied {
            Some(applied) if applied.leader_id.term == m.vote.leader_id().get_term() => {}
            _ => return false,
        }
        let membership = m.membership_config.membership();
        // During a joint configuration change, use the read index.
        if membership.get_joint_config().len() != 1 {
            return false;
        }
        let voters: Vec<NodeId> = membership.voter_ids().collect();
        if voters.is_empty() {
            return false;
        }
        let now = Instant::now();
        let lease = Duration::from_millis(LEADER_LEASE_MS);
        let Ok(acks) = self.acks.lock() else {
            return false;
        };
        let fresh = voters
            .iter()
            .filter(|id| {
                **id == self_id
                    || acks.get(id).is_some_and(|(vote, sent)| {
                        *vote == m.vote && now.saturating_duration_since(*sent) < lease
                    })
            })
            .count();
        fresh * 2 > voters.len()
    }
}
