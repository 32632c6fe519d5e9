//! Membership tuning: how often we probe, how long a suspect has to refute, how far updates
//! travel. Presets are derived from the cluster size, as foca's own presets are.

use std::num::{NonZeroU8, NonZeroUsize};
use std::time::Duration;

use crate::wire;

/// How the SWIM layer is tuned. Build one with [`MembershipConfig::lan`] and adjust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipConfig {
    /// How often each member probes one other member.
    pub probe_period: Duration,
    /// How long to wait for a direct ack before asking others to probe indirectly.
    pub probe_rtt: Duration,
    /// How many members are asked to probe indirectly.
    pub indirect_probes: NonZeroUsize,
    /// How long a suspect has to refute the suspicion before it is declared down.
    pub suspect_to_down_after: Duration,
    /// How many times each update is piggybacked before it is dropped.
    pub max_transmissions: NonZeroU8,
    /// How often updates are pushed to random members outside the probe cycle.
    pub gossip_period: Duration,
    /// How many members each gossip round reaches.
    pub gossip_fanout: NonZeroUsize,
    /// How often a member with no live peers announces itself to the seeds again.
    pub rejoin_period: Duration,
    /// How often a member asks a peer for its member list, to fill gaps.
    pub announce_period: Duration,
    /// How often a member tries to talk to members it believes down, so partitions heal.
    pub announce_down_period: Duration,
    /// How long a down member is remembered.
    pub remember_down_for: Duration,
}

impl MembershipConfig {
    /// A LAN preset for a cluster of about `cluster_size` members.
    ///
    /// Why these numbers:
    /// - Mail clusters live on LANs within a data centre, and links between data centres are
    ///   still tens of milliseconds, so a 400 ms probe period with a 150 ms direct-ack wait leaves
    ///   room for the indirect cycle (foca asks for period > 2 × rtt). The period is what a crash
    ///   waits for before anyone notices: every member probes one other per period in its own
    ///   shuffled order, so a dead member's first prober comes after a wait that is close to
    ///   exponential with a mean of one period, and the worst of many crashes sits in that
    ///   tail (measured at 32 members with 500 ms: 2.4 s with no probe of the dead member in
    ///   one crash of 18, against 2.0 s for the rest of detection). At 400 ms a wait that long
    ///   is about one crash in 400, for a quarter more probe traffic than at 500 ms — still
    ///   about one datagram and its ack per member per 400 ms (memberlist: 1 s / 500 ms).
    /// - Updates are gossiped every 100 ms to 3 members (memberlist: 200 ms): a suspicion reaches
    ///   the suspect, its refutation reaches the accuser and a death reaches the last survivor
    ///   in a few rounds, so the round sets both how long a suspect needs to refute and how long
    ///   the last survivor waits. A member gossips only while it has updates to send, so an idle
    ///   cluster pays nothing for the shorter round.
    /// - Suspicion lasts `max(1, log10 n) × 2 × probe_period` — 0.8 s up to 10 members, 1.2 s at
    ///   32, 2.4 s at 1,000 — growing with the cluster the way memberlist's does: at 32 members a
    ///   suspicion and its refutation each cross the cluster in about three gossip rounds, so
    ///   a live suspect refutes with a second to spare. It was three probe periods per log10 n
    ///   (2.26 s at 32) when gossip ran every 200 ms; that was the larger part of detection time.
    ///   A member in trouble itself lengthens the suspicions it raises, up to nine times (its
    ///   local health, `health.rs`), so its own failing probes do not become false downs.
    /// - Every survivor must hear of a death, and one that misses every copy of the update only
    ///   finds out when it probes the dead member itself, a whole probe round later (measured:
    ///   14 s instead of 4 s at 32 members, about one crash in four, with memberlist's
    ///   `4 × log10(n + 1)` = 7 transmissions). An update is cheap next to that, so we send each
    ///   `6 × log10(n + 1)` times, at least 10 and at most 20 (foca's notes put small clusters
    ///   at about 5 and very large ones at 15).
    /// - The announce (a push-pull of whole member lists with one random member) and the
    ///   announce to down members (how a healed partition finds its other half) cost every
    ///   member a packet that grows with the cluster, and the cluster as a whole N of them per
    ///   period: N² bytes. They repair what gossip missed, which gossip makes rare, so their
    ///   periods stretch with the cluster as memberlist stretches its push-pull interval:
    ///   the scale is ×1 up to 32 members, then `ceil(log2(n / 32)) + 1` — ×2 at 64, ×6 at
    ///   1,000, ×10 at 10,000 (announce every 30 s up to 32 members, every 5 min at 10,000).
    ///   Probes and gossip need no such stretch: each member sends a fixed number per period
    ///   whatever the size, and detection and dissemination depend on their pace.
    pub fn lan(cluster_size: usize) -> Self {
        let n = cluster_size.max(1) as f64;
        let probe_period = Duration::from_millis(400);
        let suspicion = probe_period.mul_f64(n.log10().max(1.0) * 2.0);
        let max_tx = ((n + 1.0).log10() * 6.0).ceil().clamp(10.0, 20.0) as u8;
        let scale = size_scale(cluster_size);
        MembershipConfig {
            probe_period,
            probe_rtt: Duration::from_millis(150),
            indirect_probes: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
            suspect_to_down_after: suspicion,
            max_transmissions: NonZeroU8::new(max_tx).unwrap_or(NonZeroU8::MIN),
            gossip_period: Duration::from_millis(100),
            gossip_fanout: NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN),
            rejoin_period: Duration::from_secs(1),
            announce_period: Duration::from_secs(30).saturating_mul(scale),
            announce_down_period: Duration::from_secs(10).saturating_mul(scale),
            remember_down_for: Duration::from_secs(24 * 3600),
        }
    }

    /// The foca configuration this maps to.
    pub fn to_foca(&self) -> foca::Config {
        let one = NonZeroUsize::MIN;
        foca::Config {
            probe_period: self.probe_period,
            probe_rtt: self.probe_rtt,
            num_indirect_probes: self.indirect_probes,
            max_transmissions: self.max_transmissions,
            suspect_to_down_after: self.suspect_to_down_after,
            remove_down_after: Some(self.remember_down_for),
            // A whole number of fixed-width updates after the header: foca stops filling a
            // packet only when it is exactly full (see `codec`).
            max_packet_size: NonZeroUsize::new(super::codec::packet_size(wire::MAX_DATAGRAM - wire::HEADER_LEN))
                .unwrap_or(one),
            notify_down_members: true,
            periodic_announce: Some(foca::PeriodicParams {
                frequency: self.announce_period,
                num_members: one,
            }),
            periodic_announce_to_down_members: Some(foca::PeriodicParams {
                frequency: self.announce_down_period,
                num_members: NonZeroUsize::new(2).unwrap_or(one),
            }),
            periodic_gossip: Some(foca::PeriodicParams {
                frequency: self.gossip_period,
                num_members: self.gossip_fanout,
            }),
        }
    }
}

