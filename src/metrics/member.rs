//! The metrics of a member daemon (eccmgr, ecnode): one [`Stats`] snapshot of its node core,
//! taken by the daemon's loop when a scrape asks, with the process's own figures. The names
//! and their meaning are listed in README.md ("Metrics").

use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use eccluster_proto::stats::{Histogram, Stats};
use eccluster_proto::Role;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::process::ProcessFigures;
use super::{MetricsListener, Scrape};
use crate::config::metrics::MetricsListener as MetricsConfig;

/// A scrape's request to the daemon's loop: send the node core's counters here.
pub type StatsRequest = oneshot::Sender<Stats>;

/// Binds the metrics listener `config` asks for (a port in use stops the start, naming the
/// configuration's place and the address) and serves it on `tracker` until `shutdown`. Each
/// scrape asks the daemon's loop for a [`Stats`] snapshot through the receiver returned,
/// which the loop answers between two turns; `None` when metrics are off.
pub async fn start(
    config: Option<&MetricsConfig>,
    name: &str,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Result<Option<mpsc::Receiver<StatsRequest>>> {
    let Some(config) = config else { return Ok(None) };
    let listener = MetricsListener::bind(config.addr, &format!("{}: Metrics_Listener", config.origin)).await?;
    // One scrape at a time is served, so one request ever waits here.
    let (requests, loop_side) = mpsc::channel::<StatsRequest>(1);
    let started = Instant::now();
    let name = name.to_owned();
    let scrape: Scrape = Arc::new(move || {
        let requests = requests.clone();
        let name = name.clone();
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            requests.send(tx).await.map_err(|_| "the daemon is stopping".to_owned())?;
            let stats = rx.await.map_err(|_| "the daemon is stopping".to_owned())?;
            Ok(MemberSnapshot { name, stats, process: ProcessFigures::read(started) }.registry())
        })
    });
    let stop = shutdown.clone();
    tracker.spawn(async move {
        if let Err(error) = listener.serve(scrape, stop).await {
            tracing::error!(error = %format!("{error:#}"), "metrics listener failed");
        }
    });
    Ok(Some(loop_side))
}

