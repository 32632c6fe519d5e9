//! The continuous checks: once a second, every running node's incarnation and applied log
//! (checked for order and duplicates on every read) and every daemon's resident memory.
//! An answer is credited to a process only if that process is still the member's current
//! one after the answer came, so a restart in between cannot mix two processes' logs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::ledger::{Id, Ledger, Status};
use crate::rig::{ask_json, rss_kib};
use crate::schedule::{MANAGER, MEMBERS};
use crate::traffic::lock;

const ANSWER_LIMIT: Duration = Duration::from_secs(2);

/// One pass over every member.
pub async fn poll_once(ledger: &Mutex<Ledger>, consoles: &BTreeMap<String, PathBuf>) {
    for name in MEMBERS {
        let (gen, status, pid) = {
            let l = lock(ledger);
            let m = &l.members[name];
            (m.gen, m.status, m.pid)
        };
        if status == Status::Down {
            continue;
        }
        if let Some(kib) = pid.and_then(rss_kib) {
            lock(ledger).record_rss(name, gen, kib);
        }
        if name == MANAGER || status != Status::Running {
            continue;
        }
        let console = &consoles[name];
        let info = ask_json(console, "cluster info", ANSWER_LIMIT).await;
        let oplog = ask_json(console, "cluster oplog", ANSWER_LIMIT).await;
        let mut l = lock(ledger);
        let m = &l.members[name];
        if m.gen != gen || m.status == Status::Down {
            continue;
        }
        if let Some(inc) = info.as_ref().and_then(|v| v["incarnation"].as_str()?.parse::<u64>().ok()) {
            l.record_incarnation(name, gen, inc);
        }
        if let Some(ids) = oplog.as_ref().and_then(applied) {
            l.record_oplog(name, gen, ids);
        }
    }
}

/// The ids of `json cluster oplog`, if all of them were kept (the log keeps the latest
/// 100,000) and all parse.
fn applied(v: &Value) -> Option<Vec<Id>> {
    let ids: Vec<Id> = v["applied"].as_array()?.iter().map(|i| Id::parse(i.as_str()?)).collect::<Option<_>>()?;
    (v["total"].as_u64()? == ids.len() as u64).then_some(ids)
}

/// Polls until `stop`.
pub async fn watch(ledger: Arc<Mutex<Ledger>>, consoles: BTreeMap<String, PathBuf>, stop: CancellationToken) {
    loop {
        poll_once(&ledger, &consoles).await;
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
