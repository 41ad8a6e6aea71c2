//! The topics workload of a robustness run, beside the KV clients in every scenario: a
//! publisher (unique payloads, one per command, never retried) and a consumer (claim,
//! read, acknowledge) on one topic, under the run's faults. Checked after recovery:
//! offsets dense from 0; every acknowledged publish stored exactly once, one of unknown
//! outcome at most once; acknowledged publishes in publish order; no claim invoked after
//! an acknowledgement of its offset returned hands that offset out again.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::client::Client;
use crate::error::Result;
use crate::topics::consumer::TopicsApi;
use crate::topics::*;

pub const TOPIC: &str = "robust";
const GROUP: &str = "g";
/// Pause after an error, as a real client would.
const BACKOFF: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct TopicLog {
    /// Payloads in publish order, with whether the publish was acknowledged.
    published: Vec<(Vec<u8>, bool)>,
    /// Claims: when invoked, and the offset handed out.
    claims: Vec<(Instant, u64)>,
    /// When the first acknowledgement of each offset returned.
    acks: BTreeMap<u64, Instant>,
}

/// Creates the topic and its group (retrying until the cluster answers).
pub async fn setup(client: &Client, deadline: Duration) -> Result<()> {
    let end = Instant::now() + deadline;
    let cmds = [
        TopicCommand::Create {
            topic: TOPIC.into(),
            config: TopicConfig::default(),
        },
        TopicCommand::CreateGroup {
            topic: TOPIC.into(),
            group: GROUP.into(),
            start: SeekTo::Start,
            settings: GroupSettings {
                visibility_ms: 1_000,
                max_deliveries: crate::limits::MAX_MAX_DELIVERIES,
            },
        },
    ];
    for cmd in cmds {
        loop {
            match client.topic_command(cmd.clone()).await {
                Ok(_) => break,
                Err(e) if e.kind == crate::error::ErrorKind::AlreadyExists => break,
                Err(e) if Instant::now() >= end => return Err(e),
                Err(_) => tokio::time::sleep(BACKOFF).await,
            }
        }
    }
    Ok(())
}

/// Starts the publisher and the consumer; they run until `stop`.
pub fn start(
    publisher: Client,
    consumer: Client,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<TopicLog>>,
) -> Vec<JoinHandle<()>> {
    let (s1, l1) = (stop.clone(), log.clone());
    let publish = tokio::spawn(async move {
        let mut seq = 0u64;
        while !s1.load(Ordering::Relaxed) {
            seq += 1;
            let payload = format!("p-{seq}").into_bytes();
            let cmd = TopicCommand::Publish {
                topic: TOPIC.into(),
                messages: vec![payload.clone()],
            };
            let ok = publisher.topic_command(cmd).await.is_ok();
            if let Ok(mut l) = l1.lock() {
                l.published.push((payload, ok));
            }
            if !ok {
                tokio::time::sleep(BACKOFF).await;
            }
        }
    });
    let consume = tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let invoked = Instant::now();
            let claim = TopicCommand::Claim {
                topic: TOPIC.into(),
                group: GROUP.into(),
                consumer: "robust".into(),
            };
            let offset = match consumer.topic_command(claim).await {
                Ok(TopicOutcome::Claimed(Some(c))) => c.offset,
                Ok(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                Err(_) => {
                    tokio::time::sleep(BACKOFF).await;
                    continue;
                }
            };
            if let Ok(mut l) = log.lock() {
                l.claims.push((invoked, offset));
            }
            let ack = TopicCommand::Ack {
                topic: TOPIC.into(),
                group: GROUP.into(),
                offset,
            };
            if consumer.topic_command(ack).await.is_ok() {
                let now = Instant::now();
                if let Ok(mut l) = log.lock() {
                    l.acks.entry(offset).or_insert(now);
                }
            }
        }
    });
    vec![publish, consume]
}

