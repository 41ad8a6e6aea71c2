//! `aspen-robustness`: runs fault scenarios against a real cluster and checks what the
//! clients saw. `--profile ci` is the bounded run CI does on every submission; `--profile
//! long --minutes 30` spreads the given time over all scenarios, seed after seed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use aspen::robust::run::{run, sibling_aspen, RunConfig, Scenario};
use clap::{Parser, ValueEnum};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Profile {
    /// Each KV scenario once, 20 seconds each (a couple of minutes in all).
    Ci,
    /// Scenarios in turn with fresh seeds until --minutes have passed.
    Long,
    /// One scenario (--scenario), one seed (--seed): replays a run.
    One,
}

#[derive(Parser, Debug)]
#[command(
    name = "aspen-robustness",
    about = "Fault injection with linearizability, durability and watch checks"
)]
struct Args {
    #[arg(long, value_enum, default_value = "ci")]
    profile: Profile,
    /// kill, pause, partition or full-restart (profile one).
    #[arg(long, default_value = "kill")]
    scenario: String,
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds per run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Total minutes (profile long).
    #[arg(long, default_value_t = 30)]
    minutes: u64,
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long, default_value_t = 6)]
    keys: usize,
    /// Report directory [default: a new directory under /tmp].
    #[arg(long)]
    out: Option<PathBuf>,
    /// The aspen binary [default: next to this one].
    #[arg(long)]
    aspen: Option<PathBuf>,
    /// Check a recorded history.jsonl again (no cluster) and exit.
    #[arg(long)]
    check_history: Option<PathBuf>,
}

/// `--check-history`: runs the checkers on a recorded history.
fn recheck(path: &std::path::Path) -> i32 {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return 2;
        }
    };
    let mut history = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<aspen::robust::history::Op>(line) {
            Ok(op) => history.push(op),
            Err(e) => {
                eprintln!("error: {}:{}: {e}", path.display(), n + 1);
                return 2;
            }
        }
    }
    let findings = aspen::robust::checker::check(&history);
    for f in &findings {
        println!("key {}: {:?}", f.key, f.verdict);
        for op in &f.evidence {
            println!("  {}", serde_json::to_string(op).unwrap_or_default());
        }
    }
    println!(
        "{} operations, {} keys failed",
        history.len(),
        findings.len()
    );
    i32::from(!findings.is_empty())
}

fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    std::process::exit(rt.block_on(main_async(args)));
}

async fn main_async(args: Args) -> i32 {
    if let Some(path) = &args.check_history {
        return recheck(path);
    }
    let Some(aspen) = args.aspen.clone().or_else(sibling_aspen) else {
        eprintln!("error: no aspen binary next to this one; give --aspen PATH");
        return 2;
    };
    let out = args.out.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("aspen-robustness-{}", std::process::id()))
    });
    let base_seed = args.seed.unwrap_or_else(rand::random);
    let mut plan: Vec<(Scenario, u64)> = Vec::new();
    match args.profile {
        Profile::Ci => {
            for (i, s) in Scenario::ALL.into_iter().enumerate() {
                plan.push((s, base_seed.wrapping_add(i as u64)));
            }
        }
        Profile::One => match Scenario::parse(&args.scenario) {
            Some(s) => plan.push((s, base_seed)),
            None => {
                eprintln!("error: unknown scenario {:?}", args.scenario);
                return 2;
            }
        },
        Profile::Long => {}
    }
    println!(
        "aspen-robustness: profile {:?}, base seed {base_seed}, report in {}",
        args.profile,
        out.display()
    );
    let total = Duration::from_secs(args.minutes * 60);
    let started = Instant::now();
    let mut results: std::collections::BTreeMap<&'static str, (u64, u64)> = Default::default();
    let mut totals = (0usize, 0usize, 0usize);
    let mut i = 0u64;
    let mut skipped_fs = false;
    loop {
        let (scenario, seed) = match args.profile {
            Profile::Long => {
                if started.elapsed() >= total {
                    break;
                }
                let s = Scenario::ALL[(i as usize) % Scenario::ALL.len()];
                (s, base_seed.wrapping_add(i))
            }
            _ => match plan.get(i as usize) {
                Some(p) => *p,
                None => break,
            },
        };
        i += 1;
        if scenario == Scenario::Fs {
            if let Some(why) = aspen::robust::fs_load::unavailable() {
                if !skipped_fs {
                    println!("  fs: SKIPPED ({why}): the file-system workload was NOT checked");
                    skipped_fs = true;
                }
                continue;
            }
        }
        let cfg = RunConfig {
            scenario,
            seed,
            nodes: args.nodes,
            clients: args.clients,
            keys: args.keys,
            duration: Duration::from_secs(args.seconds),
            aspen: aspen.clone(),
            dir: out.join(format!("{:03}-{}-{seed}", i, scenario.name())),
        };
        let entry = results.entry(scenario.name()).or_default();
        match run(&cfg).await {
            Ok(r) if r.anomalies.is_empty() => {
                entry.0 += 1;
                totals = (totals.0 + r.ops, totals.1 + r.faults, totals.2);
                println!(
                    "  {} seed {seed}: PASS ({} ops, {} unknown, {} faults)",
                    scenario.name(),
                    r.ops,
                    r.ops_unknown,
                    r.faults
                );
            }
            Ok(r) => {
                entry.1 += 1;
                totals = (
                    totals.0 + r.ops,
                    totals.1 + r.faults,
                    totals.2 + r.anomalies.len(),
                );
                println!(
                    "  {} seed {seed}: FAIL ({} anomalies; see {})",
                    scenario.name(),
                    r.anomalies.len(),
                    cfg.dir.display()
                );
                for a in r.anomalies.iter().take(10) {
                    println!("    {a}");
                }
            }
            Err(e) => {
                entry.1 += 1;
                totals.2 += 1;
                println!(
                    "  {} seed {seed}: FAIL (run error: {e}; see {})",
                    scenario.name(),
                    cfg.dir.display()
                );
            }
        }
    }
    let mut failed = 0;
    for (name, (p, f)) in &results {
        println!("scenario {name}: {p} passed, {f} failed");
        failed += f;
    }
    println!(
        "operations checked {}, faults injected {}, anomalies {}",
        totals.0, totals.1, totals.2
    );
    if failed == 0 {
        0
    } else {
        1
    }
}
