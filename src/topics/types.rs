//! Topic commands, queries and results as they travel in raft entries and on the wire,
//! and the records the state machine stores. All postcard-encoded; new variants go at the
//! end of each enum so older entries keep decoding.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kv::key::validate_name;

/// Retention of a topic; `None` leaves that dimension to the hard limits. (No serde
/// attributes that skip fields: postcard, which carries it in raft entries, is not
/// self-describing.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicConfig {
    /// Most messages kept (at most `MAX_MESSAGES_PER_TOPIC`).
    pub max_messages: Option<u64>,
    /// Most message bytes kept.
    pub max_bytes: Option<u64>,
    /// Messages older than this many seconds (by the leader's clock at publish) are
    /// removed (the leader checks every `LEASE_CHECK_INTERVAL_MS`).
    pub max_age_secs: Option<u64>,
}

/// Where a group starts or is moved to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeekTo {
    /// The oldest retained message.
    Start,
    /// After the newest message: only messages published from now on.
    End,
    /// This offset (at most the end).
    Offset(u64),
}

impl SeekTo {
    /// `start`, `end` or a number, as users write it.
    pub fn parse(s: &str) -> Result<SeekTo> {
        match s.trim() {
            "start" => Ok(SeekTo::Start),
            "end" => Ok(SeekTo::End),
            n => n.parse::<u64>().map(SeekTo::Offset).map_err(|_| {
                Error::invalid(format!("{n:?}: expected an offset, `start` or `end`"))
            }),
        }
    }
}

/// Settings of a consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSettings {
    /// How long a claim stays invisible to the group's other consumers, in milliseconds.
    pub visibility_ms: u64,
    /// Claims of one message before it moves to the dead-letter list.
    pub max_deliveries: u32,
}

/// A state change of the topics service: one raft command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopicCommand {
    Create {
        topic: String,
        config: TopicConfig,
    },
    /// Removes the topic, its messages and its groups.
    Delete {
        topic: String,
    },
    Configure {
        topic: String,
        config: TopicConfig,
    },
    /// Appends messages in order; each gets the next offset.
    Publish {
        topic: String,
        messages: Vec<Vec<u8>>,
    },
    CreateGroup {
        topic: String,
        group: String,
        start: SeekTo,
        settings: GroupSettings,
    },
    DeleteGroup {
        topic: String,
        group: String,
    },
    /// Hands the next claimable message of the group to `consumer`.
    Claim {
        topic: String,
        group: String,
        consumer: String,
    },
    /// Acknowledges a claimed message.
    Ack {
        topic: String,
        group: String,
        offset: u64,
    },
    /// Moves the group: claims are dropped, the next claim is at the new position.
    Seek {
        topic: String,
        group: String,
        to: SeekTo,
    },
    /// Applies the topic's retention now (the leader sends it when messages have aged
    /// out and no publish came to trim them).
    Trim {
        topic: String,
    },
    /// Claims up to `max` messages at once, as that many claims in a row would.
    ClaimBatch {
        topic: String,
        group: String,
        consumer: String,
        max: u32,
    },
    /// Acknowledges several claims; offsets no longer pending are skipped (not counted
    /// in `Acked`), an offset never claimed fails the whole command.
    AckBatch {
        topic: String,
        group: String,
        offsets: Vec<u64>,
    },
}

impl TopicCommand {
    pub fn name(&self) -> &'static str {
        match self {
            TopicCommand::Create { .. } => "topic-create",
            TopicCommand::Delete { .. } => "topic-delete",
            TopicCommand::Configure { .. } => "topic-configure",
            TopicCommand::Publish { .. } => "topic-publish",
            TopicCommand::CreateGroup { .. } => "group-create",
            TopicCommand::DeleteGroup { .. } => "group-delete",
            TopicCommand::Claim { .. } => "group-claim",
            TopicCommand::Ack { .. } => "group-ack",
            TopicCommand::Seek { .. } => "group-seek",
            TopicCommand::Trim { .. } => "topic-trim",
            TopicCommand::ClaimBatch { .. } => "group-claim-batch",
            TopicCommand::AckBatch { .. } => "group-ack-batch",
        }
    }

    /// The topic the command is about.
    pub fn topic(&self) -> &str {
        match self {
            TopicCommand::Create { topic, .. }
            | TopicCommand::Delete { topic }
            | TopicCommand::Configure { topic, .. }
            | TopicCommand::Publish { topic, .. }
            | TopicCommand::CreateGroup { topic, .. }
            | TopicCommand::DeleteGroup { topic, .. }
            | TopicCommand::Claim { topic, .. }
            | TopicCommand::Ack { topic, .. }
            | TopicCommand::Seek { topic, .. }
            | TopicCommand::Trim { topic }
            | TopicCommand::ClaimBatch { topic, .. }
            | TopicCommand::AckBatch { topic, .. } => topic,
        }
    }
}

