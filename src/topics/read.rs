//! Answers to topic queries from a consistent view of the applied state. Every listing
//! is bounded in entries (`MAX_TOPIC_LIST_ENTRIES`) and, for messages, in bytes
//! (`MAX_LIST_PAGE_BYTES`, but always at least one message).

use super::layout as l;
use super::types::*;
use crate::error::{Error, Result};
use crate::limits::{MAX_LIST_PAGE_BYTES, MAX_TOPIC_LIST_ENTRIES};
use crate::store::{decode, prefix_end, View};

pub fn query(view: &View, q: &TopicQuery) -> Result<TopicAnswer> {
    match q {
        TopicQuery::List => list(view).map(TopicAnswer::Topics),
        TopicQuery::Info { topic } => info(view, topic).map(TopicAnswer::Topic),
        TopicQuery::Messages { topic, from, limit } => {
            messages(view, topic, *from, *limit).map(TopicAnswer::Messages)
        }
        TopicQuery::Groups { topic } => groups(view, topic).map(TopicAnswer::Groups),
        TopicQuery::Pending {
            topic,
            group,
            after,
            limit,
        } => pending(view, topic, group, *after, *limit).map(TopicAnswer::Pending),
        TopicQuery::DeadLetters {
            topic,
            group,
            after,
            limit,
        } => dead_letters(view, topic, group, *after, *limit).map(TopicAnswer::DeadLetters),
        TopicQuery::Stream {
            topic,
            pos,
            max_bytes,
        } => stream(view, topic, *pos, *max_bytes).map(TopicAnswer::Stream),
    }
}

fn bounded(limit: u32) -> usize {
    usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .clamp(1, MAX_TOPIC_LIST_ENTRIES)
}

fn topic_info(name: String, t: TopicRecord) -> TopicInfo {
    TopicInfo {
        name,
        first: t.first,
        next: t.next,
        bytes: t.bytes,
        config: t.config,
        stream_end: t.stream_end,
    }
}

fn list(view: &View) -> Result<Vec<TopicInfo>> {
    let mut out = Vec::new();
    for (k, v) in view.scan_prefix(&l::topics_prefix(), MAX_TOPIC_LIST_ENTRIES)? {
        out.push(topic_info(l::topic_of(&k)?, decode(&v, "topic")?));
    }
    Ok(out)
}

fn load_topic(view: &View, topic: &str) -> Result<Option<TopicRecord>> {
    match view.get(&l::topic_key(topic))? {
        Some(v) => Ok(Some(decode(&v, "topic")?)),
        None => Ok(None),
    }
}

fn info(view: &View, topic: &str) -> Result<Option<TopicInfo>> {
    Ok(load_topic(view, topic)?.map(|t| topic_info(topic.to_string(), t)))
}

fn require_topic(view: &View, topic: &str) -> Result<TopicRecord> {
    load_topic(view, topic)?.ok_or_else(|| Error::not_found(format!("topic {topic:?}")))
}

fn messages(view: &View, topic: &str, from: u64, limit: u32) -> Result<Vec<Message>> {
    let t = require_topic(view, topic)?;
    let start = l::message_key(topic, from.max(t.first));
    let prefix = l::messages_prefix(topic);
    let end = prefix_end(&prefix);
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for (k, v) in view.scan(&start, end.as_deref(), bounded(limit))? {
        let m: MessageRecord = decode(&v, "message")?;
        bytes = bytes.saturating_add(m.data.len());
        if bytes > MAX_LIST_PAGE_BYTES && !out.is_empty() {
            break;
        }
        out.push(Message {
            offset: l::offset_of(&k)?,
            time_ns: m.time_ns,
            data: m.data,
        });
    }
    Ok(out)
}

fn groups(view: &View, topic: &str) -> Result<Vec<GroupInfo>> {
    require_topic(view, topic)?;
    let prefix = l::groups_prefix(topic);
    let mut out = Vec::new();
    for (k, v) in view.scan_prefix(&prefix, MAX_TOPIC_LIST_ENTRIES)? {
        let name = l::group_of(&k, prefix.len())?;
        let g: GroupRecord = decode(&v, "group")?;
        out.push(group_info(view, topic, name, g)?);
    }
    Ok(out)
}

/// A group's figures; the committed offset is its lowest claim, or its next claim.
fn group_info(view: &View, topic: &str, name: String, g: GroupRecord) -> Result<GroupInfo> {
    let lowest = view
        .scan_prefix(&l::pending_prefix(topic, &name), 1)?
        .first()
        .map(|(k, _)| l::offset_of(k))
        .transpose()?;
    Ok(GroupInfo {
        committed: lowest.map_or(g.next_claim, |o| o.min(g.next_claim)),
        next_claim: g.next_claim,
        pending: g.pending,
        dead_letters: g.dead_letters,
        settings: g.settings,
        name,
    })
}

fn require_group(view: &View, topic: &str, group: &str) -> Result<()> {
    require_topic(view, topic)?;
    match view.get(&l::group_key(topic, group))? {
        Some(_) => Ok(()),
        None => Err(Error::not_found(format!(
            "group {group:?} of topic {topic:?}"
        ))),
    }
}

