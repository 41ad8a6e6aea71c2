//! The read-only files under `/cluster`: `leader`, `members`, `node`, `health` and
//! `metrics` (Prometheus text format), rendered from a node's status and its hook
//! delivery figures.

use crate::hooks::HookStats;
use crate::net::proto::ClusterStatus;

pub const FILES: &[&str] = &["health", "leader", "members", "metrics", "node"];

/// Contents of `/cluster/<name>`, or `None` for an unknown name. `hooks` adds the hook
/// figures to `metrics` (when they could be read).
pub fn render(name: &str, s: &ClusterStatus, hooks: Option<&HookStats>) -> Option<Vec<u8>> {
    let text = match name {
        "leader" => match (s.leader, &s.leader_addr) {
            (Some(id), Some(addr)) => format!("{id} {addr}\n"),
            (Some(id), None) => format!("{id}\n"),
            _ => "none\n".to_string(),
        },
        "members" => {
            let mut out = String::new();
            for m in &s.members {
                let role = if Some(m.id) == s.leader {
                    "leader"
                } else if m.voter {
                    "voter"
                } else {
                    "learner"
                };
                let matched = m.matched.map_or("-".to_string(), |x| x.to_string());
                out.push_str(&format!("{} {} {role} {matched}\n", m.id, m.addr));
            }
            out
        }
        "node" => format!("{} {}\n", s.id, s.addr),
        "health" => {
            if s.leader.is_some() && s.initialized {
                format!(
                    "ok: {} of term {}, leader {}\n",
                    s.role,
                    s.term,
                    s.leader.unwrap_or(0)
                )
            } else if !s.initialized {
                "uninitialized: this node is not part of a cluster yet\n".to_string()
            } else {
                "unavailable: no leader (no quorum?)\n".to_string()
            }
        }
        "metrics" => {
            let mut m = metrics(s);
            if let Some(h) = hooks {
                m.push_str(&hook_metrics(s.id, h));
            }
            m
        }
        _ => return None,
    };
    Some(text.into_bytes())
}

fn metrics(s: &ClusterStatus) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: u64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name}{{node=\"{}\"}} {value}\n",
            s.id
        ));
    };
    gauge(
        "aspen_raft_is_leader",
        "1 if this node is the raft leader.",
        u64::from(s.role == "leader"),
    );
    gauge(
        "aspen_raft_has_leader",
        "1 if this node knows a leader.",
        u64::from(s.leader.is_some()),
    );
    gauge("aspen_raft_term", "Current raft term.", s.term);
    gauge(
        "aspen_raft_last_log_index",
        "Index of the last raft log entry.",
        s.last_log_index.unwrap_or(0),
    );
    gauge(
        "aspen_raft_last_applied_index",
        "Index of the last applied raft log entry.",
        s.last_applied.unwrap_or(0),
    );
    gauge(
        "aspen_raft_snapshot_index",
        "Index of the last snapshot.",
        s.snapshot_index.unwrap_or(0),
    );
    gauge(
        "aspen_kv_revision",
        "Current KV store revision.",
        s.revision,
    );
    gauge(
        "aspen_cluster_members",
        "Members in the cluster configuration.",
        s.members.len() as u64,
    );
    gauge(
        "aspen_cluster_voters",
        "Voters in the cluster configuration.",
        s.members.iter().filter(|m| m.voter).count() as u64,
    );
    out
}

/// The hook delivery figures, Prometheus text.
pub fn hook_metrics(node: u64, h: &HookStats) -> String {
    let mut out = String::new();
    let mut one = |name: &str, kind: &str, help: &str, value: u64| {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{node=\"{node}\"}} {value}\n"
        ));
    };
    one(
        "aspen_hook_events_delivered_total",
        "counter",
        "Hook events delivered on this node since it started.",
        h.delivered,
    );
    one(
        "aspen_hook_overflow_total",
        "counter",
        "Hook events dropped because delivery was behind (full queue) since this node started.",
        h.overflow,
    );
    one(
        "aspen_hook_spool_errors_total",
        "counter",
        "Hook spool writes that failed since this node started.",
        h.spool_errors,
    );
    one(
        "aspen_hook_tail_lagged_total",
        "counter",
        "Hook events that slow hooks-tail streams missed since this node started.",
        h.tail_lagged,
    );
    one(
        "aspen_hook_pending_events",
        "gauge",
        "Hook events staged and not yet delivered.",
        h.pending,
    );
    one(
        "aspen_hook_cursor_index",
        "gauge",
        "Log index of the last delivered hook event.",
        h.cursor_index,
    );
    out
}
