//! Membership benchmark, side by side with HashiCorp Serf in the same run, N = 32 on
//! loopback: join convergence, crash detection (kill -9) with false downs, idle RSS and CPU.
//!
//! Run: `cargo bench --bench membership` (installs Debian's `serf` if missing).
//! `BENCH_N` overrides the member count, `BENCH_KILLS` the number of crashes measured,
//! `BENCH_NET` / `BENCH_SERF_NET` the second octet of the 127.x.y.z networks eccluster and
//! Serf run on (50 and 51), and `BENCH_SERF=0` leaves Serf out (to iterate on eccluster alone).
//! Each crash's per-survivor report times go to stderr, so a slow kill shows where it lost time.
//! `ECCLUSTER_BIN_DIR=target/dist` runs the daemons built to install (`cargo build --profile dist
//! --bins`) instead of those of this build.

#[path = "support/serf.rs"]
mod serf;
#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// Figures of one system.
#[derive(Debug, Default)]
struct Figures {
    join: Duration,
    detections: Vec<Duration>,
    first_detections: Vec<Duration>,
    false_downs: usize,
    rss_kib_mean: u64,
    rss_kib_max: u64,
    cpu_pct_mean: f64,
    cpu_pct_max: f64,
}

fn rss_kib(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}

fn cpu_ticks(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &s[s.rfind(')').context("stat format")? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f.get(11).context("utime")?.parse::<u64>()? + f.get(12).context("stime")?.parse::<u64>()?)
}

fn clk_tck() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().map(|v| v as f64).unwrap_or(100.0)
}

/// Idle cost over `window`: mean and max RSS (KiB) and CPU (% of one core) per member.
async fn idle(pids: &[u32], window: Duration, f: &mut Figures) -> Result<()> {
    let before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect::<Result<_>>()?;
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let secs = t0.elapsed().as_secs_f64();
    let after: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p)).collect::<Result<_>>()?;
    let cpu: Vec<f64> = before.iter().zip(&after).map(|(b, a)| (a - b) as f64 / clk_tck() / secs * 100.0).collect();
    let rss: Vec<u64> = pids.iter().map(|p| rss_kib(*p)).collect::<Result<_>>()?;
    f.cpu_pct_mean = cpu.iter().sum::<f64>() / cpu.len() as f64;
    f.cpu_pct_max = cpu.iter().cloned().fold(0.0, f64::max);
    f.rss_kib_mean = rss.iter().sum::<u64>() / rss.len() as u64;
    f.rss_kib_max = rss.iter().copied().max().unwrap_or(0);
    Ok(())
}

/// A cluster under measurement: whose view to read, whom to kill.
trait Under {
    fn names(&self) -> Vec<String>;
    fn pids(&self) -> Vec<u32>;
    fn kill(&mut self, name: &str) -> Result<()>;
    /// (member, is_alive, is_down) as `observer` sees it.
    async fn view(&self, observer: &str) -> Option<Vec<(String, bool, bool)>>;
}

struct Ours(support::Cluster);
struct Serf(serf::SerfCluster);

impl Under for Ours {
    fn names(&self) -> Vec<String> {
        self.0.running()
    }
    fn pids(&self) -> Vec<u32> {
        self.0.procs.values().map(|p| p.child.id()).collect()
    }
    fn kill(&mut self, name: &str) -> Result<()> {
        self.0.kill9(name);
        Ok(())
    }
    async fn view(&self, observer: &str) -> Option<Vec<(String, bool, bool)>> {
        let rows = self.0.membership(observer).await?;
        Some(
            rows.iter()
                .filter_map(|r| {
                    let s = r["state"].as_str()?;
                    Some((r["name"].as_str()?.to_owned(), s == "up", s == "down"))
                })
                .collect(),
        )
    }
}

impl Under for Serf {
    fn names(&self) -> Vec<String> {
        self.0.running_names()
    }
    fn pids(&self) -> Vec<u32> {
        let running: BTreeSet<String> = self.0.running_names().into_iter().collect();
        self.0.names().into_iter().zip(self.0.pids()).filter(|(n, _)| running.contains(n)).map(|(_, p)| p).collect()
    }
    fn kill(&mut self, name: &str) -> Result<()> {
        self.0.kill9(name)
    }
    async fn view(&self, observer: &str) -> Option<Vec<(String, bool, bool)>> {
        let rows = self.0.members(observer).await.ok()?;
        Some(rows.into_iter().map(|(n, s)| (n, s == "alive", s == "failed")).collect())
    }
}

async fn converge(u: &impl Under, n: usize, started: Instant) -> Result<Duration> {
    let names = u.names();
    let mut done = BTreeSet::new();
    while done.len() < names.len() {
        for name in &names {
            if done.contains(name) {
                continue;
            }
            if let Some(v) = u.view(name).await {
                if v.iter().filter(|(_, alive, _)| *alive).count() == n {
                    done.insert(name.clone());
                }
            }
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(120), "no convergence in 120 s");
    }
    Ok(started.elapsed())
}

