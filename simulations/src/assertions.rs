//! Scenario assertions (`assert_members`, `assert_converged`, `assert_down`, `assert_up`):
//! each is checked when its step runs and, if it has a `within` window, again as views change
//! until it holds or its deadline passes. Results keep the time the assertion held (or why it
//! did not) for the report. Reads the belief matrix; changes nothing in the simulation.

use std::time::Duration;

use std::net::IpAddr;

use crate::beliefs::Beliefs;
use crate::invariants::Ownership;
use crate::bitset::NodeSet;
use crate::network::Network;
use crate::time::{format_duration, SimTime};
use crate::topology::Topology;

/// What an assertion checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Every running node of `nodes` sees exactly `up` members up, itself included.
    Members {
        /// Observers.
        nodes: Vec<usize>,
        /// Expected count.
        up: usize,
    },
    /// Every running node sees exactly the running nodes it can reach.
    Converged,
    /// No running observer (of `by`, default all) sees `member` up.
    Down {
        /// The member.
        member: usize,
        /// Observers.
        by: Option<Vec<usize>>,
    },
    /// Every running observer (of `by`, default all) sees `member` up.
    Up {
        /// The member.
        member: usize,
        /// Observers.
        by: Option<Vec<usize>>,
    },
    /// Every running node (not manager) runs at least these configuration revisions.
    Config(eccluster_proto::revisions::Revisions),
    /// The running manager's view of who holds each address of `addrs` (what the nodes
    /// reported to it) names exactly the running nodes that hold it.
    ManagerView {
        /// The addresses.
        addrs: Vec<IpAddr>,
    },
    /// Exactly `count` running nodes of `among` hold each address of `addrs`.
    Holders {
        /// The addresses.
        addrs: Vec<IpAddr>,
        /// Whose holdings count.
        among: Vec<usize>,
        /// Expected holders of each.
        count: usize,
    },
}

/// How an assertion ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Still waiting.
    Pending,
    /// Held at this time.
    Held(SimTime),
    /// Did not hold by its deadline; why.
    Failed(SimTime, String),
}

/// One assertion of the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// `timeline[i] assert_... at T` for the report.
    pub label: String,
    /// What it checks.
    pub check: Check,
    /// When its step ran.
    pub started: SimTime,
    /// Last moment it may hold.
    pub deadline: SimTime,
    /// The outcome.
    pub verdict: Verdict,
}

/// Everything the checks read.
pub struct View<'a> {
    /// Who believes whom up.
    pub beliefs: &'a Beliefs,
    /// Running nodes.
    pub running: &'a NodeSet,
    /// Cuts, for convergence.
    pub net: &'a Network,
    /// Names.
    pub topo: &'a Topology,
    /// Who holds which DuraVIP address.
    pub ownership: &'a Ownership,
    /// The configuration revisions each node's core runs.
    pub config: &'a std::collections::BTreeMap<usize, eccluster_proto::revisions::Revisions>,
    /// The running manager's book of DuraVIP holders, if a manager runs.
    pub holders: Option<&'a eccluster_proto::holders::HolderBook>,
}

