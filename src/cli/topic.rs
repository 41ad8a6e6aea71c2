//! `aspen topic ...` and `aspen group ...`: topics and their consumer groups.
//!
//! The commands that wait for a message (`group next`, `topic sub`) claim through
//! `topics::consumer`, shared with the mount.

use std::io::BufRead;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::output::*;
use super::{ClientArgs, OutputFormat};
use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::kv::{Command, ReadQuery, ReadResult, WriteResult};
use crate::limits::{
    DEFAULT_MAX_DELIVERIES, DEFAULT_VISIBILITY_MS, MAX_PUBLISH_BATCH_MESSAGES,
    MAX_TOPIC_LIST_ENTRIES, SUB_CLAIM_BATCH,
};
use crate::topics::consumer::{claim_batch, claim_next, message_at, messages_of};
use crate::topics::*;

#[derive(Subcommand, Debug)]
pub enum TopicCmd {
    /// Create TOPIC with an optional retention.
    Create {
        topic: String,
        #[command(flatten)]
        retention: Retention,
    },
    /// Replace TOPIC's retention; prints how many messages it removed.
    Config {
        topic: String,
        #[command(flatten)]
        retention: Retention,
    },
    /// List topics: name, oldest offset, next offset, bytes.
    Ls,
    /// Publish each MESSAGE, or with none each line of stdin, as one message.
    Pub {
        topic: String,
        messages: Vec<String>,
    },
    /// Print retained messages from offset --from on, one per line.
    Read {
        topic: String,
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Most messages to print (0: all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
    },
    /// Consume as group GROUP: claim, print (one per line), acknowledge, repeat.
    Sub {
        topic: String,
        #[arg(long)]
        group: String,
        #[command(flatten)]
        wait: Waiting,
        /// Stop after this many messages (0: never).
        #[arg(long, default_value_t = 0)]
        count: u64,
    },
    /// Remove TOPIC with its messages and groups.
    Rm { topic: String },
}

#[derive(Args, Debug)]
pub struct Retention {
    /// Keep at most N messages.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Keep at most N bytes of messages.
    #[arg(long)]
    pub max_bytes: Option<u64>,
    /// Remove messages older than N seconds.
    #[arg(long)]
    pub max_age: Option<u64>,
}

impl Retention {
    fn config(&self) -> TopicConfig {
        TopicConfig {
            max_messages: self.max_messages,
            max_bytes: self.max_bytes,
            max_age_secs: self.max_age,
        }
    }
}

#[derive(Args, Debug)]
pub struct Waiting {
    /// Name of this consumer, shown in the group's pending list.
    #[arg(long, default_value_t = default_consumer())]
    pub consumer: String,
    /// Give up after this many seconds without a message (0: wait forever).
    #[arg(long, default_value_t = 0)]
    pub wait: u64,
}

fn default_consumer() -> String {
    format!("pid-{}", std::process::id())
}

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Create consumer group GROUP of TOPIC.
    Create {
        topic: String,
        group: String,
        /// Where it starts: `start`, `end` or an offset.
        #[arg(long, default_value = "start")]
        from: String,
        /// How long a claim stays invisible to the group's other consumers, in ms.
        #[arg(long, default_value_t = DEFAULT_VISIBILITY_MS)]
        visibility_ms: u64,
        /// Claims of one message before it goes to the dead letters.
        #[arg(long, default_value_t = DEFAULT_MAX_DELIVERIES)]
        max_deliveries: u32,
    },
    /// List TOPIC's groups: name, committed offset, next claim, pending, dead letters.
    Ls { topic: String },
    /// Claim the next message: prints its bytes (its offset on stderr); fails when none
    /// came within --wait.
    Next {
        topic: String,
        group: String,
        #[command(flatten)]
        wait: Waiting,
    },
    /// Acknowledge a claimed message.
    Ack {
        topic: String,
        group: String,
        offset: u64,
    },
    /// List claims not yet acknowledged: offset, consumer, deliveries, deadline.
    Pending { topic: String, group: String },
    /// List dead-lettered messages: offset, last consumer, deliveries.
    Dlq { topic: String, group: String },
    /// Move the group to `start`, `end` or an offset, dropping its claims.
    Seek {
        topic: String,
        group: String,
        to: String,
    },
    /// Remove the group with its claims and dead letters.
    Rm { topic: String, group: String },
}

async fn write(client: &Client, cmd: TopicCommand) -> Result<(WriteResult, TopicOutcome)> {
    let r = client.write_one(Command::Topic(cmd)).await?;
    match &r {
        WriteResult::Topic { outcome, .. } => {
            let outcome = outcome.clone();
            Ok((r, outcome))
        }
        _ => Err(Error::internal("unexpected answer to a topic command")),
    }
}

async fn ask(client: &Client, c: &ClientArgs, q: TopicQuery) -> Result<TopicAnswer> {
    match client.read(ReadQuery::Topic(q), c.consistency()).await? {
        ReadResult::Topic(a) => Ok(a),
        _ => Err(Error::internal("unexpected answer to a topic query")),
    }
}

