//! The quiet checkpoint after each round, with every fault undone and the consoles held:
//! every member sees every other up; every acknowledged operation is applied by each target
//! it was sent to, or that target restarted or rejoined since; no node applied an operation
//! not sent to it; no DuraVIP address has two holders once the settle window after the heal
//! has passed (sampled from the heal on, alongside the other checks, until the window and a
//! watch after it are over). Then the manager's results buffer is flushed, as an operator would.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::ledger::{Invariant, Ledger};
use crate::rig::{ask, ask_json, view, Rig, VipProbe};
use crate::schedule::{MANAGER, MEMBERS};
use crate::traffic::lock;
use crate::watch::poll_once;

/// How long membership may take to converge after everything is healed.
const CONVERGE_LIMIT: Duration = Duration::from_secs(60);
/// How long acknowledged operations may take to be applied once membership has converged.
const APPLY_LIMIT: Duration = Duration::from_secs(30);
/// How long DuraVIP ownership is watched for a second holder after the settle window.
const HOLD_WATCH: Duration = Duration::from_secs(5);

/// Polls `check` every 250 ms until it holds or `limit` has passed; whether it held. Used only
/// to wait on other processes' state, which offers no event to await.
pub async fn within<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What one checkpoint measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub converged: Option<Duration>,
    pub applied: Option<Duration>,
    /// DuraVIP ownership was watched (not in the final, operations-only checkpoint).
    pub watched: bool,
    /// When two holders of one address were last seen, after the heal.
    pub last_double: Option<Duration>,
    /// Addresses nobody held at the end of the watch.
    pub unheld: usize,
}

pub struct Checkpoint<'a> {
    pub rig: &'a Rig,
    pub ledger: &'a Mutex<Ledger>,
    pub consoles: &'a BTreeMap<String, PathBuf>,
    /// The DuraVIP settle window; `None`: do not watch ownership.
    pub settle: Option<Duration>,
}

/// What watching DuraVIP ownership from the heal on found.
struct Watched {
    last_double: Option<Duration>,
    /// Two holders after the settle window: when, and who.
    late: Option<String>,
    unheld: usize,
}

fn doubled(holders: &BTreeMap<IpAddr, Vec<String>>) -> Option<String> {
    let two: Vec<String> =
        holders.iter().filter(|(_, who)| who.len() > 1).map(|(a, who)| format!("{a} held by {}", who.join(" and "))).collect();
    (!two.is_empty()).then(|| two.join("; "))
}

