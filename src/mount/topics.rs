//! The mount's `/topics`: `aspen_fs::TopicBackend` over the node in this process or a
//! client connection, through the same topic commands and queries as the CLI. Claims go
//! through `topics::consumer`, so a mount waiting for a message costs reads, not raft
//! entries.

use std::time::Duration;

use aspen_fs as fs;

use super::backend::{to_fs, KvBackend, Target};
use crate::error::{Error, Result};
use crate::kv::{Command, ReadQuery, ReadResult, WriteResult};
use crate::limits::MAX_TOPIC_LIST_ENTRIES;
use crate::net::proto::Consistency;
use crate::topics::consumer::{claim_next, group_info, TopicsApi};
use crate::topics::*;

/// Topic traffic of one mount: its target, with its origin for writes.
struct MountApi<'a> {
    target: &'a Target,
    origin: u64,
}

impl TopicsApi for MountApi<'_> {
    async fn write_command(&self, command: Command) -> Result<WriteResult> {
        self.target.write(self.origin, command).await
    }

    async fn read_query(&self, query: ReadQuery) -> Result<ReadResult> {
        // Consumers need the latest state whatever the mount's read consistency.
        self.target.read(query, Consistency::Linearizable).await
    }
}

impl KvBackend {
    fn api(&self) -> MountApi<'_> {
        MountApi {
            target: &self.target,
            origin: self.origin,
        }
    }

    fn run<T>(&self, f: impl std::future::Future<Output = Result<T>>) -> fs::BackendResult<T> {
        self.rt.block_on(f).map_err(to_fs)
    }

    fn command(&self, cmd: TopicCommand) -> fs::BackendResult<TopicOutcome> {
        self.run(self.api().topic_command(cmd))
    }

    fn query(&self, q: TopicQuery) -> fs::BackendResult<TopicAnswer> {
        self.run(self.api().topic_query(q))
    }
}

fn unexpected() -> fs::BackendError {
    to_fs(Error::internal("unexpected answer to a topic request"))
}

/// The name this mount's claims carry in a group's pending list.
fn consumer_name() -> String {
    format!("mount-{}", std::process::id())
}

impl fs::TopicBackend for KvBackend {
    fn topic_names(&self) -> fs::BackendResult<Vec<String>> {
        match self.query(TopicQuery::List)? {
            TopicAnswer::Topics(ts) => Ok(ts.into_iter().map(|t| t.name).collect()),
            _ => Err(unexpected()),
        }
    }

    fn topic_stat(&self, topic: &str) -> fs::BackendResult<Option<fs::TopicStat>> {
        match self.query(TopicQuery::Info {
            topic: topic.into(),
        })? {
            TopicAnswer::Topic(t) => Ok(t.map(|t| fs::TopicStat {
                first: t.first,
                next: t.next,
                bytes: t.bytes,
                stream_end: t.stream_end,
            })),
            _ => Err(unexpected()),
        }
    }

    fn topic_create(&self, topic: &str) -> fs::BackendResult<()> {
        self.command(TopicCommand::Create {
            topic: topic.into(),
            config: TopicConfig::default(),
        })
        .map(|_| ())
    }

    fn topic_delete(&self, topic: &str) -> fs::BackendResult<()> {
        self.command(TopicCommand::Delete {
            topic: topic.into(),
        })
        .map(|_| ())
    }

    fn topic_config(&self, topic: &str) -> fs::BackendResult<Vec<u8>> {
        let t = match self.query(TopicQuery::Info {
            topic: topic.into(),
        })? {
            TopicAnswer::Topic(Some(t)) => t,
            TopicAnswer::Topic(None) => return Err(to_fs(Error::not_found(topic))),
            _ => return Err(unexpected()),
        };
        let mut json = serde_json::to_vec_pretty(&t.config)
            .map_err(|e| to_fs(Error::internal(e.to_string())))?;
        json.push(b'\n');
        Ok(json)
    }

    fn topic_configure(&self, topic: &str, json: &[u8]) -> fs::BackendResult<()> {
        let config = TopicConfig::from_json(json).map_err(to_fs)?;
        self.command(TopicCommand::Configure {
            topic: topic.into(),
            config,
        })
        .map(|_| ())
    }

    fn topic_publish(&self, topic: &str, messages: Vec<Vec<u8>>) -> fs::BackendResult<u64> {
        match self.command(TopicCommand::Publish {
            topic: topic.into(),
            messages,
        })? {
            TopicOutcome::Published { first, .. } => Ok(first),
            _ => Err(unexpected()),
        }
    }