/// What a topic command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopicOutcome {
    Done,
    /// Offsets given to the published messages, in order (empty batch: none).
    Published {
        first: u64,
        count: u64,
    },
    /// The claimed message, or `None` when nothing is claimable now.
    Claimed(Option<Claim>),
    /// Messages removed (retention or deletion).
    Removed {
        messages: u64,
    },
    /// The claims a batch claim made, in order (empty: nothing claimable).
    ClaimedBatch(Vec<Claim>),
    /// How many claims a batch acknowledgement removed.
    Acked {
        count: u64,
    },
}

/// One claim of one message by one consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub offset: u64,
    /// How many times this message has been claimed in the group, this claim included.
    pub deliveries: u32,
    /// When the claim lapses and the message becomes claimable again (leader clock, ns).
    pub deadline_ns: i64,
}

/// Reads of the topics service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopicQuery {
    /// Every topic, in name order.
    List,
    Info {
        topic: String,
    },
    /// Retained messages from offset `from` on, at most `limit` (and a byte bound).
    Messages {
        topic: String,
        from: u64,
        limit: u32,
    },
    Groups {
        topic: String,
    },
    /// Claims not yet acknowledged, in offset order, after `after`.
    Pending {
        topic: String,
        group: String,
        after: Option<u64>,
        limit: u32,
    },
    /// Dead-lettered messages, in offset order, after `after`.
    DeadLetters {
        topic: String,
        group: String,
        after: Option<u64>,
        limit: u32,
    },
    /// At most `max_bytes` of the topic's stream from position `pos` (a removed message
    /// reads as NUL bytes); empty at or past its end.
    Stream {
        topic: String,
        pos: u64,
        max_bytes: u32,
    },
}

/// Answers to [`TopicQuery`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TopicAnswer {
    Topics(Vec<TopicInfo>),
    Topic(Option<TopicInfo>),
    Messages(Vec<Message>),
    Groups(Vec<GroupInfo>),
    Pending(Vec<PendingInfo>),
    DeadLetters(Vec<DeadLetter>),
    Stream(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicInfo {
    pub name: String,
    /// Oldest retained offset.
    pub first: u64,
    /// Offset the next message gets.
    pub next: u64,
    pub bytes: u64,
    pub config: TopicConfig,
    /// Length of the topic's stream: every message ever published, each ending with a
    /// newline (see [`MessageRecord::pos`]).
    pub stream_end: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub offset: u64,
    /// Leader clock at publish, ns since the epoch.
    pub time_ns: i64,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    pub name: String,
    /// Every message before this offset is acknowledged (or dead-lettered).
    pub committed: u64,
    /// The next offset never claimed in this group.
    pub next_claim: u64,
    pub pending: u64,
    pub dead_letters: u64,
    pub settings: GroupSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingInfo {
    pub offset: u64,
    pub consumer: String,
    pub deliveries: u32,
    pub deadline_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub offset: u64,
    pub consumer: String,
    pub deliveries: u32,
}

// ---- stored records ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicRecord {
    pub config: TopicConfig,
    pub first: u64,
    pub next: u64,
    pub bytes: u64,
    /// Where the next message starts in the stream.
    pub stream_end: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub time_ns: i64,
    pub data: Vec<u8>,
    /// Where the message starts in the topic's stream, the concatenation of every
    /// message ever published, each ending with a newline (added when it has none).
    /// Positions never move: retention leaves a hole at the start of the stream.
    pub pos: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub next_claim: u64,
    pub pending: u64,
    pub dead_letters: u64,
    pub settings: GroupSettings,
    /// No claim lapses before this time (leader clock, ns): a claim looks through the
    /// pending list for lapsed claims only from then on. A lower bound: acknowledgements
    /// leave it as it is, the next look computes it again.
    pub next_lapse_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRecord {
    pub consumer: String,
    pub deliveries: u32,
    pub deadline_ns: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterRecord {
    pub consumer: String,
    pub deliveries: u32,
}

impl TopicConfig {
    /// Parses the JSON users write to a topic's `config` file, and checks it.
    pub fn from_json(bytes: &[u8]) -> Result<TopicConfig> {
        let bad = |e: &dyn std::fmt::Display| {
            Error::invalid(format!(
                "topic config: {e} (expected a JSON object like {{\"max_messages\": 1000, \
                 \"max_bytes\": null, \"max_age_secs\": 86400}})"
            ))
        };
        // An object only (serde would also take `[1, 2, 3]` for the three fields).
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| bad(&e))?;
        if !value.is_object() {
            return Err(bad(&"not an object"));
        }
        let config: TopicConfig = serde_json::from_value(value).map_err(|e| bad(&e))?;
        super::apply::check_config(&config)?;
        Ok(config)
    }
}

/// Checks a topic or group name: one path component.
pub fn validate_topic_name(name: &str) -> Result<()> {
    validate_name(name)
}