fn message_json(m: &Message) -> Value {
    let mut v = json!({"offset": m.offset, "time_ns": m.time_ns});
    insert_bytes(&mut v, "data", &m.data);
    v
}

/// Prints a message: its exact bytes and a newline, or one JSON line.
fn print_message(c: &ClientArgs, m: &Message) -> Result<()> {
    match c.write_out {
        OutputFormat::Json => print_json(&message_json(m)),
        OutputFormat::Simple => {
            print_bytes(&m.data)?;
            print_line("")
        }
    }
}

pub async fn run_topic(cmd: TopicCmd, c: &ClientArgs) -> Result<()> {
    let client = c.client()?;
    match cmd {
        TopicCmd::Create { topic, retention } => {
            let config = retention.config();
            let (r, _) = write(&client, TopicCommand::Create { topic, config }).await?;
            print_result(c, &r, || "OK".into())
        }
        TopicCmd::Config { topic, retention } => {
            let config = retention.config();
            let (r, o) = write(&client, TopicCommand::Configure { topic, config }).await?;
            print_result(c, &r, || match o {
                TopicOutcome::Removed { messages } => format!("removed {messages} messages"),
                _ => "OK".into(),
            })
        }
        TopicCmd::Ls => {
            let TopicAnswer::Topics(ts) = ask(&client, c, TopicQuery::List).await? else {
                return Err(Error::internal("unexpected answer to a topic query"));
            };
            for t in ts {
                match c.write_out {
                    OutputFormat::Json => print_json(&json!({
                        "name": t.name, "first": t.first, "next": t.next, "bytes": t.bytes,
                        "max_messages": t.config.max_messages, "max_bytes": t.config.max_bytes,
                        "max_age_secs": t.config.max_age_secs,
                    }))?,
                    OutputFormat::Simple => {
                        print_line(&format!("{}\t{}\t{}\t{}", t.name, t.first, t.next, t.bytes))?
                    }
                }
            }
            Ok(())
        }
        TopicCmd::Pub { topic, messages } => publish(&client, c, topic, messages).await,
        TopicCmd::Read { topic, from, limit } => read(&client, c, &topic, from, limit).await,
        TopicCmd::Sub {
            topic,
            group,
            wait,
            count,
        } => {
            // Batches of claims; each message is acknowledged only after it is printed.
            let limit = (wait.wait > 0).then(|| Duration::from_secs(wait.wait));
            let mut done = 0u64;
            while count == 0 || done < count {
                let left = if count == 0 { u64::MAX } else { count - done };
                let max = u32::try_from(left).unwrap_or(u32::MAX).min(SUB_CLAIM_BATCH);
                let Some(claims) =
                    claim_batch(&client, &topic, &group, &wait.consumer, max, limit).await?
                else {
                    return Ok(());
                };
                for m in messages_of(&client, &topic, &claims).await? {
                    print_message(c, &m)?;
                    done += 1;
                }
                // Claims whose messages retention removed are acknowledged too.
                let ack = TopicCommand::AckBatch {
                    topic: topic.clone(),
                    group: group.clone(),
                    offsets: claims.iter().map(|c| c.offset).collect(),
                };
                write(&client, ack).await?;
            }
            Ok(())
        }
        TopicCmd::Rm { topic } => {
            let (r, _) = write(&client, TopicCommand::Delete { topic }).await?;
            print_result(c, &r, || "OK".into())
        }
    }
}

async fn publish(client: &Client, c: &ClientArgs, topic: String, given: Vec<String>) -> Result<()> {
    let send = |batch: Vec<Vec<u8>>| {
        let topic = topic.clone();
        async move {
            let cmd = TopicCommand::Publish {
                topic,
                messages: batch,
            };
            write(client, cmd).await
        }
    };
    let mut results = Vec::new();
    if given.is_empty() {
        let mut batch = Vec::new();
        for line in std::io::stdin().lock().split(b'\n') {
            batch.push(line?);
            if batch.len() == MAX_PUBLISH_BATCH_MESSAGES {
                results.push(send(std::mem::take(&mut batch)).await?);
            }
        }
        if !batch.is_empty() {
            results.push(send(batch).await?);
        }
    } else {
        for chunk in given.chunks(MAX_PUBLISH_BATCH_MESSAGES) {
            let batch = chunk.iter().map(|m| m.as_bytes().to_vec()).collect();
            results.push(send(batch).await?);
        }
    }
    for (r, o) in results {
        print_result(c, &r, || match o {
            TopicOutcome::Published { first, count } if count > 0 => {
                format!("{first}..{}", first + count - 1)
            }
            _ => "nothing published".into(),
        })?;
    }
    Ok(())
}

async fn read(client: &Client, c: &ClientArgs, topic: &str, from: u64, limit: usize) -> Result<()> {
    let mut next = from;
    let mut printed = 0usize;
    loop {
        let q = TopicQuery::Messages {
            topic: topic.to_string(),
            from: next,
            limit: MAX_TOPIC_LIST_ENTRIES as u32,
        };
        let TopicAnswer::Messages(page) = ask(client, c, q).await? else {
            return Err(Error::internal("unexpected answer to a topic query"));
        };
        let Some(last) = page.last().map(|m| m.offset) else {
            return Ok(());
        };
        for m in &page {
            if limit != 0 && printed >= limit {
                return Ok(());
            }
            print_message(c, m)?;
            printed += 1;
        }
        next = last.saturating_add(1);
    }
}