impl View<'_> {
    fn evaluate(&self, check: &Check) -> Result<(), String> {
        let name = |i: usize| self.topo.name(i);
        match check {
            Check::Config(newest) => {
                let behind: Vec<String> = (0..self.topo.len())
                    .filter(|&i| self.running.contains(i) && self.topo.host(i).role == eccluster_proto::Role::Node)
                    .filter(|&i| {
                        let theirs = eccluster_proto::revisions::followed_by(newest, &self.topo.host(i).subcluster);
                        !self.config.get(&i).is_some_and(|r| eccluster_proto::revisions::covers(r, &theirs))
                    })
                    .map(|i| format!("{} runs {:?}", name(i), self.config.get(&i).cloned().unwrap_or_default()))
                    .collect();
                if behind.is_empty() {
                    Ok(())
                } else {
                    Err(format!("not on {newest:?}: {}", behind.join(", ")))
                }
            }
            Check::Members { nodes, up } => {
                let observers: Vec<usize> = nodes.iter().copied().filter(|&x| self.running.contains(x)).collect();
                if observers.is_empty() {
                    return Err("none of the nodes named runs".into());
                }
                let wrong: Vec<String> = observers
                    .iter()
                    .filter(|&&x| self.beliefs.up_count(x) != *up)
                    .map(|&x| format!("{} sees {}", name(x), self.beliefs.up_count(x)))
                    .collect();
                if wrong.is_empty() {
                    Ok(())
                } else {
                    Err(format!("expected {up} up; {} of {} wrong: {}", wrong.len(), observers.len(), sample(&wrong)))
                }
            }
            Check::Converged => {
                if self.beliefs.converged() {
                    return Ok(());
                }
                let mut detail = Vec::new();
                let mut unreachable = NodeSet::new(self.topo.len());
                for x in self.running.iter() {
                    self.net.unreachable_from(x, &mut unreachable);
                    for y in 0..self.topo.len() {
                        let truth = x != y && self.running.contains(y) && !unreachable.contains(y);
                        if x != y && self.beliefs.believes_up(x, y) != truth {
                            let state = if truth { "down" } else { "up" };
                            detail.push(format!("{} sees {} {state}", name(x), name(y)));
                        }
                    }
                    if detail.len() >= 3 {
                        break;
                    }
                }
                Err(format!("{} wrong views, e.g. {}", self.beliefs.total_mismatch(), sample(&detail)))
            }
            Check::Down { member, by } | Check::Up { member, by } => {
                let want_up = matches!(check, Check::Up { .. });
                let observers: Vec<usize> = match by {
                    Some(list) => list.iter().copied().filter(|&x| x != *member && self.running.contains(x)).collect(),
                    None if !want_up => {
                        if self.beliefs.seen_up_by(*member) == 0 {
                            return Ok(());
                        }
                        self.running.iter().filter(|&x| x != *member).collect()
                    }
                    None => self.running.iter().filter(|&x| x != *member).collect(),
                };
                let wrong: Vec<String> = observers
                    .iter()
                    .filter(|&&x| self.beliefs.believes_up(x, *member) != want_up)
                    .map(|&x| name(x).to_string())
                    .collect();
                if wrong.is_empty() {
                    Ok(())
                } else {
                    let state = if want_up { "down (or unknown)" } else { "up" };
                    Err(format!("{} of {} still see {} {state}: {}", wrong.len(), observers.len(), name(*member), sample(&wrong)))
                }
            }
            Check::ManagerView { addrs } => {
                let Some(book) = self.holders else { return Err("no manager runs".into()) };
                let wrong: Vec<String> = addrs
                    .iter()
                    .filter_map(|addr| {
                        let mut truth: Vec<&str> =
                            self.ownership.holders(addr).filter(|h| self.running.contains(*h)).map(name).collect();
                        truth.sort_unstable();
                        let told = book.holders(*addr);
                        let said: Vec<&str> = told
                            .iter()
                            .filter(|h| h.state == eccluster_proto::duravip::HoldingState::Held)
                            .map(|h| h.node.as_str())
                            .collect();
                        (said != truth).then(|| format!("{addr}: the manager says {said:?}, held by {truth:?}"))
                    })
                    .collect();
                if wrong.is_empty() {
                    Ok(())
                } else {
                    Err(format!("{} of {} addresses wrong in the manager's view: {}", wrong.len(), addrs.len(), sample(&wrong)))
                }
            }
            Check::Holders { addrs, among, count } => {
                let wrong: Vec<String> = addrs
                    .iter()
                    .filter_map(|addr| {
                        let held: Vec<&str> = self
                            .ownership
                            .holders(addr)
                            .filter(|h| among.contains(h) && self.running.contains(*h))
                            .map(name)
                            .collect();
                        (held.len() != *count).then(|| {
                            if held.is_empty() {
                                format!("{addr} held by none")
                            } else {
                                format!("{addr} held by {}", held.join(" and "))
                            }
                        })
                    })
                    .collect();
                if wrong.is_empty() {
                    Ok(())
                } else {
                    Err(format!("expected {count} holder(s); {} of {} addresses wrong: {}", wrong.len(), addrs.len(), sample(&wrong)))
                }
            }
        }
    }
}