/// The next scrape's request, or never when metrics are off.
pub async fn next_request(requests: &mut Option<mpsc::Receiver<StatsRequest>>) -> Option<StatsRequest> {
    match requests {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What one scrape of a member shows.
#[derive(Debug, Clone)]
pub struct MemberSnapshot {
    /// The member's name.
    pub name: String,
    /// The node core's counters and gauges.
    pub stats: Stats,
    /// The process's figures.
    pub process: ProcessFigures,
}

impl MemberSnapshot {
    /// The registry of one scrape: every metric named `eccluster_…`, labelled with the role.
    pub fn registry(self) -> Registry {
        let role = match self.stats.role {
            Role::Manager => "manager",
            Role::Node => "node",
        };
        let mut registry = super::registry(&[("role", role.to_owned())]);
        registry.register_collector(Box::new(self));
        registry
    }
}

type Enc<'a> = DescriptorEncoder<'a>;
type Fmt = Result<(), std::fmt::Error>;

fn gauge(enc: &mut Enc<'_>, name: &str, help: &str, value: u64) -> Fmt {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&value)
}

fn gauge_f64(enc: &mut Enc<'_>, name: &str, help: &str, value: f64) -> Fmt {
    enc.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&value)
}

/// A counter; the encoder appends `_total` to `name`.
fn counter(enc: &mut Enc<'_>, name: &str, help: &str, value: u64) -> Fmt {
    enc.encode_descriptor(name, help, None, MetricType::Counter)?.encode_counter::<NoLabelSet, _, u64>(&value, None)
}

fn histogram(enc: &mut Enc<'_>, name: &str, help: &str, h: &Histogram) -> Fmt {
    enc.encode_descriptor(name, help, None, MetricType::Histogram)?.encode_histogram::<NoLabelSet>(
        h.sum.as_secs_f64(),
        h.count,
        &h.buckets_in_seconds(),
        None,
    )
}

impl Collector for MemberSnapshot {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Fmt {
        let s = &self.stats;
        let enc = &mut enc;
        {
            let mut info = enc.encode_descriptor("member", "This member: its name and subcluster", None, MetricType::Info)?;
            info.encode_info(&[("name", self.name.as_str()), ("subcluster", s.subcluster.as_str())])?;
        }
        {
            let mut members =
                enc.encode_descriptor("members", "Members by subcluster and state, as this member sees them", None, MetricType::Gauge)?;
            for row in &s.members {
                for (state, n) in [("alive", row.up), ("suspect", row.suspect), ("down", row.down)] {
                    members.encode_family(&[("subcluster", row.subcluster.as_str()), ("state", state)])?.encode_gauge(&n)?;
                }
            }
        }
        let m = &s.counters.membership;
        counter(enc, "suspicions_raised", "Probes of a peer that went unanswered: the peer is suspected", m.suspicions_raised)?;
        counter(enc, "suspicions_refuted", "Suspicions of this member that it refuted", m.suspicions_refuted)?;
        counter(enc, "false_downs_refuted", "Times this member was declared down while alive and rejoined", m.false_downs_refuted)?;
        counter(enc, "member_downs", "Members declared down (crashed, cut off or left)", m.downs)?;
        counter(enc, "member_renewals", "Members back under a renewed identity", m.renewals)?;
        counter(enc, "isolations", "Times this member lost every peer at once and started afresh", m.isolations)?;
        counter(enc, "gossip_refused", "Member identities cut out of gossip: not in the segment file as given", m.gossip_refused)?;
        histogram(enc, "probe_rtt_seconds", "Round-trip time of this member's direct probes", &m.probe_rtt)?;
        let o = &s.counters.ops;
        match s.role {
            Role::Manager => {
                counter(enc, "operations_sequenced", "Operations sequenced", o.sequenced)?;
                counter(enc, "operations_completed", "Operations every target answered (or left)", o.completed)?;
                counter(enc, "operations_timed_out", "Operations with targets silent past Broadcast_Timeout", o.timed_out)?;
                gauge(enc, "operations_in_flight", "Operations sequenced and not yet completed", o.in_flight)?;
                histogram(enc, "operation_latency_seconds", "Time from sequencing an operation to its last answer", &o.latency)?;
            }
            Role::Node => {
                counter(enc, "operations_applied", "Operations this node applied (this incarnation)", o.applied)?;
                let d = &s.counters.duravip;
                gauge(enc, "duravip_addresses_held", "DuraVIP addresses held by this node", d.held)?;
                gauge(enc, "duravip_addresses_bound", "DuraVIP addresses this node may hold (bindings)", d.bound)?;
                counter(enc, "duravip_acquisitions", "DuraVIP addresses acquired", d.acquired)?;
                counter(enc, "duravip_releases", "DuraVIP addresses released", d.released)?;
                counter(enc, "duravip_moves", "duravip move operations applied", d.moves)?;
                counter(enc, "duravip_conflicts", "Another node gave up an address this node held", d.conflicts)?;
            }
        }
        if s.revisions.iter().any(|r| r.running.is_some()) {
            let mut running =
                enc.encode_descriptor("config_revision_running", "Configuration revision this node runs", None, MetricType::Gauge)?;
            for r in &s.revisions {
                if let Some(rev) = r.running {
                    running.encode_family(&[("repo", r.repo.as_str())])?.encode_gauge(&rev)?;
                }
            }
        }
        if s.revisions.iter().any(|r| r.newest.is_some()) {
            let mut newest =
                enc.encode_descriptor("config_revision_newest", "Newest configuration revision known", None, MetricType::Gauge)?;
            for r in &s.revisions {
                if let Some(rev) = r.newest {
                    newest.encode_family(&[("repo", r.repo.as_str())])?.encode_gauge(&rev)?;
                }
            }
        }
        if let Some(bytes) = self.process.resident_bytes {
            gauge(enc, "process_resident_memory_bytes", "Resident memory of the daemon", bytes)?;
        }
        gauge_f64(enc, "process_uptime_seconds", "Seconds since the daemon started", self.process.uptime_secs)
    }
}
