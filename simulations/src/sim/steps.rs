//! Timeline actions: partitions and heals, crashes, restarts and leaves (chosen nodes or
//! random ones), link changes, clock rates, rolling restarts, churn, and assertions. Random
//! choices use the simulation's one RNG, in step order.

use std::time::Duration;

use rand::RngExt;

use eccluster_proto::node::line::join_words;
use eccluster_proto::node::{Command, CommandError, Reply};
use eccluster_proto::ops::Target;

use super::{Churn, Refusal, Repeat, Simulation};
use crate::assertions::{Check, View};
use crate::bitset::NodeSet;
use crate::scenario::{Action, Links, OpsTarget, Pick, Selector};
use crate::time::SimTime;
use crate::world::Event;

impl Simulation {
    fn nodes_of(&self, selector: &Selector) -> Vec<usize> {
        selector.resolve(&self.topo).unwrap_or_default()
    }

    fn set_of(&self, selector: &Selector) -> NodeSet {
        NodeSet::from_indices(self.topo.len(), self.nodes_of(selector))
    }

    /// `count` distinct nodes drawn at random from `candidates` (all of them if fewer).
    fn choose(&mut self, mut candidates: Vec<usize>, count: usize, what: &str) -> Vec<usize> {
        if candidates.len() < count {
            self.notes.push(format!(
                "at {}: {what} asked for {count} random nodes but only {} qualified",
                self.world.now(),
                candidates.len()
            ));
        }
        let take = count.min(candidates.len());
        for k in 0..take {
            let j = self.rng.random_range(k..candidates.len());
            candidates.swap(k, j);
        }
        candidates.truncate(take);
        candidates.sort_unstable();
        candidates
    }

    fn pick(&mut self, pick: &Pick, want_running: bool, what: &str) -> Vec<usize> {
        let qualifies = |s: &Simulation, i: usize| s.nodes[i].is_running() == want_running;
        match pick {
            Pick::Nodes(sel) => self.nodes_of(sel),
            Pick::All => (0..self.topo.len()).filter(|&i| qualifies(self, i)).collect(),
            Pick::Random { count, among } => {
                let pool = match among {
                    Some(sel) => self.nodes_of(sel),
                    None => (0..self.topo.len()).collect(),
                };
                let candidates = pool.into_iter().filter(|&i| qualifies(self, i)).collect();
                self.choose(candidates, *count, what)
            }
        }
    }

