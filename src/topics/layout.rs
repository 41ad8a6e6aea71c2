//! Where topic records live in the state keyspace (next to the KV families listed in
//! `kv::layout`). Names never contain NUL, so NUL separates the parts unambiguously;
//! offsets are big-endian, so a prefix scan returns them in order.
//!
//! | tag | key                                       | value              |
//! |-----|-------------------------------------------|--------------------|
//! | `T` | topic                                     | `TopicRecord`      |
//! | `Q` | topic, 0x00, offset (u64 BE)              | `MessageRecord`    |
//! | `G` | topic, 0x00, group                        | `GroupRecord`      |
//! | `P` | topic, 0x00, group, 0x00, offset (u64 BE) | `PendingRecord`    |
//! | `D` | topic, 0x00, group, 0x00, offset (u64 BE) | `DeadLetterRecord` |

use crate::error::{Error, Result};

const TAG_TOPIC: u8 = b'T';
const TAG_MESSAGE: u8 = b'Q';
const TAG_GROUP: u8 = b'G';
const TAG_PENDING: u8 = b'P';
const TAG_DEAD: u8 = b'D';

fn key(tag: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut k = vec![tag];
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p);
    }
    k
}

pub fn topic_key(topic: &str) -> Vec<u8> {
    key(TAG_TOPIC, &[topic.as_bytes()])
}

/// Prefix of every topic record.
pub fn topics_prefix() -> Vec<u8> {
    vec![TAG_TOPIC]
}

/// The topic a topic record key names.
pub fn topic_of(record_key: &[u8]) -> Result<String> {
    let name = record_key
        .strip_prefix(&[TAG_TOPIC])
        .ok_or_else(|| Error::corrupt("malformed topic record key"))?;
    String::from_utf8(name.to_vec()).map_err(|_| Error::corrupt("topic name is not UTF-8"))
}

/// Prefix of a topic's messages.
pub fn messages_prefix(topic: &str) -> Vec<u8> {
    key(TAG_MESSAGE, &[topic.as_bytes(), b""])
}

pub fn message_key(topic: &str, offset: u64) -> Vec<u8> {
    let mut k = messages_prefix(topic);
    k.extend_from_slice(&offset.to_be_bytes());
    k
}

/// Prefix of a topic's groups.
pub fn groups_prefix(topic: &str) -> Vec<u8> {
    key(TAG_GROUP, &[topic.as_bytes(), b""])
}

pub fn group_key(topic: &str, group: &str) -> Vec<u8> {
    key(TAG_GROUP, &[topic.as_bytes(), group.as_bytes()])
}

/// Prefix of a group's claims.
pub fn pending_prefix(topic: &str, group: &str) -> Vec<u8> {
    key(TAG_PENDING, &[topic.as_bytes(), group.as_bytes(), b""])
}

pub fn pending_key(topic: &str, group: &str, offset: u64) -> Vec<u8> {
    let mut k = pending_prefix(topic, group);
    k.extend_from_slice(&offset.to_be_bytes());
    k
}

/// Prefix of a group's dead letters.
pub fn dead_prefix(topic: &str, group: &str) -> Vec<u8> {
    key(TAG_DEAD, &[topic.as_bytes(), group.as_bytes(), b""])
}

pub fn dead_key(topic: &str, group: &str, offset: u64) -> Vec<u8> {
    let mut k = dead_prefix(topic, group);
    k.extend_from_slice(&offset.to_be_bytes());
    k
}

/// The trailing offset of a message, claim or dead-letter key.
pub fn offset_of(record_key: &[u8]) -> Result<u64> {
    let start = record_key
        .len()
        .checked_sub(8)
        .ok_or_else(|| Error::corrupt("record key too short for an offset"))?;
    let bytes: [u8; 8] = record_key
        .get(start..)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Error::corrupt("record key too short for an offset"))?;
    Ok(u64::from_be_bytes(bytes))
}

/// The group a group record key under `groups_prefix(topic)` names.
pub fn group_of(record_key: &[u8], prefix_len: usize) -> Result<String> {
    let name = record_key.get(prefix_len..).unwrap_or_default();
    String::from_utf8(name.to_vec()).map_err(|_| Error::corrupt("group name is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_offset_and_do_not_collide() {
        assert!(message_key("t", 1) < message_key("t", 256));
        assert!(message_key("t", 255) < message_key("t", 256));
        // "t" and "t2" keep their messages apart.
        assert!(!message_key("t2", 0).starts_with(&messages_prefix("t")));
        assert_eq!(offset_of(&pending_key("t", "g", 42)).unwrap(), 42);
        assert!(!pending_key("t", "g2", 0).starts_with(&pending_prefix("t", "g")));
        let gp = groups_prefix("t");
        assert_eq!(
            group_of(&group_key("t", "billing"), gp.len()).unwrap(),
            "billing"
        );
        assert_eq!(topic_of(&topic_key("orders")).unwrap(), "orders");
    }
}
