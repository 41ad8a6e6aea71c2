//! The calling side of a connection: connect, authenticate, then multiplex any number of
//! requests over one TCP stream. A reader task routes each response frame to the caller
//! waiting on its request id; a writer task sends queued frames. When the connection
//! breaks, every waiting caller gets an error at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

use crate::error::{Error, ErrorKind, Result};
use crate::limits::*;
use crate::net::auth::client_handshake;
use crate::net::frame::{decode_body, encode_frame, read_frame, write_frames};
use crate::net::proto::{Envelope, Request, Response, Role};
use crate::raft::types::NodeId;

enum Waiter {
    Once(oneshot::Sender<Response>),
    Stream(mpsc::Sender<Response>),
}

struct Shared {
    pending: Mutex<HashMap<u64, Waiter>>,
    closed: AtomicBool,
}

impl Shared {
    fn take_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut p) = self.pending.lock() {
            p.clear(); // dropping the senders wakes every waiter with an error
        }
    }
}

/// One authenticated, multiplexed connection. Dropping it closes the connection.
pub struct RpcConn {
    shared: Arc<Shared>,
    next_id: AtomicU64,
    send_tx: mpsc::Sender<Vec<u8>>,
    inflight: Arc<Semaphore>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    pub peer_id: NodeId,
    pub addr: String,
}

impl std::fmt::Debug for RpcConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcConn")
            .field("addr", &self.addr)
            .field("peer_id", &self.peer_id)
            .finish()
    }
}

impl Drop for RpcConn {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
        self.shared.take_all();
    }
}

/// Streams of responses per watch, before the reader waits on a slow consumer.
const STREAM_QUEUE_FRAMES: usize = 64;

impl RpcConn {
    pub async fn connect(addr: &str, role: Role, key: &[u8]) -> Result<RpcConn> {
        Self::connect_from(addr, None, role, key).await
    }

    /// Like `connect`, with the local end bound to `local` (an IP, any port) when given:
    /// a node's connections to its peers leave from the address it listens on.
    pub async fn connect_from(
        addr: &str,
        local: Option<std::net::IpAddr>,
        role: Role,
        key: &[u8],
    ) -> Result<RpcConn> {
        let unavailable =
            |e: std::io::Error| Error::new(ErrorKind::Unavailable, format!("{addr}: {e}"));
        let connect = async {
            let target = tokio::net::lookup_host(addr)
                .await
                .map_err(unavailable)?
                .next()
                .ok_or_else(|| Error::new(ErrorKind::Unavailable, format!("{addr}: no address")))?;
            let socket = if target.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .map_err(unavailable)?;
            if let Some(ip) = local.filter(|ip| ip.is_ipv4() == target.is_ipv4()) {
                socket
                    .bind(std::net::SocketAddr::new(ip, 0))
                    .map_err(unavailable)?;
            }
            socket.connect(target).await.map_err(unavailable)
        };
        let mut stream = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), connect)
            .await
            .map_err(|_| {
                Error::new(ErrorKind::Unavailable, format!("{addr}: connect timed out"))
            })??;
        let _ = stream.set_nodelay(true);
        // A handshake that fails before the server answers (connection closed, timeout) is
        // an unreachable server: nothing was sent yet, and callers back off and retry.
        let peer_id = client_handshake(&mut stream, role, key)
            .await
            .map_err(|e| {
                let kind = match e.kind {
                    ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                    _ => ErrorKind::Unavailable,
                };
                Error::new(kind, format!("{addr}: {}", e.message))
            })?;
        let (mut rd, mut wr) = stream.into_split();
        let shared = Arc::new(Shared {
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        let (send_tx, mut send_rx) = mpsc::channel::<Vec<u8>>(CONNECTION_SEND_QUEUE_FRAMES);
        let wshared = shared.clone();
        let writer = tokio::spawn(async move {
            let _ = write_frames(&mut wr, &mut send_rx).await;
            wshared.take_all();
        });
        let rshared = shared.clone();
        let raddr = addr.to_string();
        let reader = tokio::spawn(async move {
            let mut rd = tokio::io::BufReader::new(&mut rd);
            loop {
                let body = match read_frame(&mut rd).await {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(peer = %raddr, error = %e, "closing connection");
                        break;
                    }
                };
                let env: Envelope<Response> = match decode_body(&body) {
                    Ok(env) => env,
                    Err(e) => {
                        tracing::warn!(peer = %raddr, error = %e, "closing connection");
                        break;
                    }
                };
                route(&rshared, env).await;
            }
            rshared.take_all();
        });
        Ok(RpcConn {
            shared,
            next_id: AtomicU64::new(1),
            send_tx,
            inflight: Arc::new(Semaphore::new(MAX_INFLIGHT_PER_CONNECTION)),
            reader,
            writer,
            peer_id,
            addr: addr.to_string(),
        })
    }

    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    fn register(&self, waiter: Waiter) -> Result<u64> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut p = self
            .shared
            .pending
            .lock()
            .map_err(|_| Error::internal("connection table poisoned"))?;
        if self.is_closed() {
            return Err(lost(&self.addr));
        }
        p.insert(id, waiter);
        Ok(id)
    }

    fn forget(&self, id: u64) {
        forget_waiter(&self.shared, id);
    }

    async fn send(&self, id: u64, req: &Request) -> Result<()> {
        let frame = encode_frame(&Envelope { id, body: req })?;
        self.send_tx.send(frame).await.map_err(|_| lost(&self.addr))
    }

    /// Sends one request and waits up to `timeout` for its response.
    pub async fn call(&self, req: &Request, timeout: Duration) -> Result<Response> {
        let _permit = self
            .inflight
            .acquire()
            .await
            .map_err(|_| lost(&self.addr))?;
        let (tx, rx) = oneshot::channel();
        let id = self.register(Waiter::Once(tx))?;
        if let Err(e) = self.send(id, req).await {
            self.forget(id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(lost(&self.addr)),
            Err(_) => {
                self.forget(id);
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("{}: no answer within {} ms", self.addr, timeout.as_millis()),
                ))
            }
        }
    }

    /// Sends a streaming request; responses arrive on the receiver until `StreamEnd`.
    pub async fn stream(&self, req: &Request) -> Result<mpsc::Receiver<Response>> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE_FRAMES);
        let id = self.register(Waiter::Stream(tx))?;
        if let Err(e) = self.send(id, req).await {
            self.forget(id);
            return Err(e);
        }
        Ok(rx)
    }
}

fn lost(addr: &str) -> Error {
    Error::new(ErrorKind::Io, format!("{addr}: connection lost"))
}

async fn route(shared: &Shared, env: Envelope<Response>) {
    let is_end = matches!(env.body, Response::StreamEnd(_));
    let waiter = {
        let Ok(mut p) = shared.pending.lock() else {
            return;
        };
        match p.get(&env.id) {
            Some(Waiter::Once(_)) => p.remove(&env.id),
            Some(Waiter::Stream(tx)) => {
                let tx = tx.clone();
                if is_end {
                    p.remove(&env.id);
                }
                Some(Waiter::Stream(tx))
            }
            None => None, // a caller that gave up
        }
    };
    let id = env.id;
    let consumer_gone = match waiter {
        Some(Waiter::Once(tx)) => tx.send(env.body).is_err(),
        Some(Waiter::Stream(tx)) => tx.send(env.body).await.is_err(),
        None => false,
    };
    if consumer_gone {
        forget_waiter(shared, id);
    }
}

fn forget_waiter(shared: &Shared, id: u64) {
    if let Ok(mut p) = shared.pending.lock() {
        p.remove(&id);
    }
}
