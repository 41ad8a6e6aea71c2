//! Watch streams: replay the stored history from a revision, then follow live applies.
//! Subscribing before reading history and filtering by revision makes the handover exact:
//! no gap, no duplicate. A watcher that falls behind the broadcast re-reads history; one
//! that asks for compacted history gets a clear `Compacted` error.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use crate::error::{Error, ErrorKind};
use crate::kv::{self, layout, Event};
use crate::limits::MAX_WATCH_EVENTS_PER_FRAME;
use crate::net::proto::Response;
use crate::net::server::Replier;
use crate::node::Node;
use crate::raft::state_machine::Applied;

fn matches(prefix: &str, e: &Event) -> bool {
    kv::key::is_within(&e.key, prefix)
}

/// Sends history from revision `from` (inclusive); returns the next revision to send,
/// or `None` when the stream must end.
async fn replay(node: &Node, prefix: &str, from: u64, reply: &Replier) -> Option<u64> {
    let view = match node.shared().view() {
        Ok(v) => v,
        Err(e) => {
            reply.send(Response::StreamEnd(Some(e))).await;
            return None;
        }
    };
    let meta = match kv::read::meta(&view) {
        Ok(m) => m,
        Err(e) => {
            reply.send(Response::StreamEnd(Some(e))).await;
            return None;
        }
    };
    if from <= meta.history_low && meta.history_low > 0 {
        let e = Error::new(
            ErrorKind::Compacted,
            format!(
                "revision {from} is compacted; the oldest kept is {}",
                meta.history_low + 1
            ),
        );
        reply.send(Response::StreamEnd(Some(e))).await;
        return None;
    }
    let mut key = layout::history_key(from, 0);
    loop {
        let (events, next) = match kv::read::history_page(&view, &key, MAX_WATCH_EVENTS_PER_FRAME) {
            Ok(p) => p,
            Err(e) => {
                reply.send(Response::StreamEnd(Some(e))).await;
                return None;
            }
        };
        let selected: Vec<Event> = events.into_iter().filter(|e| matches(prefix, e)).collect();
        if !selected.is_empty() && !reply.send(Response::Events(selected)).await {
            return None;
        }
        match next {
            Some(k) => key = k,
            None => break,
        }
    }
    Some(meta.revision + 1)
}

pub async fn stream(node: Arc<Node>, prefix: String, from_revision: u64, reply: &Replier) {
    let prefix = kv::key::normalize(&prefix).to_string();
    let mut rx = node.subscribe();
    let mut next = if from_revision == 0 {
        match node.revision() {
            Ok(r) => r + 1,
            Err(e) => {
                reply.send(Response::StreamEnd(Some(e))).await;
                return;
            }
        }
    } else {
        match replay(&node, &prefix, from_revision, reply).await {
            Some(n) => n,
            None => return,
        }
    };
    loop {
        match rx.recv().await {
            Ok(Applied::Events(events)) => {
                let mut batch: Vec<Event> = Vec::new();
                for e in events.iter().filter(|e| e.revision >= next) {
                    if matches(&prefix, e) {
                        batch.push(e.clone());
                    }
                }
                if let Some(last) = events.last() {
                    next = next.max(last.revision + 1);
                }
                for chunk in batch.chunks(MAX_WATCH_EVENTS_PER_FRAME) {
                    if !reply.send(Response::Events(chunk.to_vec())).await {
                        return;
                    }
                }
            }
            Ok(Applied::Reset { revision }) => {
                if !reply.send(Response::Reset { revision }).await {
                    return;
                }
                next = revision + 1;
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::debug!(missed, "watch fell behind; replaying history");
                match replay(&node, &prefix, next, reply).await {
                    Some(n) => next = n,
                    None => return,
                }
            }
            Err(RecvError::Closed) => {
                reply
                    .send(Response::StreamEnd(Some(Error::new(
                        ErrorKind::ShuttingDown,
                        "node is stopping",
                    ))))
                    .await;
                return;
            }
        }
        if reply.is_closed() {
            return;
        }
    }
}
