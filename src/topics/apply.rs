//! The deterministic rules of the topics service, applied inside a raft entry through the
//! KV applier's staged storage, so a command that fails leaves nothing behind and every
//! node computes the same result.
//!
//! - Offsets are dense and assigned here, in log order: `next` is the offset the next
//!   message gets; `first` the oldest retained one.
//! - Retention runs after every publish and configuration change, and when the leader
//!   sends a trim for a topic whose oldest message aged out: the oldest messages go
//!   while the topic holds more than its count or byte limit, or messages older than
//!   its age limit (by the leader's clock stamped into the entry).
//! - A group hands out messages in offset order. A claim lives in the group's pending list
//!   with its consumer, delivery count and deadline; once the deadline passes the next
//!   claim in the group takes it again, or moves it to the dead letters after
//!   `max_deliveries` claims. Acknowledging removes the claim. The committed offset (what
//!   every message before is done) is the lowest pending offset, or the next offset never
//!   claimed when nothing is pending.

use super::layout as l;
use super::types::*;
use crate::error::{Error, ErrorKind, Result};
use crate::kv::apply::Applier;
use crate::limits::*;
use crate::store::{decode, encode};

/// Applies one topic command.
pub fn run(a: &mut Applier<'_>, cmd: &TopicCommand) -> Result<TopicOutcome> {
    validate_topic_name(cmd.topic())?;
    match cmd {
        TopicCommand::Create { topic, config } => create(a, topic, config),
        TopicCommand::Delete { topic } => delete(a, topic),
        TopicCommand::Configure { topic, config } => configure(a, topic, config),
        TopicCommand::Publish { topic, messages } => publish(a, topic, messages),
        TopicCommand::CreateGroup {
            topic,
            group,
            start,
            settings,
        } => create_group(a, topic, group, *start, *settings),
        TopicCommand::DeleteGroup { topic, group } => delete_group(a, topic, group),
        TopicCommand::Claim {
            topic,
            group,
            consumer,
        } => claim(a, topic, group, consumer),
        TopicCommand::Ack {
            topic,
            group,
            offset,
        } => ack(a, topic, group, *offset),
        TopicCommand::Seek { topic, group, to } => seek(a, topic, group, *to),
        TopicCommand::ClaimBatch {
            topic,
            group,
            consumer,
            max,
        } => {
            if *max as usize > MAX_CLAIM_BATCH {
                return Err(Error::new(
                    ErrorKind::TooBig,
                    format!("at most {MAX_CLAIM_BATCH} claims in one batch"),
                ));
            }
            let mut claims = Vec::new();
            while claims.len() < *max as usize {
                match claim(a, topic, group, consumer)? {
                    TopicOutcome::Claimed(Some(c)) => claims.push(c),
                    _ => break,
                }
            }
            Ok(TopicOutcome::ClaimedBatch(claims))
        }
        TopicCommand::AckBatch {
            topic,
            group,
            offsets,
        } => {
            if offsets.len() > MAX_CLAIM_BATCH {
                return Err(Error::new(
                    ErrorKind::TooBig,
                    format!("at most {MAX_CLAIM_BATCH} acknowledgements in one batch"),
                ));
            }
            let mut count = 0u64;
            for &offset in offsets {
                match ack(a, topic, group, offset) {
                    Ok(_) => count += 1,
                    Err(e) if e.kind == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(TopicOutcome::Acked { count })
        }
        TopicCommand::Trim { topic } => {
            let mut t = load_topic(a, topic)?;
            let messages = trim(a, topic, &mut t)?;
            store(a, l::topic_key(topic), &t)?;
            Ok(TopicOutcome::Removed { messages })
        }
    }
}

/// Checks a configuration before it is stored.
pub fn check_config(c: &TopicConfig) -> Result<()> {
    if c.max_messages.is_some_and(|m| m > MAX_MESSAGES_PER_TOPIC) {
        return Err(Error::invalid(format!(
            "max_messages is at most {MAX_MESSAGES_PER_TOPIC}"
        )));
    }
    Ok(())
}

/// Checks group settings before they are stored.
pub fn check_settings(s: &GroupSettings) -> Result<()> {
    if !(MIN_VISIBILITY_MS..=MAX_VISIBILITY_MS).contains(&s.visibility_ms) {
        return Err(Error::invalid(format!(
            "visibility must be between {MIN_VISIBILITY_MS} and {MAX_VISIBILITY_MS} ms"
        )));
    }
    if !(1..=MAX_MAX_DELIVERIES).contains(&s.max_deliveries) {
        return Err(Error::invalid(format!(
            "max_deliveries must be between 1 and {MAX_MAX_DELIVERIES}"
        )));
    }
    Ok(())
}

fn load<T: serde::de::DeserializeOwned>(
    a: &Applier<'_>,
    key: &[u8],
    what: &str,
) -> Result<Option<T>> {
    match a.get_raw(key)? {
        Some(bytes) => Ok(Some(decode(&bytes, what)?)),
        None => Ok(None),
    }
}

fn store<T: serde::Serialize>(a: &mut Applier<'_>, key: Vec<u8>, value: &T) -> Result<()> {
    a.set_raw(key, Some(encode(value)?));
    Ok(())
}

fn load_topic(a: &Applier<'_>, topic: &str) -> Result<TopicRecord> {
    load(a, &l::topic_key(topic), "topic")?
        .ok_or_else(|| Error::not_found(format!("topic {topic:?}")))
}

fn load_group(a: &Applier<'_>, topic: &str, group: &str) -> Result<GroupRecord> {
    load(a, &l::group_key(topic, group), "group")?
        .ok_or_else(|| Error::not_found(format!("group {group:?} of topic {topic:?}")))
}

/// Where a seek lands: never before the oldest retained message, never past the end.
fn resolve(to: SeekTo, t: &TopicRecord) -> Result<u64> {
    match to {
        SeekTo::Start => Ok(t.first),
        SeekTo::End => Ok(t.next),
        SeekTo::Offset(n) if n > t.next => Err(Error::invalid(format!(
            "offset {n} is past the end of the topic ({})",
            t.next
        ))),
        SeekTo::Offset(n) => Ok(n.max(t.first)),
    }
}

fn create(a: &mut Applier<'_>, topic: &str, config: &TopicConfig) -> Result<TopicOutcome> {
    check_config(config)?;
    if a.get_raw(&l::topic_key(topic))?.is_some() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("topic {topic:?} exists"),
        ));
    }
    let rec = TopicRecord {
        config: config.clone(),
        first: 0,
        next: 0,
        bytes: 0,
        stream_end: 0,
    };
    store(a, l::topic_key(topic), &rec)?;
    Ok(TopicOutcome::Done)
}

