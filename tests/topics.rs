//! Topic semantics through a real single node in this process: dense offsets, exact
//! bytes, retention, consumer groups (claims, acknowledgements, lapsed claims, dead
//! letters, seeks) and bad input.

use std::time::{Duration, Instant};

use aspen::error::{Error, ErrorKind};
use aspen::kv::{Command, ReadQuery, ReadResult, WriteResult};
use aspen::net::proto::Consistency;
use aspen::node::Node;
use aspen::topics::*;
use common::single::node;

mod common;

async fn cmd(n: &Node, c: TopicCommand) -> Result<TopicOutcome, Error> {
    match n.write_one(7, Command::Topic(c)).await? {
        WriteResult::Topic { outcome, .. } => Ok(outcome),
        other => panic!("unexpected {other:?}"),
    }
}

async fn ask(n: &Node, q: TopicQuery) -> Result<TopicAnswer, Error> {
    match n
        .read(ReadQuery::Topic(q), Consistency::Linearizable, 0)
        .await?
    {
        ReadResult::Topic(a) => Ok(a),
        other => panic!("unexpected {other:?}"),
    }
}

fn create(topic: &str, config: TopicConfig) -> TopicCommand {
    TopicCommand::Create {
        topic: topic.into(),
        config,
    }
}

fn publish(topic: &str, messages: &[&[u8]]) -> TopicCommand {
    TopicCommand::Publish {
        topic: topic.into(),
        messages: messages.iter().map(|m| m.to_vec()).collect(),
    }
}

fn group(topic: &str, group: &str, start: SeekTo, visibility_ms: u64, max: u32) -> TopicCommand {
    TopicCommand::CreateGroup {
        topic: topic.into(),
        group: group.into(),
        start,
        settings: GroupSettings {
            visibility_ms,
            max_deliveries: max,
        },
    }
}

fn claim_cmd(topic: &str, group: &str, consumer: &str) -> TopicCommand {
    TopicCommand::Claim {
        topic: topic.into(),
        group: group.into(),
        consumer: consumer.into(),
    }
}

async fn claim(n: &Node, topic: &str, g: &str) -> Option<Claim> {
    match cmd(n, claim_cmd(topic, g, "c1")).await.expect("claim") {
        TopicOutcome::Claimed(c) => c,
        other => panic!("unexpected {other:?}"),
    }
}

async fn ack(n: &Node, topic: &str, g: &str, offset: u64) -> Result<TopicOutcome, Error> {
    cmd(
        n,
        TopicCommand::Ack {
            topic: topic.into(),
            group: g.into(),
            offset,
        },
    )
    .await
}

async fn messages(n: &Node, topic: &str, from: u64) -> Vec<Message> {
    match ask(
        n,
        TopicQuery::Messages {
            topic: topic.into(),
            from,
            limit: 1000,
        },
    )
    .await
    .expect("messages")
    {
        TopicAnswer::Messages(m) => m,
        other => panic!("unexpected {other:?}"),
    }
}

async fn group_info(n: &Node, topic: &str, g: &str) -> GroupInfo {
    match ask(
        n,
        TopicQuery::Groups {
            topic: topic.into(),
        },
    )
    .await
    .expect("groups")
    {
        TopicAnswer::Groups(gs) => gs.into_iter().find(|x| x.name == g).expect("group"),
        other => panic!("unexpected {other:?}"),
    }
}

