//! Local health: how much this member trusts its own judgement of others (Lifeguard's "local
//! health multiplier"), and the suspicion timeouts it sets from it. No I/O here.
//!
//! A member that is itself struggling — starved of CPU, behind on its packets, on a lossy link —
//! sees its probes fail although the members it probes are fine, and would declare them down.
//! Lifeguard's answer (Dadgar et al., 2018; memberlist's "awareness") is a score that rises with
//! signs of our own trouble and falls with signs of health:
//! - +1 for each probe of ours that failed (direct and indirect: no ack at all);
//! - +1 for each suspicion of ourselves we had to refute (the cluster thought us dead);
//! - −1 for each probe of ours acknowledged directly;
//!
//! held within `0..=`[`MAX_SCORE`]. Every suspicion this member raises then runs for
//! `suspect_to_down_after × (1 + score)`: a healthy member (score 0) declares a dead peer down
//! after the configured timeout; one whose own probes keep failing gives its suspects up to nine
//! times as long to refute, which is what keeps its trouble from becoming false downs elsewhere.
//!
//! foca sets the suspicion timer itself ([`foca::Timer::ChangeSuspectToDown`]) when one of our
//! probes fails; [`Health::review`] rewrites the delay of every such timer in the output queue
//! before the driver sees it. Lifeguard's other half, suspicion that shrinks with independent
//! confirmations, needs to know who accused a member, and foca's suspicion updates do not say;
//! the configured timeout is therefore already the short one, and only our own health lengthens
//! it.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Output, Timer};
use crate::stats::MembershipCounters;

/// The highest score: suspicions last at most nine times the configured timeout (memberlist's
/// `AwarenessMaxMultiplier` is 8 as well).
pub(super) const MAX_SCORE: u32 = 8;

/// The local health score and the counters it was last updated from.
#[derive(Debug, Default)]
pub(super) struct Health {
    score: u32,
    /// Probes of ours that failed, as counted at the last review.
    failed: u64,
    /// Suspicions of ourselves refuted, at the last review.
    refuted: u64,
    /// Probes of ours acknowledged, at the last review.
    acked: u64,
}

impl Health {
    /// The current score, `0..=MAX_SCORE`; 0 is healthy.
    #[cfg(test)]
    pub(super) fn score(&self) -> u32 {
        self.score
    }

    /// How long a suspicion raised now lasts, for a configured timeout of `base`.
    pub(super) fn suspicion(&self, base: Duration) -> Duration {
        base.saturating_mul(1 + self.score)
    }

    /// After an input: sets the delay of every suspicion timer foca asked for to what the score
    /// allows (from the score before this input's news: the failed probe that raised the
    /// suspicion is not held against us yet), then updates the score from what `counters`
    /// counted since the last review. Rewriting sets an absolute delay, so reviewing a timer
    /// twice changes nothing.
    pub(super) fn review(&mut self, counters: &MembershipCounters, base: Duration, outputs: &mut VecDeque<Output>) {
        let delay = self.suspicion(base);
        for output in outputs.iter_mut() {
            if let Output::SetTimer { after, timer: Timer::Swim { timer: foca::Timer::ChangeSuspectToDown { member_id, .. }, .. } } = output {
                if *after != delay {
                    tracing::debug!(member = %member_id, ?delay, score = self.score, "suspicion timeout");
                    *after = delay;
                }
            }
        }
        let worse = (counters.suspicions_raised.saturating_sub(self.failed))
            .saturating_add(counters.suspicions_refuted.saturating_sub(self.refuted));
        let better = counters.probe_rtt.count.saturating_sub(self.acked);
        self.failed = counters.suspicions_raised;
        self.refuted = counters.suspicions_refuted;
        self.acked = counters.probe_rtt.count;
        let raised = u64::from(self.score).saturating_add(worse).saturating_sub(better);
        self.score = u32::try_from(raised.min(u64::from(MAX_SCORE))).unwrap_or(MAX_SCORE);
    }
}

#[cfg(test)]
mod tests {
    use foca::Timer as SwimTimer;
    use std::net::SocketAddr;

    use super::*;
    use crate::ids::{MemberId, Role, SwimId};

    const BASE: Duration = Duration::from_millis(1000);

    fn suspect_timer() -> Output {
        let member_id = SwimId::of(&MemberId {
            name: "n1".into(),
            addr: SocketAddr::from(([127, 0, 1, 2], 4803)),
            role: Role::Node,
            subcluster: "east".into(),
            incarnation: 1,
        });
        let timer = SwimTimer::ChangeSuspectToDown { member_id, incarnation: 0, token: 0 };
        Output::SetTimer { after: BASE, timer: Timer::Swim { generation: 0, timer } }
    }

    fn delays(outputs: &VecDeque<Output>) -> Vec<Duration> {
        outputs.iter().filter_map(|o| match o { Output::SetTimer { after, .. } => Some(*after), _ => None }).collect()
    }

    #[test]
    fn a_healthy_member_suspects_for_the_configured_time() {
        let mut health = Health::default();
        let mut counters = MembershipCounters::default();
        counters.probe_rtt.record(Duration::from_millis(1));
        counters.suspicions_raised = 1;
        let mut outputs = VecDeque::from([suspect_timer(), Output::SetTimer { after: BASE * 7, timer: Timer::Rejoin }]);
        health.review(&counters, BASE, &mut outputs);
        assert_eq!(delays(&outputs), [BASE, BASE * 7], "the failed probe that raised it is not held against us");
        assert_eq!(health.score(), 0, "one failure and one ack cancel out");
    }

    #[test]
    fn failed_probes_and_refutations_stretch_suspicion_and_acks_heal() {
        let mut health = Health::default();
        let mut counters = MembershipCounters { suspicions_raised: 2, suspicions_refuted: 1, ..MembershipCounters::default() };
        health.review(&counters, BASE, &mut VecDeque::new());
        assert_eq!(health.score(), 3);
        let mut outputs = VecDeque::from([suspect_timer()]);
        health.review(&counters, BASE, &mut outputs);
        assert_eq!(delays(&outputs), [BASE * 4]);
        health.review(&counters, BASE, &mut outputs);
        assert_eq!(delays(&outputs), [BASE * 4], "reviewing again changes nothing");
        for _ in 0..2 {
            counters.probe_rtt.record(Duration::from_millis(1));
        }
        health.review(&counters, BASE, &mut VecDeque::new());
        assert_eq!(health.score(), 1);
        for _ in 0..5 {
            counters.probe_rtt.record(Duration::from_millis(1));
        }
        health.review(&counters, BASE, &mut VecDeque::new());
        assert_eq!(health.score(), 0, "never below healthy");
        assert_eq!(health.suspicion(BASE), BASE);
    }

    #[test]
    fn the_score_is_bounded() {
        let mut health = Health::default();
        let counters = MembershipCounters { suspicions_raised: 100, ..MembershipCounters::default() };
        health.review(&counters, BASE, &mut VecDeque::new());
        assert_eq!(health.score(), MAX_SCORE);
        assert_eq!(health.suspicion(BASE), BASE * (MAX_SCORE + 1));
    }
}