fn delete(a: &mut Applier<'_>, topic: &str) -> Result<TopicOutcome> {
    let t = load_topic(a, topic)?;
    let groups = a.scan_prefix(&l::groups_prefix(topic), to_usize(MAX_GROUPS_PER_TOPIC) + 1)?;
    let mut records = t.next.saturating_sub(t.first);
    for (_, v) in &groups {
        let g: GroupRecord = decode(v, "group")?;
        records = records
            .saturating_add(g.pending)
            .saturating_add(g.dead_letters)
            .saturating_add(1);
    }
    if records > MAX_TOPIC_DELETE_RECORDS as u64 {
        return Err(Error::new(
            ErrorKind::NotEmpty,
            format!(
                "topic {topic:?} holds {records} records, more than one command removes \
                 ({MAX_TOPIC_DELETE_RECORDS}); set its max_messages to 0 first"
            ),
        ));
    }
    let gp = l::groups_prefix(topic);
    for (k, _) in &groups {
        let group = l::group_of(k, gp.len())?;
        remove_group(a, topic, &group)?;
    }
    for offset in t.first..t.next {
        a.set_raw(l::message_key(topic, offset), None);
    }
    a.set_raw(l::topic_key(topic), None);
    Ok(TopicOutcome::Removed {
        messages: t.next.saturating_sub(t.first),
    })
}

