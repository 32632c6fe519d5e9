//! Ordered-operations benchmark, side by side with `serf query` in the same run:
//! - latency: N = 32 answering nodes on loopback; one operation = a broadcast of a command
//!   until the manager holds every answer, read back with `retrieve` (its JSON stamps each
//!   answer's arrival) (for Serf: a query and its 32nd response), p50 / p99 over at least
//!   100 operations, and how many completed;
//! - throughput: broadcasts to 16 nodes from concurrent consoles until every node has
//!   applied all of them, then each node's order is checked; twice: one broadcast per console
//!   request, then the same broadcasts in batch requests (many commands per request).
//!
//! Run: `cargo bench --bench ops` (installs Debian's `serf` if missing).
//! `BENCH_OPS` overrides the latency sample count (0 skips the latency runs),
//! `BENCH_THROUGHPUT_OPS` the throughput runs, `BENCH_NET` the loopback network: eccluster on
//! 127.NET.x.y (default 60), Serf on 127.(NET+1).x.y.

#[path = "support/serf.rs"]
mod serf;
#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use eccluster::console::frame;
use serde_json::Value;
use tokio::net::UnixStream;

struct Console(UnixStream);

impl Console {
    async fn open(c: &support::Cluster, name: &str) -> Result<Console> {
        Ok(Console(UnixStream::connect(c.console(name)).await.context("console")?))
    }
    async fn ask(&mut self, line: &str) -> Result<frame::Reply> {
        frame::write_request(&mut self.0, line).await?;
        frame::read_reply(&mut self.0).await.map_err(|e| anyhow::anyhow!("{e}"))?.context("console closed")
    }
    /// One batch request of `lines`; each command's reply, in order.
    async fn ask_batch(&mut self, lines: &[&str]) -> Result<Vec<frame::Reply>> {
        let reply = self.ask(&frame::batch_request(lines)?).await?;
        anyhow::ensure!(reply.status == frame::Status::Batch, "batch refused: {}", reply.body);
        let replies = frame::split_batch_reply(&reply)?;
        anyhow::ensure!(replies.len() == lines.len(), "{} replies to {} commands", replies.len(), lines.len());
        Ok(replies)
    }
}