/// Records under `prefix` after offset `after`, at most `limit`.
fn scan_after(
    view: &View,
    prefix: &[u8],
    after: Option<u64>,
    limit: u32,
) -> Result<Vec<(u64, fjall::Slice)>> {
    let mut start = prefix.to_vec();
    if let Some(a) = after {
        match a.checked_add(1) {
            Some(n) => start.extend_from_slice(&n.to_be_bytes()),
            None => return Ok(Vec::new()),
        }
    }
    let end = prefix_end(prefix);
    view.scan(&start, end.as_deref(), bounded(limit))?
        .into_iter()
        .map(|(k, v)| Ok((l::offset_of(&k)?, v)))
        .collect()
}

fn pending(
    view: &View,
    topic: &str,
    group: &str,
    after: Option<u64>,
    limit: u32,
) -> Result<Vec<PendingInfo>> {
    require_group(view, topic, group)?;
    let mut out = Vec::new();
    for (offset, v) in scan_after(view, &l::pending_prefix(topic, group), after, limit)? {
        let p: PendingRecord = decode(&v, "claim")?;
        out.push(PendingInfo {
            offset,
            consumer: p.consumer,
            deliveries: p.deliveries,
            deadline_ns: p.deadline_ns,
        });
    }
    Ok(out)
}

fn dead_letters(
    view: &View,
    topic: &str,
    group: &str,
    after: Option<u64>,
    limit: u32,
) -> Result<Vec<DeadLetter>> {
    require_group(view, topic, group)?;
    let mut out = Vec::new();
    for (offset, v) in scan_after(view, &l::dead_prefix(topic, group), after, limit)? {
        let d: DeadLetterRecord = decode(&v, "dead letter")?;
        out.push(DeadLetter {
            offset,
            consumer: d.consumer,
            deliveries: d.deliveries,
        });
    }
    Ok(out)
}

fn load_message(view: &View, topic: &str, offset: u64) -> Result<Option<MessageRecord>> {
    match view.get(&l::message_key(topic, offset))? {
        Some(v) => Ok(Some(decode(&v, "message")?)),
        None => Ok(None),
    }
}

/// Bytes of the topic's stream from `pos`: a binary search over the retained messages
/// (their positions grow with their offsets) finds the one holding `pos`, then messages
/// follow in order, each ending with a newline (see `apply::stream_len`); the hole
/// retention left reads as NUL bytes.
fn stream(view: &View, topic: &str, pos: u64, max_bytes: u32) -> Result<Vec<u8>> {
    let t = require_topic(view, topic)?;
    let max = usize::try_from(max_bytes)
        .unwrap_or(usize::MAX)
        .min(MAX_LIST_PAGE_BYTES);
    let mut out = Vec::new();
    if pos >= t.stream_end || max == 0 {
        return Ok(out);
    }
    let first_pos = match load_message(view, topic, t.first)? {
        Some(m) if t.first < t.next => m.pos,
        _ => t.stream_end,
    };
    let mut pos = pos;
    if pos < first_pos {
        let hole = usize::try_from(first_pos - pos)
            .unwrap_or(usize::MAX)
            .min(max);
        out.resize(hole, 0);
        pos = pos.saturating_add(hole as u64);
    }
    // The last retained message starting at or before `pos`.
    let (mut lo, mut hi) = (t.first, t.next);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match load_message(view, topic, mid)? {
            Some(m) if m.pos <= pos => lo = mid,
            Some(_) => hi = mid,
            None => {
                return Err(Error::corrupt(format!(
                    "topic {topic:?}: message {mid} missing"
                )))
            }
        }
    }
    let mut offset = lo;
    while out.len() < max && offset < t.next && pos < t.stream_end {
        let Some(m) = load_message(view, topic, offset)? else {
            break;
        };
        let skip = usize::try_from(pos.saturating_sub(m.pos)).unwrap_or(usize::MAX);
        let mut line = m.data;
        if line.last() != Some(&b'\n') {
            line.push(b'\n');
        }
        let part = line.get(skip..).unwrap_or_default();
        let take = part.len().min(max - out.len());
        out.extend_from_slice(part.get(..take).unwrap_or_default());
        pos = pos.saturating_add(take as u64);
        offset += 1;
    }
    Ok(out)
}

/// Topics whose oldest message is older than their age limit at `now_ns` (by this
/// node's clock; the trim itself uses the leader's stamp), at most `limit`.
pub fn aged_topics(view: &View, now_ns: i64, limit: usize) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (k, v) in view.scan_prefix(&l::topics_prefix(), MAX_TOPIC_LIST_ENTRIES)? {
        if out.len() >= limit {
            break;
        }
        let t: TopicRecord = decode(&v, "topic")?;
        let Some(age) = t.config.max_age_secs else {
            continue;
        };
        if t.first >= t.next {
            continue;
        }
        let name = l::topic_of(&k)?;
        let oldest_allowed = now_ns
            .saturating_sub(i64::try_from(age.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX));
        if load_message(view, &name, t.first)?.is_some_and(|m| m.time_ns < oldest_allowed) {
            out.push(name);
        }
    }
    Ok(out)
}