/// Reads the whole topic (retrying through recovery), then checks the log against it.
pub async fn check(client: &Client, log: &TopicLog) -> Vec<String> {
    let mut anomalies = Vec::new();
    let end = Instant::now() + Duration::from_secs(60);
    let mut stored: Vec<Message> = Vec::new();
    let mut from = 0u64;
    loop {
        let q = TopicQuery::Messages {
            topic: TOPIC.into(),
            from,
            limit: crate::limits::MAX_TOPIC_LIST_ENTRIES as u32,
        };
        match client.topic_query(q).await {
            Ok(TopicAnswer::Messages(ms)) if ms.is_empty() => break,
            Ok(TopicAnswer::Messages(ms)) => {
                from = ms.last().map_or(from, |m| m.offset + 1);
                stored.extend(ms);
            }
            Ok(_) | Err(_) if Instant::now() >= end => {
                anomalies.push("topic unreadable after recovery".into());
                return anomalies;
            }
            _ => tokio::time::sleep(BACKOFF).await,
        }
    }
    anomalies.extend(check_stored(&stored, log));
    anomalies
}

/// The checks of [`check`] against the topic's messages as stored.
pub fn check_stored(stored: &[Message], log: &TopicLog) -> Vec<String> {
    let mut anomalies = Vec::new();
    for (i, m) in stored.iter().enumerate() {
        if m.offset != i as u64 {
            anomalies.push(format!(
                "topic offsets not dense: {} at position {i}",
                m.offset
            ));
            break;
        }
    }
    let mut where_stored: BTreeMap<&[u8], Vec<u64>> = BTreeMap::new();
    for m in stored {
        where_stored.entry(&m.data).or_default().push(m.offset);
    }
    let mut last_offset: Option<u64> = None;
    for (payload, acked) in &log.published {
        let found = where_stored.get(payload.as_slice()).map_or(0, |v| v.len());
        let name = String::from_utf8_lossy(payload);
        if *acked && found != 1 {
            anomalies.push(format!("acknowledged publish {name} stored {found} times"));
        } else if !acked && found > 1 {
            anomalies.push(format!(
                "publish {name} of unknown outcome stored {found} times"
            ));
        }
        if let (true, Some(&o)) = (
            *acked,
            where_stored.get(payload.as_slice()).and_then(|v| v.first()),
        ) {
            if last_offset.is_some_and(|l| o < l) {
                anomalies.push(format!("publish {name} stored before an earlier publish"));
            }
            last_offset = Some(o);
        }
    }
    for (invoked, offset) in &log.claims {
        if log.acks.get(offset).is_some_and(|t| t < invoked) {
            anomalies.push(format!(
                "offset {offset} claimed again after its acknowledgement had returned"
            ));
        }
    }
    anomalies
}

/// Figures for the verdict: (publishes acknowledged, claims, acknowledgements).
pub fn figures(log: &TopicLog) -> (usize, usize, usize) {
    (
        log.published.iter().filter(|(_, ok)| *ok).count(),
        log.claims.len(),
        log.acks.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(offset: u64, data: &str) -> Message {
        Message {
            offset,
            time_ns: 0,
            data: data.as_bytes().to_vec(),
        }
    }

    #[test]
    fn each_kind_of_topic_anomaly_is_found() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_millis(5);
        let log = TopicLog {
            published: vec![
                (b"p-1".to_vec(), true),
                (b"p-2".to_vec(), false),
                (b"p-3".to_vec(), true),
            ],
            claims: vec![(t0, 0), (later, 1)],
            acks: BTreeMap::from([(0, later)]),
        };
        let good = [msg(0, "p-1"), msg(1, "p-3")];
        assert!(check_stored(&good, &log).is_empty());
        // An acknowledged publish lost, or stored twice.
        assert_eq!(check_stored(&[msg(0, "p-1")], &log).len(), 1);
        let twice = [msg(0, "p-1"), msg(1, "p-3"), msg(2, "p-3")];
        assert_eq!(check_stored(&twice, &log).len(), 1);
        // Out of publish order, and offsets with a gap.
        let reordered = [msg(0, "p-3"), msg(1, "p-1")];
        assert_eq!(check_stored(&reordered, &log).len(), 1);
        let gap = [msg(0, "p-1"), msg(2, "p-3")];
        assert_eq!(check_stored(&gap, &log).len(), 1);
        // A claim invoked after the acknowledgement of its offset returned.
        let mut again = log;
        again.claims.push((later + Duration::from_millis(1), 0));
        assert_eq!(check_stored(&good, &again).len(), 1);
    }
}
