//! Invariants checked after every event, and how a violation is reported: the virtual time,
//! what broke, and the event that caused it ([`EventRef`]).
//!
//! - [`FalseDowns`]: no running member may believe a running member it can reach down for
//!   longer than a bound; each down declaration about a member that was running and reachable
//!   throughout the detection window counts as a false down.
//! - [`OpsOrder`]: ordered operations are applied in id order and at most once per node.
//! - [`Ownership`]: at most one holder per address within a connected part, once settled.
//!
//! The last two check the [`Observation`](crate::node::Observation)s of cores plugged in
//! beside membership; they are the hooks for the ordered-operations and DuraVIP cores.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use crate::bitset::NodeSet;
use crate::network::Network;
use crate::time::SimTime;
use crate::topology::Topology;

/// What kind of event was being handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventWhat {
    /// Nodes starting at time zero.
    Boot,
    /// A message delivered.
    Deliver {
        /// Sender.
        from: u32,
        /// Receiver.
        to: u32,
    },
    /// A membership timer.
    Timer {
        /// Node.
        node: u32,
        /// foca's timer name.
        kind: &'static str,
    },
    /// A plugged-in core's timer.
    CoreTimer {
        /// Node.
        node: u32,
    },
    /// A manager's journal fsync completed.
    Synced(u32),
    /// A node's configuration pull completed.
    Fetched(u32),
    /// A scenario step.
    Step {
        /// Timeline index.
        index: u32,
        /// Action name.
        action: &'static str,
    },
    /// A scheduled node start.
    Start(u32),
    /// A scheduled node stop.
    Stop(u32),
    /// A churn crash.
    Churn,
    /// A repeated broadcast.
    Repeat,
    /// A plot sample.
    Sample,
    /// An invariant deadline.
    Check,
    /// An assertion's deadline.
    AssertionDeadline,
}

/// The event being handled: its sequence number, time and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef {
    /// Scheduling sequence number.
    pub seq: u64,
    /// Virtual time.
    pub at: SimTime,
    /// What it was.
    pub what: EventWhat,
}

impl EventRef {
    /// A human description, with host names.
    pub fn describe(&self, topo: &Topology) -> String {
        let name = |i: u32| topo.name(i as usize).to_string();
        let what = match self.what {
            EventWhat::Boot => "boot".to_string(),
            EventWhat::Deliver { from, to } => format!("datagram {} -> {}", name(from), name(to)),
            EventWhat::Timer { node, kind } => format!("timer {kind} on {}", name(node)),
            EventWhat::CoreTimer { node } => format!("core timer on {}", name(node)),
            EventWhat::Synced(n) => format!("journal fsync on {}", name(n)),
            EventWhat::Fetched(n) => format!("configuration pull on {}", name(n)),
            EventWhat::Step { index, action } => format!("timeline[{index}] {action}"),
            EventWhat::Start(n) => format!("start of {}", name(n)),
            EventWhat::Stop(n) => format!("stop of {}", name(n)),
            EventWhat::Churn => "churn crash".to_string(),
            EventWhat::Repeat => "repeated broadcast".to_string(),
            EventWhat::Sample => "sample".to_string(),
            EventWhat::Check => "invariant deadline".to_string(),
            EventWhat::AssertionDeadline => "assertion deadline".to_string(),
        };
        format!("event #{} at {}: {what}", self.seq, self.at)
    }
}

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// When it broke.
    pub at: SimTime,
    /// Which invariant.
    pub invariant: &'static str,
    /// What is wrong.
    pub message: String,
    /// The event that broke it.
    pub event: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "at {}: invariant {} violated: {} ({})", self.at, self.invariant, self.message, self.event)
    }
}

/// A `MemberDown` seen by `observer` about `member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declaration {
    /// Who declared it.
    pub observer: usize,
    /// Who was declared down.
    pub member: usize,
    /// Whether the member runs now.
    pub member_running: bool,
    /// Whether the declared incarnation belongs to the member's current run.
    pub current_run: bool,
}

#[derive(Debug, Clone)]
struct DownBelief {
    declared: SimTime,
    cause: EventRef,
    bad_since: Option<SimTime>,
    reported: bool,
}

