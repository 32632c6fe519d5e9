//! Configuration rollout: commit → every node running the new revision.
//!
//! 32 ecnode processes following a real ecconfigd (HTTPS on loopback, announcing to a real
//! eccmgr), each with a poll interval of an hour, so only the announcement path counts. An
//! operator's working copy commits a changed `default/ecelerity.conf` (the same library
//! function as `eccfg commit`); the clock runs from the commit request until the manager's
//! `show cluster config` lists all 32 nodes running the new revision (each node pulled it,
//! checked it, loaded it and reported it). 20 commits, one after the other; the distribution
//! is printed. Momentum's nodes polled once a minute.
//!
//! Run: `cargo bench --bench config`. `BENCH_CONFIG_NODES` and `BENCH_CONFIG_COMMITS` override
//! the sizes.

#[path = "../tests/it/repo_support.rs"]
#[allow(dead_code)]
mod repo_support;
#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i.min(sorted.len().saturating_sub(1))).copied().unwrap_or_default()
}

/// How many nodes the manager lists as running revision `rev` of east (or newer).
async fn running(site: &repo_support::Site, rev: u64) -> Result<usize> {
    let reply = site.cluster.ask("mgr", "json show cluster config").await?;
    anyhow::ensure!(reply.is_ok(), "show cluster config: {}", reply.body);
    let v: Value = serde_json::from_str(&reply.body).context("show cluster config json")?;
    let nodes = v["nodes"].as_array().context("nodes")?;
    Ok(nodes.iter().filter(|n| n["running"]["east"].as_u64().is_some_and(|r| r >= rev)).count())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let n = env_usize("BENCH_CONFIG_NODES", 32);
    let commits = env_usize("BENCH_CONFIG_COMMITS", 20);
    let mut site = repo_support::Site::new(9, n, "Broadcast_Timeout = 100\n").await;
    site.cluster.start_all();
    support::converged(&site.cluster, n + 1, Duration::from_secs(120)).await;
    support::eventually("every node on revision 1", Duration::from_secs(120), || async {
        (running(&site, 1).await.ok()? == n).then_some(())
    })
    .await;

    let mut rollout = Vec::new();
    let mut commit_only = Vec::new();
    for i in 0..commits {
        let t0 = Instant::now();
        let rev = site.commit(&format!("Broadcast_Timeout = {}\n", 101 + i)).await;
        commit_only.push(t0.elapsed());
        let deadline = t0 + Duration::from_secs(60);
        loop {
            if running(&site, rev).await? == n {
                break;
            }
            anyhow::ensure!(Instant::now() < deadline, "commit {rev}: not every node ran it within 60 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        rollout.push(t0.elapsed());
        println!("commit {rev}: committed in {}, all {n} nodes running it after {}", ms(commit_only[i]), ms(rollout[i]));
    }
    // Every node really runs the last value (not only reports it).
    let want = format!("Broadcast_Timeout = {}", 100 + commits);
    for node in site.nodes.clone() {
        let reply = site.cluster.ask(&node, "config get Broadcast_Timeout").await?;
        anyhow::ensure!(reply.body.trim() == want, "{node} shows {:?}, not {want:?}", reply.body.trim());
    }
    rollout.sort();
    commit_only.sort();
    let mean = rollout.iter().sum::<Duration>() / rollout.len().max(1) as u32;
    println!("\nconfiguration rollout, {n} nodes, {commits} commits (commit request → all nodes running it):");
    println!(
        "  min {}  p50 {}  p90 {}  max {}  mean {}",
        ms(rollout[0]),
        ms(percentile(&rollout, 0.5)),
        ms(percentile(&rollout, 0.9)),
        ms(rollout[rollout.len() - 1]),
        ms(mean)
    );
    println!("  of which the commit itself: p50 {}  max {}", ms(percentile(&commit_only, 0.5)), ms(commit_only[commit_only.len() - 1]));
    println!("  target ≤ 1 s: {}", if rollout[rollout.len() - 1] <= Duration::from_secs(1) { "met by every commit" } else { "MISSED" });
    Ok(())
}
