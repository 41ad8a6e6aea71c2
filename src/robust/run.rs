//! One robustness run: start a cluster, run the workload and the watchers while a seeded
//! schedule injects faults, heal, read every key back, check, and write the report.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::client::{Client, WatchItem};
use crate::error::{Error, ErrorKind, Result};
use crate::kv::{Command, DeleteMode, EventKind, PutCondition, PutOp, ReadQuery, ReadResult};
use crate::net::proto::Consistency;
use crate::robust::checker::{self, Verdict};
use crate::robust::cluster::Cluster;
use crate::robust::history::{OpKind, Outcome, Recorder};
use crate::robust::{fs_load, hook_check, topics_load};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// kill -9 and restart of a node (often the leader).
    Kill,
    /// SIGSTOP for longer than the election timeout, then SIGCONT.
    Pause,
    /// A node (often the leader) cut off from the others, then healed.
    Partition,
    /// Every node killed at once, then all restarted.
    FullRestart,
    /// The file-system workload through two mounts, with kills, pauses and partitions.
    Fs,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Kill,
        Scenario::Pause,
        Scenario::Partition,
        Scenario::FullRestart,
        Scenario::Fs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Kill => "kill",
            Scenario::Pause => "pause",
            Scenario::Partition => "partition",
            Scenario::FullRestart => "full-restart",
            Scenario::Fs => "fs",
        }
    }

    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }
}

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub scenario: Scenario,
    pub seed: u64,
    pub nodes: usize,
    pub clients: usize,
    pub keys: usize,
    pub duration: Duration,
    pub aspen: PathBuf,
    pub dir: PathBuf,
}

/// What a run found.
#[derive(Debug, Default)]
pub struct RunReport {
    pub ops: usize,
    pub ops_ok: usize,
    pub ops_unknown: usize,
    pub faults: usize,
    pub anomalies: Vec<String>,
}

/// One planned fault: at `at`, do `what` for `hold`.
#[derive(Debug, Clone)]
struct Planned {
    /// Kill, Pause, Partition or FullRestart.
    kind: Scenario,
    at: Duration,
    hold: Duration,
    /// Hit the leader (resolved when the fault starts) rather than a random node.
    leader: bool,
    node: usize,
}

fn plan(cfg: &RunConfig) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(cfg.seed);
    let mut out = Vec::new();
    let mut t = Duration::from_millis(rng.gen_range(1000..2500));
    while t + Duration::from_secs(3) < cfg.duration {
        let kind = match cfg.scenario {
            Scenario::Fs => [Scenario::Kill, Scenario::Pause, Scenario::Partition]
                .get(rng.gen_range(0..3))
                .copied()
                .unwrap_or(Scenario::Kill),
            s => s,
        };
        let hold = Duration::from_millis(match kind {
            Scenario::Kill | Scenario::Fs => rng.gen_range(300..2500),
            // Followers campaign only after the leader lease (ELECTION_TIMEOUT_MAX_MS) plus
            // an election timeout, 3-4 s: longer pauses and partitions force a new leader.
            Scenario::Pause => rng.gen_range(3500..6500),
            Scenario::Partition => rng.gen_range(3000..7000),
            Scenario::FullRestart => rng.gen_range(200..1500),
        });
        out.push(Planned {
            kind,
            at: t,
            hold,
            leader: rng.gen_bool(0.6),
            node: rng.gen_range(0..cfg.nodes),
        });
        t += hold + Duration::from_millis(rng.gen_range(1500..4000));
    }
    out
}

/// File-system worker threads on each mount.
const FS_WORKERS_PER_MOUNT: usize = 3;

/// Bounded wait for one client call, so a partitioned client never blocks the run.
const OP_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause of a client after an operation failed.
const CLIENT_BACKOFF: Duration = Duration::from_millis(250);