fn sample(items: &[String]) -> String {
    let mut s = items.iter().take(3).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > 3 {
        s.push_str(", ...");
    }
    s
}

/// The assertions of a run.
#[derive(Debug, Clone, Default)]
pub struct Assertions {
    items: Vec<Assertion>,
    pending: Vec<usize>,
    last_poll: Option<SimTime>,
}

/// How often waiting assertions are re-checked at most.
const POLL_EVERY: Duration = Duration::from_millis(1);

impl Assertions {
    /// Adds and checks an assertion at `now`. Returns its index and, if it did not hold yet
    /// and has a window, the deadline to schedule.
    pub fn add(&mut self, label: String, check: Check, within: Option<Duration>, now: SimTime, view: &View<'_>) -> (usize, Option<SimTime>) {
        let deadline = now.after(within.unwrap_or_default());
        let verdict = match view.evaluate(&check) {
            Ok(()) => Verdict::Held(now),
            Err(why) if within.is_none() => Verdict::Failed(now, why),
            Err(_) => Verdict::Pending,
        };
        let pending = verdict == Verdict::Pending;
        self.items.push(Assertion { label, check, started: now, deadline, verdict });
        let index = self.items.len() - 1;
        if pending {
            self.pending.push(index);
            (index, Some(deadline))
        } else {
            (index, None)
        }
    }

    /// True if some assertion is waiting.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// When waiting assertions may be re-checked next: now, or a moment later if they were
    /// re-checked less than a millisecond ago (views change far more often than that).
    pub fn next_poll(&self, now: SimTime) -> SimTime {
        match self.last_poll {
            Some(t) if now < t.after(POLL_EVERY) => t.after(POLL_EVERY),
            _ => now,
        }
    }

    /// Re-checks waiting assertions.
    pub fn poll(&mut self, now: SimTime, view: &View<'_>) {
        if self.pending.is_empty() {
            return;
        }
        self.last_poll = Some(now);
        let items = &mut self.items;
        self.pending.retain(|&i| {
            if view.evaluate(&items[i].check).is_ok() {
                items[i].verdict = Verdict::Held(now);
                false
            } else {
                true
            }
        });
    }

    /// Assertion `index` reached its deadline (or the run ended at `now`): last check.
    pub fn expire(&mut self, index: usize, now: SimTime, ended: bool, view: &View<'_>) {
        let Some(pos) = self.pending.iter().position(|&i| i == index) else { return };
        self.pending.remove(pos);
        let item = &mut self.items[index];
        item.verdict = match view.evaluate(&item.check) {
            Ok(()) => Verdict::Held(now),
            Err(why) if ended && now < item.deadline => Verdict::Failed(now, format!("the run ended before it held: {why}")),
            Err(why) => {
                let within = format_duration(item.deadline.since(item.started));
                Verdict::Failed(now, format!("not within {within}: {why}"))
            }
        };
    }

    /// Indices of assertions still waiting.
    pub fn pending(&self) -> Vec<usize> {
        self.pending.clone()
    }

