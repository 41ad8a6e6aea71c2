//! A fault-injecting TCP proxy on loopback, one per node. Peers and clients reach a node
//! only through its proxy. Each node's own connections leave from a loopback address of
//! its own (127.0.0.(10+id)), so a proxy knows which node a connection comes from and can
//! cut any set of directed links: a partition closes the affected connections at once
//! and refuses new ones until it heals.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// The loopback address node `id` listens on and connects from.
pub fn node_ip(id: u64) -> IpAddr {
    let last = u8::try_from(10 + id).unwrap_or(u8::MAX);
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// Which node a source address belongs to (`None`: a client).
fn source_node(ip: IpAddr) -> Option<u64> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (o[0] == 127 && o[1] == 0 && o[2] == 0 && o[3] > 10).then(|| u64::from(o[3]) - 10)
        }
        IpAddr::V6(_) => None,
    }
}

/// Directed links that are cut: `(from, to)` node ids.
#[derive(Clone, Default)]
pub struct Links {
    cut: Arc<Mutex<BTreeSet<(u64, u64)>>>,
    changed: Arc<watch::Sender<u64>>,
}

impl Links {
    pub fn new() -> Links {
        let (tx, _) = watch::channel(0);
        Links {
            cut: Arc::default(),
            changed: Arc::new(tx),
        }
    }

    /// Cuts both directions between every node of `a` and every node of `b`.
    pub fn partition(&self, a: &[u64], b: &[u64]) {
        if let Ok(mut cut) = self.cut.lock() {
            for x in a {
                for y in b {
                    cut.insert((*x, *y));
                    cut.insert((*y, *x));
                }
            }
        }
        self.changed.send_modify(|g| *g += 1);
    }

    pub fn heal(&self) {
        if let Ok(mut cut) = self.cut.lock() {
            cut.clear();
        }
        self.changed.send_modify(|g| *g += 1);
    }

    fn is_cut(&self, from: Option<u64>, to: u64) -> bool {
        match from {
            Some(f) => self
                .cut
                .lock()
                .map(|c| c.contains(&(f, to)))
                .unwrap_or(false),
            None => false,
        }
    }
}

/// Starts the proxy for node `to` on `listen`, forwarding to `target`.
pub async fn start(
    listen: SocketAddr,
    target: SocketAddr,
    to: u64,
    links: Links,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Error::io(format!("proxy bind {listen}: {e}")))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((client, peer)) = listener.accept().await else {
                continue;
            };
            let from = source_node(peer.ip());
            if links.is_cut(from, to) {
                drop(client);
                continue;
            }
            let links = links.clone();
            tokio::spawn(async move {
                let server = match TcpStream::connect(target).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::debug!(%target, error = %e, "proxy: target unreachable");
                        return;
                    }
                };
                let mut changed = links.changed.subscribe();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::io::copy(&mut cr, &mut sw);
                let down = tokio::io::copy(&mut sr, &mut cw);
                let cut = async {
                    loop {
                        if changed.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                        if links.is_cut(from, to) {
                            return;
                        }
                    }
                };
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                    _ = cut => {}
                }
                let _ = cw.shutdown().await;
                let _ = sw.shutdown().await;
            });
        }
    }))
}
