//! Test harness: real `aspen node` processes on loopback, each with its own ports and data
//! dir under a fresh temp dir. Everything waits for conditions with generous deadlines;
//! nothing sleeps as synchronization.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aspen::client::Client;
use aspen::kv::{ReadQuery, ReadResult};
use aspen::net::proto::{ClusterStatus, Consistency};

pub mod single;

pub const SECRET: &str = "test-cluster-secret-0123456789abcdef";
pub const TOKEN: &str = "test-client-token-0123456789abcdef";

/// How long any condition may take on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A free loopback port (bound and released; the kernel does not hand it out again soon).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

pub struct NodeProc {
    pub id: u64,
    pub addr: String,
    pub data_dir: PathBuf,
    pub child: Option<Child>,
    pub log: PathBuf,
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<NodeProc>,
    pub secret_file: PathBuf,
    pub token_file: PathBuf,
    /// Arguments every node process gets (restarts included).
    pub node_args: Vec<String>,
}

impl Cluster {
    /// Starts `n` nodes; node 1 initializes the cluster with all of them as voters.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, tempfile::tempdir().expect("tempdir"), Vec::new())
    }

    /// `start` in a given temp dir, with arguments every node process gets.
    pub fn start_with(n: usize, dir: tempfile::TempDir, node_args: Vec<String>) -> Cluster {
        let secret_file = dir.path().join("secret");
        let token_file = dir.path().join("token");
        std::fs::write(&secret_file, SECRET).expect("write secret");
        std::fs::write(&token_file, TOKEN).expect("write token");
        let mut nodes = Vec::new();
        for id in 1..=n as u64 {
            nodes.push(NodeProc {
                id,
                addr: format!("127.0.0.1:{}", free_port()),
                data_dir: dir.path().join(format!("n{id}")),
                child: None,
                log: dir.path().join(format!("n{id}.log")),
            });
        }
        let mut c = Cluster {
            dir,
            nodes,
            secret_file,
            token_file,
            node_args,
        };
        let peers: Vec<String> = c
            .nodes
            .iter()
            .map(|n| format!("{}={}", n.id, n.addr))
            .collect();
        let peers = peers.join(",");
        for i in 0..n {
            let extra: Vec<String> = if i == 0 {
                vec!["--init".into(), "--peers".into(), peers.clone()]
            } else {
                vec![]
            };
            c.spawn(i, &extra);
        }
        c
    }

    /// Starts node index `i` (0-based) with extra arguments.
    pub fn spawn(&mut self, i: usize, extra: &[String]) {
        let bin = env!("CARGO_BIN_EXE_aspen");
        let n = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .expect("log file");
        let child = Command::new(bin)
            .arg("node")
            .args(["--id", &n.id.to_string()])
            .args(["--data-dir", n.data_dir.to_str().expect("utf8 path")])
            .args(["--listen", &n.addr])
            .args(["--secret-file", self.secret_file.to_str().expect("utf8")])
            .args(["--token-file", self.token_file.to_str().expect("utf8")])
            .args(&self.node_args)
            .args(extra)
            .env("RUST_LOG", "info,lsm_tree=warn,fjall=warn,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn aspen node");
        n.child = Some(child);
    }

    /// Adds a new node process (not yet a member) and returns its index.
    pub fn add_node(&mut self, extra: &[String]) -> usize {
        let id = self.nodes.len() as u64 + 1;
        self.nodes.push(NodeProc {
            id,
            addr: format!("127.0.0.1:{}", free_port()),
            data_dir: self.dir.path().join(format!("n{id}")),
            child: None,
            log: self.dir.path().join(format!("n{id}.log")),
        });
        let i = self.nodes.len() - 1;
        self.spawn(i, extra);
        i
    }

    /// SIGKILL, no chance to flush anything.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP / SIGCONT: the process freezes with all its state (a long GC pause, a VM
    /// migration), then resumes believing whatever it believed.
    pub fn pause(&self, i: usize, stopped: bool) {
        if let Some(c) = &self.nodes[i].child {
            let sig = if stopped { "-STOP" } else { "-CONT" };
            let ok = Command::new("kill")
                .arg(sig)
                .arg(c.id().to_string())
                .status()
                .map(|s| s.success());
            assert_eq!(ok.ok(), Some(true), "kill {sig} node {}", i + 1);
        }
    }

    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i, &[]);
    }

    pub fn token(&self) -> Vec<u8> {
        TOKEN.as_bytes().to_vec()
    }

    /// A client over every node.
    pub fn client(&self) -> Client {
        Client::new(
            self.nodes.iter().map(|n| n.addr.clone()).collect(),
            self.token(),
        )
        .expect("client")
    }

    /// A client bound to one node.
    pub fn client_of(&self, i: usize) -> Client {
        Client::new(vec![self.nodes[i].addr.clone()], self.token()).expect("client")
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            out.push_str(&format!("---- node {} ----\n", n.id));
            out.push_str(&std::fs::read_to_string(&n.log).unwrap_or_default());
        }
        out
    }

    /// Status of node `i`, or None if it does not answer.
    pub async fn status(&self, i: usize) -> Option<ClusterStatus> {
        let c = self.client_of(i);
        tokio::time::timeout(Duration::from_secs(5), c.status())
            .await
            .ok()?
            .ok()
    }

    /// Waits until the live nodes agree on a leader that is one of them; returns its index.
    pub async fn wait_leader(&self, excluding: Option<usize>) -> usize {
        let start = Instant::now();
        loop {
            let mut leaders = BTreeMap::new();
            for (i, n) in self.nodes.iter().enumerate() {
                if n.child.is_none() || Some(i) == excluding {
                    continue;
                }
                if let Some(s) = self.status(i).await {
                    if s.role == "leader" {
                        leaders.insert(i, s.term);
                    }
                }
            }
            if leaders.len() == 1 {
                let (i, _) = leaders.into_iter().next().expect("one leader");
                return i;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "no single leader after {DEADLINE:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until node `i` has applied at least `revision`.
    pub async fn wait_revision(&self, i: usize, revision: u64) {
        let start = Instant::now();
        let c = self.client_of(i);
        loop {
            if let Ok(Ok(ReadResult::Revision(r))) = tokio::time::timeout(
                Duration::from_secs(5),
                c.read(ReadQuery::Revision, Consistency::Local),
            )
            .await
            {
                if r >= revision {
                    return;
                }
            }
            assert!(
                start.elapsed() < DEADLINE,
                "node {} never reached revision {revision}\n{}",
                i + 1,
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// Reads `key` from node `i` with the given consistency.
pub async fn get(c: &Client, key: &str, consistency: Consistency) -> Option<Vec<u8>> {
    match c
        .read(ReadQuery::Get { key: key.into() }, consistency)
        .await
        .expect("read")
    {
        ReadResult::Entry(e) => e.map(|e| e.value),
        other => panic!("unexpected {other:?}"),
    }
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}