fn configure(a: &mut Applier<'_>, topic: &str, config: &TopicConfig) -> Result<TopicOutcome> {
    check_config(config)?;
    let mut t = load_topic(a, topic)?;
    t.config = config.clone();
    let messages = trim(a, topic, &mut t)?;
    store(a, l::topic_key(topic), &t)?;
    Ok(TopicOutcome::Removed { messages })
}

fn publish(a: &mut Applier<'_>, topic: &str, messages: &[Vec<u8>]) -> Result<TopicOutcome> {
    check_batch(messages)?;
    let mut t = load_topic(a, topic)?;
    let first = t.next;
    let now = a.now();
    for data in messages {
        let rec = MessageRecord {
            time_ns: now,
            data: data.clone(),
            pos: t.stream_end,
        };
        store(a, l::message_key(topic, t.next), &rec)?;
        t.next = t.next.saturating_add(1);
        t.stream_end = t.stream_end.saturating_add(stream_len(data));
        t.bytes = t.bytes.saturating_add(data.len() as u64);
    }
    trim(a, topic, &mut t)?;
    store(a, l::topic_key(topic), &t)?;
    Ok(TopicOutcome::Published {
        first,
        count: messages.len() as u64,
    })
}

/// Size checks of a publish (also run before proposing).
pub fn check_batch(messages: &[Vec<u8>]) -> Result<()> {
    if messages.len() > MAX_PUBLISH_BATCH_MESSAGES {
        return Err(Error::new(
            ErrorKind::TooBig,
            format!(
                "{} messages in one publish; the limit is {MAX_PUBLISH_BATCH_MESSAGES}",
                messages.len()
            ),
        ));
    }
    if let Some(m) = messages.iter().find(|m| m.len() > MAX_MESSAGE_BYTES) {
        return Err(Error::new(
            ErrorKind::TooBig,
            format!(
                "message is {} bytes; the limit is {MAX_MESSAGE_BYTES}",
                m.len()
            ),
        ));
    }
    Ok(())
}

/// Removes the oldest messages the topic's retention no longer allows; returns how many.
fn trim(a: &mut Applier<'_>, topic: &str, t: &mut TopicRecord) -> Result<u64> {
    let max_messages = t
        .config
        .max_messages
        .unwrap_or(MAX_MESSAGES_PER_TOPIC)
        .min(MAX_MESSAGES_PER_TOPIC);
    let oldest_allowed = t
        .config
        .max_age_secs
        .map(|s| a.now().saturating_sub(secs_to_ns(s)));
    let mut removed = 0u64;
    // Each pass removes one message: the loop runs at most once per retained message.
    while t.first < t.next {
        let key = l::message_key(topic, t.first);
        let over_count = t.next - t.first > max_messages;
        let over_bytes = t.config.max_bytes.is_some_and(|b| t.bytes > b);
        let size = if over_count || over_bytes || oldest_allowed.is_some() {
            match load::<MessageRecord>(a, &key, "message")? {
                Some(m) => {
                    let too_old = oldest_allowed.is_some_and(|o| m.time_ns < o);
                    if !(over_count || over_bytes || too_old) {
                        break;
                    }
                    m.data.len() as u64
                }
                // invariant: every offset in first..next has its message; a missing one
                // is removed from the count without failing the publish.
                None => 0,
            }
        } else {
            break;
        };
        a.set_raw(key, None);
        t.bytes = t.bytes.saturating_sub(size);
        t.first += 1;
        removed += 1;
    }
    Ok(removed)
}

