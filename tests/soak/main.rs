//! The chaos soak: seven real members — `eccmgr` and six `ecnode`s in two subclusters — each
//! in its own network namespace on one bridge, the nodes holding DuraVIP addresses through the
//! netlink actuator, run for a set time under random kill -9 and restarts (the manager's too),
//! SIGSTOP/SIGCONT, cut links and one-way drops, and DuraVIP moves, while several `ec_console`
//! clients send broadcasts, subcluster broadcasts and unicasts to the manager.
//!
//! The schedule comes from one seed and the round number, and is printed before the run;
//! `--seed N` replays it. Applied logs, incarnations and memory are checked continuously;
//! after each round every fault is undone and a checkpoint checks membership, every
//! acknowledged operation and DuraVIP ownership (checkpoint.rs). A failure prints the seed,
//! the command that replays it and the schedule that ran, and keeps the members' logs.
//! `cargo test` runs a short soak; SOAK.md records the long ones.

#[allow(dead_code)]
#[path = "../it/netns.rs"]
mod netns;
#[allow(dead_code)]
#[path = "../it/support.rs"]
mod support;

mod args;
mod checkpoint;
mod ledger;
mod rig;
mod schedule;
mod traffic;
mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::sync::RwLock;
use tokio_util::sync::CancellationToken;

use crate::args::{Options, Parsed};
use crate::checkpoint::{within, Checkpoint, Measured};
use crate::ledger::{Invariant, Ledger, Status};
use crate::rig::Rig;
use crate::schedule::{Action, Kind, Plan, MANAGER, MEMBERS};
use crate::traffic::{lock, submit, Console};

