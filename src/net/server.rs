//! The serving side: accept TCP connections, authenticate them, decode request frames and
//! hand each request to the `Handler` as its own task (bounded per connection), sending
//! the handler's responses back tagged with the request id. A malformed frame, an unknown
//! protocol version or a failed handshake closes that connection with a logged reason;
//! the node keeps serving everyone else.

use std::future::Future;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use crate::error::{Error, Result};
use crate::limits::*;
use crate::net::auth::{server_handshake, Keys};
use crate::net::frame::{decode_body, encode_frame, read_frame, write_frames};
use crate::net::proto::{Envelope, Request, Response, Role};
use crate::raft::types::NodeId;

/// Sends responses for one request.
pub struct Replier {
    id: u64,
    tx: mpsc::Sender<Vec<u8>>,
}

impl Replier {
    /// Sends one response frame; `false` when the connection is gone.
    pub async fn send(&self, body: Response) -> bool {
        let frame = match encode_frame(&Envelope { id: self.id, body }) {
            Ok(f) => f,
            Err(e) => {
                // Too large or unencodable: tell the caller instead of going silent.
                tracing::warn!(error = %e, "response not sendable");
                match encode_frame(&Envelope {
                    id: self.id,
                    body: Response::Failed(e),
                }) {
                    Ok(f) => f,
                    Err(_) => return false,
                }
            }
        };
        self.tx.send(frame).await.is_ok()
    }

    /// Whether the connection has gone away (so a stream can stop).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Serves decoded requests.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        self: Arc<Self>,
        role: Role,
        req: Request,
        reply: Replier,
    ) -> impl Future<Output = ()> + Send;
}

/// Accepts connections until the listener fails or the task is aborted.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    node_id: NodeId,
    keys: Keys,
    handler: Arc<H>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "refusing connection: {MAX_CONNECTIONS} connections open");
            continue;
        };
        let keys = keys.clone();
        let handler = handler.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, node_id, &keys, handler).await {
                tracing::warn!(%peer, error = %e, "connection closed");
            }
            drop(slot);
        });
    }
}

async fn connection<H: Handler>(
    mut stream: TcpStream,
    node_id: NodeId,
    keys: &Keys,
    handler: Arc<H>,
) -> Result<()> {
    let _ = stream.set_nodelay(true);
    let role = server_handshake(&mut stream, node_id, keys)
        .await
        .map_err(|e| Error::new(e.kind, format!("refused: {}", e.message)))?;
    let (rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(CONNECTION_SEND_QUEUE_FRAMES);
    let writer = tokio::spawn(async move {
        let _ = write_frames(&mut wr, &mut rx).await;
    });
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_REQUESTS_PER_CONNECTION));
    let mut rd = tokio::io::BufReader::new(rd);
    let result = loop {
        let body = match read_frame(&mut rd).await {
            Ok(Some(b)) => b,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let env: Envelope<Request> = match decode_body(&body) {
            Ok(env) => env,
            Err(e) => break Err(e),
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break Ok(());
        };
        let reply = Replier {
            id: env.id,
            tx: tx.clone(),
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            handler.handle(role, env.body, reply).await;
            drop(permit);
        });
    };
    drop(tx);
    // Let queued responses drain; the writer ends when every replier is gone.
    let _ = writer.await;
    result
}
