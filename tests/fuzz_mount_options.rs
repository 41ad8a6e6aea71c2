//! Fuzz-style property tests of mount option strings (`MountOptions::parse`, what
//! `mount -t aspen -o ...`, fstab and `aspen mount -o` hand to Aspen).
//!
//! Properties: any string, strict or sloppy, gives options or a refusal with a message and
//! never a panic; whatever strict parsing accepts, sloppy parsing accepts the same way;
//! generated lists of known options (with padding, empty items and the options mount(8)
//! adds) parse to what a model of the documented options says; unknown options are
//! refused in strict mode and ignored in sloppy mode; bad timeouts are refused in both.
//! Seed corpus: `tests/corpus/mount_options/`: `ok-*` parse strictly, `bad-*` are refused
//! in both modes, `sloppy-*` are refused strictly and accepted sloppily.

mod fuzz_support;

use std::path::PathBuf;
use std::time::Duration;

use aspen::error::ErrorKind;
use aspen::mount::options::MountOptions;
use aspen::net::proto::Consistency;
use fuzz_support::*;
use proptest::prelude::*;

const CASES: u32 = 1000;

/// One option as a user writes it, with what it should do.
#[derive(Debug, Clone)]
enum Opt {
    ReadOnly(bool),
    AllowOther,
    DefaultPermissions(bool),
    /// Text, then the expected value in milliseconds.
    AttrTimeout(String, u64),
    EntryTimeout(String, u64),
    Consistency(Consistency),
    TokenFile(String),
    /// Accepted and ignored: fstab/mount(8) options, `x-*`, `comment=`.
    Ignored(String),
}

impl Opt {
    fn text(&self) -> String {
        match self {
            Opt::ReadOnly(true) => "ro".into(),
            Opt::ReadOnly(false) => "rw".into(),
            Opt::AllowOther => "allow_other".into(),
            Opt::DefaultPermissions(true) => "default_permissions".into(),
            Opt::DefaultPermissions(false) => "no_default_permissions".into(),
            Opt::AttrTimeout(t, _) => format!("attr_timeout={t}"),
            Opt::EntryTimeout(t, _) => format!("entry_timeout={t}"),
            Opt::Consistency(Consistency::Local) => "consistency=local".into(),
            Opt::Consistency(Consistency::Linearizable) => "consistency=linearizable".into(),
            Opt::TokenFile(p) => format!("token_file={p}"),
            Opt::Ignored(s) => s.clone(),
        }
    }
}

/// What the options should parse to, as documented.
struct Model {
    read_only: bool,
    allow_other: bool,
    default_permissions: bool,
    attr_ms: Option<u64>,
    entry_ms: Option<u64>,
    consistency: Consistency,
    token_file: Option<PathBuf>,
}

fn model(opts: &[Opt]) -> Model {
    let mut m = Model {
        read_only: false,
        allow_other: false,
        default_permissions: true,
        attr_ms: None,
        entry_ms: None,
        consistency: Consistency::Linearizable,
        token_file: None,
    };
    for o in opts {
        match o {
            Opt::ReadOnly(ro) => m.read_only = *ro,
            Opt::AllowOther => m.allow_other = true,
            Opt::DefaultPermissions(d) => m.default_permissions = *d,
            Opt::AttrTimeout(_, ms) => m.attr_ms = Some(*ms),
            Opt::EntryTimeout(_, ms) => m.entry_ms = Some(*ms),
            Opt::Consistency(c) => m.consistency = *c,
            Opt::TokenFile(p) => m.token_file = Some(PathBuf::from(p)),
            Opt::Ignored(_) => {}
        }
    }
    m
}

fn close(d: Duration, ms: u64) -> bool {
    d.abs_diff(Duration::from_millis(ms)) <= Duration::from_micros(1)
}

