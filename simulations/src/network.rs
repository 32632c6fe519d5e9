//! The simulated network: per directed link latency (base + uniform jitter), loss,
//! duplication and reordering (a random extra delay), and cuts — partitions between node
//! groups, symmetric or one-way, and isolated nodes — that heal on command.
//!
//! Link parameters are a default plus an ordered list of rules (`from` set × `to` set →
//! patch), so a rule for "east to west" costs two bit tests per message and thousands of
//! nodes need no per-pair table. The network decides each message's fate with the
//! simulation's one RNG; it never touches nodes and never reads a clock. It also keeps the
//! history of cuts, so invariants can ask whether two nodes could reach each other
//! throughout a window rather than only now.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::{Rng, RngExt};

use crate::bitset::NodeSet;
use crate::time::SimTime;
use crate::world::Channel;

/// How one directed link behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkParams {
    /// Fixed one-way delay.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` for each message.
    pub jitter: Duration,
    /// Probability that a datagram is lost.
    pub loss: f64,
    /// Probability that a datagram is delivered twice (each copy with its own delay).
    pub duplicate: f64,
    /// Probability that a datagram is held back by an extra delay, so later ones overtake it.
    pub reorder: f64,
    /// The extra delay of a held-back datagram is drawn uniformly from `0..=reorder_delay`.
    pub reorder_delay: Duration,
}

impl Default for LinkParams {
    /// A quiet LAN: 1 ms ± 1 ms, nothing lost.
    fn default() -> Self {
        LinkParams {
            latency: Duration::from_millis(1),
            jitter: Duration::from_millis(1),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(20),
        }
    }
}

/// A partial change of link parameters; `None` leaves a parameter as it was.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkPatch {
    /// New base latency.
    pub latency: Option<Duration>,
    /// New jitter.
    pub jitter: Option<Duration>,
    /// New loss probability.
    pub loss: Option<f64>,
    /// New duplication probability.
    pub duplicate: Option<f64>,
    /// New reordering probability.
    pub reorder: Option<f64>,
    /// New maximum reordering delay.
    pub reorder_delay: Option<Duration>,
}

impl LinkPatch {
    /// Applies the patch to `params`.
    pub fn apply(&self, params: &mut LinkParams) {
        if let Some(v) = self.latency {
            params.latency = v;
        }
        if let Some(v) = self.jitter {
            params.jitter = v;
        }
        if let Some(v) = self.loss {
            params.loss = v;
        }
        if let Some(v) = self.duplicate {
            params.duplicate = v;
        }
        if let Some(v) = self.reorder {
            params.reorder = v;
        }
        if let Some(v) = self.reorder_delay {
            params.reorder_delay = v;
        }
    }
}

/// Messages from any node of `from` to any node of `to` are dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    /// Senders.
    pub from: NodeSet,
    /// Receivers.
    pub to: NodeSet,
}

#[derive(Debug, Clone)]
struct LinkRule {
    from: NodeSet,
    to: NodeSet,
    patch: LinkPatch,
}

/// Why a message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The link is cut.
    Partition,
    /// Random loss.
    Loss,
}

/// What happens to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// It never arrives.
    Dropped(DropReason),
    /// It arrives at `at`, and a duplicate at `duplicate_at` if there is one.
    Arrives {
        /// Arrival time.
        at: SimTime,
        /// Arrival time of a duplicate.
        duplicate_at: Option<SimTime>,
    },
}

/// Links, rules and cuts between `n` nodes.
#[derive(Debug, Clone)]
pub struct Network {
    n: usize,
    default: LinkParams,
    rules: Vec<LinkRule>,
    cuts: Vec<Cut>,
    /// The cut sets in force, each from its start time until the next one's.
    history: Vec<(SimTime, Vec<Cut>)>,
    /// Arrival time of the last stream message per directed link, to keep streams in order.
    stream_tail: BTreeMap<(u32, u32), SimTime>,
}

impl Network {
    /// A network of `n` nodes where every link behaves as `default`.
    pub fn new(n: usize, default: LinkParams) -> Network {
        Network {
            n,
            default,
            rules: Vec::new(),
            cuts: Vec::new(),
            history: vec![(SimTime::ZERO, Vec::new())],
            stream_tail: BTreeMap::new(),
        }
    }

    /// The default link parameters.
    pub fn default_params(&self) -> LinkParams {
        self.default
    }

    /// Changes every link: the default, and drops rules that set the same parameters so the
    /// change really applies everywhere.
    pub fn patch_all(&mut self, patch: &LinkPatch) {
        patch.apply(&mut self.default);
        for rule in &mut self.rules {
            let p = &mut rule.patch;
            p.latency = p.latency.filter(|_| patch.latency.is_none());
            p.jitter = p.jitter.filter(|_| patch.jitter.is_none());
            p.loss = p.loss.filter(|_| patch.loss.is_none());
            p.duplicate = p.duplicate.filter(|_| patch.duplicate.is_none());
            p.reorder = p.reorder.filter(|_| patch.reorder.is_none());
            p.reorder_delay = p.reorder_delay.filter(|_| patch.reorder_delay.is_none());
        }
    }