async fn detect(u: &mut impl Under, victim: &str, dead: &BTreeSet<String>, f: &mut Figures) -> Result<()> {
    u.kill(victim)?;
    let t0 = Instant::now();
    let survivors = u.names();
    let mut seen = BTreeSet::new();
    let mut reports: Vec<(Duration, String)> = Vec::new();
    let mut first = None;
    let mut false_pairs = BTreeSet::new();
    while seen.len() < survivors.len() {
        for s in &survivors {
            let Some(v) = u.view(s).await else { continue };
            for (m, _, down) in &v {
                if *down && m != victim && !dead.contains(m) {
                    false_pairs.insert((s.clone(), m.clone()));
                }
            }
            if !seen.contains(s) && v.iter().any(|(m, _, down)| m == victim && *down) {
                seen.insert(s.clone());
                first.get_or_insert(t0.elapsed());
                reports.push((t0.elapsed(), s.clone()));
            }
        }
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(120), "{victim} not detected by all in 120 s");
    }
    f.detections.push(t0.elapsed());
    f.first_detections.push(first.unwrap_or_default());
    let each: Vec<String> = reports.iter().map(|(t, s)| format!("{s} {}", t.as_millis())).collect();
    eprintln!("kill {victim}: survivors reported it down at (ms) {}", each.join(", "));
    f.false_downs += false_pairs.len();
    Ok(())
}

async fn measure(u: &mut impl Under, n: usize, started: Instant, victims: &[String]) -> Result<Figures> {
    let mut f = Figures { join: converge(u, n, started).await?, ..Figures::default() };
    // Let join traffic settle, then measure idle cost without touching the members.
    tokio::time::sleep(Duration::from_secs(5)).await;
    idle(&u.pids(), Duration::from_secs(10), &mut f).await?;
    let mut dead = BTreeSet::new();
    for v in victims {
        detect(u, v, &dead, &mut f).await?;
        dead.insert(v.clone());
    }
    Ok(f)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn list(ds: &[Duration]) -> String {
    ds.iter().map(|d| ms(*d)).collect::<Vec<_>>().join(", ")
}

fn mean(ds: &[Duration]) -> Duration {
    if ds.is_empty() {
        return Duration::ZERO;
    }
    ds.iter().sum::<Duration>() / ds.len() as u32
}

fn worst(ds: &[Duration]) -> Duration {
    ds.iter().copied().max().unwrap_or_default()
}

/// The second octet of a benchmark network from `var`, or `default`.
fn net(var: &str, default: u8) -> Result<u8> {
    match std::env::var(var) {
        Ok(v) => v.parse().with_context(|| format!("{var}={v:?} is not a number 0..=255")),
        Err(_) => Ok(default),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let n: usize = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let kills: usize = std::env::var("BENCH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let ours_net = net("BENCH_NET", 50)?;
    let serf_net = net("BENCH_SERF_NET", 51)?;
    let with_serf = std::env::var("BENCH_SERF").map_or(true, |v| v != "0");
    let serf_bin = if with_serf { Some(serf::ensure_installed()?) } else { None };
    eprintln!(
        "membership benchmark: N = {n}, {kills} crashes each; eccluster ({}) on 127.{ours_net}.x.y; serf {}",
        support::daemon_bin("ecnode").display(),
        serf_bin.as_ref().map_or("left out".to_owned(), |b| format!("at {} on 127.{serf_net}.x.y", b.display()))
    );

    // eccluster: mgr + (n - 1) nodes in east / west.
    let east = (n - 1) / 2;
    let west = n - 1 - east;
    let mut cluster = support::Cluster::new(&support::topology(ours_net, 4803, &[("east", east), ("west", west)]));
    let started = Instant::now();
    cluster.start_all();
    let ours_victims: Vec<String> = (0..kills).map(|k| if k % 2 == 0 { format!("east{}", 2 + k) } else { format!("west{}", 2 + k) }).collect();
    let mut ours = Ours(cluster);
    let ours_f = measure(&mut ours, n, started, &ours_victims).await?;
    drop(ours);
    eprintln!("eccluster: {ours_f:?}");

    let serf_f = if with_serf {
        let dir = tempfile::tempdir()?;
        let started = Instant::now();
        let mut serf = Serf(serf::SerfCluster::start(n, serf_net, dir.path()).await?);
        let serf_victims: Vec<String> = (0..kills).map(|k| format!("s{}", 5 + 7 * k)).collect();
        let serf_f = measure(&mut serf, n, started, &serf_victims).await?;
        drop(serf);
        eprintln!("serf: {serf_f:?}");
        Some(serf_f)
    } else {
        None
    };

    let row = |name: &str, f: &Figures| {
        format!(
            "| {name} | {} | {} ({}) | {} | {} | {} | {} / {} | {:.2} % / {:.2} % |",
            ms(f.join),
            ms(mean(&f.detections)),
            list(&f.detections),
            ms(worst(&f.detections)),
            ms(mean(&f.first_detections)),
            f.false_downs,
            f.rss_kib_mean / 1024,
            f.rss_kib_max / 1024,
            f.cpu_pct_mean,
            f.cpu_pct_max
        )
    };
    let table = format!(
        "| system | join converged | kill -9 → all survivors report down: mean (each) | worst of {kills} | → first survivor | false downs | idle RSS MiB mean / max | idle CPU per member mean / max |\n\
         |---|---|---|---|---|---|---|---|\n{}\n{}",
        row("eccluster", &ours_f),
        serf_f.as_ref().map_or(String::new(), |f| format!("{}\n", row("serf", f)))
    );
    println!("\nN = {n} members on loopback, 2 cores, same run:\n\n{table}");
    if let Some(serf_f) = &serf_f {
        let ratio = |ours: Duration, serf: Duration| ours.as_secs_f64() / serf.as_secs_f64().max(1e-9);
        println!(
            "detection ratio eccluster / serf: worst / worst {:.2} (target ≤ 0.50), mean / mean {:.2}",
            ratio(worst(&ours_f.detections), worst(&serf_f.detections)),
            ratio(mean(&ours_f.detections), mean(&serf_f.detections))
        );
    }
    Ok(())
}