fn assert_matches(o: &MountOptions, m: &Model) {
    let default = MountOptions::default();
    assert_eq!(o.read_only, m.read_only);
    assert_eq!(o.allow_other, m.allow_other);
    assert_eq!(o.default_permissions, m.default_permissions);
    assert_eq!(o.consistency, m.consistency);
    assert_eq!(o.token_file, m.token_file);
    match m.attr_ms {
        Some(ms) => assert!(close(o.attr_timeout, ms), "{:?} vs {ms} ms", o.attr_timeout),
        None => assert_eq!(o.attr_timeout, default.attr_timeout),
    }
    match m.entry_ms {
        Some(ms) => assert!(
            close(o.entry_timeout, ms),
            "{:?} vs {ms} ms",
            o.entry_timeout
        ),
        None => assert_eq!(o.entry_timeout, default.entry_timeout),
    }
}

/// A number of seconds in [0, 86400] as text, in the forms `f64::from_str` takes.
fn seconds_text() -> impl Strategy<Value = (String, u64)> {
    (0u64..=86_400_000, 0u8..4).prop_map(|(ms, form)| {
        let text = match form {
            0 if ms % 1000 == 0 => format!("{}", ms / 1000),
            1 => format!("{}.{:03}", ms / 1000, ms % 1000),
            2 if ms % 1000 == 0 => format!("{}e0", ms / 1000),
            _ => format!("{}e-3", ms),
        };
        (text, ms)
    })
}

fn ignored_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "_netdev",
            "defaults",
            "auto",
            "noauto",
            "nofail",
            "user",
            "users",
            "nouser",
            "owner",
            "group",
            "noatime",
            "relatime",
            "atime",
            "nodiratime",
            "exec",
            "noexec",
            "suid",
            "nosuid",
            "dev",
            "nodev",
            "async",
            "sync",
        ])
        .prop_map(String::from),
        "x-[a-z.]{0,12}(=[a-z0-9]{0,6})?",
        "comment=[a-z0-9]{0,8}",
    ]
}

fn known_opt() -> impl Strategy<Value = Opt> {
    prop_oneof![
        any::<bool>().prop_map(Opt::ReadOnly),
        Just(Opt::AllowOther),
        any::<bool>().prop_map(Opt::DefaultPermissions),
        seconds_text().prop_map(|(t, ms)| Opt::AttrTimeout(t, ms)),
        seconds_text().prop_map(|(t, ms)| Opt::EntryTimeout(t, ms)),
        prop::sample::select(vec![Consistency::Local, Consistency::Linearizable])
            .prop_map(Opt::Consistency),
        "[^,\\s]([^,]{0,20}[^,\\s])?".prop_map(Opt::TokenFile),
        ignored_name().prop_map(Opt::Ignored),
    ]
}

/// Joins options with commas, some padded with spaces, with stray empty items.
fn render(items: &[(String, u8)]) -> String {
    items
        .iter()
        .map(|(t, pad)| match pad % 4 {
            0 => t.clone(),
            1 => format!(" {t} "),
            2 => format!("{t},"),
            _ => format!("\t{t}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn unknown_opt() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,12}(=[a-z0-9]{0,5})?".prop_filter("not a known option", |s| {
            let key = s.split('=').next().unwrap_or_default();
            MountOptions::parse(key, false).is_err()
                && !matches!(
                    key,
                    "attr_timeout"
                        | "entry_timeout"
                        | "consistency"
                        | "token_file"
                        | "claim_wait"
                        | "comment"
                )
        }),
        // Known names with the wrong arity or value.
        prop::sample::select(vec![
            "ro=1",
            "rw=yes",
            "allow_other=1",
            "attr_timeout",
            "entry_timeout",
            "consistency",
            "consistency=eventual",
            "consistency=",
            "token_file",
            "RO",
        ])
        .prop_map(String::from),
    ]
}

fn bad_seconds() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "-1",
            "-0.001",
            "86400.001",
            "86401",
            "1e10",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "infinity",
            "0x10",
            "one",
            "1 s",
            "1e",
            "--1",
        ])
        .prop_map(String::from),
        (86_401u64..u64::MAX).prop_map(|n| n.to_string()),
        "[a-z]{1,6}",
    ]
    .prop_filter("not a number in range", |s| {
        !s.parse::<f64>()
            .is_ok_and(|x| (0.0..=86_400.0).contains(&x))
    })
}

