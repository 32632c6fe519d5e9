//! The simulator against reality: the same situation — 8 members on one LAN, one killed —
//! run in the deterministic simulator (scenario `kill-one-of-8.toml`, many seeds) and with
//! real `eccmgr` / `ecnode` processes on loopback (several kills), comparing the times from
//! the crash to each survivor reporting the member down.
//!
//! Run: `cargo bench --bench sim_vs_real`. `BENCH_SEEDS` and `BENCH_KILLS` change the counts.

#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;

use std::time::{Duration, Instant};

use anyhow::Result;
use eccluster_simulations::{run_with, RunArgs, RunOptions};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn row(name: &str, mut v: Vec<Duration>) -> String {
    v.sort();
    let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    format!("| {name} | {} | {} | {} | {} | {} |", v.len(), s(pct(&v, 0.0)), s(pct(&v, 0.5)), s(pct(&v, 0.9)), s(pct(&v, 1.0)))
}

fn simulated(seeds: u64) -> Result<Vec<Duration>> {
    let scenario = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("simulations/scenarios/kill-one-of-8.toml");
    let options = RunOptions { trace: None, print: false, progress: false };
    let mut medians = Vec::new();
    for seed in 1..=seeds {
        let args = RunArgs { scenario: scenario.clone(), seed: Some(seed), nodes: None, out: None };
        let outcome = run_with(&args, &options)?;
        anyhow::ensure!(outcome.passed, "simulation failed for seed {seed}");
        let d = outcome.report.detection.ok_or_else(|| anyhow::anyhow!("no detection in seed {seed}"))?;
        // Each run yields one crash seen by 7 survivors; keep its spread.
        medians.extend([d.min, d.p50, d.max]);
    }
    Ok(medians)
}

async fn real(kills: usize) -> Result<Vec<Duration>> {
    let mut c = support::Cluster::new(&support::topology(70, 4803, &[("east", 4), ("west", 3)]));
    c.start_all();
    support::converged(&c, 8, Duration::from_secs(30)).await;
    let mut samples = Vec::new();
    for k in 0..kills {
        let victim = if k % 2 == 0 { "east2" } else { "west2" };
        let survivors: Vec<String> = c.running().into_iter().filter(|n| n != victim).collect();
        c.kill9(victim);
        let t0 = Instant::now();
        let mut pending = survivors.clone();
        let mut this = Vec::new();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for s in pending {
                match c.state_of(&s, victim).await {
                    Some((state, _)) if state == "down" => this.push(t0.elapsed()),
                    _ => still.push(s),
                }
            }
            pending = still;
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(60), "{victim} not seen down by all");
        }
        this.sort();
        samples.extend([this[0], pct(&this, 0.5), this[this.len() - 1]]);
        c.start(victim);
        support::converged(&c, 8, Duration::from_secs(30)).await;
    }
    Ok(samples)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let seeds: u64 = std::env::var("BENCH_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let kills: usize = std::env::var("BENCH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let sim = simulated(seeds)?;
    let live = real(kills).await?;
    println!("\nkill -9 of one of 8 members: crash → survivor reports it down (per crash: first, median and last survivor)\n");
    println!("| run | samples | min | p50 | p90 | max |");
    println!("|---|---|---|---|---|---|");
    println!("{}", row(&format!("simulator ({seeds} seeds)"), sim));
    println!("{}", row(&format!("real processes ({kills} kills)"), live));
    Ok(())
}