/// Down beliefs about running, reachable members, and the count of false downs.
#[derive(Debug, Clone)]
pub struct FalseDowns {
    bound: Duration,
    window: Duration,
    max_false_downs: Option<u64>,
    downs: BTreeMap<(u32, u32), DownBelief>,
    /// Down declarations about a member that ran and was reachable throughout the window.
    pub false_downs: u64,
}

impl FalseDowns {
    /// Beliefs may be wrong for at most `bound`; a down counts as false if the pair was
    /// reachable throughout `window` before it; more than `max_false_downs` is a violation.
    pub fn new(bound: Duration, window: Duration, max_false_downs: Option<u64>) -> FalseDowns {
        FalseDowns { bound, window, max_false_downs, downs: BTreeMap::new(), false_downs: 0 }
    }

    /// A member was declared down. Returns a violation if the false-down limit is exceeded,
    /// and the deadline at which the belief must be gone if it is wrong.
    pub fn on_down(&mut self, d: Declaration, net: &Network, cause: EventRef, topo: &Topology) -> (Option<Violation>, Option<SimTime>) {
        let Declaration { observer: x, member: y, member_running: y_running, current_run } = d;
        let now = cause.at;
        let reachable = y_running && net.reachable(x, y);
        let bad_since = reachable.then_some(now);
        self.downs.insert(
            (x as u32, y as u32),
            DownBelief { declared: now, cause, bad_since, reported: false },
        );
        let mut violation = None;
        if reachable && current_run && net.reachable_throughout(x, y, now.before(self.window)) {
            self.false_downs += 1;
            if self.max_false_downs.is_some_and(|max| self.false_downs > max) {
                violation = Some(Violation {
                    at: now,
                    invariant: "max-false-downs",
                    message: format!(
                        "{} declared {} down while it was running and reachable (false down #{}, limit {})",
                        topo.name(x),
                        topo.name(y),
                        self.false_downs,
                        self.max_false_downs.unwrap_or(0)
                    ),
                    event: cause.describe(topo),
                });
            }
        }
        (violation, bad_since.map(|t| t.after(self.bound)))
    }

    /// `x` believes `y` up again.
    pub fn on_up(&mut self, x: usize, y: usize) {
        self.downs.remove(&(x as u32, y as u32));
    }

    /// `x` stopped: its beliefs are gone.
    pub fn on_stop(&mut self, x: usize) {
        let x = x as u32;
        let doomed: Vec<(u32, u32)> = self.downs.range((x, 0)..=(x, u32::MAX)).map(|(k, _)| *k).collect();
        for key in doomed {
            self.downs.remove(&key);
        }
    }

    /// The truth changed (a node started or stopped, a cut was made or healed): re-derive
    /// which beliefs are wrong. Returns the earliest deadline still ahead.
    pub fn on_truth_change(&mut self, now: SimTime, running: &NodeSet, net: &Network) -> Option<SimTime> {
        for (&(x, y), belief) in self.downs.iter_mut() {
            let wrong = running.contains(y as usize) && net.reachable(x as usize, y as usize);
            match (wrong, belief.bad_since) {
                (true, None) => belief.bad_since = Some(now),
                (false, Some(_)) => {
                    belief.bad_since = None;
                    belief.reported = false;
                }
                _ => {}
            }
        }
        self.next_deadline()
    }

    fn next_deadline(&self) -> Option<SimTime> {
        self.downs
            .values()
            .filter(|b| !b.reported)
            .filter_map(|b| b.bad_since)
            .min()
            .map(|t| t.after(self.bound))
    }

    /// A deadline arrived: reports every belief wrong for longer than the bound (once per
    /// episode) and returns the next deadline.
    pub fn check(&mut self, now: SimTime, topo: &Topology, out: &mut Vec<Violation>) -> Option<SimTime> {
        for (&(x, y), belief) in self.downs.iter_mut() {
            let Some(bad_since) = belief.bad_since else { continue };
            if belief.reported || bad_since.after(self.bound) > now {
                continue;
            }
            belief.reported = true;
            out.push(Violation {
                at: bad_since.after(self.bound),
                invariant: "false-down-bound",
                message: format!(
                    "{} has believed {} down for {:.3}s (declared at {}, wrong since {}) while {} is running and reachable; the bound is {:.3}s",
                    topo.name(x as usize),
                    topo.name(y as usize),
                    now.since(bad_since).as_secs_f64(),
                    belief.declared,
                    bad_since,
                    topo.name(y as usize),
                    self.bound.as_secs_f64()
                ),
                event: format!("the belief came from {}", belief.cause.describe(topo)),
            });
        }
        self.next_deadline()
    }

