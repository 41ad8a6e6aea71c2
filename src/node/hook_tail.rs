//! `HookTail` streams: the hook events this node delivers from now on, filtered by an
//! event type pattern, as JSON lines. A stream that falls behind the node's broadcast
//! gets a `hooks.lagged` line saying how many events it missed (also counted in
//! `/cluster/metrics`), never a silent gap.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use crate::error::{Error, ErrorKind};
use crate::hooks::{check_pattern, event::HOOK_EVENT_VERSION, pattern_matches};
use crate::limits::MAX_HOOK_LINES_PER_FRAME;
use crate::net::proto::Response;
use crate::net::server::Replier;
use crate::node::Node;

pub async fn stream(node: Arc<Node>, pattern: String, reply: &Replier) {
    if let Err(reason) = check_pattern(&pattern) {
        let e = Error::new(ErrorKind::InvalidInput, reason);
        reply.send(Response::StreamEnd(Some(e))).await;
        return;
    }
    let mut rx = node.hooks().subscribe();
    loop {
        let mut lines = Vec::new();
        match rx.recv().await {
            Ok(event) => {
                if pattern_matches(&pattern, &event.kind) {
                    lines.push(event.json_line());
                }
                // Whatever else is already here goes in the same frame.
                while lines.len() < MAX_HOOK_LINES_PER_FRAME {
                    match rx.try_recv() {
                        Ok(e) if pattern_matches(&pattern, &e.kind) => lines.push(e.json_line()),
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }
            Err(RecvError::Lagged(missed)) => {
                node.hooks().count_tail_lagged(missed);
                tracing::warn!(missed, "hooks tail stream fell behind");
                lines.push(format!(
                    "{{\"v\":{HOOK_EVENT_VERSION},\"type\":\"hooks.lagged\",\"missed\":{missed},\"node\":{}}}\n",
                    node.id
                ));
            }
            Err(RecvError::Closed) => {
                let e = Error::new(ErrorKind::ShuttingDown, "node is stopping");
                reply.send(Response::StreamEnd(Some(e))).await;
                return;
            }
        }
        if !lines.is_empty() && !reply.send(Response::HookLines(lines)).await {
            return;
        }
        if reply.is_closed() {
            return;
        }
    }
}