    /// Changes the links from every node of `from` to every node of `to`.
    pub fn patch_links(&mut self, from: NodeSet, to: NodeSet, patch: LinkPatch) {
        self.rules.push(LinkRule { from, to, patch });
    }

    /// The parameters of the directed link `from → to`.
    pub fn params(&self, from: usize, to: usize) -> LinkParams {
        let mut params = self.default;
        for rule in &self.rules {
            if rule.from.contains(from) && rule.to.contains(to) {
                rule.patch.apply(&mut params);
            }
        }
        params
    }

    /// Cuts every link between nodes of different groups, both ways.
    pub fn partition(&mut self, groups: &[NodeSet], now: SimTime) {
        for (i, a) in groups.iter().enumerate() {
            for (j, b) in groups.iter().enumerate() {
                if i != j {
                    self.cuts.push(Cut { from: a.clone(), to: b.clone() });
                }
            }
        }
        self.record(now);
    }

    /// Cuts the links from `from` to `to` only; replies the other way still pass.
    pub fn one_way_partition(&mut self, from: NodeSet, to: NodeSet, now: SimTime) {
        self.cuts.push(Cut { from, to });
        self.record(now);
    }

    /// Cuts every link between `nodes` and everyone else, both ways.
    pub fn isolate(&mut self, nodes: &NodeSet, now: SimTime) {
        let mut rest = NodeSet::full(self.n);
        rest.subtract(nodes);
        self.cuts.push(Cut { from: nodes.clone(), to: rest.clone() });
        self.cuts.push(Cut { from: rest, to: nodes.clone() });
        self.record(now);
    }

    /// Removes every cut.
    pub fn heal(&mut self, now: SimTime) {
        self.cuts.clear();
        self.record(now);
    }

    fn record(&mut self, now: SimTime) {
        match self.history.last_mut() {
            Some((since, cuts)) if *since == now => *cuts = self.cuts.clone(),
            _ => self.history.push((now, self.cuts.clone())),
        }
    }

    /// True if any cut is in force.
    pub fn has_cuts(&self) -> bool {
        !self.cuts.is_empty()
    }

    /// True if messages from `from` to `to` are dropped by a cut now.
    #[inline]
    pub fn blocked(&self, from: usize, to: usize) -> bool {
        blocked_by(&self.cuts, from, to)
    }

    /// True if `a` and `b` can exchange messages both ways now.
    #[inline]
    pub fn reachable(&self, a: usize, b: usize) -> bool {
        !self.blocked(a, b) && !self.blocked(b, a)
    }

    /// True if `a` and `b` could exchange messages both ways at every moment from `since` to now.
    pub fn reachable_throughout(&self, a: usize, b: usize, since: SimTime) -> bool {
        for (i, (_, cuts)) in self.history.iter().enumerate() {
            let over_before_window = self.history.get(i + 1).is_some_and(|(next, _)| *next <= since);
            if !over_before_window && (blocked_by(cuts, a, b) || blocked_by(cuts, b, a)) {
                return false;
            }
        }
        true
    }

    /// Sets `out` to the nodes `x` cannot exchange messages with both ways now.
    pub fn unreachable_from(&self, x: usize, out: &mut NodeSet) {
        out.clear();
        for cut in &self.cuts {
            if cut.from.contains(x) {
                out.union_with(&cut.to);
            }
            if cut.to.contains(x) {
                out.union_with(&cut.from);
            }
        }
    }

    /// Decides the fate of one message sent at `now`.
    pub fn route(&mut self, from: usize, to: usize, now: SimTime, channel: Channel, rng: &mut impl Rng) -> Fate {
        if self.blocked(from, to) {
            return Fate::Dropped(DropReason::Partition);
        }
        let params = if self.rules.is_empty() { self.default } else { self.params(from, to) };
        match channel {
            Channel::Datagram => {
                if params.loss > 0.0 && rng.random_bool(params.loss.min(1.0)) {
                    return Fate::Dropped(DropReason::Loss);
                }
                let at = now.after(delay(&params, rng));
                let duplicate_at = if params.duplicate > 0.0 && rng.random_bool(params.duplicate.min(1.0)) {
                    Some(now.after(delay(&params, rng)))
                } else {
                    None
                };
                Fate::Arrives { at, duplicate_at }
            }
            Channel::Stream => {
                let mut at = now.after(params.latency + jitter(&params, rng));
                let key = (from as u32, to as u32);
                if let Some(&tail) = self.stream_tail.get(&key) {
                    at = at.max(tail);
                }
                self.stream_tail.insert(key, at);
                Fate::Arrives { at, duplicate_at: None }
            }
        }
    }
}