fn create_group(
    a: &mut Applier<'_>,
    topic: &str,
    group: &str,
    start: SeekTo,
    settings: GroupSettings,
) -> Result<TopicOutcome> {
    validate_topic_name(group)?;
    check_settings(&settings)?;
    let t = load_topic(a, topic)?;
    if a.get_raw(&l::group_key(topic, group))?.is_some() {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("group {group:?} of topic {topic:?} exists"),
        ));
    }
    let groups = a.scan_prefix(&l::groups_prefix(topic), to_usize(MAX_GROUPS_PER_TOPIC))?;
    if groups.len() as u64 >= MAX_GROUPS_PER_TOPIC {
        return Err(Error::new(
            ErrorKind::NoSpace,
            format!("topic {topic:?} has {MAX_GROUPS_PER_TOPIC} groups, the most it may have"),
        ));
    }
    let g = GroupRecord {
        next_claim: resolve(start, &t)?,
        pending: 0,
        dead_letters: 0,
        settings,
        next_lapse_ns: i64::MAX,
    };
    store(a, l::group_key(topic, group), &g)?;
    Ok(TopicOutcome::Done)
}

fn delete_group(a: &mut Applier<'_>, topic: &str, group: &str) -> Result<TopicOutcome> {
    load_group(a, topic, group)?;
    remove_group(a, topic, group)?;
    Ok(TopicOutcome::Done)
}

/// Removes a group with its claims and dead letters.
fn remove_group(a: &mut Applier<'_>, topic: &str, group: &str) -> Result<()> {
    for prefix in [
        l::pending_prefix(topic, group),
        l::dead_prefix(topic, group),
    ] {
        let limit = to_usize(MAX_PENDING_PER_GROUP.max(MAX_DEAD_LETTERS_PER_GROUP)) + 1;
        for (k, _) in a.scan_prefix(&prefix, limit)? {
            a.set_raw(k, None);
        }
    }
    a.set_raw(l::group_key(topic, group), None);
    Ok(())
}

fn claim(a: &mut Applier<'_>, topic: &str, group: &str, consumer: &str) -> Result<TopicOutcome> {
    if consumer.len() > MAX_NAME_BYTES {
        return Err(Error::new(
            ErrorKind::NameTooLong,
            format!("consumer name is longer than {MAX_NAME_BYTES} bytes"),
        ));
    }
    let t = load_topic(a, topic)?;
    let mut g = load_group(a, topic, group)?;
    let now = a.now();
    let deadline_ns = now.saturating_add(ms_to_ns(g.settings.visibility_ms));
    // A lapsed claim first, in offset order, when one may have lapsed: the scan walks
    // the pending list (and, in the store, what acknowledgements left of it), so it is
    // skipped until the earliest deadline.
    let look = g.pending > 0 && now >= g.next_lapse_ns;
    let claims = if look {
        a.scan_prefix(&l::pending_prefix(topic, group), MAX_CLAIM_SCAN_ENTRIES)?
    } else {
        Vec::new()
    };
    let complete = claims.len() < MAX_CLAIM_SCAN_ENTRIES;
    let mut earliest = i64::MAX;
    for (k, v) in claims {
        let offset = l::offset_of(&k)?;
        let p: PendingRecord = decode(&v, "claim")?;
        if offset < t.first {
            // Its message is gone (retention): nothing left to deliver.
            a.set_raw(k, None);
            g.pending = g.pending.saturating_sub(1);
            continue;
        }
        if p.deadline_ns > now {
            earliest = earliest.min(p.deadline_ns);
            continue;
        }
        if p.deliveries >= g.settings.max_deliveries {
            a.set_raw(k, None);
            g.pending = g.pending.saturating_sub(1);
            dead_letter(a, topic, group, &mut g, offset, p)?;
            continue;
        }
        let again = PendingRecord {
            consumer: consumer.to_string(),
            deliveries: p.deliveries.saturating_add(1),
            deadline_ns,
        };
        store(a, k, &again)?;
        // The rest of the list was not looked at: look again next time.
        g.next_lapse_ns = now;
        store(a, l::group_key(topic, group), &g)?;
        return Ok(TopicOutcome::Claimed(Some(Claim {
            offset,
            deliveries: again.deliveries,
            deadline_ns,
        })));
    }
    if look {
        // Beyond the scan's bound, claims were not seen: look again next time.
        g.next_lapse_ns = if complete { earliest } else { now };
    }
    // Then the next message never claimed in this group.
    let offset = g.next_claim.max(t.first);
    if offset >= t.next {
        g.next_claim = offset;
        store(a, l::group_key(topic, group), &g)?;
        return Ok(TopicOutcome::Claimed(None));
    }
    if g.pending >= MAX_PENDING_PER_GROUP {
        return Err(Error::new(
            ErrorKind::NoSpace,
            format!(
                "group {group:?} has {} claims not acknowledged, the most it may have",
                g.pending
            ),
        ));
    }
    let p = PendingRecord {
        consumer: consumer.to_string(),
        deliveries: 1,
        deadline_ns,
    };
    store(a, l::pending_key(topic, group, offset), &p)?;
    g.pending += 1;
    g.next_claim = offset + 1;
    g.next_lapse_ns = g.next_lapse_ns.min(deadline_ns);
    store(a, l::group_key(topic, group), &g)?;
    Ok(TopicOutcome::Claimed(Some(Claim {
        offset,
        deliveries: 1,
        deadline_ns,
    })))
}

