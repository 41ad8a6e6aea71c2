//! Fuzz-style property tests of key syntax (`aspen::kv::key`) and of the state layout's
//! entry record keys (`aspen::kv::layout`): any string, valid or not, is answered without
//! a panic; valid keys survive split/join and record-key round trips.
//!
//! Seed corpus: `tests/corpus/keys/`, one key per file. `ok-*` files must be accepted by
//! `validate_key`, `bad-*` files refused with a message; every file is also run through the
//! other helpers.

mod fuzz_support;

use aspen::error::ErrorKind;
use aspen::kv::key::{ancestors, is_within, join, normalize, split, validate_key, validate_name};
use aspen::kv::layout::{dir_prefix, entry_key, key_of, name_of};
use aspen::limits::{MAX_KEY_BYTES, MAX_NAME_BYTES};
use fuzz_support::corpus;
use proptest::prelude::*;

/// What DESIGN.md section 3 says a key is, written independently of the code under test.
fn model_valid_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_KEY_BYTES
        && s.split('/').all(|c| {
            !c.is_empty() && c != "." && c != ".." && !c.contains('\0') && c.len() <= MAX_NAME_BYTES
        })
}

/// Checks every helper on one input; panics (fails the case) on a broken property.
fn check_any(s: &str) {
    // validate_key: a verdict, with a message when refused, that matches the model.
    match validate_key(s) {
        Ok(()) => {
            assert!(model_valid_key(s), "accepted invalid key {s:?}");
            for c in s.split('/') {
                assert!(
                    validate_name(c).is_ok(),
                    "{s:?} accepted, component {c:?} not"
                );
            }
        }
        Err(e) => {
            assert!(!e.message.is_empty(), "empty message refusing {s:?}");
            assert!(!model_valid_key(s), "refused valid key {s:?}: {e}");
            assert!(
                matches!(e.kind, ErrorKind::InvalidInput | ErrorKind::NameTooLong),
                "{s:?}: unexpected kind {:?}",
                e.kind
            );
        }
    }
    // validate_name: one component.
    match validate_name(s) {
        Ok(()) => {
            assert!(!s.is_empty() && s != "." && s != "..");
            assert!(!s.contains('/') && !s.contains('\0') && s.len() <= MAX_NAME_BYTES);
        }
        Err(e) => assert!(!e.message.is_empty()),
    }
    // split: the name has no '/', and parent + '/' + name gives the input back.
    let (parent, name) = split(s);
    assert!(!name.contains('/'));
    if s.contains('/') {
        assert_eq!(format!("{parent}/{name}"), s);
    } else {
        assert_eq!((parent, name), ("", s));
    }
    // normalize: a slice of the input without outer slashes; idempotent.
    let n = normalize(s);
    assert!(!n.starts_with('/') && !n.ends_with('/'));
    assert!(s.contains(n));
    assert_eq!(normalize(n), n);
    let _ = validate_key(n);
    // is_within against itself, the root, its parent and its ancestors.
    assert!(is_within(s, s) && is_within(s, ""));
    let anc = ancestors(s);
    assert_eq!(anc.len(), s.matches('/').count());
    for a in &anc {
        assert!(is_within(s, a), "{s:?} not within its ancestor {a:?}");
    }
    // Record keys: never a panic, even for invalid keys.
    let rk = entry_key(s);
    let _ = key_of(&rk);
    let _ = name_of(&rk, dir_prefix(parent).len());
    let _ = name_of(&rk, usize::MAX);
    let _ = key_of(s.as_bytes());
}

/// Extra properties of a key `validate_key` accepts.
fn check_valid(k: &str) {
    validate_key(k).unwrap_or_else(|e| panic!("{k:?} refused: {e}"));
    let (parent, name) = split(k);
    assert_eq!(join(parent, name), k);
    assert!(validate_name(name).is_ok());
    assert!(parent.is_empty() || validate_key(parent).is_ok());
    assert!(is_within(k, parent));
    assert_eq!(normalize(k), k);
    for a in ancestors(k) {
        assert!(validate_key(a).is_ok(), "ancestor {a:?} of {k:?} invalid");
        assert!(a.len() < k.len());
    }
    // Entry record keys: parent, NUL, name; decoded back exactly.
    let rk = entry_key(k);
    let prefix = dir_prefix(parent);
    assert!(rk.starts_with(&prefix));
    assert_eq!(key_of(&rk).expect("key_of"), k);
    assert_eq!(name_of(&rk, prefix.len()).expect("name_of"), name);
}