fn blocked_by(cuts: &[Cut], from: usize, to: usize) -> bool {
    cuts.iter().any(|c| c.from.contains(from) && c.to.contains(to))
}

fn jitter(params: &LinkParams, rng: &mut impl Rng) -> Duration {
    if params.jitter.is_zero() {
        Duration::ZERO
    } else {
        let max = u64::try_from(params.jitter.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=max))
    }
}

fn delay(params: &LinkParams, rng: &mut impl Rng) -> Duration {
    let mut d = params.latency + jitter(params, rng);
    if params.reorder > 0.0 && rng.random_bool(params.reorder.min(1.0)) && !params.reorder_delay.is_zero() {
        let max = u64::try_from(params.reorder_delay.as_nanos()).unwrap_or(u64::MAX);
        d += Duration::from_nanos(rng.random_range(0..=max));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn set(n: usize, ids: &[usize]) -> NodeSet {
        NodeSet::from_indices(n, ids.iter().copied())
    }

    fn secs(s: u64) -> SimTime {
        SimTime::from_duration(Duration::from_secs(s))
    }

    #[test]
    fn symmetric_partition_cuts_both_ways_and_heals() {
        let mut net = Network::new(4, LinkParams::default());
        net.partition(&[set(4, &[0, 1]), set(4, &[2, 3])], secs(10));
        assert!(net.blocked(0, 2) && net.blocked(3, 1));
        assert!(!net.blocked(0, 1) && !net.blocked(2, 3));
        net.heal(secs(50));
        assert!(net.reachable(0, 2));
        assert!(!net.reachable_throughout(0, 2, secs(40)), "cut during the window");
        assert!(net.reachable_throughout(0, 2, secs(50)));
        assert!(net.reachable_throughout(0, 1, secs(0)));
        assert!(!net.reachable_throughout(0, 2, secs(5)));
    }

    #[test]
    fn one_way_partition_and_isolation() {
        let mut net = Network::new(3, LinkParams::default());
        net.one_way_partition(set(3, &[0]), set(3, &[1]), secs(1));
        assert!(net.blocked(0, 1) && !net.blocked(1, 0));
        assert!(!net.reachable(0, 1) && !net.reachable(1, 0));
        net.heal(secs(2));
        net.isolate(&set(3, &[2]), secs(3));
        let mut out = NodeSet::new(3);
        net.unreachable_from(2, &mut out);
        assert_eq!(out, set(3, &[0, 1]));
        net.unreachable_from(0, &mut out);
        assert_eq!(out, set(3, &[2]));
    }

    #[test]
    fn loss_duplication_and_latency_follow_the_parameters() {
        let params = LinkParams {
            latency: Duration::from_millis(10),
            jitter: Duration::from_millis(5),
            loss: 0.25,
            duplicate: 0.1,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
        };
        let mut net = Network::new(2, params);
        let mut rng = StdRng::seed_from_u64(1);
        let (mut lost, mut dup) = (0, 0);
        for _ in 0..20_000 {
            match net.route(0, 1, SimTime::ZERO, Channel::Datagram, &mut rng) {
                Fate::Dropped(DropReason::Loss) => lost += 1,
                Fate::Dropped(DropReason::Partition) => unreachable!("no cut"),
                Fate::Arrives { at, duplicate_at } => {
                    let d = at.as_duration();
                    assert!(d >= Duration::from_millis(10) && d <= Duration::from_millis(15), "{d:?}");
                    dup += usize::from(duplicate_at.is_some());
                }
            }
        }
        assert!((4_500..5_500).contains(&lost), "lost {lost}");
        assert!((1_200..1_800).contains(&dup), "duplicated {dup}");
    }

    #[test]
    fn rules_patch_only_their_links_and_streams_keep_order() {
        let mut net = Network::new(3, LinkParams::default());
        let far = LinkPatch { latency: Some(Duration::from_millis(40)), ..LinkPatch::default() };
        net.patch_links(set(3, &[0]), set(3, &[2]), far);
        assert_eq!(net.params(0, 2).latency, Duration::from_millis(40));
        assert_eq!(net.params(2, 0).latency, Duration::from_millis(1));
        net.patch_all(&LinkPatch { latency: Some(Duration::from_millis(3)), ..LinkPatch::default() });
        assert_eq!(net.params(0, 2).latency, Duration::from_millis(3), "a global change wins");
        let mut rng = StdRng::seed_from_u64(2);
        let mut last = SimTime::ZERO;
        for _ in 0..100 {
            if let Fate::Arrives { at, .. } = net.route(0, 1, SimTime::ZERO, Channel::Stream, &mut rng) {
                assert!(at >= last);
                last = at;
            }
        }
    }
}
