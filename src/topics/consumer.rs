//! The consumer side shared by the CLI and the mount: claiming the next message of a
//! group, waiting for one when there is none. A claim is a raft command, so the group is
//! first checked with reads, and only a group that may have something gets a claim.

use std::time::{Duration, Instant};

use super::types::*;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::kv::{Command, ReadQuery, ReadResult, WriteResult};
use crate::limits::{CLAIM_POLL_MS, MAX_TOPIC_LIST_ENTRIES};
use crate::net::proto::Consistency;

/// Where topic commands and queries go: a client connection or a node in this process.
#[allow(async_fn_in_trait)]
pub trait TopicsApi {
    async fn write_command(&self, command: Command) -> Result<WriteResult>;
    async fn read_query(&self, query: ReadQuery) -> Result<ReadResult>;

    async fn topic_command(&self, cmd: TopicCommand) -> Result<TopicOutcome> {
        match self.write_command(Command::Topic(cmd)).await? {
            WriteResult::Topic { outcome, .. } => Ok(outcome),
            _ => Err(Error::internal("unexpected answer to a topic command")),
        }
    }

    async fn topic_query(&self, q: TopicQuery) -> Result<TopicAnswer> {
        match self.read_query(ReadQuery::Topic(q)).await? {
            ReadResult::Topic(a) => Ok(a),
            _ => Err(Error::internal("unexpected answer to a topic query")),
        }
    }
}

impl TopicsApi for Client {
    async fn write_command(&self, command: Command) -> Result<WriteResult> {
        self.write_one(command).await
    }

    async fn read_query(&self, query: ReadQuery) -> Result<ReadResult> {
        self.read(query, Consistency::Linearizable).await
    }
}

pub async fn topic_info(api: &impl TopicsApi, topic: &str) -> Result<TopicInfo> {
    match api
        .topic_query(TopicQuery::Info {
            topic: topic.into(),
        })
        .await?
    {
        TopicAnswer::Topic(Some(t)) => Ok(t),
        _ => Err(Error::not_found(format!("topic {topic:?}"))),
    }
}

pub async fn group_info(api: &impl TopicsApi, topic: &str, group: &str) -> Result<GroupInfo> {
    match api
        .topic_query(TopicQuery::Groups {
            topic: topic.into(),
        })
        .await?
    {
        TopicAnswer::Groups(gs) => gs
            .into_iter()
            .find(|g| g.name == group)
            .ok_or_else(|| Error::not_found(format!("group {group:?} of topic {topic:?}"))),
        _ => Err(Error::internal("unexpected answer to a topic query")),
    }
}

/// Whether the group may have something to claim now: a message never claimed, or a
/// claim whose deadline passed (by this machine's clock; the claim itself decides).
pub async fn claimable(api: &impl TopicsApi, topic: &str, group: &str) -> Result<bool> {
    let t = topic_info(api, topic).await?;
    let g = group_info(api, topic, group).await?;
    if g.next_claim.max(t.first) < t.next {
        return Ok(true);
    }
    if g.pending == 0 {
        return Ok(false);
    }
    let q = TopicQuery::Pending {
        topic: topic.into(),
        group: group.into(),
        after: None,
        limit: MAX_TOPIC_LIST_ENTRIES as u32,
    };
    let TopicAnswer::Pending(ps) = api.topic_query(q).await? else {
        return Err(Error::internal("unexpected answer to a topic query"));
    };
    let now = crate::node::proposer::now_ns();
    Ok(ps.iter().any(|p| p.deadline_ns <= now))
}

/// Claims the next message of the group for `consumer`, waiting up to `wait` (forever
/// when `None`) for one; `None` when none came.
pub async fn claim_next(
    api: &impl TopicsApi,
    topic: &str,
    group: &str,
    consumer: &str,
    wait: Option<Duration>,
) -> Result<Option<Claim>> {
    let deadline = wait.map(|w| Instant::now() + w);
    loop {
        if claimable(api, topic, group).await? {
            let cmd = TopicCommand::Claim {
                topic: topic.into(),
                group: group.into(),
                consumer: consumer.into(),
            };
            if let TopicOutcome::Claimed(Some(claim)) = api.topic_command(cmd).await? {
                return Ok(Some(claim));
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(CLAIM_POLL_MS)).await;
    }
}

/// Claims up to `max` messages of the group for `consumer` in one command, waiting up to
/// `wait` (forever when `None`) for any; `None` when none came.
pub async fn claim_batch(
    api: &impl TopicsApi,
    topic: &str,
    group: &str,
    consumer: &str,
    max: u32,
    wait: Option<Duration>,
) -> Result<Option<Vec<Claim>>> {
    let deadline = wait.map(|w| Instant::now() + w);
    loop {
        if claimable(api, topic, group).await? {
            let cmd = TopicCommand::ClaimBatch {
                topic: topic.into(),
                group: group.into(),
                consumer: consumer.into(),
                max,
            };
            if let TopicOutcome::ClaimedBatch(claims) = api.topic_command(cmd).await? {
                if !claims.is_empty() {
                    return Ok(Some(claims));
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(CLAIM_POLL_MS)).await;
    }
}

/// The retained messages among `claims`, in claim order (retention may have removed
/// some since).
pub async fn messages_of(
    api: &impl TopicsApi,
    topic: &str,
    claims: &[Claim],
) -> Result<Vec<Message>> {
    let (Some(lo), Some(hi)) = (
        claims.iter().map(|c| c.offset).min(),
        claims.iter().map(|c| c.offset).max(),
    ) else {
        return Ok(Vec::new());
    };
    let span = u32::try_from(hi - lo + 1)
        .unwrap_or(u32::MAX)
        .min(MAX_TOPIC_LIST_ENTRIES as u32);
    let q = TopicQuery::Messages {
        topic: topic.into(),
        from: lo,
        limit: span,
    };
    let TopicAnswer::Messages(ms) = api.topic_query(q).await? else {
        return Err(Error::internal("unexpected answer to a topic query"));
    };
    let mut by_offset: std::collections::BTreeMap<u64, Message> =
        ms.into_iter().map(|m| (m.offset, m)).collect();
    Ok(claims
        .iter()
        .filter_map(|c| by_offset.remove(&c.offset))
        .collect())
}

/// The retained message at `offset`, `None` when retention removed it.
pub async fn message_at(api: &impl TopicsApi, topic: &str, offset: u64) -> Result<Option<Message>> {
    let q = TopicQuery::Messages {
        topic: topic.into(),
        from: offset,
        limit: 1,
    };
    match api.topic_query(q).await? {
        TopicAnswer::Messages(ms) => Ok(ms.into_iter().next().filter(|m| m.offset == offset)),
        _ => Err(Error::internal("unexpected answer to a topic query")),
    }
}