    /// Number of down beliefs held (right or wrong).
    pub fn held(&self) -> usize {
        self.downs.len()
    }
}

/// Ordered operations: applied in id order and at most once per node; and every operation
/// the manager acknowledged is applied by each of its targets that kept its incarnation (was
/// never declared down nor restarted), checked at the end of the run.
#[derive(Debug, Clone, Default)]
pub struct OpsOrder {
    last: BTreeMap<u32, (u64, u64)>,
    seen: BTreeMap<u32, BTreeSet<(u64, u64)>>,
    /// Acknowledged operations: (id, target) → (the target's incarnation, when acknowledged).
    acked: BTreeMap<((u64, u64), u32), (u64, SimTime)>,
    /// Operations applied, over all nodes.
    pub applied: u64,
}

impl OpsOrder {
    /// The manager acknowledged `id` for target `node`, then at `incarnation`.
    pub fn on_acked(&mut self, id: (u64, u64), node: usize, incarnation: u64, at: SimTime) {
        self.acked.insert((id, node as u32), (incarnation, at));
    }

    /// At the end of a run: acknowledged operations a target still at the same incarnation
    /// never applied, among those acknowledged before `before` (later ones may be on the way).
    /// `incarnation(node)` is the target's incarnation now, `None` if it is not running.
    pub fn lost(&self, before: SimTime, incarnation: impl Fn(usize) -> Option<u64>, topo: &Topology) -> Vec<Violation> {
        let mut out = Vec::new();
        for ((id, node), (inc, at)) in &self.acked {
            if *at > before || incarnation(*node as usize) != Some(*inc) {
                continue;
            }
            if !self.seen.get(node).is_some_and(|s| s.contains(id)) {
                out.push(Violation {
                    at: *at,
                    invariant: "ops-delivery",
                    message: format!("{} never applied acknowledged operation {}.{}", topo.name(*node as usize), id.0, id.1),
                    event: "end of run".to_owned(),
                });
            }
        }
        out
    }

    /// Node `node` applied `id`.
    pub fn on_applied(&mut self, node: usize, id: (u64, u64), cause: EventRef, topo: &Topology) -> Option<Violation> {
        self.applied += 1;
        let node32 = node as u32;
        let fresh = self.seen.entry(node32).or_default().insert(id);
        let last = self.last.insert(node32, id);
        let problem = if !fresh {
            Some(format!("{} applied operation {}.{} a second time", topo.name(node), id.0, id.1))
        } else {
            last.filter(|&l| l > id).map(|l| {
                format!("{} applied operation {}.{} after {}.{} (out of id order)", topo.name(node), id.0, id.1, l.0, l.1)
            })
        };
        problem.map(|message| Violation { at: cause.at, invariant: "ops-order", message, event: cause.describe(topo) })
    }
}

/// DuraVIP: at most one holder per address within a connected part, once settled; for
/// addresses under the `majority` policy, never two holders at once, not even for a moment
/// (on two sides of a partition or not).
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    holders: BTreeMap<IpAddr, BTreeSet<u32>>,
    conflicts: BTreeMap<IpAddr, SimTime>,
    majority: BTreeSet<IpAddr>,
    split: BTreeSet<IpAddr>,
    /// How long two reachable holders may coexist (membership settling) before it is a violation.
    pub settle: Duration,
    /// Every change of an address's holders: (time, address, holders after the change).
    pub timeline: Vec<(SimTime, IpAddr, Vec<u32>)>,
}

impl Ownership {
    /// Conflicts may last `settle` before they are violations; `majority` lists the addresses
    /// that must never have two holders at once.
    pub fn new(settle: Duration, majority: impl IntoIterator<Item = IpAddr>) -> Ownership {
        Ownership { settle, majority: majority.into_iter().collect(), ..Ownership::default() }
    }