    fn topic_messages(
        &self,
        topic: &str,
        from: u64,
        limit: usize,
    ) -> fs::BackendResult<Vec<(u64, Vec<u8>)>> {
        let limit = u32::try_from(limit.min(MAX_TOPIC_LIST_ENTRIES)).unwrap_or(1);
        match self.query(TopicQuery::Messages {
            topic: topic.into(),
            from,
            limit,
        })? {
            TopicAnswer::Messages(ms) => Ok(ms.into_iter().map(|m| (m.offset, m.data)).collect()),
            _ => Err(unexpected()),
        }
    }

    fn topic_stream(&self, topic: &str, pos: u64, max: u32) -> fs::BackendResult<Vec<u8>> {
        match self.query(TopicQuery::Stream {
            topic: topic.into(),
            pos,
            max_bytes: max,
        })? {
            TopicAnswer::Stream(b) => Ok(b),
            _ => Err(unexpected()),
        }
    }

    fn group_names(&self, topic: &str) -> fs::BackendResult<Vec<String>> {
        match self.query(TopicQuery::Groups {
            topic: topic.into(),
        })? {
            TopicAnswer::Groups(gs) => Ok(gs.into_iter().map(|g| g.name).collect()),
            _ => Err(unexpected()),
        }
    }

    fn group_create(&self, topic: &str, group: &str) -> fs::BackendResult<()> {
        self.command(TopicCommand::CreateGroup {
            topic: topic.into(),
            group: group.into(),
            start: SeekTo::Start,
            settings: GroupSettings {
                visibility_ms: crate::limits::DEFAULT_VISIBILITY_MS,
                max_deliveries: crate::limits::DEFAULT_MAX_DELIVERIES,
            },
        })
        .map(|_| ())
    }

    fn group_delete(&self, topic: &str, group: &str) -> fs::BackendResult<()> {
        self.command(TopicCommand::DeleteGroup {
            topic: topic.into(),
            group: group.into(),
        })
        .map(|_| ())
    }

    fn group_claim(
        &self,
        topic: &str,
        group: &str,
        wait: Duration,
    ) -> fs::BackendResult<Option<u64>> {
        let api = self.api();
        let claim = self.run(claim_next(&api, topic, group, &consumer_name(), Some(wait)))?;
        Ok(claim.map(|c| c.offset))
    }

    fn group_ack(&self, topic: &str, group: &str, offset: u64) -> fs::BackendResult<()> {
        self.command(TopicCommand::Ack {
            topic: topic.into(),
            group: group.into(),
            offset,
        })
        .map(|_| ())
    }

    fn group_offset(&self, topic: &str, group: &str) -> fs::BackendResult<u64> {
        let api = self.api();
        Ok(self.run(group_info(&api, topic, group))?.committed)
    }

    fn group_seek(&self, topic: &str, group: &str, to: &str) -> fs::BackendResult<()> {
        let to = SeekTo::parse(to).map_err(to_fs)?;
        self.command(TopicCommand::Seek {
            topic: topic.into(),
            group: group.into(),
            to,
        })
        .map(|_| ())
    }

    fn group_pending(&self, topic: &str, group: &str) -> fs::BackendResult<Vec<fs::ClaimStat>> {
        match self.query(TopicQuery::Pending {
            topic: topic.into(),
            group: group.into(),
            after: None,
            limit: MAX_TOPIC_LIST_ENTRIES as u32,
        })? {
            TopicAnswer::Pending(ps) => Ok(ps
                .into_iter()
                .map(|p| fs::ClaimStat {
                    offset: p.offset,
                    consumer: p.consumer,
                    deliveries: p.deliveries,
                    deadline_ns: p.deadline_ns,
                })
                .collect()),
            _ => Err(unexpected()),
        }
    }

    fn group_dead_letters(&self, topic: &str, group: &str) -> fs::BackendResult<Vec<u64>> {
        match self.query(TopicQuery::DeadLetters {
            topic: topic.into(),
            group: group.into(),
            after: None,
            limit: MAX_TOPIC_LIST_ENTRIES as u32,
        })? {
            TopicAnswer::DeadLetters(ds) => Ok(ds.into_iter().map(|d| d.offset).collect()),
            _ => Err(unexpected()),
        }
    }
}