const VISIBLE_LONG_MS: u64 = 600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_are_dense_and_messages_exact() {
    let one = node().await;
    let n = &one.node;
    cmd(n, create("orders", TopicConfig::default()))
        .await
        .expect("create");
    let binary: &[u8] = &[0, 1, 2, 255, b'\n', 0];
    let first = cmd(n, publish("orders", &[b"a", binary, b""])).await;
    assert_eq!(
        first.expect("publish"),
        TopicOutcome::Published { first: 0, count: 3 }
    );
    // Two publishes in a row (same millisecond or not) are two messages.
    let (a, b) = tokio::join!(
        cmd(n, publish("orders", &[b"x"])),
        cmd(n, publish("orders", &[b"y"]))
    );
    let mut offsets: Vec<u64> = [a, b]
        .into_iter()
        .map(|r| match r.expect("publish") {
            TopicOutcome::Published { first, count: 1 } => first,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    offsets.sort_unstable();
    assert_eq!(offsets, vec![3, 4]);
    let all = messages(n, "orders", 0).await;
    assert_eq!(
        all.iter().map(|m| m.offset).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    assert_eq!(all[1].data, binary);
    assert_eq!(all[2].data, b"");
    assert_eq!(messages(n, "orders", 3).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_claim_ack_and_commit() {
    let one = node().await;
    let n = &one.node;
    cmd(n, create("t", TopicConfig::default()))
        .await
        .expect("create");
    cmd(n, publish("t", &[b"m0", b"m1", b"m2"]))
        .await
        .expect("publish");
    for g in ["billing", "audit"] {
        cmd(n, group("t", g, SeekTo::Start, VISIBLE_LONG_MS, 5))
            .await
            .expect("group");
    }
    // Each claim hands out the next message once; groups are independent.
    assert_eq!(claim(n, "t", "billing").await.map(|c| c.offset), Some(0));
    assert_eq!(claim(n, "t", "billing").await.map(|c| c.offset), Some(1));
    assert_eq!(claim(n, "t", "audit").await.map(|c| c.offset), Some(0));
    // Out of order: the committed offset stays at the lowest unacknowledged claim.
    ack(n, "t", "billing", 1).await.expect("ack 1");
    assert_eq!(group_info(n, "t", "billing").await.committed, 0);
    ack(n, "t", "billing", 0).await.expect("ack 0");
    let g = group_info(n, "t", "billing").await;
    assert_eq!((g.committed, g.pending, g.next_claim), (2, 0, 2));
    // Bad acknowledgements.
    let twice = ack(n, "t", "billing", 0).await.expect_err("twice");
    assert_eq!(twice.kind, ErrorKind::NotFound);
    let never = ack(n, "t", "billing", 7).await.expect_err("never claimed");
    assert_eq!(never.kind, ErrorKind::InvalidInput);
    // Nothing left after the last one.
    assert_eq!(claim(n, "t", "billing").await.map(|c| c.offset), Some(2));
    assert_eq!(claim(n, "t", "billing").await, None);
    // A message published later is claimable.
    cmd(n, publish("t", &[b"m3"])).await.expect("publish");
    assert_eq!(claim(n, "t", "billing").await.map(|c| c.offset), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapsed_claims_come_back_then_go_to_dead_letters() {
    let one = node().await;
    let n = &one.node;
    cmd(n, create("t", TopicConfig::default()))
        .await
        .expect("create");
    cmd(n, publish("t", &[b"poison", b"fine"]))
        .await
        .expect("publish");
    cmd(n, group("t", "g", SeekTo::Start, 100, 2))
        .await
        .expect("group");
    let c = claim(n, "t", "g").await.expect("first claim");
    assert_eq!((c.offset, c.deliveries), (0, 1));
    // Until its visibility lapses, the other message comes next.
    assert_eq!(claim(n, "t", "g").await.map(|c| c.offset), Some(1));
    ack(n, "t", "g", 1).await.expect("ack 1");
    // After it lapses, the claim hands it out again (second delivery)...
    let deadline = Instant::now() + Duration::from_secs(30);
    let again = loop {
        if let Some(c) = claim(n, "t", "g").await {
            break c;
        }
        assert!(Instant::now() < deadline, "lapsed claim never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((again.offset, again.deliveries), (0, 2));
    // ...and after max_deliveries it moves to the dead letters instead.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert_eq!(claim(n, "t", "g").await, None);
        if group_info(n, "t", "g").await.dead_letters == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never dead-lettered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dlq = match ask(
        n,
        TopicQuery::DeadLetters {
            topic: "t".into(),
            group: "g".into(),
            after: None,
            limit: 10,
        },
    )
    .await
    .expect("dlq")
    {
        TopicAnswer::DeadLetters(d) => d,
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(dlq.len(), 1);
    assert_eq!((dlq[0].offset, dlq[0].deliveries), (0, 2));
    let g = group_info(n, "t", "g").await;
    assert_eq!((g.pending, g.committed), (0, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_exactly_the_oldest() {
    let one = node().await;
    let n = &one.node;
    let config = TopicConfig {
        max_messages: Some(5),
        ..TopicConfig::default()
    };
    cmd(n, create("t", config)).await.expect("create");
    cmd(n, group("t", "g", SeekTo::Start, VISIBLE_LONG_MS, 5))
        .await
        .expect("group");
    for i in 0..8u8 {
        cmd(n, publish("t", &[&[i]])).await.expect("publish");
    }
    let kept = messages(n, "t", 0).await;
    assert_eq!(
        kept.iter().map(|m| m.offset).collect::<Vec<_>>(),
        vec![3, 4, 5, 6, 7]
    );
    assert_eq!(kept[0].data, vec![3]);
    // A group behind the retained range continues at the oldest message kept.
    assert_eq!(claim(n, "t", "g").await.map(|c| c.offset), Some(3));
    // By bytes too: 2 bytes allowed keeps the last two one-byte messages.
    let by_bytes = TopicConfig {
        max_bytes: Some(2),
        ..TopicConfig::default()
    };
    let removed = cmd(
        n,
        TopicCommand::Configure {
            topic: "t".into(),
            config: by_bytes,
        },
    )
    .await
    .expect("configure");
    assert_eq!(removed, TopicOutcome::Removed { messages: 3 });
    let kept = messages(n, "t", 0).await;
    assert_eq!(
        kept.iter().map(|m| m.offset).collect::<Vec<_>>(),
        vec![6, 7]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeks_and_bad_input() {
    let one = node().await;
    let n = &one.node;
    cmd(n, create("t", TopicConfig::default()))
        .await
        .expect("create");
    let dup = cmd(n, create("t", TopicConfig::default())).await;
    assert_eq!(dup.expect_err("exists").kind, ErrorKind::AlreadyExists);
    cmd(n, publish("t", &[b"0", b"1", b"2", b"3", b"4"]))
        .await
        .expect("publish");
    cmd(n, group("t", "g", SeekTo::End, VISIBLE_LONG_MS, 5))
        .await
        .expect("group");
    assert_eq!(claim(n, "t", "g").await, None, "starts after the end");
    let seek = |to| TopicCommand::Seek {
        topic: "t".into(),
        group: "g".into(),
        to,
    };
    cmd(n, seek(SeekTo::Offset(3))).await.expect("seek 3");
    assert_eq!(claim(n, "t", "g").await.map(|c| c.offset), Some(3));
    // A seek drops the claims it jumps over.
    cmd(n, seek(SeekTo::Start)).await.expect("seek start");
    assert_eq!(group_info(n, "t", "g").await.pending, 0);
    assert_eq!(claim(n, "t", "g").await.map(|c| c.offset), Some(0));
    let past = cmd(n, seek(SeekTo::Offset(6))).await;
    assert_eq!(past.expect_err("past end").kind, ErrorKind::InvalidInput);

    let missing = cmd(n, publish("nope", &[b"x"])).await;
    assert_eq!(missing.expect_err("missing").kind, ErrorKind::NotFound);
    let big = vec![7u8; aspen::limits::MAX_MESSAGE_BYTES + 1];
    let too_big = cmd(n, publish("t", &[&big])).await;
    assert_eq!(too_big.expect_err("too big").kind, ErrorKind::TooBig);
    let bad_name = cmd(n, create("a/b", TopicConfig::default())).await;
    assert_eq!(bad_name.expect_err("slash").kind, ErrorKind::InvalidInput);
    let bad_vis = cmd(n, group("t", "h", SeekTo::Start, 0, 5)).await;
    assert_eq!(
        bad_vis.expect_err("visibility").kind,
        ErrorKind::InvalidInput
    );
    // Nothing of the refused commands was kept.
    assert_eq!(messages(n, "t", 0).await.len(), 5);

    let removed = cmd(n, TopicCommand::Delete { topic: "t".into() })
        .await
        .expect("delete");
    assert_eq!(removed, TopicOutcome::Removed { messages: 5 });
    let gone = ask(n, TopicQuery::Info { topic: "t".into() }).await;
    assert_eq!(gone.expect("info"), TopicAnswer::Topic(None));
    let groups = ask(n, TopicQuery::Groups { topic: "t".into() }).await;
    assert_eq!(groups.expect_err("gone").kind, ErrorKind::NotFound);
}

async fn stream(n: &Node, topic: &str, pos: u64, max: u32) -> Vec<u8> {
    match ask(
        n,
        TopicQuery::Stream {
            topic: topic.into(),
            pos,
            max_bytes: max,
        },
    )
    .await
    .expect("stream")
    {
        TopicAnswer::Stream(b) => b,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_is_every_message_with_a_newline_at_fixed_positions() {
    let one = node().await;
    let n = &one.node;
    cmd(n, create("s", TopicConfig::default()))
        .await
        .expect("create");
    cmd(n, publish("s", &[b"ab", b"", b"cde"]))
        .await
        .expect("publish");
    assert_eq!(stream(n, "s", 0, 100).await, b"ab\n\ncde\n");
    // Any position, any length: the same bytes.
    let whole = b"ab\n\ncde\n";
    for pos in 0..whole.len() {
        for max in 1..4u32 {
            let end = (pos + max as usize).min(whole.len());
            assert_eq!(stream(n, "s", pos as u64, max).await, &whole[pos..end]);
        }
    }
    assert!(stream(n, "s", 8, 10).await.is_empty(), "at the end");
    // Retention leaves a hole of NUL bytes; positions do not move.
    cmd(
        n,
        TopicCommand::Configure {
            topic: "s".into(),
            config: TopicConfig {
                max_messages: Some(1),
                ..TopicConfig::default()
            },
        },
    )
    .await
    .expect("configure");
    cmd(n, publish("s", &[b"f"])).await.expect("publish");
    assert_eq!(stream(n, "s", 0, 100).await, b"\0\0\0\0\0\0\0\0f\n");
    assert_eq!(stream(n, "s", 9, 100).await, b"\n");
    // A message that ends with a newline gets no second one (and "f" is gone now).
    cmd(n, publish("s", &[b"g\n"])).await.expect("publish");
    assert_eq!(stream(n, "s", 8, 100).await, b"\0\0g\n");
}

/// Messages older than the topic's age limit go even when nothing is published: the
/// leader trims them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aged_messages_go_without_new_publishes() {
    let one = node().await;
    let n = &one.node;
    let config = TopicConfig {
        max_age_secs: Some(1),
        ..TopicConfig::default()
    };
    cmd(n, create("aging", config)).await.expect("create");
    cmd(n, publish("aging", &[b"old", b"older"]))
        .await
        .expect("publish");
    assert_eq!(messages(n, "aging", 0).await.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !messages(n, "aging", 0).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "aged messages were never trimmed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let TopicAnswer::Topic(Some(t)) = ask(
        n,
        TopicQuery::Info {
            topic: "aging".into(),
        },
    )
    .await
    .expect("info") else {
        panic!("topic gone");
    };
    assert_eq!((t.first, t.next, t.bytes), (2, 2, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_claims_and_acknowledgements() {
    let one = node().await;
    let n = &one.node;
    cmd(n, create("b", TopicConfig::default()))
        .await
        .expect("create");
    cmd(n, publish("b", &[b"0", b"1", b"2", b"3", b"4"]))
        .await
        .expect("publish");
    cmd(n, group("b", "g", SeekTo::Start, VISIBLE_LONG_MS, 5))
        .await
        .expect("group");
    let batch = |max| TopicCommand::ClaimBatch {
        topic: "b".into(),
        group: "g".into(),
        consumer: "c".into(),
        max,
    };
    let acks = |offsets: &[u64]| TopicCommand::AckBatch {
        topic: "b".into(),
        group: "g".into(),
        offsets: offsets.to_vec(),
    };
    let TopicOutcome::ClaimedBatch(claims) = cmd(n, batch(3)).await.expect("claim") else {
        panic!("not a batch");
    };
    assert_eq!(
        claims.iter().map(|c| c.offset).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    // An offset never claimed fails the whole batch, which then changes nothing.
    let never = cmd(n, acks(&[0, 4])).await.expect_err("never claimed");
    assert_eq!(never.kind, ErrorKind::InvalidInput);
    assert_eq!(group_info(n, "b", "g").await.pending, 3);
    assert_eq!(
        cmd(n, acks(&[0, 1])).await.expect("ack"),
        TopicOutcome::Acked { count: 2 }
    );
    // Already acknowledged ones are skipped.
    assert_eq!(
        cmd(n, acks(&[0, 2])).await.expect("ack"),
        TopicOutcome::Acked { count: 1 }
    );
    let TopicOutcome::ClaimedBatch(rest) = cmd(n, batch(10)).await.expect("claim") else {
        panic!("not a batch");
    };
    assert_eq!(rest.iter().map(|c| c.offset).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(
        cmd(n, batch(10)).await.expect("claim"),
        TopicOutcome::ClaimedBatch(Vec::new())
    );
    let too_many = cmd(n, batch(100_000)).await.expect_err("too many");
    assert_eq!(too_many.kind, ErrorKind::TooBig);
}
