//! What a run measures: traffic counters, detection times (from a crash or leave to each
//! survivor's `MemberDown`), convergence episodes (from a change of the truth — boot, crash,
//! partition, heal — until every running node's view is right again), and the sampled
//! members-up series the plots draw. Pure bookkeeping; the simulation feeds it.

use std::time::Duration;

use crate::bitset::NodeSet;
use crate::time::SimTime;

/// Message counters over the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Messages the cores asked to send.
    pub sent: u64,
    /// Bytes of those messages.
    pub sent_bytes: u64,
    /// Messages handed to a running receiver (duplicates included).
    pub delivered: u64,
    /// Bytes delivered.
    pub delivered_bytes: u64,
    /// Lost at random.
    pub dropped_loss: u64,
    /// Dropped by a cut.
    pub dropped_partition: u64,
    /// Arrived at a stopped node.
    pub dropped_dead: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Refused by the receiving core (decode error, stale or foreign identity).
    pub rejected: u64,
    /// Addressed to an address no host has.
    pub unroutable: u64,
}

#[derive(Debug, Clone)]
struct StopRecord {
    node: u32,
    at: SimTime,
    incarnations: (u64, u64),
    graceful: bool,
    detected_by: NodeSet,
}

/// One change of the truth and how long the views took to match it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    /// What changed: `boot`, `crash`, `restart`, `leave`, `partition`, `heal`, ...
    pub label: &'static str,
    /// When.
    pub started: SimTime,
    /// When every view was right again (`None`: not before the next change or the end).
    pub converged: Option<SimTime>,
    /// True if another change came before convergence.
    pub interrupted: bool,
}

/// A change of the truth as it happened, for the charts' event marks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// When.
    pub at: SimTime,
    /// What: `boot`, `restart`, `crash`, `leave`, `partition`, `one-way partition`, `isolate`,
    /// `heal`.
    pub what: &'static str,
    /// The node that started or stopped (`None` for a change of the network).
    pub node: Option<u32>,
}

/// Members seen up over time, per subcluster of the observers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Group names (subclusters).
    pub groups: Vec<String>,
    /// Sample times, seconds.
    pub times: Vec<f64>,
    /// Per group, mean members seen up by the group's running nodes at each sample.
    pub mean: Vec<Vec<f64>>,
    /// Per group, the fewest seen up by one of its running nodes.
    pub min: Vec<Vec<f64>>,
    /// Per group, the most seen up.
    pub max: Vec<Vec<f64>>,
    /// Running nodes at each sample.
    pub running: Vec<f64>,
    /// Messages sent per second over the interval before each sample.
    pub messages_per_sec: Vec<f64>,
}

/// Everything measured during a run.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Message counters.
    pub traffic: Traffic,
    /// Crash-to-`MemberDown` times, one per (crash, survivor).
    pub detection: Vec<Duration>,
    /// Leave-to-`MemberDown` times, one per (leave, survivor).
    pub leave_seen: Vec<Duration>,
    /// Convergence episodes in order.
    pub episodes: Vec<Episode>,
    /// The plotted series.
    pub series: Series,
    /// Every change of the truth in order (episodes merge changes; this keeps each one).
    pub changes: Vec<Change>,
    /// Events handled.
    pub events: u64,
    stops: Vec<StopRecord>,
    stops_of: Vec<Vec<u32>>,
    node_nanos: u128,
    running: u64,
    last_change: SimTime,
    last_sample_sent: u64,
    last_sample_at: SimTime,
}

impl Stats {
    /// Stats for `n` nodes whose observers are grouped as `groups`.
    pub fn new(n: usize, groups: Vec<String>) -> Stats {
        let g = groups.len();
        Stats {
            stops_of: vec![Vec::new(); n],
            series: Series { groups, mean: vec![Vec::new(); g], min: vec![Vec::new(); g], max: vec![Vec::new(); g], ..Series::default() },
            ..Stats::default()
        }
    }

    /// The number of running nodes changes to `running` at `now`.
    pub fn set_running(&mut self, now: SimTime, running: usize) {
        self.node_nanos += u128::from(self.running) * u128::from(now.since(self.last_change).as_nanos() as u64);
        self.running = running as u64;
        self.last_change = now;
    }

    /// Node-seconds of running time up to `now`.
    pub fn node_seconds(&self, now: SimTime) -> f64 {
        let nanos = self.node_nanos + u128::from(self.running) * now.since(self.last_change).as_nanos();
        nanos as f64 / 1e9
    }

    /// Node `node` (incarnations `incarnations` of the run) stopped at `at`.
    pub fn on_stop(&mut self, node: usize, at: SimTime, incarnations: (u64, u64), graceful: bool, n: usize) {
        self.stops_of[node].push(self.stops.len() as u32);
        self.stops.push(StopRecord { node: node as u32, at, incarnations, graceful, detected_by: NodeSet::new(n) });
    }

    /// `observer` (running since `observer_since`) declared `member` at `incarnation` down.
    pub fn on_member_down(&mut self, observer: usize, observer_since: SimTime, member: usize, incarnation: u64, now: SimTime) {
        for &r in self.stops_of[member].iter().rev() {
            let rec = &mut self.stops[r as usize];
            if incarnation < rec.incarnations.0 || incarnation > rec.incarnations.1 {
                continue;
            }
            if observer_since <= rec.at && rec.detected_by.insert(observer) {
                let took = now.since(rec.at);
                if rec.graceful {
                    self.leave_seen.push(took);
                } else {
                    self.detection.push(took);
                }
            }
            return;
        }
    }

