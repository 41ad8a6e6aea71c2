//! Topics on a real 3-node cluster of `aspen node` processes: publishers and consumers
//! of one group run concurrently, first without faults (every message delivered exactly
//! once), then with the leader killed midway (every message delivered at least once, and
//! never after its acknowledgement). Offsets stay dense and each publisher's messages
//! keep their order; retention trims the same oldest messages on every node; a second
//! group sees every retained message.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aspen::client::Client;
use aspen::error::{Error, ErrorKind};
use aspen::kv::{Command, ReadQuery, ReadResult, WriteResult};
use aspen::net::proto::Consistency;
use aspen::topics::*;
use common::{Cluster, DEADLINE};

mod common;

const PUBLISHERS: usize = 4;
const PER_PUBLISHER: usize = 40;
const CONSUMERS: usize = 3;
/// Claim visibility when the leader is killed: short, so claims lost with it come back.
const SHORT_VISIBILITY_MS: u64 = 1_500;
/// Without faults: long enough that no claim lapses on a slow machine.
const LONG_VISIBILITY_MS: u64 = 600_000;

async fn cmd(c: &Client, t: TopicCommand) -> Result<TopicOutcome, Error> {
    match c.write_one(Command::Topic(t)).await? {
        WriteResult::Topic { outcome, .. } => Ok(outcome),
        other => panic!("unexpected {other:?}"),
    }
}

async fn ask(c: &Client, q: TopicQuery) -> Result<TopicAnswer, Error> {
    match c
        .read(ReadQuery::Topic(q), Consistency::Linearizable)
        .await?
    {
        ReadResult::Topic(a) => Ok(a),
        other => panic!("unexpected {other:?}"),
    }
}

/// Retries a command through elections and lost connections (so a command of unknown
/// outcome may apply twice: a publish is then at least once); other errors return.
async fn cmd_retrying(c: &Client, t: TopicCommand) -> Result<TopicOutcome, Error> {
    let start = Instant::now();
    loop {
        match cmd(c, t.clone()).await {
            Ok(o) => return Ok(o),
            Err(e)
                if matches!(
                    e.kind,
                    ErrorKind::Unavailable
                        | ErrorKind::NotLeader
                        | ErrorKind::Timeout
                        | ErrorKind::ShuttingDown
                        | ErrorKind::Io
                ) && start.elapsed() < DEADLINE =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => return Err(e),
        }
    }
}

/// Everything every consumer saw, in the order it happened.
#[derive(Default)]
struct Log {
    /// (offset, payload) per delivery.
    deliveries: Vec<(u64, Vec<u8>)>,
    /// Offsets whose acknowledgement returned success, with when it returned.
    acked: BTreeMap<u64, Instant>,
    /// Claims invoked after an acknowledgement of their offset had returned, yet
    /// handing that offset out (a claim invoked before may legitimately return it: its
    /// answer can arrive late, after the claim lapsed and another consumer acked it).
    after_ack: Vec<u64>,
}

