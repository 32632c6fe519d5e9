//! Sequencer and appliers wired in memory over a lossy, duplicating, reordering channel.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::*;
use crate::error::OpsError;
use crate::ids::{MemberId, Role};

fn node(name: &str, sc: &str, incarnation: u64) -> MemberId {
    MemberId {
        name: name.into(),
        addr: SocketAddr::from(([127, 0, 0, 1], 4803)),
        role: Role::Node,
        subcluster: sc.into(),
        incarnation,
    }
}

/// A manager and some nodes. Messages in flight are a bag delivered in random order, with
/// loss and duplication; timers fire when `advance` passes them.
struct Bench {
    rng: StdRng,
    now: Instant,
    epoch: Instant,
    seq: Sequencer,
    nodes: BTreeMap<String, Applier>,
    to_nodes: Vec<(String, OpMessage)>,
    to_manager: Vec<(String, OpMessage)>,
    timers: Vec<(Instant, SequencerTimer)>,
    loss: f64,
    dup: f64,
    completed: Vec<OpId>,
}

impl Bench {
    fn new(seed: u64, epoch: u64, names: &[(&str, &str)]) -> Bench {
        // The one clock read: a test harness picks its virtual epoch; the cores only see it.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        let mut seq = Sequencer::new(epoch, OpsConfig::default());
        let mut nodes = BTreeMap::new();
        for (n, sc) in names {
            seq.handle_member_up(now, &node(n, sc, 1));
            nodes.insert(n.to_string(), Applier::new(1, OpsConfig::default()));
        }
        Bench {
            rng: StdRng::seed_from_u64(seed),
            now,
            epoch: now,
            seq,
            nodes,
            to_nodes: Vec::new(),
            to_manager: Vec::new(),
            timers: Vec::new(),
            loss: 0.0,
            dup: 0.0,
            completed: Vec::new(),
        }
    }

    fn drain_manager(&mut self) {
        while let Some(o) = self.seq.poll_output() {
            match o {
                SequencerOutput::Send { to, message } => self.to_nodes.push((to, message)),
                SequencerOutput::SetTimer { after, timer } => self.timers.push((self.now + after, timer)),
                SequencerOutput::Completed(id) => self.completed.push(id),
            }
        }
    }

    fn drain_node(&mut self, name: &str) {
        loop {
            let Some(a) = self.nodes.get_mut(name) else { return };
            let Some(o) = a.poll_output() else { return };
            match o {
                ApplierOutput::Execute(op) => {
                    let status = if op.command.starts_with("fail") { AnswerStatus::Error } else { AnswerStatus::Ok };
                    let body = format!("{name} ran {}", op.command);
                    a.handle_executed(op.id, status, body);
                }
                ApplierOutput::Send { message, .. } => self.to_manager.push((name.to_owned(), message)),
            }
        }
    }

    /// Delivers everything in flight (in random order, some lost, some twice) until quiet.
    fn deliver(&mut self) {
        self.drain_manager();
        for _ in 0..10_000 {
            let total = self.to_nodes.len() + self.to_manager.len();
            if total == 0 {
                return;
            }
            let pick = self.rng.random_range(0..total);
            let lost = self.rng.random_bool(self.loss);
            let dup = self.rng.random_bool(self.dup);
            if pick < self.to_nodes.len() {
                let (to, m) = if dup { self.to_nodes[pick].clone() } else { self.to_nodes.swap_remove(pick) };
                if !lost {
                    if let Some(a) = self.nodes.get_mut(&to) {
                        a.handle_message("mgr", m).expect("apply accepted");
                    }
                    self.drain_node(&to);
                }
            } else {
                let i = pick - self.to_nodes.len();
                let (from, m) = if dup { self.to_manager[i].clone() } else { self.to_manager.swap_remove(i) };
                if !lost {
                    self.seq.handle_message(self.now, &from, m).expect("answers accepted");
                }
            }
            self.drain_manager();
        }
        panic!("messages kept flowing");
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.timers.sort_by_key(|(at, _)| *at);
        let due: Vec<_> = self.timers.iter().filter(|(at, _)| *at <= self.now).cloned().collect();
        self.timers.retain(|(at, _)| *at > self.now);
        for (_, t) in due {
            self.seq.handle_timer(self.now, t);
        }
        self.deliver();
    }

    fn applied(&self, name: &str) -> Vec<OpId> {
        self.nodes[name].applied().copied().collect()
    }
}

const THREE: &[(&str, &str)] = &[("east1", "east"), ("east2", "east"), ("west1", "west")];

#[test]
fn broadcast_reaches_every_live_node_and_answers_are_retrievable() {
    let mut b = Bench::new(1, 7, THREE);
    let s = b.seq.submit(b.now, "version", Target::Cluster).expect("submit");
    assert_eq!(s.id, OpId { epoch: 7, seq: 1 });
    assert_eq!(s.targets, vec!["east1", "east2", "west1"]);
    b.deliver();
    assert_eq!(b.completed, vec![s.id]);
    let rows = b.seq.results().retrieve("version").expect("broadcast known");
    assert_eq!(rows.len(), 3);
    for r in &rows {
        assert_eq!(r.result.status, ResultStatus::Ok);
        assert_eq!(r.result.body, format!("{} ran version", r.node));
    }
    assert_eq!(b.seq.flush_results(), 3);
    assert!(b.seq.results().retrieve("version").is_none());
}