    /// Every assertion with its verdict.
    pub fn items(&self) -> &[Assertion] {
        &self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::LinkParams;

    #[test]
    fn assertions_hold_fail_or_wait_for_their_window() {
        let topo = Topology::generate(&[("east".into(), 2), ("west".into(), 1)]);
        let net = Network::new(3, LinkParams::default());
        let running = NodeSet::full(3);
        let mut beliefs = Beliefs::new(3);
        beliefs.recompute(&running, &net);
        let mut a = Assertions::default();
        let t0 = SimTime::ZERO;
        {
            let ownership = Ownership::default();
        let config = std::collections::BTreeMap::new();
        let view = View { beliefs: &beliefs, running: &running, net: &net, topo: &topo, ownership: &ownership, config: &config, holders: None };
            let (i, deadline) = a.add("members".into(), Check::Members { nodes: vec![0, 1, 2], up: 3 }, None, t0, &view);
            assert!(deadline.is_none());
            match &a.items()[i].verdict {
                Verdict::Failed(_, why) => assert!(why.contains("expected 3 up; 3 of 3 wrong: mgr sees 1"), "{why}"),
                other => panic!("{other:?}"),
            }
            let (_, deadline) = a.add("conv".into(), Check::Converged, Some(Duration::from_secs(5)), t0, &view);
            assert_eq!(deadline, Some(SimTime::from_duration(Duration::from_secs(5))));
            assert!(a.has_pending());
        }
        for x in 0..3 {
            for y in 0..3 {
                beliefs.set(x, y, true, true);
            }
        }
        let ownership = Ownership::default();
        let config = std::collections::BTreeMap::new();
        let view = View { beliefs: &beliefs, running: &running, net: &net, topo: &topo, ownership: &ownership, config: &config, holders: None };
        a.poll(SimTime::from_duration(Duration::from_secs(1)), &view);
        assert!(!a.has_pending());
        assert!(matches!(a.items()[1].verdict, Verdict::Held(_)));
        let (i, _) = a.add("down".into(), Check::Down { member: 2, by: None }, Some(Duration::from_secs(1)), t0, &view);
        a.expire(i, SimTime::from_duration(Duration::from_secs(1)), false, &view);
        match &a.items()[i].verdict {
            Verdict::Failed(_, why) => assert!(why.contains("not within 1.00s: 2 of 2 still see west1 up"), "{why}"),
            other => panic!("{other:?}"),
        }
        let (i, _) = a.add("up".into(), Check::Up { member: 2, by: Some(vec![0]) }, None, t0, &view);
        assert!(matches!(a.items()[i].verdict, Verdict::Held(_)));
    }
    #[test]
    fn the_managers_view_must_name_exactly_the_running_holders() {
        use eccluster_proto::duravip::{HoldingState, Stamp, NO_TERM};
        use eccluster_proto::holders::{HolderBook, HoldingsReport};

        let topo = Topology::generate(&[("east".into(), 2), ("west".into(), 1)]);
        let net = Network::new(3, LinkParams::default());
        let running = NodeSet::full(3);
        let beliefs = Beliefs::new(3);
        let config = std::collections::BTreeMap::new();
        let addr: IpAddr = "10.9.0.1".parse().expect("addr");
        let mut ownership = Ownership::new(Duration::from_secs(1), []);
        ownership.on_change(2, addr, true, SimTime::ZERO, &net);
        let check = Check::ManagerView { addrs: vec![addr] };
        let mut book = HolderBook::new();
        let evaluate = |book: Option<&HolderBook>| {
            let view = View { beliefs: &beliefs, running: &running, net: &net, topo: &topo, ownership: &ownership, config: &config, holders: book };
            view.evaluate(&check)
        };
        assert_eq!(evaluate(None), Err("no manager runs".to_owned()));
        let why = evaluate(Some(&book)).expect_err("the manager knows no holder yet");
        assert!(why.contains("the manager says [], held by [\"west1\"]"), "{why}");
        let report = |node: &str, book: &mut HolderBook, seq| {
            let entries = vec![(addr, NO_TERM, HoldingState::Held)];
            book.handle_report(std::time::Instant::now(), node, HoldingsReport { stamp: Stamp { incarnation: 1, seq }, entries }, |_| true);
        };
        report("west1", &mut book, 1);
        assert_eq!(evaluate(Some(&book)), Ok(()));
        report("east1", &mut book, 2);
        assert!(evaluate(Some(&book)).is_err(), "a holder the manager invents is wrong too");
    }
}