async fn consumer(
    c: Client,
    topic: String,
    group: String,
    name: String,
    log: Arc<Mutex<Log>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    while !stop.load(Ordering::Relaxed) {
        let invoked = Instant::now();
        let claim = TopicCommand::Claim {
            topic: topic.clone(),
            group: group.clone(),
            consumer: name.clone(),
        };
        let claimed = match cmd(&c, claim).await {
            Ok(TopicOutcome::Claimed(Some(claim))) => claim,
            // Nothing now, or an error through an election: look again shortly.
            _ => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let q = TopicQuery::Messages {
            topic: topic.clone(),
            from: claimed.offset,
            limit: 1,
        };
        let data = match ask(&c, q).await {
            Ok(TopicAnswer::Messages(ms)) => match ms.into_iter().next() {
                Some(m) if m.offset == claimed.offset => m.data,
                _ => continue,
            },
            // The claim lapses and the message comes back.
            _ => continue,
        };
        {
            let mut l = log.lock().expect("log");
            if l.acked.get(&claimed.offset).is_some_and(|t| *t < invoked) {
                l.after_ack.push(claimed.offset);
            }
            l.deliveries.push((claimed.offset, data));
        }
        let ack = TopicCommand::Ack {
            topic: topic.clone(),
            group: group.clone(),
            offset: claimed.offset,
        };
        if let Ok(TopicOutcome::Done) = cmd(&c, ack).await {
            let now = Instant::now();
            log.lock()
                .expect("log")
                .acked
                .entry(claimed.offset)
                .or_insert(now);
        }
    }
}

async fn publisher(c: Client, topic: String, id: usize) -> Vec<Vec<u8>> {
    let mut sent = Vec::new();
    for j in 0..PER_PUBLISHER {
        let payload = format!("p{id}-{j:04}").into_bytes();
        let publish = TopicCommand::Publish {
            topic: topic.clone(),
            messages: vec![payload.clone()],
        };
        // An unknown outcome (timeout through the kill) may publish it twice: at least once.
        cmd_retrying(&c, publish).await.expect("publish");
        sent.push(payload);
    }
    sent
}

/// Runs publishers and consumers on `topic` (group "g"), killing and restarting the
/// leader midway if asked; returns the published payloads and the consumers' log.
async fn run(cl: &mut Cluster, topic: &str, kill_leader: bool) -> (Vec<Vec<u8>>, Log) {
    let visibility_ms = if kill_leader {
        SHORT_VISIBILITY_MS
    } else {
        LONG_VISIBILITY_MS
    };
    let c = cl.client();
    cmd_retrying(
        &c,
        TopicCommand::Create {
            topic: topic.into(),
            config: TopicConfig::default(),
        },
    )
    .await
    .expect("create");
    cmd_retrying(
        &c,
        TopicCommand::CreateGroup {
            topic: topic.into(),
            group: "g".into(),
            start: SeekTo::Start,
            settings: GroupSettings {
                visibility_ms,
                max_deliveries: 1_000,
            },
        },
    )
    .await
    .expect("group");
    let log = Arc::new(Mutex::new(Log::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumers: Vec<_> = (0..CONSUMERS)
        .map(|i| {
            tokio::spawn(consumer(
                cl.client(),
                topic.into(),
                "g".into(),
                format!("c{i}"),
                log.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|i| tokio::spawn(publisher(cl.client(), topic.into(), i)))
        .collect();
    if kill_leader {
        // Midway: once a quarter of the messages are out, kill the leader and restart it.
        let start = Instant::now();
        loop {
            if let Ok(TopicAnswer::Topic(Some(t))) = ask(
                &c,
                TopicQuery::Info {
                    topic: topic.into(),
                },
            )
            .await
            {
                if t.next as usize >= PUBLISHERS * PER_PUBLISHER / 4 {
                    break;
                }
            }
            assert!(start.elapsed() < DEADLINE, "publishing never got going");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let leader = cl.wait_leader(None).await;
        cl.kill(leader);
        cl.wait_leader(Some(leader)).await;
        cl.spawn(leader, &[]);
    }
    let mut published = Vec::new();
    for p in publishers {
        published.extend(p.await.expect("publisher"));
    }
    // Wait until the group has committed everything, then stop the consumers.
    let start = Instant::now();
    loop {
        let t = match ask(
            &c,
            TopicQuery::Info {
                topic: topic.into(),
            },
        )
        .await
        {
            Ok(TopicAnswer::Topic(Some(t))) => t,
            _ => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Ok(TopicAnswer::Groups(gs)) = ask(
            &c,
            TopicQuery::Groups {
                topic: topic.into(),
            },
        )
        .await
        {
            if gs.iter().any(|g| g.name == "g" && g.committed == t.next) {
                break;
            }
        }
        assert!(
            start.elapsed() < DEADLINE * 2,
            "the group never consumed everything\n{}",
            cl.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in consumers {
        h.await.expect("consumer");
    }
    let log = Arc::try_unwrap(log)
        .ok()
        .expect("consumers done")
        .into_inner()
        .expect("log");
    (published, log)
}

/// The topic's messages: dense offsets from 0, each publisher's in publish order.
async fn check_topic(c: &Client, topic: &str, published: &[Vec<u8>]) -> BTreeMap<u64, Vec<u8>> {
    let q = TopicQuery::Messages {
        topic: topic.into(),
        from: 0,
        limit: 10_000,
    };
    let TopicAnswer::Messages(ms) = ask(c, q).await.expect("messages") else {
        panic!("not messages");
    };
    let offsets: Vec<u64> = ms.iter().map(|m| m.offset).collect();
    let dense: Vec<u64> = (0..ms.len() as u64).collect();
    assert_eq!(offsets, dense, "offsets are dense from 0");
    let stored: BTreeSet<&Vec<u8>> = ms.iter().map(|m| &m.data).collect();
    for p in published {
        assert!(stored.contains(p), "published {p:?} is missing");
    }
    // Per publisher, first appearances keep publish order.
    for id in 0..PUBLISHERS {
        let prefix = format!("p{id}-");
        let mut seen = BTreeSet::new();
        let order: Vec<&Vec<u8>> = ms
            .iter()
            .map(|m| &m.data)
            .filter(|d| d.starts_with(prefix.as_bytes()) && seen.insert(d.to_vec()))
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted, "publisher {id}'s messages out of order");
    }
    ms.into_iter().map(|m| (m.offset, m.data)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_of_one_group_across_a_leader_kill() {
    let mut cl = Cluster::start(3);
    cl.wait_leader(None).await;
    let c = cl.client();

    // Without faults: exactly once.
    let (published, log) = run(&mut cl, "calm", false).await;
    let stored = check_topic(&c, "calm", &published).await;
    assert_eq!(stored.len(), published.len(), "no publish repeated");
    let mut per_offset: BTreeMap<u64, usize> = BTreeMap::new();
    for (o, data) in &log.deliveries {
        *per_offset.entry(*o).or_default() += 1;
        assert_eq!(stored.get(o), Some(data), "delivered bytes of offset {o}");
    }
    assert_eq!(per_offset.len(), stored.len(), "every message delivered");
    assert!(
        per_offset.values().all(|n| *n == 1),
        "a message was delivered twice without a fault: {per_offset:?}"
    );

    // With the leader killed midway: at least once, never after the acknowledgement.
    let (published, log) = run(&mut cl, "stormy", true).await;
    let stored = check_topic(&c, "stormy", &published).await;
    let delivered: BTreeSet<u64> = log.deliveries.iter().map(|(o, _)| *o).collect();
    let all: BTreeSet<u64> = stored.keys().copied().collect();
    assert_eq!(delivered, all, "every message delivered at least once");
    assert!(
        log.after_ack.is_empty(),
        "claimed again after its acknowledgement had returned: {:?}",
        log.after_ack
    );

    // Retention removes exactly the oldest messages, on every node alike (each node's
    // own applied state, read locally).
    let next = all.iter().max().map_or(0, |o| o + 1);
    cmd_retrying(
        &c,
        TopicCommand::Configure {
            topic: "stormy".into(),
            config: TopicConfig {
                max_messages: Some(10),
                ..TopicConfig::default()
            },
        },
    )
    .await
    .expect("configure");
    for i in 0..3 {
        let node = cl.client_of(i);
        let start = Instant::now();
        let kept = loop {
            let q = ReadQuery::Topic(TopicQuery::Messages {
                topic: "stormy".into(),
                from: 0,
                limit: 100,
            });
            if let Ok(ReadResult::Topic(TopicAnswer::Messages(ms))) =
                node.read(q, Consistency::Local).await
            {
                if ms.len() == 10 {
                    break ms;
                }
            }
            assert!(start.elapsed() < DEADLINE, "node {} never trimmed", i + 1);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let offsets: Vec<u64> = kept.iter().map(|m| m.offset).collect();
        assert_eq!(
            offsets,
            (next - 10..next).collect::<Vec<_>>(),
            "node {}",
            i + 1
        );
        for m in &kept {
            assert_eq!(stored.get(&m.offset), Some(&m.data), "node {}", i + 1);
        }
    }
    let all: BTreeSet<u64> = (next - 10..next).collect();

    // A second group, created afterwards from the start, sees every retained message.
    cmd_retrying(
        &c,
        TopicCommand::CreateGroup {
            topic: "stormy".into(),
            group: "audit".into(),
            start: SeekTo::Start,
            settings: GroupSettings {
                visibility_ms: 60_000,
                max_deliveries: 5,
            },
        },
    )
    .await
    .expect("second group");
    let mut seen = BTreeSet::new();
    loop {
        let claim = TopicCommand::Claim {
            topic: "stormy".into(),
            group: "audit".into(),
            consumer: "a".into(),
        };
        match cmd_retrying(&c, claim).await.expect("claim") {
            TopicOutcome::Claimed(Some(cl)) => assert!(seen.insert(cl.offset)),
            TopicOutcome::Claimed(None) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, all, "the second group sees every retained message");
}
