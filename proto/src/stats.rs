//! Counters and gauges of a member, read as one [`Stats`] snapshot
//! ([`crate::node::Node::stats`]). The cores keep plain integers and fixed-size bucket arrays
//! as they run (nothing is allocated per packet); a snapshot gathers them with the gauges
//! read from the state (members by state, addresses held, revisions). The daemons export a
//! snapshot as Prometheus metrics, the simulator prints it in its report, so both shells
//! report the same figures. No I/O here.

use std::time::Duration;

use crate::ids::Role;

/// Upper bounds of the latency buckets, in microseconds: 0.5 ms to 10 s, roughly ×2.5 apart
/// (the last bucket, above 10 s, is implied: `+Inf`).
pub const LATENCY_BOUNDS_MICROS: [u64; 14] =
    [500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000];

/// A latency histogram with fixed buckets ([`LATENCY_BOUNDS_MICROS`]): a count per bucket,
/// the number of samples and their sum. Recording costs a few comparisons and no allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Samples per bucket (not cumulative); the last entry counts those above the last bound.
    pub buckets: [u64; LATENCY_BOUNDS_MICROS.len() + 1],
    /// Number of samples.
    pub count: u64,
    /// Sum of the samples.
    pub sum: Duration,
}

impl Histogram {
    /// Adds one sample.
    pub fn record(&mut self, sample: Duration) {
        let micros = u64::try_from(sample.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_MICROS.iter().position(|bound| micros <= *bound).unwrap_or(LATENCY_BOUNDS_MICROS.len());
        if let Some(slot) = self.buckets.get_mut(bucket) {
            *slot += 1;
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(sample);
    }

    /// Each bucket with its upper bound in seconds: `(bound, samples in the bucket)`, not
    /// cumulative, ending with `+Inf` and the samples above the last bound.
    pub fn buckets_in_seconds(&self) -> Vec<(f64, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, n)| (LATENCY_BOUNDS_MICROS.get(i).map_or(f64::INFINITY, |us| *us as f64 / 1e6), *n))
            .collect()
    }

    /// Adds the samples of `other` (histograms of several members or runs, summed).
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// The sample below which a fraction `q` (0 to 1) of the samples lie, as the upper bound
    /// of the bucket that holds it (`None` without samples; `Duration::MAX` for the last bucket).
    pub fn quantile_bound(&self, q: f64) -> Option<Duration> {
        if self.count == 0 {
            return None;
        }
        let rank = ((self.count as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut total = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            total += n;
            if total >= rank {
                return Some(LATENCY_BOUNDS_MICROS.get(i).map_or(Duration::MAX, |us| Duration::from_micros(*us)));
            }
        }
        Some(Duration::MAX)
    }
}

/// Members of one subcluster by state, as this member sees them (itself included, as up).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberCounts {
    /// The subcluster.
    pub subcluster: String,
    /// Members up (alive).
    pub up: u64,
    /// Members suspected.
    pub suspect: u64,
    /// Members declared down (until they come back).
    pub down: u64,
}

/// What membership (SWIM) counted since the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipCounters {
    /// Probes of this member that got no answer, direct or indirect: the peer is now
    /// suspected by this member (suspicions it raised).
    pub suspicions_raised: u64,
    /// Suspicions of this member it heard and refuted (by raising its incarnation).
    pub suspicions_refuted: u64,
    /// Times this member was declared down while alive and came back under a renewed
    /// identity (false downs it refuted).
    pub false_downs_refuted: u64,
    /// Members declared down (each declaration heard or made).
    pub downs: u64,
    /// Members that came back under a renewed identity after being declared down.
    pub renewals: u64,
    /// Times every peer was lost at once (this member was cut off) and it started afresh.
    pub isolations: u64,
    /// Member identities cut out of gossip because the segment file does not list them.
    pub gossip_refused: u64,
    /// Round-trip times of this member's direct probes (ping sent → ack received).
    pub probe_rtt: Histogram,
}