    /// Who holds `addr` now.
    pub fn holders(&self, addr: &IpAddr) -> impl Iterator<Item = usize> + '_ {
        self.holders.get(addr).into_iter().flatten().map(|&n| n as usize)
    }

    /// Node `node` holds (`true`) or released `addr`. Returns the deadline of a new conflict.
    pub fn on_change(&mut self, node: usize, addr: IpAddr, holds: bool, now: SimTime, net: &Network) -> Option<SimTime> {
        let set = self.holders.entry(addr).or_default();
        let changed = if holds { set.insert(node as u32) } else { set.remove(&(node as u32)) };
        if changed {
            self.timeline.push((now, addr, set.iter().copied().collect()));
        }
        self.refresh(now, net)
    }

    /// Stopped nodes hold nothing.
    pub fn on_stop(&mut self, node: usize, now: SimTime, net: &Network) -> Option<SimTime> {
        for (addr, set) in &mut self.holders {
            if set.remove(&(node as u32)) {
                self.timeline.push((now, *addr, set.iter().copied().collect()));
            }
        }
        self.refresh(now, net)
    }

    /// Re-derives conflicts (after any change, including cuts). Returns the earliest deadline.
    pub fn refresh(&mut self, now: SimTime, net: &Network) -> Option<SimTime> {
        for (addr, set) in &self.holders {
            let holders: Vec<usize> = set.iter().map(|&n| n as usize).collect();
            let pairs = || holders.iter().enumerate().flat_map(|(i, &a)| holders[i + 1..].iter().map(move |&b| (a, b)));
            if pairs().any(|(a, b)| net.reachable(a, b)) {
                self.conflicts.entry(*addr).or_insert(now);
            } else {
                self.conflicts.remove(addr);
            }
            if self.majority.contains(addr) && holders.len() > 1 {
                self.split.insert(*addr);
            }
        }
        if self.split.is_empty() {
            self.conflicts.values().min().map(|t| t.after(self.settle))
        } else {
            Some(now)
        }
    }

    /// Reports conflicts older than the settle time, and majority addresses with two holders.
    pub fn check(&mut self, now: SimTime, cause: EventRef, topo: &Topology, out: &mut Vec<Violation>) {
        let names = |addr: &IpAddr| -> String {
            let names: Vec<&str> = self.holders[addr].iter().map(|&n| topo.name(n as usize)).collect();
            names.join(", ")
        };
        for addr in &self.split {
            out.push(Violation {
                at: now,
                invariant: "majority-one-holder",
                message: format!("{addr} (policy majority) held by two nodes at once: {}", names(addr)),
                event: cause.describe(topo),
            });
        }
        self.split.clear();
        for (addr, since) in &self.conflicts {
            if since.after(self.settle) <= now {
                out.push(Violation {
                    at: now,
                    invariant: "one-owner-per-address",
                    message: format!("{addr} held by {} in one connected part since {since}", names(addr)),
                    event: cause.describe(topo),
                });
            }
        }
        self.conflicts.retain(|_, since| since.after(self.settle) > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::LinkParams;

    fn topo() -> Topology {
        Topology::generate(&[("east".into(), 2), ("west".into(), 2)])
    }

    fn decl(observer: usize, member: usize) -> Declaration {
        Declaration { observer, member, member_running: true, current_run: true }
    }

    fn at(ms: u64) -> EventRef {
        EventRef { seq: ms, at: SimTime::from_duration(Duration::from_millis(ms)), what: EventWhat::Deliver { from: 0, to: 1 } }
    }

    #[test]
    fn false_down_of_a_reachable_member_is_counted_and_bounded() {
        let t = topo();
        let net = Network::new(4, LinkParams::default());
        let mut fd = FalseDowns::new(Duration::from_secs(1), Duration::from_secs(2), Some(0));
        let (v, deadline) = fd.on_down(decl(0, 1), &net, at(5_000), &t);
        assert_eq!(fd.false_downs, 1);
        let v = v.expect("limit of 0 false downs exceeded");
        assert!(v.message.contains("mgr declared east1 down"), "{}", v.message);
        assert!(v.event.contains("event #5000 at 5.000s: datagram mgr -> east1"), "{}", v.event);
        assert_eq!(deadline, Some(at(6_000).at));
        let mut out = Vec::new();
        assert_eq!(fd.check(at(5_500).at, &t, &mut out), Some(at(6_000).at));
        assert!(out.is_empty());
        fd.check(at(6_000).at, &t, &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].to_string().starts_with("at 6.000s: invariant false-down-bound violated: mgr has believed east1 down"), "{}", out[0]);
        fd.check(at(9_000).at, &t, &mut out);
        assert_eq!(out.len(), 1, "reported once");
        fd.on_up(0, 1);
        assert_eq!(fd.held(), 0);
    }

    #[test]
    fn downs_across_a_cut_are_neither_false_nor_bounded_until_healed() {
        let t = topo();
        let mut net = Network::new(4, LinkParams::default());
        net.partition(&[NodeSet::from_indices(4, [0, 1]), NodeSet::from_indices(4, [2, 3])], at(1_000).at);
        let mut fd = FalseDowns::new(Duration::from_secs(1), Duration::from_secs(2), None);
        let (v, deadline) = fd.on_down(decl(0, 2), &net, at(3_000), &t);
        assert!(v.is_none() && deadline.is_none());
        assert_eq!(fd.false_downs, 0);
        net.heal(at(10_000).at);
        let next = fd.on_truth_change(at(10_000).at, &NodeSet::full(4), &net);
        assert_eq!(next, Some(at(11_000).at), "wrong from the heal on");
        let (_, _) = fd.on_down(decl(1, 3), &net, at(10_500), &t);
        assert_eq!(fd.false_downs, 0, "the pair was cut within the window");
        fd.on_stop(0);
        fd.on_stop(1);
        assert_eq!(fd.held(), 0);
    }

    #[test]
    fn ops_applied_twice_or_out_of_order_are_violations() {
        let t = topo();
        let mut ops = OpsOrder::default();
        assert!(ops.on_applied(1, (1, 1), at(1), &t).is_none());
        assert!(ops.on_applied(1, (1, 2), at(2), &t).is_none());
        let twice = ops.on_applied(1, (1, 2), at(3), &t).expect("duplicate");
        assert!(twice.message.contains("a second time"));
        let back = ops.on_applied(1, (1, 0), at(4), &t).expect("out of order");
        assert!(back.message.contains("out of id order"));
        assert!(ops.on_applied(2, (1, 1), at(5), &t).is_none(), "other nodes have their own order");
    }

    #[test]
    fn two_reachable_holders_are_a_violation_after_settling() {
        let t = topo();
        let mut net = Network::new(4, LinkParams::default());
        let addr: IpAddr = "10.9.9.9".parse().expect("ip");
        let mut own = Ownership::new(Duration::from_secs(2), []);
        assert_eq!(own.on_change(0, addr, true, at(0).at, &net), None);
        assert_eq!(own.on_change(2, addr, true, at(1_000).at, &net), Some(at(3_000).at));
        let mut out = Vec::new();
        own.check(at(2_000).at, at(2_000), &t, &mut out);
        assert!(out.is_empty(), "still settling");
        own.check(at(3_000).at, at(3_000), &t, &mut out);
        assert_eq!(out.len(), 1);
        assert!(out[0].message.contains("held by mgr, west1"), "{}", out[0].message);
        net.partition(&[NodeSet::from_indices(4, [0, 1]), NodeSet::from_indices(4, [2, 3])], at(4_000).at);
        assert_eq!(own.refresh(at(4_000).at, &net), None, "one holder per side is fine");
        assert_eq!(own.timeline.len(), 2);
    }

    #[test]
    fn majority_addresses_held_across_a_cut_are_violations_at_once() {
        let t = topo();
        let mut net = Network::new(4, LinkParams::default());
        let addr: IpAddr = "10.9.9.9".parse().expect("ip");
        let mut own = Ownership::new(Duration::from_secs(2), [addr]);
        net.partition(&[NodeSet::from_indices(4, [0, 1]), NodeSet::from_indices(4, [2, 3])], at(0).at);
        assert_eq!(own.on_change(1, addr, true, at(1_000).at, &net), None);
        assert_eq!(own.on_change(3, addr, true, at(1_500).at, &net), Some(at(1_500).at), "checked at once");
        let mut out = Vec::new();
        own.check(at(1_500).at, at(1_500), &t, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].invariant, "majority-one-holder");
        assert!(out[0].message.contains("east1, west2"), "{}", out[0].message);
        own.on_change(3, addr, false, at(1_600).at, &net);
        assert_eq!(own.holders(&addr).collect::<Vec<_>>(), vec![1]);
        out.clear();
        own.check(at(1_700).at, at(1_700), &t, &mut out);
        assert!(out.is_empty(), "reported once, and released since");
    }
}
