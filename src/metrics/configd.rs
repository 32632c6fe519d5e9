//! The metrics of ecconfigd: the newest revision of each repository, commits and rollbacks
//! made, commits refused, logins refused. The server counts into [`ConfigdCounters`] as it
//! serves (atomics, no lock); a scrape reads them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::process::ProcessFigures;

/// What ecconfigd counts as it serves.
#[derive(Debug, Default)]
pub struct ConfigdCounters {
    /// Commits that made a revision.
    pub commits: AtomicU64,
    /// Rollbacks that made a revision.
    pub rollbacks: AtomicU64,
    /// Commits and rollbacks refused (a conflict, a file that does not parse, a bad path).
    pub commits_refused: AtomicU64,
    /// Requests refused for a wrong password or an unknown user.
    pub logins_failed: AtomicU64,
}

impl ConfigdCounters {
    /// Adds one to `counter`.
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a scrape of ecconfigd reads: the counters and the newest revisions.
#[derive(Debug, Clone)]
pub struct ConfigdSource {
    /// The counters the server keeps.
    pub counters: Arc<ConfigdCounters>,
    /// The newest revision of each repository.
    pub heads: watch::Receiver<BTreeMap<String, u64>>,
    /// When the server started.
    pub started: Instant,
}

impl ConfigdSource {
    /// The registry of one scrape.
    pub fn registry(&self) -> Registry {
        let c = &self.counters;
        let snapshot = ConfigdSnapshot {
            heads: self.heads.borrow().clone(),
            commits: c.commits.load(Ordering::Relaxed),
            rollbacks: c.rollbacks.load(Ordering::Relaxed),
            commits_refused: c.commits_refused.load(Ordering::Relaxed),
            logins_failed: c.logins_failed.load(Ordering::Relaxed),
            process: ProcessFigures::read(self.started),
        };
        let mut registry = super::registry(&[("role", "configd".to_owned())]);
        registry.register_collector(Box::new(snapshot));
        registry
    }
}

#[derive(Debug)]
struct ConfigdSnapshot {
    heads: BTreeMap<String, u64>,
    commits: u64,
    rollbacks: u64,
    commits_refused: u64,
    logins_failed: u64,
    process: ProcessFigures,
}

impl Collector for ConfigdSnapshot {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        {
            let mut newest = enc.encode_descriptor(
                "config_revision_newest",
                "Newest revision of each configuration repository",
                None,
                MetricType::Gauge,
            )?;
            for (repo, rev) in &self.heads {
                newest.encode_family(&[("repo", repo.as_str())])?.encode_gauge(rev)?;
            }
        }
        for (name, help, value) in [
            ("config_commits", "Commits that made a revision", self.commits),
            ("config_rollbacks", "Rollbacks that made a revision", self.rollbacks),
            ("config_commits_refused", "Commits and rollbacks refused (conflict, bad file)", self.commits_refused),
            ("config_logins_failed", "Requests refused for a wrong password or an unknown user", self.logins_failed),
        ] {
            enc.encode_descriptor(name, help, None, MetricType::Counter)?.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        if let Some(bytes) = self.process.resident_bytes {
            enc.encode_descriptor("process_resident_memory_bytes", "Resident memory of the daemon", None, MetricType::Gauge)?
                .encode_gauge(&bytes)?;
        }
        enc.encode_descriptor("process_uptime_seconds", "Seconds since the daemon started", None, MetricType::Gauge)?
            .encode_gauge(&self.process.uptime_secs)
    }
}