/// Runs one random operation and records it; `true` when its outcome is unknown.
async fn one_op(
    client: &Client,
    rec: &Recorder,
    client_id: u64,
    seq: u64,
    key: &str,
    rng: &mut StdRng,
    last_seen: &mut BTreeMap<String, String>,
) -> bool {
    let roll: u32 = rng.gen_range(0..100);
    let t0 = rec.now();
    if roll < 40 {
        let value = format!("c{client_id}-{seq}");
        let r = tokio::time::timeout(
            OP_TIMEOUT,
            client.write_one(Command::Put(PutOp::file(key, value.clone().into_bytes()))),
        )
        .await;
        let outcome = match r {
            Ok(Ok(_)) => Outcome::Done,
            Ok(Err(e)) => Outcome::Unknown(e.message),
            Err(_) => Outcome::Unknown("client timeout".into()),
        };
        rec.record(client_id, key, OpKind::Put { value }, t0, outcome)
    } else if roll < 80 {
        let r = tokio::time::timeout(
            OP_TIMEOUT,
            client.read(
                ReadQuery::Get { key: key.into() },
                Consistency::Linearizable,
            ),
        )
        .await;
        let outcome = match r {
            Ok(Ok(ReadResult::Entry(e))) => {
                let v = e.map(|e| String::from_utf8_lossy(&e.value).into_owned());
                if let Some(v) = &v {
                    last_seen.insert(key.to_string(), v.clone());
                }
                Outcome::Read(v)
            }
            Ok(Ok(_)) => Outcome::Unknown("unexpected read result".into()),
            Ok(Err(e)) => Outcome::Unknown(e.message),
            Err(_) => Outcome::Unknown("client timeout".into()),
        };
        rec.record(client_id, key, OpKind::Get, t0, outcome)
    } else if roll < 95 {
        let expect = last_seen.get(key).cloned().unwrap_or_else(|| "none".into());
        let value = format!("c{client_id}-{seq}");
        let mut op = PutOp::file(key, value.clone().into_bytes());
        op.condition = PutCondition::Value(expect.clone().into_bytes());
        let r = tokio::time::timeout(OP_TIMEOUT, client.write_one(Command::Put(op))).await;
        let outcome = match r {
            Ok(Ok(_)) => Outcome::Swapped(true),
            Ok(Err(e)) if e.kind == ErrorKind::CompareFailed => Outcome::Swapped(false),
            Ok(Err(e)) => Outcome::Unknown(e.message),
            Err(_) => Outcome::Unknown("client timeout".into()),
        };
        rec.record(client_id, key, OpKind::Cas { expect, value }, t0, outcome)
    } else {
        let r = tokio::time::timeout(
            OP_TIMEOUT,
            client.write_one(Command::Delete {
                key: key.into(),
                mode: DeleteMode::Any,
            }),
        )
        .await;
        let outcome = match r {
            Ok(Ok(_)) => Outcome::Done,
            Ok(Err(e)) => Outcome::Unknown(e.message),
            Err(_) => Outcome::Unknown("client timeout".into()),
        };
        rec.record(client_id, key, OpKind::Delete, t0, outcome)
    }
}

/// What one node's watch stream delivered: (revision, key, kind), and resets.
#[derive(Default)]
struct WatchLog {
    events: Vec<(u64, String, EventKind)>,
    resets: Vec<u64>,
    errors: Vec<String>,
    /// For the report: streams opened, and why earlier ones ended.
    streams: u64,
    ended: Vec<String>,
}