/// Samples the holders every 250 ms for `window` and `HOLD_WATCH` after it.
async fn watch_vips(probe: VipProbe, window: Duration) -> Watched {
    let start = Instant::now();
    let mut w = Watched { last_double: None, late: None, unheld: 0 };
    loop {
        let p = probe.clone();
        let holders = tokio::task::spawn_blocking(move || p.holders()).await.unwrap_or_default();
        let t = start.elapsed();
        if let Some(d) = doubled(&holders) {
            w.last_double = Some(t);
            if t >= window && w.late.is_none() {
                w.late = Some(format!("{:.1}s after every fault was undone (settle window {}s): {d}", t.as_secs_f64(), window.as_secs()));
            }
        }
        if t >= window + HOLD_WATCH {
            w.unheld = holders.values().filter(|who| who.is_empty()).count();
            return w;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

impl Checkpoint<'_> {
    /// Per member, what it sees wrong: any member not up, or up in an incarnation other
    /// than the one that member gives itself (a dead process's entry still standing).
    async fn not_up(&self) -> BTreeMap<&'static str, Result<Vec<String>, ()>> {
        let mut views = BTreeMap::new();
        for m in MEMBERS {
            views.insert(m, view(&self.consoles[m], m).await);
        }
        let own: BTreeMap<&str, u64> =
            MEMBERS.iter().filter_map(|m| Some((*m, views.get(m)?.as_ref()?.get(*m)?.1))).collect();
        views
            .into_iter()
            .map(|(observer, v)| {
                let wrong = v.map(|v| {
                    MEMBERS
                        .iter()
                        .filter_map(|o| match (v.get(*o), own.get(o)) {
                            (Some((state, inc)), Some(now)) if state == "up" && inc == now => None,
                            (Some((state, inc)), Some(now)) if state == "up" => Some(format!("{o} up in incarnation {inc} (it is in {now})")),
                            (Some((state, inc)), _) => Some(format!("{o} {state} (incarnation {inc})")),
                            (None, _) => Some(format!("{o} unknown")),
                        })
                        .collect::<Vec<_>>()
                });
                (observer, wrong.ok_or(()))
            })
            .collect()
    }

    pub async fn run(&self) -> Measured {
        let mut measured = Measured::default();
        let healed = Instant::now();
        let vips = self.settle.map(|window| tokio::spawn(watch_vips(self.rig.probe(), window)));

        let converged = within(CONVERGE_LIMIT, || async {
            self.not_up().await.values().all(|v| matches!(v, Ok(missing) if missing.is_empty()))
        })
        .await;
        if converged {
            measured.converged = Some(healed.elapsed());
        } else {
            let views: Vec<String> = self
                .not_up()
                .await
                .into_iter()
                .filter_map(|(m, v)| match v {
                    Ok(missing) if missing.is_empty() => None,
                    Ok(missing) => Some(format!("{m} sees {}", missing.join(", "))),
                    Err(()) => Some(format!("{m} does not answer")),
                })
                .collect();
            let detail = format!("{}s after every fault was undone: {}", CONVERGE_LIMIT.as_secs(), views.join("; "));
            lock(self.ledger).violate(Invariant::Membership, detail);
        }

        let start = Instant::now();
        let ops_done = within(APPLY_LIMIT, || async {
            poll_once(self.ledger, self.consoles).await;
            if lock(self.ledger).resolve() == 0 {
                return true;
            }
            let ambiguous = lock(self.ledger).ambiguous();
            for (id, node, command) in ambiguous {
                if self.manager_result(&node, &command, &id.to_string()).await == "node left" {
                    lock(self.ledger).left(id, &node);
                }
            }
            false
        });
        if ops_done.await {
            measured.applied = Some(start.elapsed());
        }
        let overdue = lock(self.ledger).overdue();
        for o in overdue {
            let mut nodes = Vec::new();
            for node in o.nodes {
                let says = self.manager_result(&node, &o.command, &o.id.to_string()).await;
                nodes.push((node, says));
            }
            lock(self.ledger).lost(o.id, &nodes, o.same_manager);
        }
        lock(self.ledger).scan_oplogs();

        if let Some(vips) = vips {
            measured.watched = true;
            match vips.await {
                Ok(w) => {
                    measured.last_double = w.last_double;
                    measured.unheld = w.unheld;
                    if let Some(late) = w.late {
                        lock(self.ledger).violate(Invariant::Duravip, late);
                    }
                }
                Err(e) => println!("note: watching the DuraVIP addresses failed: {e}"),
            }
        }

        if ask(&self.consoles[MANAGER], "flush control cache", Duration::from_secs(2)).await.is_none() {
            println!("note: the manager did not answer 'flush control cache'");
        }
        measured
    }

    /// The manager's result for `node` of operation `id` (command `command`).
    async fn manager_result(&self, node: &str, command: &str, id: &str) -> String {
        let line = format!("retrieve_node {node} {command}");
        let rows = ask_json(&self.consoles[MANAGER], &line, Duration::from_secs(2)).await;
        match rows.as_ref().and_then(|r| r.as_array()?.first().cloned()) {
            Some(r) if r["id"].as_str() == Some(id) => r["status"].as_str().unwrap_or("?").to_owned(),
            Some(r) => format!("a result of operation {} instead", r["id"].as_str().unwrap_or("?")),
            None => "no result".to_owned(),
        }
    }
}