fn main() -> ExitCode {
    let options = match args::parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Skip(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("soak: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

fn stamp(ledger: &Mutex<Ledger>) -> String {
    format!("[{:7.1}s]", lock(ledger).now())
}

async fn run(o: Options) -> Result<(), String> {
    let plan = Plan { seed: o.seed, window: o.round, max_faults: o.max_faults, mix: o.mix.clone() };
    let most = (o.duration.as_secs() / o.round.as_secs().max(1)) as usize + 1;
    let mix: Vec<&str> = o.mix.iter().map(|k| k.name()).collect();
    println!(
        "soak: seed {}, {} s, rounds of {} s, events [{}], {} consoles, at most {} faults at once, RSS limit {} MiB, policy {}",
        o.seed,
        o.duration.as_secs(),
        o.round.as_secs(),
        mix.join(" "),
        o.consoles,
        o.max_faults,
        o.rss_limit_mib,
        o.policy
    );
    println!("replay: {}", o.replay());
    println!("schedule (rounds run until {} s have passed, at most {most}):", o.duration.as_secs());
    let mut rounds = Vec::new();
    for i in 1..=most {
        let round = plan.round(i);
        schedule::validate(&plan, &round).map_err(|e| format!("the schedule is malformed: {e}"))?;
        println!("{round}");
        rounds.push(round);
    }

    let started = Instant::now();
    let ledger = Arc::new(Mutex::new(Ledger::new(started, o.rss_limit_mib * 1024)));
    let mut rig = Rig::new(o.net, &o.policy);
    {
        let mut l = lock(&ledger);
        for m in MEMBERS {
            l.member(m).pid = rig.pid(m);
        }
    }
    let consoles: BTreeMap<String, PathBuf> = MEMBERS.iter().map(|m| (m.to_string(), rig.c.console(m))).collect();

    // The cluster first forms and places its addresses, undisturbed.
    let ready = within(Duration::from_secs(60), || async {
        let mut all = true;
        for m in MEMBERS {
            all &= rig::view(&consoles[m], m).await.is_some_and(|v| v.len() == MEMBERS.len() && v.values().all(|(s, _)| s == "up"));
        }
        all && rig.probe().holders().values().all(|h| h.len() == 1)
    })
    .await;
    if !ready {
        return Err(fail_setup(rig, "the cluster did not form with one holder per address within 60 s"));
    }
    println!("{} cluster formed: 7 members up, {} addresses held", stamp(&ledger), schedule::VIPS);

    let stop = CancellationToken::new();
    let gate = Arc::new(RwLock::new(()));
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(watch::watch(ledger.clone(), consoles.clone(), stop.clone())));
    for index in 1..=o.consoles {
        let console = Console {
            index,
            seed: o.seed,
            manager: consoles[MANAGER].clone(),
            ledger: ledger.clone(),
            gate: gate.clone(),
            stop: stop.clone(),
        };
        tasks.push(tokio::spawn(console.run()));
    }

    let mut measured: Vec<Measured> = Vec::new();
    let mut ran = 0;
    for round in &rounds {
        if ran > 0 && started.elapsed() >= o.duration {
            break;
        }
        ran += 1;
        println!("{} round {}", stamp(&ledger), round.index);
        let t0 = tokio::time::Instant::now();
        for step in &round.steps {
            tokio::time::sleep_until(t0 + step.at).await;
            perform(&mut rig, &ledger, &consoles, &mut tasks, round.index, &step.action);
        }
        tokio::time::sleep_until(t0 + o.round).await;
        let closed = gate.write().await;
        println!("{} round {} checkpoint: consoles held, every fault undone", stamp(&ledger), round.index);
        let m = Checkpoint { rig: &rig, ledger: &ledger, consoles: &consoles, settle: Some(o.settle) }.run().await;
        println!("{} round {} checkpoint: {}", stamp(&ledger), round.index, describe(&m));
        measured.push(m);
        drop(closed);
    }
    stop.cancel();
    for t in tasks {
        if let Err(e) = t.await {
            println!("note: a soak task ended badly: {e}");
        }
    }
    // Operations the consoles saw acknowledged after the last checkpoint are checked too
    // (nothing was done to the cluster since; ownership was watched there).
    let final_check = Checkpoint { rig: &rig, ledger: &ledger, consoles: &consoles, settle: None }.run().await;
    measured.push(final_check);

    let l = lock(&ledger);
    summary(&o, &l, &measured, ran, started.elapsed());
    if l.violations.is_empty() {
        println!("soak: PASS");
        return Ok(());
    }
    println!("soak: FAILED with {} invariant violation(s); seed {}", l.violations.len(), o.seed);
    println!("replay: {}", o.replay());
    println!("schedule that ran:");
    for round in rounds.iter().take(ran) {
        println!("{round}");
    }
    drop(l);
    let logs = keep_logs(rig);
    Err(format!("invariant violations (seed {}); the members' logs are kept in {logs}", o.seed))
}

/// Stops everything and keeps the members' logs; returns where they are.
fn keep_logs(mut rig: Rig) -> String {
    let fresh = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return format!("(nowhere: {e})"),
    };
    let dir = std::mem::replace(&mut rig.c.dir, fresh);
    drop(rig);
    dir.keep().display().to_string()
}

fn fail_setup(rig: Rig, why: &str) -> String {
    let logs = keep_logs(rig);
    format!("{why}; the members' logs are kept in {logs}")
}

/// Does `action`, keeping the ledger's idea of each member's process ahead of the change
/// (a process is marked gone before it dies, and a new one counted before it starts).
fn perform(
    rig: &mut Rig,
    ledger: &Arc<Mutex<Ledger>>,
    consoles: &BTreeMap<String, PathBuf>,
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    round: usize,
    action: &Action,
) {
    match action {
        Action::Kill(m) => {
            lock(ledger).process_ends(m);
            rig.c.kill9(m);
        }
        Action::Restart(m) => {
            lock(ledger).new_process(m);
            rig.c.start(m);
            lock(ledger).member(m).pid = rig.pid(m);
        }
        Action::Stop(m) => {
            lock(ledger).member(m).status = Status::Stopped;
            rig.c.signal(m, Signal::SIGSTOP);
        }
        Action::Cont(m) => {
            rig.c.signal(m, Signal::SIGCONT);
            lock(ledger).member(m).status = Status::Running;
        }
        Action::Cut(m) => rig.lab.link(m, false),
        Action::Heal(m) => rig.lab.link(m, true),
        Action::Block { from, to } => rig.block(from, to, true),
        Action::Unblock { from, to } => rig.block(from, to, false),
        Action::Move { vip, to } => {
            let line = format!("broadcast cluster duravip move {} to {to}", rig.vip(*vip));
            let (ledger, manager) = (ledger.clone(), consoles[MANAGER].clone());
            tasks.push(tokio::spawn(async move { submit(&ledger, &manager, &line, "duravip move", "mover").await }));
        }
    }
    let mut l = lock(ledger);
    if let Some(kind) = action.kind() {
        *l.counts.entry(kind.name()).or_default() += 1;
    }
    let pid = match action {
        Action::Restart(m) => l.members[m.as_str()].pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        _ => String::new(),
    };
    println!("[{:7.1}s] r{round} {action}{pid}", l.now());
    l.log_event(action.to_string(), action.members());
}

fn describe(m: &Measured) -> String {
    let secs = |d: Option<Duration>, what: &str| d.map_or(format!("{what} NOT within the limit"), |d| format!("{what} after {:.1}s", d.as_secs_f64()));
    let mut s = format!("{}; {}", secs(m.converged, "all up"), secs(m.applied, "acknowledged operations accounted for"));
    if m.watched {
        match m.last_double {
            Some(d) => s.push_str(&format!("; two holders of an address last seen {:.1}s after the heal", d.as_secs_f64())),
            None => s.push_str("; never two holders of an address"),
        }
    }
    if m.unheld > 0 {
        s.push_str(&format!(" ({} address(es) held by nobody)", m.unheld));
    }
    s
}

fn summary(o: &Options, l: &Ledger, measured: &[Measured], rounds: usize, took: Duration) {
    println!("---- soak summary ----");
    println!("seed {}; {:.0} s ({rounds} round(s) of {} s chaos, each with a checkpoint)", o.seed, took.as_secs_f64(), o.round.as_secs());
    let events: Vec<String> = Kind::ALL.iter().map(|k| format!("{} {}", k.name(), l.counts.get(k.name()).copied().unwrap_or(0))).collect();
    println!("events: {}", events.join(", "));
    let t = &l.traffic;
    let acked: u64 = t.acked.values().sum();
    let by_kind: Vec<String> = t.acked.iter().map(|(k, n)| format!("{k} {n}")).collect();
    let refused: u64 = t.refused.values().sum();
    println!(
        "operations: {} sent, {acked} acknowledged ({}), {refused} refused, {} unanswered",
        t.sent,
        by_kind.join(", "),
        t.unanswered
    );
    let mut reasons: Vec<(&String, &u64)> = t.refused.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1));
    for (why, n) in reasons.iter().take(6) {
        println!("  refused {n}x: {why}");
    }
    let k = &l.tally;
    println!(
        "checked (operation, target) pairs: {} — applied {}, target restarted before applying {}, target rejoined with a new \
         incarnation {}, sent to a just-ended process (manager: node left) {}, lost {}; applied again by a restarted node {}",
        l.checked(),
        k.applied,
        k.restarted,
        k.rejoined,
        k.left,
        k.lost,
        k.reapplied
    );
    let rss: Vec<String> = l.members.iter().map(|(n, m)| format!("{n} {:.1}", m.max_rss_kib as f64 / 1024.0)).collect();
    println!("peak RSS (MiB, limit {}): {}", o.rss_limit_mib, rss.join(", "));
    let worst = |f: fn(&Measured) -> Option<Duration>| {
        let v: Vec<f64> = measured.iter().filter_map(f).map(|d| d.as_secs_f64()).collect();
        let missed = measured.len() - v.len();
        format!("max {:.1}s{}", v.iter().copied().fold(0.0, f64::max), if missed > 0 { format!(", {missed} over the limit") } else { String::new() })
    };
    let doubles: Vec<f64> = measured.iter().filter_map(|m| m.last_double).map(|d| d.as_secs_f64()).collect();
    let unheld: usize = measured.iter().map(|m| m.unheld).sum();
    println!(
        "checkpoints {}: all up {}; operations accounted for {}; two holders of an address after the heal in {} of {}, last seen \
         at most {:.1}s after it (settle window {}s); addresses unheld at the end of a watch: {unheld}",
        measured.len(),
        worst(|m| m.converged),
        worst(|m| m.applied),
        doubles.len(),
        measured.iter().filter(|m| m.watched).count(),
        doubles.iter().copied().fold(0.0, f64::max),
        o.settle.as_secs()
    );
    println!("invariant violations: {}", l.violations.len());
    for inv in Invariant::ALL {
        let n = l.violations.iter().filter(|v| v.invariant == inv).count();
        println!("  {:<58} {n}", inv.name());
    }
    for v in l.violations.iter().take(20) {
        println!("  [{:7.1}s] {}: {}", v.at, v.invariant.name(), v.detail);
    }
    if l.violations.len() > 20 {
        println!("  ... {} more above", l.violations.len() - 20);
    }
}
