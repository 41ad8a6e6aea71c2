//! Transport: length-prefixed, versioned postcard frames over TCP, a mutual HMAC
//! handshake, a multiplexed request/response connection for callers, and the accept
//! loop for servers. Peers and clients speak the same protocol with different keys.

pub mod auth;
pub mod frame;
pub mod proto;
pub mod rpc;
pub mod server;