    pub(super) fn run_step(&mut self, index: usize) {
        let step = self.steps[index].clone();
        let now = self.world.now();
        let line = format!("step timeline[{}] {}", step.index, step.action.name());
        self.trace.note(now, &line);
        let label = format!("timeline[{}] {} at {}", step.index, step.action.name(), SimTime::from_duration(step.at));
        match &step.action {
            Action::Partition(groups) => {
                let sets: Vec<NodeSet> = groups.iter().map(|g| self.set_of(g)).collect();
                self.net.partition(&sets, now);
                self.truth_changed("partition", None);
            }
            Action::OneWayPartition(from, to) => {
                let (from, to) = (self.set_of(from), self.set_of(to));
                self.net.one_way_partition(from, to, now);
                self.truth_changed("one-way partition", None);
            }
            Action::Isolate(nodes) => {
                let set = self.set_of(nodes);
                self.net.isolate(&set, now);
                self.truth_changed("isolate", None);
            }
            Action::Heal => {
                self.net.heal(now);
                self.truth_changed("heal", None);
            }
            Action::Crash(pick) => {
                for i in self.pick(pick, true, &label) {
                    self.stop_node(i, false);
                }
            }
            Action::Leave(pick) => {
                for i in self.pick(pick, true, &label) {
                    self.stop_node(i, true);
                }
            }
            Action::Restart(pick) => {
                let chosen = match pick {
                    Pick::Nodes(sel) => self.nodes_of(sel),
                    other => self.pick(other, false, &label),
                };
                for i in chosen {
                    self.stop_node(i, true);
                    self.start_node(i);
                }
            }
            Action::SetNetwork(links, patch) => match links {
                Links::All => self.net.patch_all(patch),
                Links::Between(a, b) => {
                    let (a, b) = (self.set_of(a), self.set_of(b));
                    self.net.patch_links(a.clone(), b.clone(), patch.clone());
                    self.net.patch_links(b, a, patch.clone());
                }
                Links::Directed(a, b) => {
                    let (a, b) = (self.set_of(a), self.set_of(b));
                    self.net.patch_links(a, b, patch.clone());
                }
            },
            Action::SetDiskFull(nodes, full) => {
                for i in self.nodes_of(nodes) {
                    self.nodes[i].disk_full = *full;
                }
            }
            Action::SetClockRate(nodes, rate) => {
                for i in self.nodes_of(nodes) {
                    self.nodes[i].set_clock_rate(now, *rate);
                }
            }
            Action::RollingRestart { among, interval, down_for, graceful } => {
                let order = match among {
                    Some(sel) => self.nodes_of(sel),
                    None => (0..self.topo.len()).collect(),
                };
                for (k, i) in order.into_iter().enumerate() {
                    let stop = now.after(interval.saturating_mul(k as u32));
                    self.world.schedule(stop, Event::Stop { node: i as u32, graceful: *graceful });
                    self.world.schedule(stop.after(*down_for), Event::Start(i as u32));
                }
            }
            Action::Churn { among, every, period, down_for, graceful } => {
                let candidates = match among {
                    Some(sel) => self.nodes_of(sel),
                    None => (0..self.topo.len()).collect(),
                };
                self.churns.push(Churn {
                    candidates,
                    every: *every,
                    until: now.after(*period),
                    down_for: *down_for,
                    graceful: *graceful,
                });
                let first = now.after(self.exponential(*every));
                self.world.schedule(first, Event::ChurnTick((self.churns.len() - 1) as u32));
            }
            Action::Wait(_) => {}
            Action::AssertMembers { node, up, within } => {
                let nodes = match node {
                    Some(sel) => self.nodes_of(sel),
                    None => (0..self.topo.len()).collect(),
                };
                self.assert(label, Check::Members { nodes, up: *up }, *within);
            }
            Action::AssertConverged { within } => self.assert(label, Check::Converged, *within),
            Action::AssertConfig { within } => self.assert(label, Check::Config(self.revisions.committed.clone()), *within),
            Action::ConfigServerDown(down) => {
                self.revisions.server_down = *down;
                self.trace.note(now, if *down { "configuration server down" } else { "configuration server up" });
            }
            Action::ConfigCommit(repo) => {
                let rev = self.revisions.committed.get(repo).map_or(1, |r| r + 1);
                self.revisions.committed.insert(repo.clone(), rev);
                self.trace.note(now, &format!("commit {repo} revision {rev}"));
                // The configuration server tells the manager that runs (none: the nodes hear
                // of it when a manager is back and is told again).
                if let Some(m) = (0..self.topo.len()).find(|&i| self.topo.host(i).role == eccluster_proto::Role::Manager && self.nodes[i].is_running()) {
                    let instant = self.node_instant(m);
                    if let Some(core) = self.nodes[m].core.as_mut() {
                        core.config_published(instant, repo, rev);
                    }
                    self.drain(m);
                }
            }
            Action::Broadcast { command, target, repeat } => {
                let target = match target {
                    OpsTarget::Cluster => Target::Cluster,
                    OpsTarget::Subcluster(s) => Target::Subcluster(s.clone()),
                    OpsTarget::Node(n) => Target::Node(n.clone()),
                };
                self.submit(command, &target, &label);
                if let Some((every, period)) = repeat {
                    self.repeats.push(Repeat { command: command.clone(), target, label, every: *every, until: now.after(*period) });
                    self.world.schedule(now.after(*every), Event::RepeatTick((self.repeats.len() - 1) as u32));
                }
            }
            Action::AssertManagerView { within } => {
                self.assert(label, Check::ManagerView { addrs: self.vips.clone() }, *within);
            }
            Action::AssertHolders { addr, among, count, within } => {
                let among = match among {
                    Some(sel) => self.nodes_of(sel),
                    None => (0..self.topo.len()).collect(),
                };
                let addrs = match addr {
                    Some(a) => vec![*a],
                    None => self.vips.clone(),
                };
                self.assert(label, Check::Holders { addrs, among, count: *count }, *within);
            }
            Action::AssertDown { member, by, within } | Action::AssertUp { member, by, within } => {
                let member = self.topo.index_of_name(&member.to_ascii_lowercase()).unwrap_or(0);
                let by = by.as_ref().map(|sel| self.nodes_of(sel));
                let check = if matches!(step.action, Action::AssertDown { .. }) {
                    Check::Down { member, by }
                } else {
                    Check::Up { member, by }
                };
                self.assert(label, check, *within);
            }
        }
    }