/// How much the periods whose cost per member grows with the cluster stretch at
/// `cluster_size` members: 1 up to 32, then `ceil(log2(n / 32)) + 1` (memberlist's
/// `pushPullScale`).
fn size_scale(cluster_size: usize) -> u32 {
    if cluster_size <= 32 {
        return 1;
    }
    // ceil(log2(n)) for n > 1 is the bit length of n - 1; log2(32) = 5.
    let ceil_log2 = usize::BITS - (cluster_size - 1).leading_zeros();
    ceil_log2 - 5 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_preset_scales_with_cluster_size() {
        let small = MembershipConfig::lan(6);
        let big = MembershipConfig::lan(1000);
        assert_eq!(small.max_transmissions.get(), 10);
        assert_eq!(MembershipConfig::lan(32).max_transmissions.get(), 10);
        assert_eq!(big.max_transmissions.get(), 19);
        assert_eq!(small.suspect_to_down_after, Duration::from_millis(800));
        assert_eq!(MembershipConfig::lan(32).suspect_to_down_after.as_millis(), 1204);
        assert_eq!(big.suspect_to_down_after, Duration::from_millis(2400));
        assert!(big.suspect_to_down_after > small.suspect_to_down_after);
        assert!(small.probe_period > small.probe_rtt * 2);
    }

    #[test]
    fn size_scale_is_one_up_to_32_then_grows_with_log2() {
        let scales: Vec<u32> = [0, 1, 8, 32, 33, 64, 65, 128, 1000, 10_000, usize::MAX].into_iter().map(size_scale).collect();
        assert_eq!(scales, [1, 1, 1, 1, 2, 2, 3, 3, 6, 10, 60]);
    }

    #[test]
    fn announce_periods_stretch_with_cluster_size_and_probing_does_not() {
        let at = MembershipConfig::lan;
        for n in [1, 6, 32] {
            assert_eq!(at(n).announce_period, Duration::from_secs(30), "n = {n}");
            assert_eq!(at(n).announce_down_period, Duration::from_secs(10), "n = {n}");
        }
        assert_eq!(at(64).announce_period, Duration::from_secs(60));
        assert_eq!(at(1000).announce_period, Duration::from_secs(180));
        assert_eq!(at(1000).announce_down_period, Duration::from_secs(60));
        assert_eq!(at(10_000).announce_period, Duration::from_secs(300));
        assert_eq!(at(10_000).announce_down_period, Duration::from_secs(100));
        for n in [64, 1000, 10_000] {
            assert_eq!(at(n).probe_period, at(32).probe_period, "n = {n}");
            assert_eq!(at(n).gossip_period, at(32).gossip_period, "n = {n}");
            assert_eq!(at(n).gossip_fanout, at(32).gossip_fanout, "n = {n}");
        }
    }
}
