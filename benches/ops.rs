//! Ordered-operations benchmark, side by side with `serf query` in the same run:
//! - latency: N = 32 answering nodes on loopback; one operation = a broadcast of a command
//!   until the manager holds every answer, read back with `retrieve` (its JSON stamps each
//!   answer's arrival) (for Serf: a query and its 32nd response), p50 / p99 over at least
//!   100 operations, and how many completed;
//! - throughput: broadcasts to 16 nodes from concurrent consoles until every node has
//!   applied all of them, then each node's order is checked.
//!
//! Run: `cargo bench --bench ops` (installs Debian's `serf` if missing).
//! `BENCH_OPS` overrides the latency sample count, `BENCH_THROUGHPUT_OPS` the throughput run,
//! `BENCH_NET` the loopback networks: eccluster on 127.NET.x.y (both runs, one after the other),
//! Serf on 127.(NET + 1).x.y; by default 127.60 and 127.62 for eccluster, 127.61 for Serf.

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
async fn ours_latency(samples: usize, n: usize, net: u8) -> Result<(Vec<Duration>, usize)> {
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

async fn serf_latency(samples: usize, n: usize, net: u8) -> Result<(Vec<Duration>, usize)> {
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

/// Broadcasts `total` operations to `nodes` nodes from `consoles` concurrent consoles;
/// returns the time until every node applied all of them.
async fn ours_throughput(total: usize, nodes: usize, consoles: usize, net: u8) -> Result<Duration> {
    let mut c = support::Cluster::new(&support::topology(net, 4803, &[("east", nodes / 2), ("west", nodes - nodes / 2)]));
    c.start_all();
    support::converged(&c, nodes + 1, Duration::from_secs(60)).await;
    let names: Vec<String> = c.running().into_iter().filter(|n| n != "mgr").collect();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..consoles {
        let mut con = Console::open(&c, "mgr").await?;
        let share = total / consoles + usize::from(k < total % consoles);
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                let r = con.ask("broadcast cluster nodename").await?;
                anyhow::ensure!(r.is_ok(), "{}", r.body);
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
    eprintln!("throughput: {total} submitted in {submitted:?}, all applied on {nodes} nodes after {done:?}");
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

/// Concurrent consoles submitting in the throughput run.
const CONSOLES: usize = 64;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let samples: usize = std::env::var("BENCH_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    let total: usize = std::env::var("BENCH_THROUGHPUT_OPS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    serf::ensure_installed()?;
    let n = 32;
    let net: Option<u8> = std::env::var("BENCH_NET").ok().and_then(|v| v.parse().ok()).filter(|n| *n < 255);
    let (ours_net, serf_net, throughput_net) = match net {
        Some(net) => (net, net + 1, net),
        None => (60, 61, 62),
    };

    let (mut ours, ours_done) = ours_latency(samples, n, ours_net).await?;
    ours.sort();
    let (mut theirs, serf_done) = serf_latency(samples, n, serf_net).await?;
    theirs.sort();
    let tp = ours_throughput(total, 16, CONSOLES, throughput_net).await?;

    println!("\nN = {n} answering nodes on loopback, 2 cores, same run, {samples} operations each:\n");
    println!("| system | p50 | p99 | max | complete |");
    println!("|---|---|---|---|---|");
    println!("| eccluster broadcast + retrieve | {} | {} | {} | {ours_done}/{samples} |", ms(percentile(&ours, 0.5)), ms(percentile(&ours, 0.99)), ms(percentile(&ours, 1.0)));
    println!("| serf query (32nd response) | {} | {} | {} | {serf_done}/{samples} |", ms(percentile(&theirs, 0.5)), ms(percentile(&theirs, 0.99)), ms(percentile(&theirs, 1.0)));
    println!(
        "\nthroughput: {total} ordered broadcasts to 16 nodes from {CONSOLES} consoles, all applied in order in {:.2} s = {:.0} ops/s",
        tp.as_secs_f64(),
        total as f64 / tp.as_secs_f64()
    );
    Ok(())
}