    fn assert(&mut self, label: String, check: Check, within: Option<Duration>) {
        self.ensure_truth();
        let now = self.world.now();
        let view = View { beliefs: &self.beliefs, running: &self.running, net: &self.net, topo: &self.topo, ownership: &self.ownership, config: &self.revisions.running, holders: super::manager_book(&self.nodes, &self.topo) };
        let (index, deadline) = self.assertions.add(label, check, within, now, &view);
        if let Some(deadline) = deadline {
            self.world.schedule(deadline, Event::AssertionDeadline(index as u32));
        }
    }

    /// Hands `command` to the first running manager, as `ec_console` would: the manager
    /// checks it (a `duravip move` names a binding and a live candidate) and sequences it.
    fn submit(&mut self, command: &str, target: &Target, label: &str) {
        let now = self.world.now();
        let manager = self.running.iter().find(|&i| self.topo.host(i).role == eccluster_proto::Role::Manager);
        let Some(m) = manager else {
            self.refuse(label, command, "no manager runs".to_owned());
            return;
        };
        self.next_request += 1;
        let request = self.next_request;
        self.submits.insert(request, (label.to_owned(), format!("{target}: {command}")));
        let words: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        let submit = Command::Submit { target: target.clone(), command: join_words(&words) };
        self.trace.note(now, &format!("submit {target}: {command}"));
        self.command(m, request, submit);
    }

    /// The manager answered console request `request`.
    pub(super) fn on_reply(&mut self, request: u64, result: Result<Reply, CommandError>) {
        let Some((label, command)) = self.submits.remove(&request) else { return };
        let now = self.world.now();
        match result {
            Ok(Reply::Submitted { id, targets, .. }) => {
                self.ops_log.submitted += 1;
                self.ops_log.started.insert((id.epoch, id.seq), now);
                self.trace.note(now, &format!("sequenced {id} for {} node(s)", targets.len()));
                for t in &targets {
                    let Some(j) = self.topo.index_of_name(t) else { continue };
                    if let Some(core) = self.nodes[j].core.as_ref() {
                        self.ops.on_acked((id.epoch, id.seq), j, core.identity().incarnation, now);
                    }
                }
                if targets.is_empty() {
                    if let Some(started) = self.ops_log.started.remove(&(id.epoch, id.seq)) {
                        self.ops_log.completion.push(now.since(started));
                    }
                }
            }
            Ok(_) => {}
            Err(e) => self.refuse(&label, &command, e.to_string()),
        }
    }

    fn refuse(&mut self, label: &str, command: &str, why: String) {
        let now = self.world.now();
        self.ops_log.refused += 1;
        self.trace.note(now, &format!("refused {command}: {why}"));
        if self.ops_log.refusals.len() < 100 {
            self.ops_log.refusals.push(Refusal { at: now, step: label.to_owned(), command: command.to_owned(), why });
        }
    }

    pub(super) fn repeat_tick(&mut self, index: usize) {
        let now = self.world.now();
        let Some(r) = self.repeats.get(index) else { return };
        if now > r.until {
            return;
        }
        let (command, target, label, next) = (r.command.clone(), r.target.clone(), r.label.clone(), now.after(r.every));
        self.submit(&command, &target, &label);
        if next <= self.repeats[index].until {
            self.world.schedule(next, Event::RepeatTick(index as u32));
        }
    }

    /// A delay drawn from the exponential distribution with this mean.
    fn exponential(&mut self, mean: Duration) -> Duration {
        let u: f64 = self.rng.random();
        mean.mul_f64(-(1.0 - u).ln())
    }

    pub(super) fn churn_tick(&mut self, index: usize) {
        let now = self.world.now();
        let Some(churn) = self.churns.get(index) else { return };
        if now > churn.until {
            return;
        }
        let (every, down_for, graceful) = (churn.every, churn.down_for, churn.graceful);
        let candidates: Vec<usize> = churn.candidates.iter().copied().filter(|&i| self.nodes[i].is_running()).collect();
        if !candidates.is_empty() {
            let victim = candidates[self.rng.random_range(0..candidates.len())];
            self.stop_node(victim, graceful);
            let lo = u64::try_from(down_for.0.as_nanos()).unwrap_or(u64::MAX);
            let hi = u64::try_from(down_for.1.as_nanos()).unwrap_or(u64::MAX);
            let down = Duration::from_nanos(self.rng.random_range(lo..=hi));
            self.world.schedule(now.after(down), Event::Start(victim as u32));
        }
        let next = now.after(self.exponential(every));
        if next <= self.churns[index].until {
            self.world.schedule(next, Event::ChurnTick(index as u32));
        }
    }
}
