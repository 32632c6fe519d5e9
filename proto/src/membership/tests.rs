//! Core cluster tests: several `Membership` cores wired in memory with a virtual clock.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use rand::SeedableRng;

use super::*;
use crate::ids::Role;

enum Pending {
    Deliver { from: String, to: String, payload: Bytes },
    Fire { node: usize, timer: Timer },
}

struct Net {
    epoch: Instant,
    now: Duration,
    nodes: Vec<Membership>,
    alive: Vec<bool>,
    /// A member cut off from everyone: nothing it sends or is sent arrives.
    cut_off: Option<usize>,
    /// A frozen member (a stopped process): packets to it are lost, its timers wait.
    frozen: Option<usize>,
    queue: BinaryHeap<Reverse<(Duration, u64)>>,
    pending: BTreeMap<u64, Pending>,
    seq: u64,
    events: Vec<(Duration, usize, ClusterEvent)>,
}

fn roster(n: usize) -> Roster {
    let mut r = Roster::new();
    for i in 0..n {
        let sc = if i % 2 == 0 { "east" } else { "west" };
        r.insert(&format!("n{i}"), SocketAddr::from(([127, 0, 1, i as u8 + 1], 4803)), sc);
    }
    r
}

fn id(i: usize, incarnation: u64) -> MemberId {
    MemberId {
        name: format!("n{i}"),
        addr: SocketAddr::from(([127, 0, 1, i as u8 + 1], 4803)),
        role: if i == 0 { Role::Manager } else { Role::Node },
        subcluster: if i.is_multiple_of(2) { "east".into() } else { "west".into() },
        incarnation,
    }
}

impl Net {
    fn new(n: usize, seed: u64) -> Net {
        let nodes = (0..n)
            .map(|i| {
                let rng = StdRng::seed_from_u64(seed + i as u64);
                Membership::new(id(i, 1), roster(n), MembershipConfig::lan(n), rng)
            })
            .collect();
        Net {
            // The one clock read: a test harness picks its virtual epoch; the cores only see it.
            #[allow(clippy::disallowed_methods)]
            epoch: Instant::now(),
            now: Duration::ZERO,
            nodes,
            alive: vec![true; n],
            cut_off: None,
            frozen: None,
            queue: BinaryHeap::new(),
            pending: BTreeMap::new(),
            seq: 0,
            events: Vec::new(),
        }
    }

    fn schedule(&mut self, after: Duration, p: Pending) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + after, self.seq)));
        self.pending.insert(self.seq, p);
    }

    fn drain(&mut self, i: usize) {
        while let Some(out) = self.nodes[i].poll_output() {
            match out {
                Output::Send { to, payload } => {
                    let from = self.nodes[i].identity().name.clone();
                    self.schedule(Duration::from_millis(1), Pending::Deliver { from, to: to.name, payload });
                }
                Output::SetTimer { after, timer } => self.schedule(after, Pending::Fire { node: i, timer }),
                Output::Event(e) => self.events.push((self.now, i, e)),
            }
        }
    }

    fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            let now = self.epoch + self.now;
            self.nodes[i].start(now);
            self.drain(i);
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
            if at > end {
                break;
            }
            self.queue.pop();
            self.now = at;
            let now = self.epoch + at;
            match self.pending.remove(&seq) {
                Some(Pending::Deliver { from, to, payload }) => {
                    let Some(t) = self.nodes.iter().position(|m| m.identity().name == to) else { continue };
                    let f = self.nodes.iter().position(|m| m.identity().name == from);
                    if !self.alive[t] || self.cut_off.is_some_and(|c| c == t || Some(c) == f) || self.frozen == Some(t) {
                        continue;
                    }
                    self.nodes[t].handle_datagram(now, &from, &payload).expect("valid datagram");
                    self.drain(t);
                }
                Some(Pending::Fire { node, timer }) if self.frozen == Some(node) => {
                    self.schedule(Duration::from_millis(10), Pending::Fire { node, timer });
                }
                Some(Pending::Fire { node, timer }) if self.alive[node] => {
                    self.nodes[node].handle_timer(now, timer);
                    self.drain(node);
                }
                Some(Pending::Fire { .. }) => {}
                None => {}
            }
        }
        self.now = end;
    }

    fn up_view(&self, i: usize) -> BTreeSet<String> {
        self.nodes[i]
            .members()
            .into_iter()
            .filter(|m| m.state == MemberState::Up)
            .map(|m| m.id.name)
            .collect()
    }
}

