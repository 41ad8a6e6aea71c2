//! Fuzz-style property tests of what users and disks hand the topics and hooks services:
//! the JSON of a topic's `config` file, seek targets (`start`, `end`, offsets), hook
//! event patterns, and the stored topic records.
//!
//! Properties: any input gives a value or a refusal with a message, never a panic;
//! accepted configurations are within the limits and survive a round trip; a pattern
//! without wildcards matches exactly itself; a stored record that is cut or changed
//! decodes to an error or to some record, never a panic.
//! Seed corpus: `tests/corpus/topic_config/` (`ok-*` accepted, `bad-*` refused).

mod fuzz_support;

use aspen::hooks::event::{check_pattern, pattern_matches};
use aspen::limits::MAX_MESSAGES_PER_TOPIC;
use aspen::store::{decode, encode};
use aspen::topics::*;
use fuzz_support::*;
use proptest::prelude::*;

const CASES: u32 = 1000;

#[test]
fn config_corpus() {
    for (name, bytes) in corpus("topic_config") {
        match TopicConfig::from_json(&bytes) {
            Ok(_) => assert!(name.starts_with("ok-"), "{name} was accepted"),
            Err(e) => {
                assert!(name.starts_with("bad-"), "{name} was refused: {e:?}");
                assert_clear_error(&e, &name);
            }
        }
    }
}

fn config() -> impl Strategy<Value = TopicConfig> {
    (
        proptest::option::of(0..=MAX_MESSAGES_PER_TOPIC),
        proptest::option::of(any::<u64>()),
        proptest::option::of(any::<u64>()),
    )
        .prop_map(|(max_messages, max_bytes, max_age_secs)| TopicConfig {
            max_messages,
            max_bytes,
            max_age_secs,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn any_bytes_give_a_config_or_a_clear_refusal(bytes in arbitrary_bytes()) {
        match TopicConfig::from_json(&bytes) {
            Ok(c) => prop_assert!(c.max_messages.is_none_or(|m| m <= MAX_MESSAGES_PER_TOPIC)),
            Err(e) => assert_clear_error(&e, "config"),
        }
    }

    #[test]
    fn configs_round_trip_and_survive_mutation(c in config(), ms in mutations()) {
        let json = serde_json::to_vec(&c).unwrap();
        prop_assert_eq!(TopicConfig::from_json(&json).unwrap(), c);
        if let Err(e) = TopicConfig::from_json(&apply_all(&ms, &json)) {
            assert_clear_error(&e, "mutated config");
        }
    }

    #[test]
    fn seek_targets(s in ".{0,24}", n in any::<u64>()) {
        match SeekTo::parse(&s) {
            Ok(_) => {}
            Err(e) => assert_clear_error(&e, "seek"),
        }
        prop_assert_eq!(SeekTo::parse(&n.to_string()).unwrap(), SeekTo::Offset(n));
    }

    #[test]
    fn hook_patterns(s in "[a-z.*>]{0,16}", t in "[a-z]{1,6}(\\.[a-z]{1,6}){0,3}") {
        // Any text is judged without a panic; a literal pattern matches itself.
        let _ = check_pattern(&s);
        let _ = pattern_matches(&s, &t);
        prop_assert!(check_pattern(&t).is_ok());
        prop_assert!(pattern_matches(&t, &t));
        prop_assert!(pattern_matches(">", &t));
    }

    #[test]
    fn stored_records_decode_or_refuse(
        first in any::<u64>(),
        next in any::<u64>(),
        data in bytes(64),
        consumer in ".{0,16}",
        ms in mutations(),
    ) {
        let topic = encode(&TopicRecord { config: TopicConfig::default(), first, next, bytes: 3, stream_end: 9 }).unwrap();
        let message = encode(&MessageRecord { time_ns: 7, data, pos: first }).unwrap();
        let claim = encode(&PendingRecord { consumer, deliveries: 2, deadline_ns: 9 }).unwrap();
        for (what, rec) in [("topic", &topic), ("message", &message), ("claim", &claim)] {
            let cut = apply_all(&ms, rec);
            let r = match what {
                "topic" => decode::<TopicRecord>(&cut, what).map(|_| ()),
                "message" => decode::<MessageRecord>(&cut, what).map(|_| ()),
                _ => decode::<PendingRecord>(&cut, what).map(|_| ()),
            };
            if let Err(e) = r {
                assert_clear_error(&e, what);
            }
        }
    }
}