/// Moves a claim to the group's dead letters, dropping the oldest beyond the bound.
fn dead_letter(
    a: &mut Applier<'_>,
    topic: &str,
    group: &str,
    g: &mut GroupRecord,
    offset: u64,
    p: PendingRecord,
) -> Result<()> {
    if g.dead_letters >= MAX_DEAD_LETTERS_PER_GROUP {
        if let Some((k, _)) = a
            .scan_prefix(&l::dead_prefix(topic, group), 1)?
            .into_iter()
            .next()
        {
            a.set_raw(k, None);
            g.dead_letters = g.dead_letters.saturating_sub(1);
        }
    }
    let d = DeadLetterRecord {
        consumer: p.consumer,
        deliveries: p.deliveries,
    };
    store(a, l::dead_key(topic, group, offset), &d)?;
    g.dead_letters += 1;
    Ok(())
}

fn ack(a: &mut Applier<'_>, topic: &str, group: &str, offset: u64) -> Result<TopicOutcome> {
    load_topic(a, topic)?;
    let mut g = load_group(a, topic, group)?;
    if offset >= g.next_claim {
        return Err(Error::invalid(format!(
            "offset {offset} was never claimed in group {group:?}"
        )));
    }
    let key = l::pending_key(topic, group, offset);
    if a.get_raw(&key)?.is_none() {
        return Err(Error::not_found(format!(
            "claim of offset {offset} in group {group:?} (acknowledged, dead-lettered or \
             dropped by a seek already)"
        )));
    }
    a.set_raw(key, None);
    g.pending = g.pending.saturating_sub(1);
    store(a, l::group_key(topic, group), &g)?;
    Ok(TopicOutcome::Done)
}

fn seek(a: &mut Applier<'_>, topic: &str, group: &str, to: SeekTo) -> Result<TopicOutcome> {
    let t = load_topic(a, topic)?;
    let mut g = load_group(a, topic, group)?;
    g.next_claim = resolve(to, &t)?;
    for (k, _) in a.scan_prefix(
        &l::pending_prefix(topic, group),
        to_usize(MAX_PENDING_PER_GROUP) + 1,
    )? {
        a.set_raw(k, None);
    }
    g.pending = 0;
    g.next_lapse_ns = i64::MAX;
    store(a, l::group_key(topic, group), &g)?;
    Ok(TopicOutcome::Done)
}

/// How many bytes a message takes in its topic's stream: itself, and a newline unless
/// it ends with one (so `echo x > publish` is one line, not a line and a blank one).
pub fn stream_len(data: &[u8]) -> u64 {
    data.len() as u64 + u64::from(data.last() != Some(&b'\n'))
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn secs_to_ns(s: u64) -> i64 {
    i64::try_from(s.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX)
}

fn ms_to_ns(ms: u64) -> i64 {
    i64::try_from(ms.saturating_mul(1_000_000)).unwrap_or(i64::MAX)
}