#[test]
fn subcluster_broadcast_and_unicast_target_exactly_their_nodes() {
    let mut b = Bench::new(2, 1, THREE);
    let s = b.seq.submit(b.now, "fail now", Target::Subcluster("east".into())).expect("submit");
    assert_eq!(s.targets, vec!["east1", "east2"]);
    let u = b.seq.submit(b.now, "version", Target::Node("west1".into())).expect("unicast");
    b.deliver();
    assert!(b.applied("west1") == vec![u.id]);
    let east = b.seq.results().retrieve_subcluster("east", "fail now").expect("east");
    assert_eq!(east.len(), 2);
    assert!(east.iter().all(|r| r.result.status == ResultStatus::Error));
    assert!(b.seq.results().retrieve_subcluster("west", "fail now").is_none());
    assert_eq!(b.seq.results().retrieve_node("west1", "version").expect("west1").result.status, ResultStatus::Ok);
    assert_eq!(b.seq.submit(b.now, "x", Target::Node("nobody".into())), Err(OpsError::NotAMember("nobody".into())));
    assert_eq!(
        b.seq.submit(b.now, "x", Target::Subcluster("north".into())),
        Err(OpsError::NoLiveNode("north".into()))
    );
}

#[test]
fn lossy_duplicating_reordering_network_still_applies_each_op_once_in_order() {
    for seed in 0..20 {
        let mut b = Bench::new(seed, 3, THREE);
        b.loss = 0.3;
        b.dup = 0.2;
        let mut expected: BTreeMap<&str, Vec<OpId>> = BTreeMap::new();
        for i in 0..200 {
            let target = match i % 3 {
                0 => Target::Cluster,
                1 => Target::Subcluster("east".into()),
                _ => Target::Node("west1".into()),
            };
            let s = b.seq.submit(b.now, &format!("cmd {i}"), target).expect("submit");
            for t in &s.targets {
                expected.entry(THREE.iter().find(|(n, _)| n == t).map(|(n, _)| *n).expect("known")).or_default().push(s.id);
            }
            if i % 7 == 0 {
                b.deliver();
            }
        }
        for _ in 0..100 {
            b.advance(Duration::from_millis(1000));
        }
        for (name, ids) in &expected {
            assert_eq!(&b.applied(name), ids, "seed {seed}: {name} applied a different sequence");
        }
        assert_eq!(b.seq.in_flight(), 0, "seed {seed}: operations left incomplete");
    }
}

#[test]
fn node_death_and_restart_mark_unanswered_ops_node_left() {
    let mut b = Bench::new(4, 1, THREE);
    b.loss = 1.0; // nothing gets through
    let s = b.seq.submit(b.now, "version", Target::Cluster).expect("submit");
    b.deliver();
    b.seq.handle_member_down(b.now, "east2");
    b.seq.handle_member_up(b.now, &node("west1", "west", 2));
    b.drain_manager();
    let rows = b.seq.results().retrieve("version").expect("known");
    let status = |n: &str| rows.iter().find(|r| r.node == n).expect("row").result.status;
    assert_eq!(status("east2"), ResultStatus::NodeLeft);
    assert_eq!(status("west1"), ResultStatus::NodeLeft);
    assert_eq!(status("east1"), ResultStatus::Pending);
    b.advance(Duration::from_secs(31));
    let rows = b.seq.results().retrieve("version").expect("known");
    assert_eq!(rows.iter().find(|r| r.node == "east1").expect("row").result.status, ResultStatus::NoAnswer);
    assert!(b.completed.contains(&s.id));
    // The restarted node gets a fresh per-node sequence and an answer now arrives.
    b.loss = 0.0;
    b.nodes.insert("west1".into(), Applier::new(2, OpsConfig::default()));
    let u = b.seq.submit(b.now, "again", Target::Node("west1".into())).expect("unicast");
    b.deliver();
    assert_eq!(b.applied("west1"), vec![u.id]);
}

#[test]
fn new_manager_epoch_never_reapplies_old_ops() {
    let mut b = Bench::new(5, 1, THREE);
    let first = b.seq.submit(b.now, "version", Target::Cluster).expect("submit");
    b.deliver();
    let stale = OpMessage::Apply {
        incarnation: 1,
        ops: vec![Op { id: first.id, node_seq: 1, command: "version".into() }],
    };
    // The manager restarts with a larger epoch; its sequence starts again at 1.
    let mut fresh = Sequencer::new(2, OpsConfig::default());
    for (n, sc) in THREE {
        fresh.handle_member_up(b.now, &node(n, sc, 1));
    }
    b.seq = fresh;
    let second = b.seq.submit(b.now, "version", Target::Cluster).expect("submit");
    assert!(second.id > first.id);
    b.deliver();
    // A late retransmission from the old manager run changes nothing.
    b.nodes.get_mut("east1").expect("east1").handle_message("mgr", stale).expect("ignored");
    b.drain_node("east1");
    for (n, _) in THREE {
        assert_eq!(b.applied(n), vec![first.id, second.id], "{n}");
    }
    let _ = b.epoch;
}