    /// Survivors that never declared a member down that is still stopped at the end, over
    /// crashes (`graceful` false) or leaves.
    pub fn missed(&self, graceful: bool, running: &NodeSet, run_started: &[SimTime]) -> u64 {
        let mut missed = 0;
        for rec in self.stops.iter().filter(|r| r.graceful == graceful) {
            if running.contains(rec.node as usize) {
                continue;
            }
            missed += running
                .iter()
                .filter(|&x| run_started[x] <= rec.at && !rec.detected_by.contains(x))
                .count() as u64;
        }
        missed
    }

    /// Number of crashes (`graceful` false) or leaves.
    pub fn stop_count(&self, graceful: bool) -> usize {
        self.stops.iter().filter(|r| r.graceful == graceful).count()
    }

    /// The truth changed at `now`; an open episode is interrupted.
    ///
    /// First starts of nodes (`boot`) extend one boot episode, reopening it if it had
    /// converged before the last node started.
    pub fn begin_episode(&mut self, label: &'static str, now: SimTime) {
        if let Some(last) = self.episodes.last_mut() {
            if label == "boot" && last.label == "boot" && !last.interrupted {
                last.converged = None;
                return;
            }
            if last.converged.is_none() && !last.interrupted {
                if last.started == now {
                    last.label = label;
                    return;
                }
                last.interrupted = true;
            }
        }
        self.episodes.push(Episode { label, started: now, converged: None, interrupted: false });
    }

    /// Every view is right at `now`.
    pub fn on_converged(&mut self, now: SimTime) {
        if let Some(last) = self.episodes.last_mut() {
            if last.converged.is_none() && !last.interrupted {
                last.converged = Some(now);
            }
        }
    }

    /// Adds one sample: per group, the members-up counts of its running nodes.
    pub fn sample(&mut self, now: SimTime, per_group: &[Vec<usize>], running: usize) {
        if !self.series.times.is_empty() && now == self.last_sample_at {
            return;
        }
        self.series.times.push(now.as_secs_f64());
        for (g, counts) in per_group.iter().enumerate() {
            let (mean, min, max) = if counts.is_empty() {
                (f64::NAN, f64::NAN, f64::NAN)
            } else {
                let sum: usize = counts.iter().sum();
                let min = counts.iter().copied().min().unwrap_or(0);
                let max = counts.iter().copied().max().unwrap_or(0);
                (sum as f64 / counts.len() as f64, min as f64, max as f64)
            };
            self.series.mean[g].push(mean);
            self.series.min[g].push(min);
            self.series.max[g].push(max);
        }
        self.series.running.push(running as f64);
        let secs = now.since(self.last_sample_at).as_secs_f64();
        let sent = self.traffic.sent - self.last_sample_sent;
        self.series.messages_per_sec.push(if secs > 0.0 { sent as f64 / secs } else { 0.0 });
        self.last_sample_sent = self.traffic.sent;
        self.last_sample_at = now;
    }
}

/// min / p50 / p90 / p99 / max of a set of durations (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Distribution {
    /// Number of samples.
    pub count: usize,
    /// Smallest.
    pub min: Duration,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

impl Distribution {
    /// The distribution of `samples`, or `None` if there are none.
    pub fn of(samples: &[Duration]) -> Option<Distribution> {
        if samples.is_empty() {
            return None;
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |p: f64| {
            let r = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            sorted[r - 1]
        };
        Some(Distribution {
            count: sorted.len(),
            min: sorted[0],
            p50: rank(0.5),
            p90: rank(0.9),
            p99: rank(0.99),
            max: sorted[sorted.len() - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> SimTime {
        SimTime::from_duration(Duration::from_millis(ms))
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let d = Distribution::of(&samples).expect("samples");
        assert_eq!((d.min, d.p50, d.p90, d.p99, d.max), (
            Duration::from_millis(1),
            Duration::from_millis(50),
            Duration::from_millis(90),
            Duration::from_millis(99),
            Duration::from_millis(100)
        ));
        assert!(Distribution::of(&[]).is_none());
    }

    #[test]
    fn detection_counts_each_survivor_once_and_only_for_the_dead_run() {
        let mut s = Stats::new(3, vec!["all".into()]);
        s.on_stop(2, t(1_000), (1, 3), false, 3);
        s.on_member_down(0, t(0), 2, 3, t(2_500));
        s.on_member_down(0, t(0), 2, 3, t(2_600));
        s.on_member_down(1, t(1_500), 2, 3, t(2_700));
        s.on_member_down(1, t(0), 2, 9, t(2_700));
        assert_eq!(s.detection, vec![Duration::from_millis(1_500)]);
        let running = NodeSet::from_indices(3, [0, 1]);
        assert_eq!(s.missed(false, &running, &[t(0), t(0), t(0)]), 1, "node 1 never saw it");
        assert_eq!(s.stop_count(false), 1);
    }

    #[test]
    fn episodes_are_interrupted_by_the_next_change() {
        let mut s = Stats::new(1, vec!["all".into()]);
        s.begin_episode("boot", t(0));
        s.on_converged(t(2_000));
        s.begin_episode("partition", t(30_000));
        s.begin_episode("heal", t(70_000));
        s.on_converged(t(75_000));
        s.on_converged(t(76_000));
        assert_eq!(s.episodes.len(), 3);
        assert_eq!(s.episodes[0].converged, Some(t(2_000)));
        assert!(s.episodes[1].interrupted);
        assert_eq!(s.episodes[2].converged, Some(t(75_000)));
        s.set_running(t(0), 4);
        s.set_running(t(10_000), 2);
        assert!((s.node_seconds(t(20_000)) - 60.0).abs() < 1e-9);
    }
}