/// What the ordered-operations core counted since the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpsCounters {
    /// Manager: operations sequenced (submitted and given an id).
    pub sequenced: u64,
    /// Manager: operations whose every target answered or left.
    pub completed: u64,
    /// Manager: operations whose answer timeout passed with targets still silent.
    pub timed_out: u64,
    /// Manager: operations sequenced and not yet completed (a gauge).
    pub in_flight: u64,
    /// Node: operations applied (run and answered) by this incarnation.
    pub applied: u64,
    /// Manager: time from sequencing an operation to its last answer (operations that
    /// completed; those that timed out are counted in `timed_out` only).
    pub latency: Histogram,
}

/// What the DuraVIP core counted since the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DuraVipCounters {
    /// Addresses held now (a gauge).
    pub held: u64,
    /// Addresses bound here (a gauge).
    pub bound: u64,
    /// Addresses acquired (configured on this machine).
    pub acquired: u64,
    /// Addresses released.
    pub released: u64,
    /// `duravip move` operations applied.
    pub moves: u64,
    /// Conflicts seen: another node gave up an address this node held (the far side of a
    /// healed partition, or a claimant that lost).
    pub conflicts: u64,
}

/// One configuration repository as a member sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevisionCount {
    /// The repository (`global` or a subcluster).
    pub repo: String,
    /// The revision this node runs (nodes; `None` at a manager).
    pub running: Option<u64>,
    /// The newest revision known.
    pub newest: Option<u64>,
}

/// What the cores counted, without the gauges read from the member list
/// ([`crate::node::Node::counters`]: cheap enough to read for every member of a large
/// simulation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Membership counters.
    pub membership: MembershipCounters,
    /// Operations counters.
    pub ops: OpsCounters,
    /// DuraVIP counters (zero without bindings).
    pub duravip: DuraVipCounters,
}

impl Counters {
    /// Adds `other` to these (the counters of several members or runs, summed; gauges too).
    pub fn add(&mut self, other: &Counters) {
        let (m, o) = (&mut self.membership, &other.membership);
        m.suspicions_raised += o.suspicions_raised;
        m.suspicions_refuted += o.suspicions_refuted;
        m.false_downs_refuted += o.false_downs_refuted;
        m.downs += o.downs;
        m.renewals += o.renewals;
        m.isolations += o.isolations;
        m.gossip_refused += o.gossip_refused;
        m.probe_rtt.merge(&o.probe_rtt);
        let (p, o) = (&mut self.ops, &other.ops);
        p.sequenced += o.sequenced;
        p.completed += o.completed;
        p.timed_out += o.timed_out;
        p.in_flight += o.in_flight;
        p.applied += o.applied;
        p.latency.merge(&o.latency);
        let (d, o) = (&mut self.duravip, &other.duravip);
        d.held += o.held;
        d.bound += o.bound;
        d.acquired += o.acquired;
        d.released += o.released;
        d.moves += o.moves;
        d.conflicts += o.conflicts;
    }
}

/// One snapshot of a member's counters and gauges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Node or manager.
    pub role: Role,
    /// This member's subcluster.
    pub subcluster: String,
    /// Members by subcluster and state, in subcluster order.
    pub members: Vec<MemberCounts>,
    /// What the cores counted.
    pub counters: Counters,
    /// Configuration revisions by repository, in name order.
    pub revisions: Vec<RevisionCount>,
}

impl Stats {
    /// Members in `state` over every subcluster: `(up, suspect, down)`.
    pub fn member_totals(&self) -> (u64, u64, u64) {
        self.members.iter().fold((0, 0, 0), |(u, s, d), m| (u + m.up, s + m.suspect, d + m.down))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_samples_and_accumulates() {
        let mut h = Histogram::default();
        h.record(Duration::from_micros(400));
        h.record(Duration::from_millis(3));
        h.record(Duration::from_secs(60));
        assert_eq!(h.count, 3);
        assert_eq!(h.buckets[0], 1);
        assert_eq!(h.buckets[3], 1);
        assert_eq!(h.buckets[LATENCY_BOUNDS_MICROS.len()], 1);
        let buckets = h.buckets_in_seconds();
        assert_eq!(buckets.first(), Some(&(0.0005, 1)));
        assert_eq!(buckets.last().map(|(b, n)| (b.is_infinite(), *n)), Some((true, 1)));
        assert_eq!(h.quantile_bound(0.5), Some(Duration::from_millis(5)));
        assert_eq!(Histogram::default().quantile_bound(0.5), None);
    }
}
