//! `aspen bench put`: a put load generator. It prints one line in the same shape as the
//! etcd load generator in the shared bench tools, so the two compare line by line.

use std::sync::Arc;
use std::time::Instant;

use clap::Subcommand;

use super::output::print_line;
use super::ClientArgs;
use crate::error::{Error, Result};
use crate::kv::{Command, PutOp};

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Concurrent puts; prints puts/s and latency percentiles.
    Put {
        /// Concurrent clients (each waits for its put before the next).
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Connections shared by the clients [default: min(clients, 8)].
        #[arg(long)]
        conns: Option<usize>,
        /// Total puts.
        #[arg(long, default_value_t = 10_000)]
        total: usize,
        /// Value size in bytes.
        #[arg(long, default_value_t = 100)]
        value_size: usize,
        /// Distinct keys per client (0: every put a new key).
        #[arg(long, default_value_t = 0)]
        keys: usize,
        /// Key prefix.
        #[arg(long, default_value = "bench")]
        prefix: String,
    },
}

pub async fn run(cmd: BenchCmd, c: &ClientArgs) -> Result<()> {
    let BenchCmd::Put {
        clients,
        conns,
        total,
        value_size,
        keys,
        prefix,
    } = cmd;
    if clients == 0 || total < clients {
        return Err(Error::invalid(
            "need at least one client and at least one put per client",
        ));
    }
    let conns = conns.unwrap_or(clients.min(8)).max(1);
    let mut pool = Vec::with_capacity(conns);
    for _ in 0..conns {
        let client = Arc::new(c.client()?);
        client.status().await?; // connect up front, outside the timed part
        pool.push(client);
    }
    let per = total / clients;
    let value = vec![b'v'; value_size];
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let client = pool
            .get(i % conns)
            .cloned()
            .ok_or_else(|| Error::internal("empty pool"))?;
        let value = value.clone();
        let prefix = prefix.clone();
        tasks.push(tokio::spawn(async move {
            let mut lats = Vec::with_capacity(per);
            for j in 0..per {
                let k = if keys == 0 { j } else { j % keys };
                let key = format!("{prefix}/{i:04}/{k:08}");
                let t = Instant::now();
                client
                    .write_one(Command::Put(PutOp::file(key, value.clone())))
                    .await?;
                lats.push(t.elapsed().as_micros() as u64);
            }
            Ok::<_, Error>(lats)
        }));
    }
    let mut all = Vec::with_capacity(per * clients);
    for t in tasks {
        all.extend(t.await.map_err(|e| Error::internal(e.to_string()))??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let q = |p: f64| -> f64 {
        let idx = ((all.len() as f64 - 1.0) * p).round() as usize;
        all.get(idx).copied().unwrap_or(0) as f64 / 1000.0
    };
    let mean = all.iter().sum::<u64>() as f64 / all.len().max(1) as f64 / 1000.0;
    print_line(&format!(
        "aspen eps={} clients={clients} conns={conns} n={} val={value_size}B elapsed={elapsed:.2}s puts/s={:.0} lat_ms mean={mean:.2} p50={:.2} p90={:.2} p99={:.2} p99.9={:.2} max={:.2}",
        c.endpoints.len(),
        all.len(),
        all.len() as f64 / elapsed,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        q(1.0)
    ))
}
