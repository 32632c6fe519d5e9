//! The consoles' traffic: several clients, each running the real `ec_console` binary once per
//! operation against the manager's console socket — broadcasts, subcluster broadcasts and
//! unicasts, each with a command text of its own so its results can be looked up — recording
//! every acknowledged operation (its id and target list) in the ledger. A checkpoint holds
//! the gate's write side: no console sends while it checks.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::Value;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use crate::ledger::{Id, Ledger};
use crate::schedule::NODES;

/// How long an `ec_console` may take before its operation counts as unanswered (a stopped or
/// cut-off manager never answers).
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    // A panic while holding the ledger is a bug of the soak itself; its data is still
    // what was seen, so keep reading it.
    ledger.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the console client made of one line.
enum Outcome {
    Acked { id: Id, targets: Vec<String> },
    Refused(String),
    Unanswered,
}

async fn send(console: &Path, line: &str) -> Outcome {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ec_console"));
    cmd.arg(console).arg(format!("json {line}"));
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return Outcome::Refused(format!("ec_console did not start: {e}")),
    };
    let out = match tokio::time::timeout(CONSOLE_TIMEOUT, child.wait_with_output()).await {
        // Dropping the wait kills the client (kill_on_drop).
        Err(_) => return Outcome::Unanswered,
        Ok(Err(e)) => return Outcome::Refused(format!("ec_console: {e}")),
        Ok(Ok(out)) => out,
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stdout.lines().chain(stderr.lines()).find(|l| !l.trim().is_empty()).unwrap_or("(no output)");
        let reason = if first.contains("cannot connect") { "cannot connect to the manager's console" } else { first.trim() };
        return Outcome::Refused(reason.chars().take(100).collect());
    }
    let parsed = serde_json::from_str::<Value>(&stdout).ok().and_then(|v| {
        let id = Id::parse(v["id"].as_str()?)?;
        let targets = v["targets"].as_array()?.iter().map(|t| t.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>()?;
        Some((id, targets))
    });
    match parsed {
        Some((id, targets)) => Outcome::Acked { id, targets },
        None => Outcome::Refused(format!("unreadable acknowledgement: {}", stdout.trim().chars().take(100).collect::<String>())),
    }
}

/// Sends `line` through `ec_console` and records what came of it.
pub async fn submit(ledger: &Mutex<Ledger>, manager: &Path, line: &str, kind: &'static str, console: &str) {
    let sent = {
        let mut l = lock(ledger);
        l.traffic.sent += 1;
        l.snapshot()
    };
    let outcome = send(manager, line).await;
    let mut l = lock(ledger);
    match outcome {
        Outcome::Acked { id, targets } => l.record_ack(id, line, kind, console, targets, sent),
        Outcome::Refused(why) => *l.traffic.refused.entry(why).or_default() += 1,
        Outcome::Unanswered => l.traffic.unanswered += 1,
    }
}

/// One console client: sends operations with short random pauses until `stop`.
pub struct Console {
    pub index: usize,
    pub seed: u64,
    pub manager: PathBuf,
    pub ledger: Arc<Mutex<Ledger>>,
    pub gate: Arc<RwLock<()>>,
    pub stop: CancellationToken,
}

impl Console {
    pub async fn run(self) {
        let mut rng = StdRng::seed_from_u64(self.seed ^ 0xC0_FFEE ^ ((self.index as u64) << 32));
        let name = format!("c{}", self.index);
        let mut n = 0u64;
        while !self.stop.is_cancelled() {
            {
                let _open = self.gate.read().await;
                n += 1;
                let text = format!("cluster nodename soak-{name}-{n}");
                let (kind, line) = match rng.random_range(0..4) {
                    0 | 1 => ("broadcast", format!("broadcast {text}")),
                    2 => {
                        let sc = if rng.random_bool(0.5) { "east" } else { "west" };
                        ("subcluster broadcast", format!("subcluster broadcast {sc} {text}"))
                    }
                    _ => ("unicast", format!("unicast {} {text}", NODES[rng.random_range(0..NODES.len())])),
                };
                submit(&self.ledger, &self.manager, &line, kind, &name).await;
            }
            // Pacing between operations, not a wait for anything.
            let pause = Duration::from_millis(rng.random_range(50..=400));
            tokio::select! {
                _ = self.stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }
}
