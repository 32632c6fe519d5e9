//! The report of a run: the figures an operator reads after a rehearsal (detection times,
//! false downs, convergence after heals, traffic per node, assertion and invariant results)
//! as a [`Report`] value, and its terminal table ([`Report`]'s `Display`). Where a core does
//! not exist yet the table says so instead of showing a number.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::assertions::Verdict;
use crate::invariants::Violation;
use crate::sim::Finished;
use crate::stats::{Distribution, Episode, Traffic};
use crate::time::{format_duration, SimTime};
use crate::vips::{self, VipSummary};

/// One assertion's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionOutcome {
    /// Which step.
    pub label: String,
    /// True if it held.
    pub passed: bool,
    /// When it held, or why it did not.
    pub detail: String,
}

/// Everything a run measured and concluded.
#[derive(Debug, Clone)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// Hosts simulated.
    pub nodes: usize,
    /// Simulated time.
    pub simulated: Duration,
    /// Wall time of the event loop.
    pub wall: Duration,
    /// Events handled.
    pub events: u64,
    /// Crash to `MemberDown`, per survivor.
    pub detection: Option<Distribution>,
    /// Crashes in the run.
    pub crashes: usize,
    /// Survivors that never saw a crashed, still-down member down.
    pub missed_detections: u64,
    /// Leave to `MemberDown`, per survivor.
    pub leave_seen: Option<Distribution>,
    /// Leaves in the run.
    pub leaves: usize,
    /// Down declarations about running, reachable members.
    pub false_downs: u64,
    /// Convergence episodes.
    pub episodes: Vec<Episode>,
    /// Message counters.
    pub traffic: Traffic,
    /// Messages sent per running node per simulated second.
    pub messages_per_node_sec: f64,
    /// Bytes sent per running node per simulated second.
    pub bytes_per_node_sec: f64,
    /// Ordered operations applied, if an operations core ran.
    pub ops_applied: Option<u64>,
    /// What the node cores counted, summed over every node and run (the daemons' metrics).
    pub core_counters: eccluster_proto::stats::Counters,
    /// Operations the timeline submitted, refused, still incomplete at the end.
    pub ops_submitted: (u64, u64, usize),
    /// Submission to completion at the manager.
    pub ops_completion: Option<Distribution>,
    /// DuraVIP report rows, if the scenario bound addresses.
    pub vip_rows: Vec<(&'static str, String)>,
    /// DuraVIP figures, if the scenario bound addresses.
    pub vips: Option<VipSummary>,
    /// Per address, who held it from when (terminal text).
    pub vip_history: Vec<(std::net::IpAddr, String)>,
    /// Partitions and heals in time order, to read the holder history against.
    pub cuts: Vec<(SimTime, &'static str)>,
    /// Commands the manager refused, with the reason.
    pub refusals: Vec<crate::sim::Refusal>,
    /// Assertion outcomes in timeline order.
    pub assertions: Vec<AssertionOutcome>,
    /// Broken invariants (the first 1000).
    pub violations: Vec<Violation>,
    /// Broken invariants, all counted.
    pub violations_total: u64,
    /// Remarks.
    pub notes: Vec<String>,
    /// Trace hash.
    pub trace_hash: String,
    /// The command that replays this run.
    pub replay: String,
    /// True if every assertion held and no invariant broke.
    pub passed: bool,
}

impl Report {
    /// The report of a finished run of the scenario file `scenario_arg`.
    pub fn new(f: &Finished, scenario_arg: &Path) -> Report {
        let assertions: Vec<AssertionOutcome> = f
            .assertions
            .items()
            .iter()
            .map(|a| match &a.verdict {
                Verdict::Held(t) => AssertionOutcome {
                    label: a.label.clone(),
                    passed: true,
                    detail: format!("held at {t} (+{})", format_duration(t.since(a.started))),
                },
                Verdict::Failed(t, why) => AssertionOutcome {
                    label: a.label.clone(),
                    passed: false,
                    detail: format!("failed at {t}: {why}"),
                },
                Verdict::Pending => AssertionOutcome { label: a.label.clone(), passed: false, detail: "never decided".into() },
            })
            .collect();
        let vips = (!f.vips.is_empty())
            .then(|| vips::summarize(&f.vips, &f.vip_timeline, SimTime::from_duration(f.simulated)));
        let passed = !f.stopped_early && f.violations_total == 0 && assertions.iter().all(|a| a.passed);
        let node_secs = f.stats.node_seconds(SimTime::from_duration(f.simulated)).max(1e-9);
        let mut replay = format!("eccluster sim run {} --seed {}", scenario_arg.display(), f.seed);
        if let Some(n) = f.nodes_override {
            replay.push_str(&format!(" --nodes {n}"));
        }
        Report {
            scenario: f.scenario.name.clone(),
            seed: f.seed,
            nodes: f.topology.len(),
            simulated: f.simulated,
            wall: f.wall,
            events: f.stats.events,
            detection: Distribution::of(&f.stats.detection),
            crashes: f.stats.stop_count(false),
            missed_detections: f.missed_crashes,
            leave_seen: Distribution::of(&f.stats.leave_seen),
            leaves: f.stats.stop_count(true),
            false_downs: f.false_downs,
            episodes: f.stats.episodes.clone(),
            traffic: f.stats.traffic,
            messages_per_node_sec: f.stats.traffic.sent as f64 / node_secs,
            bytes_per_node_sec: f.stats.traffic.sent_bytes as f64 / node_secs,
            ops_applied: Some(f.ops_applied),
            core_counters: f.core_counters.clone(),
            ops_submitted: (f.ops.submitted, f.ops.refused, f.ops.incomplete()),
            ops_completion: Distribution::of(&f.ops.completion),
            vip_rows: vips.as_ref().map(|v| v.rows(&f.topology)).unwrap_or_default(),
            vips,
            vip_history: vips::history(&f.vips, &f.vip_timeline, SimTime::from_duration(f.simulated), &f.topology, 12),
            cuts: f
                .stats
                .episodes
                .iter()
                .filter(|e| matches!(e.label, "partition" | "one-way partition" | "isolate" | "heal"))
                .map(|e| (e.started, e.label))
                .collect(),
            refusals: f.ops.refusals.clone(),
            assertions,
            violations: f.violations.clone(),
            violations_total: f.violations_total,
            notes: f.notes.clone(),
            trace_hash: f.trace_hash.clone(),
            replay,
            passed,
        }
    }

    /// Time to convergence after each heal (`None`: not converged before the next change or
    /// the end).
    pub fn convergence_after(&self, label: &str) -> Vec<(SimTime, Option<Duration>)> {
        self.episodes
            .iter()
            .filter(|e| e.label == label)
            .map(|e| (e.started, e.converged.map(|c| c.since(e.started))))
            .collect()
    }

    /// Simulated seconds per wall second.
    pub fn speed(&self) -> f64 {
        self.simulated.as_secs_f64() / self.wall.as_secs_f64().max(1e-9)
    }
}

/// A histogram bucket's upper bound: `2.5ms`, `1s`, `> 10s` for the last, unbounded one.
fn bound(d: Duration) -> String {
    if d == Duration::MAX {
        "> 10s".to_owned()
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_micros() as f64 / 1000.0)
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

fn dist_row(f: &mut fmt::Formatter<'_>, label: &str, d: &Option<Distribution>, events: usize, missed: u64) -> fmt::Result {
    match d {
        Some(d) => {
            write!(
                f,
                "  {label:<34} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
                d.count,
                format_duration(d.min),
                format_duration(d.p50),
                format_duration(d.p90),
                format_duration(d.p99),
                format_duration(d.max)
            )?;
            write!(f, "   ({events} events")?;
            if missed > 0 {
                write!(f, ", {missed} survivor views never updated")?;
            }
            writeln!(f, ")")
        }
        None if events == 0 => writeln!(f, "  {label:<34} {:>6}   (none in this scenario)", 0),
        None => writeln!(f, "  {label:<34} {:>6}   ({events} events, never seen by a survivor)", 0),
    }
}

fn episode_summary(report: &Report, label: &str) -> Option<String> {
    let eps = report.convergence_after(label);
    if eps.is_empty() {
        return None;
    }
    let parts: Vec<String> = eps
        .iter()
        .take(6)
        .map(|(at, took)| match took {
            Some(d) => format!("{} (at {at})", format_duration(*d)),
            None => format!("not converged (at {at})"),
        })
        .collect();
    let mut s = parts.join("; ");
    if eps.len() > 6 {
        let done: Vec<Duration> = eps.iter().filter_map(|(_, d)| *d).collect();
        let worst = done.iter().max().map(|d| format_duration(*d)).unwrap_or_else(|| "-".into());
        s = format!("{} episodes, {} converged, slowest {worst}", eps.len(), done.len());
    }
    Some(s)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "eccluster simulation: {} — seed {}, {} nodes", self.scenario, self.seed, self.nodes)?;
        writeln!(
            f,
            "  simulated {} in {:.2}s wall ({:.1}x), {} events, trace {}",
            format_duration(self.simulated),
            self.wall.as_secs_f64(),
            self.speed(),
            self.events,
            self.trace_hash
        )?;
        writeln!(f)?;
        writeln!(f, "  {:<34} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}", "detection time", "n", "min", "p50", "p90", "p99", "max")?;
        dist_row(f, "crash -> MemberDown (survivors)", &self.detection, self.crashes, self.missed_detections)?;
        dist_row(f, "leave -> MemberDown (survivors)", &self.leave_seen, self.leaves, 0)?;
        writeln!(f)?;
        writeln!(f, "  {:<34} {}", "false downs", self.false_downs)?;
        for (label, title) in [("boot", "convergence after boot"), ("heal", "convergence after heal")] {
            if let Some(s) = episode_summary(self, label) {
                writeln!(f, "  {title:<34} {s}")?;
            }
        }
        let others: Vec<&Episode> = self.episodes.iter().filter(|e| e.label != "boot" && e.label != "heal").collect();
        if !others.is_empty() {
            let done: Vec<Duration> = others.iter().filter_map(|e| e.converged.map(|c| c.since(e.started))).collect();
            let worst = done.iter().max().map(|d| format_duration(*d)).unwrap_or_else(|| "-".into());
            writeln!(
                f,
                "  {:<34} {} changes, {} converged before the next, slowest {worst}",
                "convergence after other changes",
                others.len(),
                done.len()
            )?;
        }
        let m = &self.core_counters.membership;
        writeln!(
            f,
            "  {:<34} {} raised, {} refuted; {} false downs refuted; {} downs declared, {} renewals, {} isolations",
            "suspicions (node cores)", m.suspicions_raised, m.suspicions_refuted, m.false_downs_refuted, m.downs, m.renewals, m.isolations
        )?;
        if let (Some(p50), Some(p99)) = (m.probe_rtt.quantile_bound(0.5), m.probe_rtt.quantile_bound(0.99)) {
            writeln!(
                f,
                "  {:<34} {} probes, p50 <= {}, p99 <= {}",
                "probe round trip (node cores)",
                m.probe_rtt.count,
                bound(p50),
                bound(p99)
            )?;
        }
        let o = &self.core_counters.ops;
        writeln!(
            f,
            "  {:<34} {} sequenced, {} completed, {} timed out, {} applied",
            "operations (node cores)", o.sequenced, o.completed, o.timed_out, o.applied
        )?;
        let t = &self.traffic;
        writeln!(
            f,
            "  {:<34} {:.1} msgs, {:.0} bytes",
            "sent per node per second", self.messages_per_node_sec, self.bytes_per_node_sec
        )?;
        writeln!(
            f,
            "  {:<34} {} sent, {} delivered, {} lost, {} cut, {} to stopped nodes, {} duplicated, {} refused",
            "messages", t.sent, t.delivered, t.dropped_loss, t.dropped_partition, t.dropped_dead, t.duplicated, t.rejected
        )?;
        let (submitted, refused, incomplete) = self.ops_submitted;
        match self.ops_applied {
            Some(n) => writeln!(
                f,
                "  {:<34} {submitted} submitted, {refused} refused, {n} applications (order checked), {incomplete} incomplete at the end",
                "ordered operations"
            )?,
            None => writeln!(f, "  {:<34} n/a (no ordered-operations core in this run)", "ordered operations")?,
        }
        if self.ops_completion.is_some() {
            dist_row(f, "operation complete (manager)", &self.ops_completion, submitted as usize, 0)?;
        }
        if self.vip_rows.is_empty() {
            writeln!(f, "  {:<34} n/a (no [duravip] bindings in this scenario)", "DuraVIP ownership")?;
        }
        for (label, text) in &self.vip_rows {
            writeln!(f, "  {label:<34} {text}")?;
        }
        if !self.vip_history.is_empty() {
            writeln!(f)?;
            writeln!(f, "  DuraVIP holders (from when, who; a+b: both sides of a cut held it)")?;
            if !self.cuts.is_empty() {
                let cuts: Vec<String> = self.cuts.iter().map(|(t, what)| format!("{what} at {t}")).collect();
                writeln!(f, "    {}", cuts.join(", "))?;
            }
            for (addr, line) in &self.vip_history {
                writeln!(f, "    {:<16} {line}", addr.to_string())?;
            }
        }
        if !self.refusals.is_empty() {
            writeln!(f)?;
            writeln!(f, "  refused commands")?;
            for r in &self.refusals {
                writeln!(f, "    at {} {}: {}: {}", r.at, r.step, r.command, r.why)?;
            }
        }
        writeln!(f)?;
        if !self.assertions.is_empty() {
            writeln!(f, "  assertions")?;
            for a in &self.assertions {
                writeln!(f, "    {} {}: {}", if a.passed { "PASS" } else { "FAIL" }, a.label, a.detail)?;
            }
        }
        if self.violations.is_empty() {
            writeln!(f, "  invariants: held after every event")?;
        } else {
            writeln!(f, "  invariant violations: {}", self.violations_total)?;
            for v in self.violations.iter().take(20) {
                writeln!(f, "    {v}")?;
            }
            if self.violations_total > 20 {
                writeln!(f, "    ... and {} more", self.violations_total - 20)?;
            }
        }
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        writeln!(f)?;
        if self.passed {
            writeln!(f, "PASS {} (seed {})", self.scenario, self.seed)
        } else {
            writeln!(f, "FAIL {} (seed {})", self.scenario, self.seed)?;
            writeln!(f, "replay: {}", self.replay)
        }
    }
}