/// A pseudo-random pause of 0–200 ms between operations, the same sequence for both systems:
/// Serf gossips every 200 ms, so back-to-back queries would all wait for the next round.
fn gap(i: usize) -> Duration {
    let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    Duration::from_millis(x % 200)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// eccluster: broadcast + poll `retrieve` until all `n` answers are in.
async fn ours_latency(net: u8, samples: usize, n: usize) -> Result<(Vec<Duration>, usize)> {
    // topology() adds the manager `mgr` to the first subcluster: n nodes + the manager.
    let mut c = support::Cluster::new(&support::topology(net, 4803, &[("east", n / 2), ("west", n - n / 2)]));
    c.start_all();
    support::converged(&c, n + 1, Duration::from_secs(60)).await;
    let mut con = Console::open(&c, "mgr").await?;
    let mut times = Vec::new();
    let mut complete = 0;
    for i in 0..samples {
        tokio::time::sleep(gap(i)).await;
        // The same command text each time: a broadcast resets every target's entry to
        // pending, so `retrieve` shows this operation's answers only.
        let cmd = "cluster nodename";
        let t0 = Instant::now();
        let t0_unix_us = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_micros();
        let r = con.ask(&format!("broadcast {cmd}")).await?;
        anyhow::ensure!(r.is_ok(), "broadcast failed: {}", r.body);
        loop {
            let r = con.ask(&format!("json retrieve {cmd}")).await?;
            let rows: Value = serde_json::from_str(&r.body)?;
            let rows = rows.as_array().context("rows")?;
            if rows.len() == n && rows.iter().all(|r| r["status"] == "ok") {
                // The manager stamps each answer as it arrives: the operation took until the
                // last one, however late this poll noticed.
                let last = rows.iter().filter_map(|r| r["time_unix_us"].as_u64()).max().context("answer time")?;
                complete += 1;
                times.push(Duration::from_micros((u128::from(last).saturating_sub(t0_unix_us)) as u64));
                break;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                let summary: Vec<String> = rows.iter().filter(|r| r["status"] != "ok").map(|r| format!("{}={}", r["node"], r["status"])).collect();
                eprintln!("operation {i} incomplete after 10 s: {} rows; not ok: {}", rows.len(), summary.join(" "));
                break;
            }
            // Poll about every millisecond: a tighter loop would keep the manager busy
            // answering `retrieve` instead of reading the answers it waits for; the answer
            // times the manager stamps make the figure independent of the polling.
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }
    Ok((times, complete))
}

async fn serf_latency(net: u8, samples: usize, n: usize) -> Result<(Vec<Duration>, usize)> {
    let dir = tempfile::tempdir()?;
    let cluster = serf::SerfCluster::start_with_query_handler(n, net, dir.path(), "bench").await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    for name in cluster.names() {
        loop {
            let alive = cluster.members(&name).await.map(|m| m.iter().filter(|(_, s)| s == "alive").count()).unwrap_or(0);
            if alive == n {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "serf did not converge");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut times = Vec::new();
    let mut complete = 0;
    for i in 0..samples {
        tokio::time::sleep(gap(i)).await;
        let q = cluster.query("s1", "bench", format!("{i}").as_bytes(), Duration::from_secs(10), n).await?;
        if q.responses >= n {
            complete += 1;
        }
        if let Some(t) = q.to_last {
            times.push(t);
        }
    }
    Ok((times, complete))
}

/// How the throughput run submits its broadcasts.
#[derive(Debug, Clone, Copy)]
enum Submit {
    /// One broadcast per console request.
    PerRequest,
    /// Batch requests of up to this many broadcasts.
    Batch(usize),
}

/// Broadcasts `total` operations to `nodes` nodes from `consoles` concurrent consoles;
/// returns the time until every node applied all of them. The cluster is on 127.`net`.x.y,
/// its QUIC port `port`.
async fn ours_throughput(net: u8, port: u16, submit: Submit, total: usize, nodes: usize, consoles: usize) -> Result<Duration> {
    let mut c = support::Cluster::new(&support::topology(net, port, &[("east", nodes / 2), ("west", nodes - nodes / 2)]));
    c.start_all();
    support::converged(&c, nodes + 1, Duration::from_secs(60)).await;
    let names: Vec<String> = c.running().into_iter().filter(|n| n != "mgr").collect();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..consoles {
        let mut con = Console::open(&c, "mgr").await?;
        let share = total / consoles + usize::from(k < total % consoles);
        tasks.push(tokio::spawn(async move {
            match submit {
                Submit::PerRequest => {
                    for _ in 0..share {
                        let r = con.ask("broadcast cluster nodename").await?;
                        anyhow::ensure!(r.is_ok(), "{}", r.body);
                    }
                }
                Submit::Batch(size) => {
                    let mut left = share;
                    while left > 0 {
                        let n = left.min(size);
                        for r in con.ask_batch(&vec!["broadcast cluster nodename"; n]).await? {
                            anyhow::ensure!(r.is_ok(), "{}", r.body);
                        }
                        left -= n;
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let submitted = t0.elapsed();
    for name in &names {
        loop {
            let r = c.ask(name, "json cluster info").await?;
            let v: Value = serde_json::from_str(&r.body)?;
            let applied: usize = v["operations_applied"].as_str().unwrap_or("0").parse()?;
            if applied >= total {
                break;
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(300), "{name} applied only {applied}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let done = t0.elapsed();
    eprintln!("throughput ({submit:?}): {total} submitted in {submitted:?}, all applied on {nodes} nodes after {done:?}");
    // Order check: every node applied the same ids, in increasing order, without gaps.
    let first = c.oplog(&names[0]).await;
    for name in &names {
        let log = c.oplog(name).await;
        anyhow::ensure!(log == first, "{name} applied a different sequence");
    }
    let seqs: Vec<u64> = first.iter().filter_map(|i| i.split('.').nth(1)?.parse().ok()).collect();
    anyhow::ensure!(seqs == (1..=total as u64).collect::<Vec<_>>(), "gaps or disorder");
    Ok(done)
}

/// Concurrent consoles submitting in the throughput run, one broadcast per request.
const CONSOLES: usize = 64;

/// Concurrent consoles submitting in the throughput run with batch requests, and the most
/// broadcasts in one batch (the console's default `Max_Batch_Commands`).
const BATCH_CONSOLES: usize = 8;
const BATCH: usize = 512;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let samples: usize = std::env::var("BENCH_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let total: usize = std::env::var("BENCH_THROUGHPUT_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let net: u8 = match std::env::var("BENCH_NET") {
        Ok(v) => v.parse().ok().filter(|n| *n < 255).with_context(|| format!("BENCH_NET={v}: expected a number from 0 to 254"))?,
        Err(_) => 60,
    };
    let n = 32;

    let latency = if samples > 0 {
        serf::ensure_installed()?;
        let (mut ours, ours_done) = ours_latency(net, samples, n).await?;
        ours.sort();
        let (mut theirs, serf_done) = serf_latency(net + 1, samples, n).await?;
        theirs.sort();
        Some((ours, ours_done, theirs, serf_done))
    } else {
        None
    };
    // The latency cluster is gone by now: the throughput clusters use the same network, on
    // ports of their own.
    let one = ours_throughput(net, 4813, Submit::PerRequest, total, 16, CONSOLES).await?;
    let batched = ours_throughput(net, 4823, Submit::Batch(BATCH), total, 16, BATCH_CONSOLES).await?;

    if let Some((ours, ours_done, theirs, serf_done)) = latency {
        println!("\nN = {n} answering nodes on loopback, 2 cores, same run, {samples} operations each:\n");
        println!("| system | p50 | p99 | max | complete |");
        println!("|---|---|---|---|---|");
        println!("| eccluster broadcast + retrieve | {} | {} | {} | {ours_done}/{samples} |", ms(percentile(&ours, 0.5)), ms(percentile(&ours, 0.99)), ms(percentile(&ours, 1.0)));
        println!("| serf query (32nd response) | {} | {} | {} | {serf_done}/{samples} |", ms(percentile(&theirs, 0.5)), ms(percentile(&theirs, 0.99)), ms(percentile(&theirs, 1.0)));
    }
    let rate = |d: Duration| format!("{:.2} s = {:.0} ops/s", d.as_secs_f64(), total as f64 / d.as_secs_f64());
    println!("\nthroughput: {total} ordered broadcasts to 16 nodes, all applied in order:\n");
    println!("| submission | time = rate |");
    println!("|---|---|");
    println!("| one per request, {CONSOLES} consoles | {} |", rate(one));
    println!("| batches of {BATCH}, {BATCH_CONSOLES} consoles | {} |", rate(batched));
    Ok(())
}