/// Claims the next message of the group and fetches it; `None` when nothing came within
/// the wait.
async fn next(
    client: &Client,
    topic: &str,
    group: &str,
    wait: &Waiting,
) -> Result<Option<Message>> {
    let limit = (wait.wait > 0).then(|| Duration::from_secs(wait.wait));
    let deadline = limit.map(|l| Instant::now() + l);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let Some(claim) = claim_next(client, topic, group, &wait.consumer, left).await? else {
            return Ok(None);
        };
        // Removed by retention between the claim and the read: its claim goes away at
        // the next claim; look for another.
        if let Some(m) = message_at(client, topic, claim.offset).await? {
            return Ok(Some(m));
        }
    }
}

pub async fn run_group(cmd: GroupCmd, c: &ClientArgs) -> Result<()> {
    let client = c.client()?;
    let done = |r: WriteResult| print_result(c, &r, || "OK".into());
    match cmd {
        GroupCmd::Create {
            topic,
            group,
            from,
            visibility_ms,
            max_deliveries,
        } => {
            let cmd = TopicCommand::CreateGroup {
                topic,
                group,
                start: SeekTo::parse(&from)?,
                settings: GroupSettings {
                    visibility_ms,
                    max_deliveries,
                },
            };
            done(write(&client, cmd).await?.0)
        }
        GroupCmd::Ls { topic } => {
            let TopicAnswer::Groups(gs) = ask(&client, c, TopicQuery::Groups { topic }).await?
            else {
                return Err(Error::internal("unexpected answer to a topic query"));
            };
            for g in gs {
                match c.write_out {
                    OutputFormat::Json => print_json(&json!({
                        "name": g.name, "committed": g.committed, "next_claim": g.next_claim,
                        "pending": g.pending, "dead_letters": g.dead_letters,
                        "visibility_ms": g.settings.visibility_ms,
                        "max_deliveries": g.settings.max_deliveries,
                    }))?,
                    OutputFormat::Simple => print_line(&format!(
                        "{}\t{}\t{}\t{}\t{}",
                        g.name, g.committed, g.next_claim, g.pending, g.dead_letters
                    ))?,
                }
            }
            Ok(())
        }
        GroupCmd::Next { topic, group, wait } => {
            match next(&client, &topic, &group, &wait).await? {
                Some(m) => {
                    if c.write_out == OutputFormat::Simple {
                        eprintln!("offset {}", m.offset);
                    }
                    print_message(c, &m)
                }
                None => Err(Error::new(
                    ErrorKind::Timeout,
                    "no message to claim within the wait",
                )),
            }
        }
        GroupCmd::Ack {
            topic,
            group,
            offset,
        } => {
            let cmd = TopicCommand::Ack {
                topic,
                group,
                offset,
            };
            done(write(&client, cmd).await?.0)
        }
        GroupCmd::Pending { topic, group } => {
            let q = TopicQuery::Pending {
                topic,
                group,
                after: None,
                limit: MAX_TOPIC_LIST_ENTRIES as u32,
            };
            let TopicAnswer::Pending(ps) = ask(&client, c, q).await? else {
                return Err(Error::internal("unexpected answer to a topic query"));
            };
            for p in ps {
                match c.write_out {
                    OutputFormat::Json => print_json(&json!({
                        "offset": p.offset, "consumer": p.consumer,
                        "deliveries": p.deliveries, "deadline_ns": p.deadline_ns,
                    }))?,
                    OutputFormat::Simple => print_line(&format!(
                        "{}\t{}\t{}\t{}",
                        p.offset, p.consumer, p.deliveries, p.deadline_ns
                    ))?,
                }
            }
            Ok(())
        }
        GroupCmd::Dlq { topic, group } => {
            let q = TopicQuery::DeadLetters {
                topic,
                group,
                after: None,
                limit: MAX_TOPIC_LIST_ENTRIES as u32,
            };
            let TopicAnswer::DeadLetters(ds) = ask(&client, c, q).await? else {
                return Err(Error::internal("unexpected answer to a topic query"));
            };
            for d in ds {
                match c.write_out {
                    OutputFormat::Json => print_json(&json!({
                        "offset": d.offset, "consumer": d.consumer, "deliveries": d.deliveries,
                    }))?,
                    OutputFormat::Simple => {
                        print_line(&format!("{}\t{}\t{}", d.offset, d.consumer, d.deliveries))?
                    }
                }
            }
            Ok(())
        }
        GroupCmd::Seek { topic, group, to } => {
            let cmd = TopicCommand::Seek {
                topic,
                group,
                to: SeekTo::parse(&to)?,
            };
            done(write(&client, cmd).await?.0)
        }
        GroupCmd::Rm { topic, group } => done(
            write(&client, TopicCommand::DeleteGroup { topic, group })
                .await?
                .0,
        ),
    }
}
