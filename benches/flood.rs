//! Initial-flood benchmark: what QUIC Initials from anyone who can reach a member's port cost
//! that member. A manager and one `ecnode` on loopback; the node is flooded with
//!
//! 1. Initials carrying a genuine TLS ClientHello, each a fresh connection attempt, from many
//!    source ports of an address that is not a member's;
//! 2. Initials that pass packet protection but carry garbage instead of a ClientHello;
//! 3. connection attempts from a member's address (one whose member is not running) that
//!    answer the Retry and then never finish the handshake;
//!
//! and its resident set is sampled every 50 ms (peak, and after the flood and the idle timeout),
//! with the lines its log grew by. At the end a member joins and the join time is reported.
//!
//! Run: `cargo bench --bench flood`. `FLOOD_ECNODE=/path/to/ecnode` measures another build of
//! the node (for old-versus-new figures); `FLOOD_N` sets the Initials per flood (12,500),
//! `FLOOD_RATE` the packets per second (20,000), `FLOOD_SETTLE` the seconds waited after
//! each flood (35: past the 30 s idle timeout).

#[path = "support/initials.rs"]
mod initials;
#[path = "../tests/it/support.rs"]
#[allow(dead_code)]
mod support;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

fn rss_kib(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Samples RSS while `send` runs and for `settle` after it; returns (peak, at the end).
fn sampled(pid: u32, settle: Duration, send: impl FnOnce() + Send) -> Result<(u64, u64)> {
    let mut peak = rss_kib(pid)?;
    std::thread::scope(|s| -> Result<()> {
        let sender = s.spawn(send);
        while !sender.is_finished() {
            peak = peak.max(rss_kib(pid)?);
            std::thread::sleep(Duration::from_millis(50));
        }
        sender.join().map_err(|_| anyhow::anyhow!("flood thread panicked"))?;
        Ok(())
    })?;
    let end = Instant::now() + settle;
    while Instant::now() < end {
        peak = peak.max(rss_kib(pid)?);
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((peak, rss_kib(pid)?))
}

/// Sends `packets` round-robin over `sockets` at about `rate` a second.
fn paced(sockets: &[UdpSocket], to: SocketAddr, packets: &[Vec<u8>], rate: u64) {
    let start = Instant::now();
    for (i, p) in packets.iter().enumerate() {
        if let Err(error) = sockets[i % sockets.len()].send_to(p, to) {
            eprintln!("send: {error}");
        }
        let due = start + Duration::from_secs_f64((i + 1) as f64 / rate as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

fn sockets(ip: &str, n: usize) -> Result<Vec<UdpSocket>> {
    (0..n).map(|_| UdpSocket::bind((ip, 0)).context("bind")).collect()
}

struct Row {
    what: &'static str,
    packets: u64,
    peak: u64,
    after: u64,
    lines: usize,
    bytes: usize,
}

fn main() -> Result<()> {
    let n = env_u64("FLOOD_N", 12_500);
    let rate = env_u64("FLOOD_RATE", 20_000);
    let settle = Duration::from_secs(env_u64("FLOOD_SETTLE", 35));
    let ecnode = std::env::var("FLOOD_ECNODE").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ecnode").to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;

    let mut c = support::Cluster::new(&support::topology(61, 4803, &[("east", 2)]));
    c.start("mgr");
    let log_path = c.log("east1");
    let log = std::fs::File::create(&log_path)?;
    let mut node = Command::new(&ecnode)
        .args(["--name", "east1", "--segments"])
        .arg(&c.segments)
        .arg("--tls-dir")
        .arg(&c.tls)
        .arg("--console")
        .arg(c.console("east1"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .with_context(|| format!("starting {ecnode}"))?;
    let pid = node.id();
    let result = (|| -> Result<()> {
        rt.block_on(support::converged(&c, 2, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_secs(2));
        let idle = rss_kib(pid)?;
        println!("ecnode: {ecnode}\nidle RSS: {idle} KiB");
        let target: SocketAddr = "127.61.1.11:4803".parse()?;
        let mut rows = Vec::new();
        let log_len = || std::fs::read_to_string(&log_path).map(|t| (t.lines().count(), t.len())).unwrap_or((0, 0));

        let hello = initials::Hello::new()?;
        let packets: Vec<Vec<u8>> = (0..n).map(|_| hello.initial(target, "east1")).collect::<Result<_>>()?;
        let from = sockets("127.61.1.200", 250)?;
        let (l0, b0) = log_len();
        let (peak, after) = sampled(pid, settle, || paced(&from, target, &packets, rate))?;
        let (l1, b1) = log_len();
        rows.push(Row { what: "ClientHello Initials, 250 source ports", packets: n, peak, after, lines: l1 - l0, bytes: b1 - b0 });

        let garbage: Vec<Vec<u8>> = (0..n)
            .map(|i| initials::garbage_initial(&i.to_be_bytes(), &[7; 8], &[0xAB; 300]))
            .collect::<Result<_>>()?;
        let from = sockets("127.61.1.201", 50)?;
        let (peak, after) = sampled(pid, settle, || paced(&from, target, &garbage, rate))?;
        let (l2, b2) = log_len();
        rows.push(Row { what: "garbage Initials, 50 source ports", packets: n, peak, after, lines: l2 - l1, bytes: b2 - b1 });

        // From the address of member east2, which is not running: answer every Retry.
        let socket = UdpSocket::bind("127.61.1.12:4803").context("binding east2's address")?;
        socket.set_read_timeout(Some(Duration::from_millis(1)))?;
        let mut dialler = hello.dialler();
        let attempts = n.min(5_000);
        let mut retries = 0u64;
        let mut answers = 0u64;
        let (peak, after) = sampled(pid, settle, || {
            let start = Instant::now();
            let mut buf = [0u8; 2048];
            let mut sent = 0u64;
            while sent < attempts || start.elapsed() < Duration::from_secs(2) {
                if sent < attempts && start.elapsed().as_secs_f64() * rate as f64 >= sent as f64 {
                    match dialler.start(target, "east1") {
                        Ok(p) => drop(socket.send_to(&p, target)),
                        Err(error) => eprintln!("dial: {error:#}"),
                    }
                    sent += 1;
                    continue;
                }
                if let Ok((len, from)) = socket.recv_from(&mut buf) {
                    match dialler.handle_retry(from, &buf[..len]) {
                        Some(echo) => {
                            retries += 1;
                            drop(socket.send_to(&echo, target));
                        }
                        None => answers += 1,
                    }
                }
            }
        })?;
        let (l3, b3) = log_len();
        println!("member-address attempts: {attempts}, Retries answered: {retries}, other datagrams from the node: {answers}");
        rows.push(Row { what: "attempts from a member's address, Retry answered", packets: attempts, peak, after, lines: l3 - l2, bytes: b3 - b2 });
        drop(socket);

        let joined = Instant::now();
        c.start("east2");
        rt.block_on(support::converged(&c, 3, Duration::from_secs(60)));
        let join = joined.elapsed();

        println!("\n| flood | packets | peak RSS | RSS after {} s | log lines | log bytes |", settle.as_secs());
        println!("|---|---:|---:|---:|---:|---:|");
        for r in &rows {
            println!(
                "| {} | {} | {:.1} MiB | {:.1} MiB | {} | {} |",
                r.what, r.packets, r.peak as f64 / 1024.0, r.after as f64 / 1024.0, r.lines, r.bytes
            );
        }
        println!("\nidle RSS {:.1} MiB; a member joined after the floods in {:.2} s", idle as f64 / 1024.0, join.as_secs_f64());
        Ok(())
    })();
    let _ = node.kill();
    let _ = node.wait();
    result
}
