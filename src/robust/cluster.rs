//! The harness's cluster: `aspen node` processes, each listening on a loopback address of
//! its own behind a proxy (see `proxy`), with its data dir and log in the run directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::net::proto::ClusterStatus;
use crate::robust::proxy::{self, Links};

pub struct Node {
    pub id: u64,
    /// Where peers and clients reach it (its proxy).
    pub public: String,
    /// Where it really listens.
    pub private: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    pub paused: bool,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub links: Links,
    pub token: Vec<u8>,
    secret_file: PathBuf,
    token_file: PathBuf,
    aspen: PathBuf,
    proxies: Vec<tokio::task::JoinHandle<()>>,
}

fn free_port(ip: std::net::IpAddr) -> Result<u16> {
    let l = std::net::TcpListener::bind((ip, 0))
        .map_err(|e| Error::io(format!("no free port on {ip}: {e}")))?;
    Ok(l.local_addr().map_err(|e| Error::io(e.to_string()))?.port())
}

impl Cluster {
    /// Starts `n` nodes (node 1 initializes the cluster) and their proxies.
    pub async fn start(n: usize, dir: &Path, aspen: &Path) -> Result<Cluster> {
        let secret_file = dir.join("secret");
        let token_file = dir.join("token");
        let token = format!("robustness-token-{:016x}", rand::random::<u64>());
        std::fs::write(
            &secret_file,
            format!("robustness-secret-{:016x}", rand::random::<u64>()),
        )?;
        std::fs::write(&token_file, &token)?;
        let links = Links::new();
        let mut nodes = Vec::new();
        let mut proxies = Vec::new();
        let loopback = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        for id in 1..=n as u64 {
            let ip = proxy::node_ip(id);
            let private = std::net::SocketAddr::new(ip, free_port(ip)?);
            let public = std::net::SocketAddr::new(loopback, free_port(loopback)?);
            proxies.push(proxy::start(public, private, id, links.clone()).await?);
            nodes.push(Node {
                id,
                public: public.to_string(),
                private: private.to_string(),
                data_dir: dir.join(format!("n{id}")),
                log: dir.join(format!("n{id}.log")),
                child: None,
                paused: false,
            });
        }
        let mut c = Cluster {
            nodes,
            links,
            token: token.into_bytes(),
            secret_file,
            token_file,
            aspen: aspen.to_path_buf(),
            proxies,
        };
        for i in 0..c.nodes.len() {
            c.spawn(i, i == 0)?;
        }
        Ok(c)
    }

    fn spawn(&mut self, i: usize, init: bool) -> Result<()> {
        let peers: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{}={}", n.id, n.public))
            .collect();
        let Some(n) = self.nodes.get_mut(i) else {
            return Err(Error::internal("no such node"));
        };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)?;
        let mut cmd = Command::new(&self.aspen);
        cmd.arg("node")
            .args(["--id", &n.id.to_string()])
            .arg("--data-dir")
            .arg(&n.data_dir)
            .args(["--listen", &n.private, "--advertise", &n.public])
            .arg("--secret-file")
            .arg(&self.secret_file)
            .arg("--token-file")
            .arg(&self.token_file)
            .env("RUST_LOG", "info,lsm_tree=warn,fjall=warn,openraft=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if init {
            cmd.args(["--init", "--peers", &peers.join(",")]);
        }
        n.child = Some(
            cmd.spawn()
                .map_err(|e| Error::io(format!("cannot start {}: {e}", self.aspen.display())))?,
        );
        n.paused = false;
        Ok(())
    }

    /// The client token file the nodes accept.
    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    pub fn is_up(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| n.child.is_some())
    }

    /// kill -9.
    pub fn kill(&mut self, i: usize) {
        if let Some(n) = self.nodes.get_mut(i) {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
            n.paused = false;
        }
    }

    pub fn restart(&mut self, i: usize) -> Result<()> {
        if !self.is_up(i) {
            self.spawn(i, false)?;
        }
        Ok(())
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`).
    pub fn pause(&mut self, i: usize, stop: bool) {
        if let Some(n) = self.nodes.get_mut(i) {
            if let Some(c) = &n.child {
                let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
                if let Ok(pid) = i32::try_from(c.id()) {
                    // SAFETY: kill(2) on a child we own.
                    unsafe { libc::kill(pid, sig) };
                }
                n.paused = stop;
            }
        }
    }

    pub fn client(&self) -> Result<Client> {
        Client::new(
            self.nodes.iter().map(|n| n.public.clone()).collect(),
            self.token.clone(),
        )
    }

    pub fn client_of(&self, i: usize) -> Result<Client> {
        let n = self
            .nodes
            .get(i)
            .ok_or_else(|| Error::internal("no such node"))?;
        Client::new(vec![n.public.clone()], self.token.clone())
    }

    async fn status(&self, i: usize) -> Option<ClusterStatus> {
        let c = self.client_of(i).ok()?;
        tokio::time::timeout(Duration::from_secs(2), c.status())
            .await
            .ok()?
            .ok()
    }

    /// Index of the node that currently leads, as the live nodes see it.
    pub async fn leader(&self) -> Option<usize> {
        for i in 0..self.nodes.len() {
            if !self.is_up(i) || self.nodes.get(i).is_some_and(|n| n.paused) {
                continue;
            }
            if let Some(s) = self.status(i).await {
                if let Some(l) = s.leader {
                    return self.nodes.iter().position(|n| n.id == l);
                }
            }
        }
        None
    }

    /// Waits until some node leads and accepts a linearizable read.
    pub async fn wait_healthy(&self, deadline: Duration) -> Result<()> {
        let start = Instant::now();
        let c = self.client()?;
        loop {
            let ok = tokio::time::timeout(
                Duration::from_secs(5),
                c.read(
                    crate::kv::ReadQuery::Revision,
                    crate::net::proto::Consistency::Linearizable,
                ),
            )
            .await;
            if matches!(ok, Ok(Ok(_))) {
                return Ok(());
            }
            if start.elapsed() > deadline {
                return Err(Error::new(
                    crate::error::ErrorKind::Timeout,
                    "the cluster did not become healthy",
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn stop_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.pause(i, false);
            self.kill(i);
        }
        for p in &self.proxies {
            p.abort();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}