/// Components that hit every rule: ordinary, dots, empty, NUL, slash, unicode, long.
fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9._-]{1,8}",
        1 => Just(String::new()),
        1 => Just(".".to_string()),
        1 => Just("..".to_string()),
        1 => Just("...".to_string()),
        1 => Just("a\0b".to_string()),
        1 => Just("\0".to_string()),
        2 => "\\PC{1,6}",
        1 => (MAX_NAME_BYTES - 2..MAX_NAME_BYTES + 3).prop_map(|n| "x".repeat(n)),
        1 => (MAX_NAME_BYTES / 2 - 1..MAX_NAME_BYTES / 2 + 2).prop_map(|n| "é".repeat(n)),
    ]
}

/// Strings built from components and separators, plus arbitrary and very long strings.
fn key_like() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (prop::collection::vec(component(), 0..8), any::<bool>(), any::<bool>()).prop_map(
            |(cs, lead, trail)| {
                let mut s = cs.join("/");
                if lead {
                    s.insert(0, '/');
                }
                if trail {
                    s.push('/');
                }
                s
            }
        ),
        2 => any::<String>(),
        1 => "[a/.\\x00é]{0,64}",
        1 => (1usize..40, 100usize..256).prop_map(|(n, len)| vec!["k".repeat(len); n].join("/")),
    ]
}

/// Keys that are valid by construction (checked against the model).
fn valid_key() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        6 => "[^/\\x00]{1,12}",
        1 => "[a-z]{200,255}",
    ]
    .prop_filter("not . or ..", |c| {
        c != "." && c != ".." && c.len() <= MAX_NAME_BYTES
    });
    prop::collection::vec(name, 1..10)
        .prop_map(|cs| cs.join("/"))
        .prop_filter("within the key limit", |k| k.len() <= MAX_KEY_BYTES)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn any_string_gets_a_verdict(s in key_like()) {
        check_any(&s);
    }

    #[test]
    fn valid_keys_round_trip(k in valid_key()) {
        check_any(&k);
        check_valid(&k);
    }

    #[test]
    fn is_within_matches_path_semantics(k in key_like(), a in key_like()) {
        let expected = a.is_empty() || k == a || k.starts_with(&format!("{a}/"));
        prop_assert_eq!(is_within(&k, &a), expected);
        // A key is within a prefix of itself only at a component boundary.
        if let Some(cut) = k.char_indices().map(|(i, _)| i).nth(k.chars().count() / 2) {
            let head = &k[..cut];
            let boundary = head.is_empty() || k.as_bytes().get(cut) == Some(&b'/') || head == k;
            prop_assert_eq!(is_within(&k, head), boundary);
        }
    }

    #[test]
    fn children_of_one_dir_sort_by_name(dir in valid_key(), a in "[^/\\x00]{1,12}", b in "[^/\\x00]{1,12}") {
        prop_assume!(a != "." && a != ".." && b != "." && b != "..");
        let ka = join(&dir, &a);
        let kb = join(&dir, &b);
        prop_assume!(validate_key(&ka).is_ok() && validate_key(&kb).is_ok());
        // A listing is one scan over dir_prefix(dir): both children fall in it, in name order.
        let prefix = dir_prefix(&dir);
        prop_assert!(entry_key(&ka).starts_with(&prefix) && entry_key(&kb).starts_with(&prefix));
        prop_assert_eq!(entry_key(&ka).cmp(&entry_key(&kb)), a.as_bytes().cmp(b.as_bytes()));
        // A grandchild is not in the parent's listing range.
        let grandchild = join(&ka, "z");
        prop_assert!(!entry_key(&grandchild).starts_with(&prefix));
    }

    #[test]
    fn record_key_decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64), at in 0usize..80) {
        for rk in [bytes.clone(), [&[b'K'][..], &bytes].concat()] {
            if let Ok(k) = key_of(&rk) {
                prop_assert!(!k.contains('\0'));
            }
            if let Err(e) = name_of(&rk, at) {
                prop_assert!(!e.message.is_empty());
            }
        }
    }
}

#[test]
fn seed_corpus() {
    let files = corpus("keys");
    let (mut ok, mut bad) = (0, 0);
    for (name, bytes) in files {
        let s = std::str::from_utf8(&bytes).unwrap_or_else(|_| panic!("{name}: not UTF-8"));
        check_any(s);
        if name.starts_with("ok-") {
            check_valid(s);
            ok += 1;
        } else if name.starts_with("bad-") {
            let e = validate_key(s).expect_err(&name);
            assert!(!e.message.is_empty(), "{name}");
            bad += 1;
        }
    }
    assert!(ok > 0 && bad > 0, "corpus needs valid and invalid seeds");
}