async fn watch_node(cluster_client: Client, stop: Arc<AtomicBool>, log: Arc<Mutex<WatchLog>>) {
    let mut next = 1u64;
    while !stop.load(Ordering::Relaxed) {
        let mut stream = match cluster_client.watch("", next).await {
            Ok(s) => s,
            Err(e) => {
                if let Ok(mut l) = log.lock() {
                    l.ended.push(format!("watch from {next} refused: {e}"));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if let Ok(mut l) = log.lock() {
            l.streams += 1;
        }
        loop {
            let item = tokio::select! {
                i = stream.next() => i,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    if stop.load(Ordering::Relaxed) { return; }
                    continue;
                }
            };
            match item {
                Ok(WatchItem::Events(evs)) => {
                    if let Ok(mut l) = log.lock() {
                        for e in evs {
                            next = next.max(e.revision + 1);
                            l.events.push((e.revision, e.key, e.kind));
                        }
                    }
                }
                Ok(WatchItem::Reset { revision }) => {
                    next = revision + 1;
                    if let Ok(mut l) = log.lock() {
                        l.resets.push(revision);
                    }
                }
                Err(e) => {
                    if let Ok(mut l) = log.lock() {
                        l.ended.push(format!("stream ended before {next}: {e}"));
                        if e.kind == ErrorKind::Compacted {
                            l.errors.push(e.message);
                            return;
                        }
                    }
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Problems in one node's watch stream: out of order, duplicated, or missing revisions.
fn check_watch(node: usize, log: &WatchLog, final_revision: u64) -> Vec<String> {
    let mut out: Vec<String> = log
        .errors
        .iter()
        .map(|e| format!("node {}: watch error: {e}", node + 1))
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut prev = 0u64;
    for (rev, key, kind) in &log.events {
        if *rev < prev {
            out.push(format!("node {}: revision {rev} after {prev}", node + 1));
        }
        if !seen.insert((*rev, key.clone(), *kind as u8)) {
            out.push(format!("node {}: duplicate event {rev} {key}", node + 1));
        }
        if *rev > prev + 1 && prev != 0 && !log.resets.iter().any(|r| *r >= prev && *r < *rev) {
            out.push(format!(
                "node {}: gap: revisions {}..{} missing",
                node + 1,
                prev + 1,
                rev - 1
            ));
        }
        prev = prev.max(*rev);
    }
    if prev < final_revision && log.resets.iter().all(|r| *r < final_revision) {
        out.push(format!(
            "node {}: stream stopped at revision {prev}, the cluster reached {final_revision}",
            node + 1
        ));
    }
    out
}

/// Runs one scenario; writes `schedule.txt`, `history.jsonl`, `verdict.txt` and the node
/// logs into `cfg.dir`.
pub async fn run(cfg: &RunConfig) -> Result<RunReport> {
    std::fs::create_dir_all(&cfg.dir)?;
    let mut schedule = std::fs::File::create(cfg.dir.join("schedule.txt"))?;
    let planned = plan(cfg);
    writeln!(
        schedule,
        "scenario {} seed {} nodes {} clients {} keys {} duration {:?}",
        cfg.scenario.name(),
        cfg.seed,
        cfg.nodes,
        cfg.clients,
        cfg.keys,
        cfg.duration
    )?;
    for p in &planned {
        writeln!(
            schedule,
            "plan at {:?}: {} {} for {:?}",
            p.at,
            p.kind.name(),
            if p.leader {
                "leader".to_string()
            } else {
                format!("node {}", p.node + 1)
            },
            p.hold
        )?;
    }
    let cluster = Arc::new(tokio::sync::Mutex::new(
        Cluster::start(cfg.nodes, &cfg.dir, &cfg.aspen).await?,
    ));
    cluster
        .lock()
        .await
        .wait_healthy(Duration::from_secs(60))
        .await?;

    let rec = Arc::new(Recorder::default());
    let stop = Arc::new(AtomicBool::new(false));
    // The watchers outlive the workload: writes pending at its end (behind a partition,
    // say) still commit, and the streams must deliver them.
    let stop_watchers = Arc::new(AtomicBool::new(false));
    let keys: Vec<String> = (0..cfg.keys).map(|k| format!("r/k{k}")).collect();

    // Watchers, one per node.
    let mut watch_logs = Vec::new();
    let mut watchers = Vec::new();
    for i in 0..cfg.nodes {
        let log = Arc::new(Mutex::new(WatchLog::default()));
        let c = cluster.lock().await.client_of(i)?;
        watchers.push(tokio::spawn(watch_node(
            c,
            stop_watchers.clone(),
            log.clone(),
        )));
        watch_logs.push(log);
    }

    // The topics workload, beside the KV clients in every scenario.
    topics_load::setup(&cluster.lock().await.client()?, Duration::from_secs(60)).await?;
    let topic_log = Arc::new(Mutex::new(topics_load::TopicLog::default()));
    let topic_workers = {
        let c = cluster.lock().await;
        topics_load::start(c.client()?, c.client()?, stop.clone(), topic_log.clone())
    };

    // Clients.
    let mut workers = Vec::new();
    for c in 0..cfg.clients {
        let client = cluster.lock().await.client()?;
        let rec = rec.clone();
        let stop = stop.clone();
        let keys = keys.clone();
        let seed = cfg.seed.wrapping_mul(31).wrapping_add(c as u64);
        workers.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut last_seen = BTreeMap::new();
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                seq += 1;
                let key = keys
                    .get(rng.gen_range(0..keys.len().max(1)))
                    .cloned()
                    .unwrap_or_default();
                let failed = one_op(
                    &client,
                    &rec,
                    c as u64 + 1,
                    seq,
                    &key,
                    &mut rng,
                    &mut last_seen,
                )
                .await;
                if failed {
                    // Back off after an error, as a real client would: every operation of
                    // unknown outcome widens the checker's search.
                    tokio::time::sleep(CLIENT_BACKOFF).await;
                }
            }
        }));
    }

    // The file-system workload: two mounts, each preferring another node.
    let fs_keys: Vec<String> = (0..cfg.keys)
        .map(|k| format!("{}/f{k}", fs_load::FS_DIR))
        .collect();
    let mut mounts = None;
    let mut fs_workers = Vec::new();
    if cfg.scenario == Scenario::Fs {
        let (sources, token_file) = {
            let c = cluster.lock().await;
            let publics: Vec<String> = c.nodes.iter().map(|n| n.public.clone()).collect();
            let rotated = |by: usize| {
                (0..publics.len())
                    .filter_map(|i| publics.get((i + by) % publics.len()).cloned())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            (vec![rotated(0), rotated(1)], c.token_file().to_path_buf())
        };
        let m = fs_load::Mounts::start(&cfg.aspen, &sources, &token_file, &cfg.dir)?;
        let dirs = m.dirs();
        if let Some(d) = dirs.first() {
            std::fs::create_dir_all(d.join("kv").join(fs_load::FS_DIR))?;
        }
        fs_workers = fs_load::start_workers(
            &dirs,
            FS_WORKERS_PER_MOUNT,
            100,
            &fs_keys,
            &rec,
            &stop,
            cfg.seed,
        );
        mounts = Some(m);
    }

    // Faults.
    let mut faults = 0usize;
    let start = Instant::now();
    for p in &planned {
        if let Some(wait) = p.at.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let mut c = cluster.lock().await;
        let target = if p.leader {
            c.leader().await.unwrap_or(p.node)
        } else {
            p.node
        };
        let t = start.elapsed();
        match p.kind {
            Scenario::Kill | Scenario::Fs => c.kill(target),
            Scenario::Pause => c.pause(target, true),
            Scenario::Partition => {
                let others: Vec<u64> = c
                    .nodes
                    .iter()
                    .map(|n| n.id)
                    .filter(|id| *id != target as u64 + 1)
                    .collect();
                c.links.partition(&[target as u64 + 1], &others);
            }
            Scenario::FullRestart => {
                for i in 0..c.nodes.len() {
                    c.kill(i);
                }
            }
        }
        drop(c);
        faults += 1;
        writeln!(
            schedule,
            "at {t:?}: {} node {} (leader: {})",
            p.kind.name(),
            target + 1,
            p.leader
        )?;
        tokio::time::sleep(p.hold).await;
        let mut c = cluster.lock().await;
        match p.kind {
            Scenario::Kill | Scenario::Fs => c.restart(target)?,
            Scenario::Pause => c.pause(target, false),
            Scenario::Partition => c.links.heal(),
            Scenario::FullRestart => {
                for i in 0..c.nodes.len() {
                    c.restart(i)?;
                }
            }
        }
        writeln!(schedule, "at {:?}: healed", start.elapsed())?;
    }
    if let Some(rest) = cfg.duration.checked_sub(start.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    stop.store(true, Ordering::Relaxed);
    for w in topic_workers {
        let _ = w.await;
    }
    for w in workers {
        let _ = w.await;
    }
    for w in fs_workers {
        let _ = tokio::task::spawn_blocking(move || w.join()).await;
    }

    // Recovery, then read every key back (recorded like any read).
    {
        let mut c = cluster.lock().await;
        c.links.heal();
        for i in 0..cfg.nodes {
            c.pause(i, false);
            c.restart(i)?;
        }
        c.wait_healthy(Duration::from_secs(120)).await?;
    }
    let reader = cluster.lock().await.client()?;
    // Every key read back after recovery; a read that fails now is an anomaly (the
    // cluster is healthy, so nothing excuses it).
    let mut final_errors = Vec::new();
    let fs_finals = if mounts.is_some() { &fs_keys[..] } else { &[] };
    for k in keys.iter().chain(fs_finals) {
        let t0 = rec.now();
        let r = reader
            .read(ReadQuery::Get { key: k.clone() }, Consistency::Linearizable)
            .await;
        let outcome = match r {
            Ok(ReadResult::Entry(e)) => {
                Outcome::Read(e.map(|e| String::from_utf8_lossy(&e.value).into_owned()))
            }
            Ok(_) => Outcome::Unknown("unexpected".into()),
            Err(e) => Outcome::Unknown(e.message),
        };
        if let Outcome::Unknown(e) = &outcome {
            final_errors.push(format!("final read of {k} failed: {e}"));
        }
        let _ = rec.record(0, k, OpKind::Get, t0, outcome);
    }
    // And through each mount: after the faults, no mount may serve a stale file.
    if let Some(m) = &mounts {
        for (i, dir) in m.dirs().into_iter().enumerate() {
            for k in &fs_keys {
                let path = dir.join("kv").join(k);
                let t0 = rec.now();
                let outcome = tokio::task::spawn_blocking(move || fs_load::read_outcome(&path))
                    .await
                    .unwrap_or_else(|e| Outcome::Unknown(e.to_string()));
                if let Outcome::Unknown(e) = &outcome {
                    final_errors.push(format!(
                        "final read of {k} through mount {} failed: {e}",
                        i + 1
                    ));
                }
                let _ = rec.record(90 + i as u64, k, OpKind::Get, t0, outcome);
            }
        }
    }
    let final_revision = match reader
        .read(ReadQuery::Revision, Consistency::Linearizable)
        .await
    {
        Ok(ReadResult::Revision(r)) => r,
        _ => 0,
    };

    let history = rec
        .ops
        .lock()
        .map(|o| o.clone())
        .map_err(|_| Error::internal("history lock"))?;
    let mut report = RunReport {
        // The empty-file companions of file writes are not operations of their own.
        ops: history
            .iter()
            .filter(|o| o.outcome != Outcome::MayHappen)
            .count(),
        ops_ok: history.iter().filter(|o| o.complete_ns.is_some()).count(),
        ops_unknown: history.iter().filter(|o| o.complete_ns.is_none()).count(),
        faults,
        anomalies: final_errors,
    };
    let mut hist_file =
        std::io::BufWriter::new(std::fs::File::create(cfg.dir.join("history.jsonl"))?);
    for op in &history {
        serde_json::to_writer(&mut hist_file, op).map_err(|e| Error::io(e.to_string()))?;
        hist_file.write_all(b"\n")?;
    }
    hist_file.flush()?;

    // Linearizability (durability included: the final reads must agree with every
    // acknowledged write).
    for finding in checker::check(&history) {
        let key = &finding.key;
        match finding.verdict {
            Verdict::Violation => {
                let path = cfg
                    .dir
                    .join(format!("violation-{}.jsonl", key.replace('/', "_")));
                let mut f = std::fs::File::create(&path)?;
                for op in &finding.evidence {
                    serde_json::to_writer(&mut f, op).map_err(|e| Error::io(e.to_string()))?;
                    f.write_all(b"\n")?;
                }
                report.anomalies.push(format!(
                    "key {key}: not linearizable; minimal history ({} ops) in {}",
                    finding.evidence.len(),
                    path.display()
                ));
            }
            _ => report.anomalies.push(format!(
                "key {key}: linearizability undecided (search limit)"
            )),
        }
    }

    // Watch streams: let them catch up to the final revision, then check.
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let caught_up = watch_logs.iter().all(|l| {
            l.lock()
                .map(|l| l.events.last().map(|e| e.0).unwrap_or(0) >= final_revision)
                .unwrap_or(false)
        });
        if caught_up {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_watchers.store(true, Ordering::Relaxed);
    for (i, l) in watch_logs.iter().enumerate() {
        if let Ok(l) = l.lock() {
            report.anomalies.extend(check_watch(i, &l, final_revision));
            let mut f = std::fs::File::create(cfg.dir.join(format!("watch-n{}.txt", i + 1)))?;
            writeln!(
                f,
                "events {}, last revision {:?}, streams {}, resets {:?}",
                l.events.len(),
                l.events.last().map(|e| e.0),
                l.streams,
                l.resets
            )?;
            for e in &l.ended {
                writeln!(f, "{e}")?;
            }
        }
    }
    for w in watchers {
        w.abort();
    }
    if let Some(mut m) = mounts {
        m.stop();
    }
    let spools: Vec<PathBuf> = cluster
        .lock()
        .await
        .nodes
        .iter()
        .map(|n| hook_check::spool_of(&n.data_dir))
        .collect();
    report
        .anomalies
        .extend(check_hooks(&spools, final_revision).await);
    let topic_client = cluster.lock().await.client()?;
    let topic_log = match topic_log.lock() {
        Ok(mut log) => std::mem::take(&mut *log),
        Err(_) => {
            report.anomalies.push("topic log poisoned".into());
            topics_load::TopicLog::default()
        }
    };
    report
        .anomalies
        .extend(topics_load::check(&topic_client, &topic_log).await);
    let topic_figures = topics_load::figures(&topic_log);
    cluster.lock().await.stop_all();

    let mut verdict = std::fs::File::create(cfg.dir.join("verdict.txt"))?;
    writeln!(
        verdict,
        "operations {} (completed {}, unknown {}), faults {}, final revision {final_revision}; topic: {} publishes acknowledged, {} claims, {} acknowledgements",
        report.ops, report.ops_ok, report.ops_unknown, report.faults, topic_figures.0, topic_figures.1, topic_figures.2
    )?;
    if report.anomalies.is_empty() {
        writeln!(verdict, "PASS: linearizable per key, every acknowledged write present, watch streams ordered without gaps or duplicates, hook events delivered once and alike on every node, topic publishes stored once in order and no claim after an acknowledgement")?;
    } else {
        writeln!(verdict, "FAIL:")?;
        for a in &report.anomalies {
            writeln!(verdict, "  {a}")?;
        }
    }
    Ok(report)
}

/// Hook delivery: waits (up to a minute) until every node's spool has caught up with
/// the others, then checks order, duplicates and agreement.
async fn check_hooks(spools: &[PathBuf], final_revision: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let read: Result<Vec<_>, String> =
            spools.iter().map(|d| hook_check::read_spool(d)).collect();
        match read {
            Err(e) => return vec![format!("hook spool unreadable: {e}")],
            Ok(nodes) => {
                let last: Vec<u64> = nodes.iter().map(hook_check::last_index).collect();
                let caught_up = last.windows(2).all(|w| w.first() == w.get(1))
                    && nodes.iter().all(|n| n.kv_revision >= final_revision);
                if caught_up || Instant::now() >= deadline {
                    return hook_check::check(&nodes, final_revision);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `aspen` binary next to the running one.
pub fn sibling_aspen() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir: &Path = exe.parent()?;
    let p = dir.join("aspen");
    p.exists().then_some(p)
}