#[test]
fn six_members_converge_from_the_roster() {
    let mut net = Net::new(6, 0xC0FFEE);
    net.start_all();
    net.run_for(Duration::from_secs(3));
    let all: BTreeSet<String> = (0..6).map(|i| format!("n{i}")).collect();
    for i in 0..6 {
        assert_eq!(net.up_view(i), all, "view of n{i}");
    }
}

#[test]
fn crashed_member_is_declared_down_everywhere_within_bound() {
    let mut net = Net::new(8, 7);
    net.start_all();
    net.run_for(Duration::from_secs(3));
    net.alive[3] = false;
    let crashed_at = net.now;
    net.run_for(Duration::from_secs(6));
    for i in (0..8).filter(|&i| i != 3) {
        let downs: Vec<_> = net
            .events
            .iter()
            .filter(|(at, node, e)| *node == i && *at > crashed_at && matches!(e, ClusterEvent::MemberDown(m) if m.name == "n3"))
            .collect();
        assert_eq!(downs.len(), 1, "n{i} must see n3 down once");
        assert!(downs[0].0 - crashed_at < Duration::from_secs(5), "n{i} too slow: {:?}", downs[0].0 - crashed_at);
        assert!(!net.up_view(i).contains("n3"));
    }
    // Nobody else was declared down.
    assert!(net.events.iter().all(|(_, _, e)| !matches!(e, ClusterEvent::MemberDown(m) if m.name != "n3")));
}

#[test]
fn restarted_member_rejoins_with_a_higher_incarnation() {
    let mut net = Net::new(5, 11);
    net.start_all();
    net.run_for(Duration::from_secs(2));
    net.alive[2] = false;
    net.run_for(Duration::from_secs(6));
    net.nodes[2] = Membership::new(id(2, 2), roster(5), MembershipConfig::lan(5), StdRng::seed_from_u64(99));
    net.alive[2] = true;
    let now = net.epoch + net.now;
    net.nodes[2].start(now);
    net.drain(2);
    net.run_for(Duration::from_secs(4));
    for i in 0..5 {
        let row = net.nodes[i].members().into_iter().find(|m| m.id.name == "n2").expect("n2 known");
        assert_eq!(row.state, MemberState::Up, "n2 in view of n{i}");
        assert_eq!(row.id.incarnation, 2, "n2 incarnation in view of n{i}");
    }
}

#[test]
fn impostor_and_stranger_packets_are_refused() {
    let mut net = Net::new(3, 5);
    net.start_all();
    // Grab a real SWIM datagram from n1 addressed to someone.
    let payload = loop {
        match net.nodes[1].poll_output() {
            Some(Output::Send { payload, .. }) => break payload,
            Some(_) => continue,
            None => {
                net.nodes[1].start(net.epoch);
            }
        }
    };
    let now = net.epoch;
    let err = net.nodes[0].handle_datagram(now, "n2", &payload).expect_err("impostor");
    assert_eq!(err.to_string(), "peer authenticated as n2 claims to be n1");

    let mut stranger = Membership::new(
        MemberId { name: "evil".into(), ..id(1, 1) },
        roster(3),
        MembershipConfig::lan(3),
        StdRng::seed_from_u64(1),
    );
    stranger.start(now);
    let payload = std::iter::from_fn(|| stranger.poll_output())
        .find_map(|o| match o {
            Output::Send { payload, .. } => Some(payload),
            _ => None,
        })
        .expect("stranger announces");
    let err = net.nodes[0].handle_datagram(now, "evil", &payload).expect_err("stranger");
    assert_eq!(err.to_string(), "evil is not a host of the segment file");

    let err = net.nodes[0].handle_datagram(now, "n1", b"\x01\x01garbage").expect_err("garbage");
    assert!(err.to_string().starts_with("swim: "), "{err}");
    let err = net.nodes[0].handle_datagram(now, "n1", b"").expect_err("empty");
    assert_eq!(err.to_string(), "truncated envelope: 0 bytes, need at least 2");
}