/// Any input: options or an `InvalidInput` refusal with a message; strict acceptance
/// implies the same sloppy result.
fn check_any(s: &str) {
    let strict = MountOptions::parse(s, false);
    let sloppy = MountOptions::parse(s, true);
    for r in [&strict, &sloppy] {
        if let Err(e) = r {
            assert_clear_error(e, "mount options");
            assert_eq!(e.kind, ErrorKind::InvalidInput, "{s:?}: {e}");
        }
    }
    if let Ok(o) = &strict {
        assert_eq!(
            sloppy.as_ref().ok(),
            Some(o),
            "{s:?}: sloppy differs from strict"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn any_string_gets_a_verdict(s in prop_oneof![
        any::<String>(),
        "[a-z_=,. 0-9-]{0,40}",
        prop::collection::vec(prop_oneof![known_opt().prop_map(|o| o.text()), unknown_opt(), "\\PC{0,8}"], 0..6)
            .prop_map(|v| v.join(",")),
    ]) {
        check_any(&s);
    }

    #[test]
    fn known_options_parse_as_documented(opts in prop::collection::vec((known_opt(), any::<u8>()), 0..10)) {
        let items: Vec<(String, u8)> = opts.iter().map(|(o, p)| (o.text(), *p)).collect();
        let text = render(&items);
        let plain: Vec<Opt> = opts.into_iter().map(|(o, _)| o).collect();
        let o = MountOptions::parse(&text, false).unwrap_or_else(|e| panic!("{text:?} refused: {e}"));
        assert_matches(&o, &model(&plain));
        check_any(&text);
    }

    #[test]
    fn unknown_options_strict_refuses_sloppy_ignores(opts in prop::collection::vec(known_opt(), 0..6),
                                                     unknown in unknown_opt(),
                                                     at in any::<prop::sample::Index>()) {
        let mut items: Vec<String> = opts.iter().map(Opt::text).collect();
        items.insert(at.index(items.len() + 1), unknown.clone());
        let text = items.join(",");
        let e = MountOptions::parse(&text, false).expect_err("unknown option accepted");
        prop_assert!(e.message.contains(&format!("{:?}", unknown.trim())), "{}", e);
        let o = MountOptions::parse(&text, true).unwrap_or_else(|e| panic!("sloppy {text:?}: {e}"));
        assert_matches(&o, &model(&opts));
    }

    #[test]
    fn bad_timeouts_refused_in_both_modes(opts in prop::collection::vec(known_opt(), 0..4),
                                          which in any::<bool>(), v in bad_seconds()) {
        let key = if which { "attr_timeout" } else { "entry_timeout" };
        let mut items: Vec<String> = opts.iter().map(Opt::text).collect();
        items.push(format!("{key}={v}"));
        let text = items.join(",");
        for sloppy in [false, true] {
            let e = MountOptions::parse(&text, sloppy).expect_err("bad timeout accepted");
            prop_assert!(e.message.contains(key), "{}", e);
        }
    }
}

#[test]
fn signed_zero_and_tiny_timeouts() {
    for v in [
        "-0", "-0.0", "0e5", "1e-300", "4.9e-324", "86400", "86400.0",
    ] {
        let text = format!("attr_timeout={v}");
        check_any(&text);
        assert!(MountOptions::parse(&text, false).is_ok(), "{text} refused");
    }
}

#[test]
fn seed_corpus() {
    let (mut ok, mut bad, mut sloppy) = (0, 0, 0);
    for (name, bytes) in corpus("mount_options") {
        let s = std::str::from_utf8(&bytes).unwrap_or_else(|_| panic!("{name}: not UTF-8"));
        let s = s.trim_end_matches('\n');
        check_any(s);
        let strict = MountOptions::parse(s, false);
        let lax = MountOptions::parse(s, true);
        if name.starts_with("ok-") {
            assert!(strict.is_ok(), "{name}: {strict:?}");
            ok += 1;
        } else if name.starts_with("bad-") {
            assert!(strict.is_err() && lax.is_err(), "{name}: accepted");
            bad += 1;
        } else if name.starts_with("sloppy-") {
            assert!(
                strict.is_err() && lax.is_ok(),
                "{name}: {strict:?} / {lax:?}"
            );
            sloppy += 1;
        }
    }
    assert!(ok > 0 && bad > 0 && sloppy > 0);
}
