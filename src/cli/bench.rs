//! `aspen bench put`: a put load generator. It prints one line in the same shape as the
//! etcd load generator in the shared bench tools, so the two compare line by line.
//! `aspen bench topic`: publishers, then consumers of one group, through the client.

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
    /// Publishers (one message per command), then consumers of one group (claim and
    /// acknowledge); prints messages/s of each phase.
    Topic {
        #[arg(long, default_value_t = 16)]
        publishers: usize,
        #[arg(long, default_value_t = 4)]
        consumers: usize,
        /// Total messages.
        #[arg(long, default_value_t = 10_000)]
        total: usize,
        /// Message size in bytes.
        #[arg(long, default_value_t = 100)]
        size: usize,
    },
}

pub async fn run(cmd: BenchCmd, c: &ClientArgs) -> Result<()> {
    match cmd {
        BenchCmd::Put {
            clients,
            conns,
            total,
            value_size,
            keys,
            prefix,
        } => put(c, clients, conns, total, value_size, keys, prefix).await,
        BenchCmd::Topic {
            publishers,
            consumers,
            total,
            size,
        } => topic(c, publishers, consumers, total, size).await,
    }
}

async fn put(
    c: &ClientArgs,
    clients: usize,
    conns: Option<usize>,
    total: usize,
    value_size: usize,
    keys: usize,
    prefix: String,
) -> Result<()> {
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

/// Runs `per_task` rounds of `op` in each of `tasks` tasks on clients of their own;
/// returns the seconds it took.
async fn timed<F, Fut>(c: &ClientArgs, tasks: usize, per_task: usize, op: F) -> Result<f64>
where
    F: Fn(Arc<crate::client::Client>, usize, usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    let mut clients = Vec::with_capacity(tasks);
    for _ in 0..tasks {
        let client = Arc::new(c.client()?);
        client.status().await?;
        clients.push(client);
    }
    let start = Instant::now();
    let mut handles = Vec::with_capacity(tasks);
    for (i, client) in clients.into_iter().enumerate() {
        let mut work = Vec::with_capacity(per_task);
        for j in 0..per_task {
            work.push(op(client.clone(), i, j));
        }
        handles.push(tokio::spawn(async move {
            for w in work {
                w.await?;
            }
            Ok::<_, Error>(())
        }));
    }
    for h in handles {
        h.await.map_err(|e| Error::internal(e.to_string()))??;
    }
    Ok(start.elapsed().as_secs_f64())
}

async fn topic(
    c: &ClientArgs,
    publishers: usize,
    consumers: usize,
    total: usize,
    size: usize,
) -> Result<()> {
    use crate::topics::consumer::TopicsApi;
    use crate::topics::*;
    if publishers == 0 || consumers == 0 || total < publishers.max(consumers) {
        return Err(Error::invalid(
            "need publishers and consumers, and at least one message each",
        ));
    }
    let admin = c.client()?;
    let name = format!("bench-{}", std::process::id());
    admin
        .topic_command(TopicCommand::Create {
            topic: name.clone(),
            config: TopicConfig::default(),
        })
        .await?;
    admin
        .topic_command(TopicCommand::CreateGroup {
            topic: name.clone(),
            group: "g".into(),
            start: SeekTo::Start,
            settings: GroupSettings {
                visibility_ms: crate::limits::MAX_VISIBILITY_MS,
                max_deliveries: 1,
            },
        })
        .await?;
    let message = vec![b'm'; size];
    let per_pub = total / publishers;
    let published = per_pub * publishers;
    let pub_secs = timed(c, publishers, per_pub, |client, _, _| {
        let cmd = TopicCommand::Publish {
            topic: name.clone(),
            messages: vec![message.clone()],
        };
        async move { client.topic_command(cmd).await.map(|_| ()) }
    })
    .await?;
    // Consumers claim in batches (as `aspen topic sub` does) and acknowledge each batch.
    let per_con = published / consumers;
    let consumed = per_con * consumers;
    let batch = crate::limits::SUB_CLAIM_BATCH as usize;
    let con_secs = timed(c, consumers, per_con.div_ceil(batch), |client, i, j| {
        let topic = name.clone();
        let max = u32::try_from(batch.min(per_con - j * batch)).unwrap_or(1);
        async move {
            let claim = TopicCommand::ClaimBatch {
                topic: topic.clone(),
                group: "g".into(),
                consumer: format!("bench-{i}"),
                max,
            };
            let TopicOutcome::ClaimedBatch(claims) = client.topic_command(claim).await? else {
                return Err(Error::internal("unexpected answer to a batch claim"));
            };
            if claims.len() != max as usize {
                return Err(Error::internal("fewer claims than messages remain"));
            }
            let ack = TopicCommand::AckBatch {
                topic,
                group: "g".into(),
                offsets: claims.iter().map(|c| c.offset).collect(),
            };
            client.topic_command(ack).await.map(|_| ())
        }
    })
    .await?;
    admin
        .topic_command(TopicCommand::Delete { topic: name })
        .await?;
    print_line(&format!(
        "aspen topic publishers={publishers} n={published} size={size}B publish/s={:.0} consumers={consumers} n={consumed} consume/s={:.0} (claims and acks in batches of {batch})",
        published as f64 / pub_secs,
        consumed as f64 / con_secs,
    ))
}