#[test]
fn graceful_leave_is_seen_as_down() {
    let mut net = Net::new(4, 3);
    net.start_all();
    net.run_for(Duration::from_secs(2));
    let now = net.epoch + net.now;
    net.nodes[1].leave(now);
    net.drain(1);
    net.run_for(Duration::from_millis(300));
    net.alive[1] = false;
    net.run_for(Duration::from_secs(1));
    for i in [0, 2, 3] {
        assert!(!net.up_view(i).contains("n1"), "n{i} still sees n1 up");
    }
}

#[test]
fn a_peer_talking_to_an_old_identity_is_told_the_new_one() {
    let mut net = Net::new(4, 21);
    net.start_all();
    net.run_for(Duration::from_secs(2));
    // n1 comes back at a higher incarnation without announcing itself (as after being
    // declared down across a cut): its peers still probe n1#1, which foca ignores unread.
    net.nodes[1] = Membership::new(id(1, 2), roster(4), MembershipConfig::lan(4), StdRng::seed_from_u64(5));
    // Nor does it ever announce by itself: the old run's timers are gone with it.
    net.pending.retain(|_, p| !matches!(p, Pending::Fire { node: 1, .. }));
    let renewed_at = net.now;
    net.run_for(Duration::from_secs(6));
    for i in [0, 2, 3] {
        let row = net.nodes[i].members().into_iter().find(|m| m.id.name == "n1").expect("n1 known");
        assert_eq!((row.state, row.id.incarnation), (MemberState::Up, 2), "n1 in view of n{i}");
    }
    let downs: Vec<_> = net
        .events
        .iter()
        .filter(|(at, _, e)| *at > renewed_at && matches!(e, ClusterEvent::MemberDown(m) if m.name == "n1"))
        .collect();
    assert!(downs.is_empty(), "n1 was alive throughout: {downs:?}");
    assert_eq!(net.up_view(1).len(), 4, "n1 learned the others from their answers");
}

#[test]
fn an_isolated_member_starts_afresh_instead_of_making_everyone_renew() {
    let mut net = Net::new(5, 33);
    net.start_all();
    net.run_for(Duration::from_secs(3));
    net.cut_off = Some(0);
    net.run_for(Duration::from_secs(15));
    let isolated = net.events.iter().any(|(_, n, e)| *n == 0 && matches!(e, ClusterEvent::Isolated));
    assert!(isolated, "n0 saw everyone down");
    assert!(net.nodes[0].identity().incarnation > 1, "n0 renewed its identity");
    let healed_at = net.now;
    net.cut_off = None;
    net.run_for(Duration::from_secs(8));
    let all: BTreeSet<String> = (0..5).map(|i| format!("n{i}")).collect();
    for i in 0..5 {
        assert_eq!(net.up_view(i), all, "view of n{i} after the heal");
    }
    // n0's declarations from its isolation were not gossiped: nobody else had to renew.
    let renewed: Vec<_> = net
        .events
        .iter()
        .filter(|(at, n, e)| *at > healed_at && *n != 0 && matches!(e, ClusterEvent::Rejoined(_)))
        .collect();
    assert!(renewed.is_empty(), "{renewed:?}");
}

#[test]
fn a_renewed_member_tells_every_live_member_at_once() {
    let mut net = Net::new(8, 8);
    net.start_all();
    net.run_for(Duration::from_secs(3));
    // n1 stops for a while (a stopped process): the others declare it down; when it runs
    // again it hears so, renews, and must tell everyone, not only foca's few gossip targets.
    net.frozen = Some(1);
    net.run_for(Duration::from_secs(6));
    net.frozen = None;
    net.run_for(Duration::from_secs(3));
    let (renewed_at, new) = net
        .events
        .iter()
        .find_map(|(at, n, e)| match e {
            ClusterEvent::Rejoined(id) if *n == 1 => Some((*at, id.incarnation)),
            _ => None,
        })
        .expect("n1 renewed");
    let told: BTreeSet<usize> = net
        .events
        .iter()
        .filter(|(at, n, e)| {
            *n != 1
                && *at <= renewed_at + Duration::from_millis(20)
                && matches!(e, ClusterEvent::MemberRenewed { to, .. } | ClusterEvent::MemberUp(to)
                    if to.name == "n1" && to.incarnation == new)
        })
        .map(|(_, n, _)| *n)
        .collect();
    assert_eq!(told.len(), 7, "within 20 ms of the renewal: {told:?}");
}
