//! The test harness: N DuraVIP cores wired in memory, with virtual time, a network with a
//! fixed latency whose links can be cut, and membership events fed by hand (so a test decides
//! who sees whom, and when).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::duravip::*;
use crate::ids::{MemberId, Role};
use crate::wire;

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 1, 1, last])
}

pub(super) fn member(name: &str, incarnation: u64) -> MemberId {
    MemberId {
        name: name.into(),
        addr: SocketAddr::from(([127, 0, 0, 1], 4803)),
        role: Role::Node,
        subcluster: "east".into(),
        incarnation,
    }
}

/// `count` bindings `vip-1`.. on 10.1.1.1.., every node a candidate.
pub(super) fn open_bindings(count: u8) -> Vec<Binding> {
    (1..=count)
        .map(|i| Binding {
            name: format!("vip-{i}"),
            addr: ip(i),
            candidates: Vec::new(),
            preference: None,
        })
        .collect()
}

/// The same, with an explicit candidate list (needed by the majority policy).
pub(super) fn listed_bindings(count: u8, names: &[&str]) -> Vec<Binding> {
    let mut b = open_bindings(count);
    for binding in &mut b {
        binding.candidates = names.iter().map(|n| n.to_string()).collect();
    }
    b
}

pub(super) fn majority() -> DuraVipConfig {
    DuraVipConfig {
        policy: Policy::Majority,
        ..DuraVipConfig::default()
    }
}

pub(super) enum Event {
    Deliver {
        from: String,
        to: String,
        payload: Bytes,
    },
    Timer {
        node: String,
        incarnation: u64,
        timer: DuraVipTimer,
    },
}

pub(super) struct Node {
    pub(super) core: DuraVip,
    pub(super) incarnation: u64,
    pub(super) running: bool,
    pub(super) held: BTreeSet<IpAddr>,
}

/// N cores, a clock and a network. Every output is logged with its time, so two runs can be
/// compared byte for byte; `strict` checks after every single event that no address has two
/// holders anywhere (across any cut).
pub(super) struct Cluster {
    pub(super) base: Instant,
    pub(super) now: Duration,
    pub(super) bindings: Vec<Binding>,
    pub(super) config: DuraVipConfig,
    pub(super) nodes: BTreeMap<String, Node>,
    pub(super) queue: BTreeMap<(Duration, u64), Event>,
    pub(super) next_event: u64,
    pub(super) cut: BTreeSet<(String, String)>,
    pub(super) latency: Duration,
    pub(super) strict: bool,
    pub(super) log: Vec<String>,
    /// (time, node, address, acquired?) for every Acquire and Release.
    pub(super) changes: Vec<(Duration, String, IpAddr, bool)>,
}

impl Cluster {
    /// Nodes `names`, started at time 0, each told at once that every other is up.
    pub(super) fn new(names: &[&str], bindings: Vec<Binding>, config: DuraVipConfig) -> Cluster {
        // The one clock read: the harness picks its virtual epoch; the cores only see it.
        #[allow(clippy::disallowed_methods)]
        let base = Instant::now();
        let mut c = Cluster {
            base,
            now: Duration::ZERO,
            bindings,
            config,
            nodes: BTreeMap::new(),
            queue: BTreeMap::new(),
            next_event: 0,
            cut: BTreeSet::new(),
            latency: ms(5),
            strict: true,
            log: Vec::new(),
            changes: Vec::new(),
        };
        for n in names {
            c.boot(n, 1);
        }
        for a in names {
            for b in names {
                if a != b {
                    c.up(a, b);
                }
            }
        }
        c
    }

    pub(super) fn at(&self) -> Instant {
        self.base + self.now
    }

    pub(super) fn boot(&mut self, name: &str, incarnation: u64) {
        let mut core =
            DuraVip::new(member(name, incarnation), self.bindings.clone(), self.config.clone()).expect("valid config");
        core.start(self.at());
        self.nodes.insert(
            name.to_owned(),
            Node {
                core,
                incarnation,
                running: true,
                held: BTreeSet::new(),
            },
        );
        self.drain(name);
    }

    pub(super) fn core(&self, name: &str) -> &DuraVip {
        &self.nodes[name].core
    }

    pub(super) fn core_mut(&mut self, name: &str) -> &mut DuraVip {
        &mut self.nodes.get_mut(name).expect("known node").core
    }

    pub(super) fn push(&mut self, after: Duration, event: Event) {
        self.next_event += 1;
        self.queue.insert((self.now + after, self.next_event), event);
    }

    /// Performs `name`'s outputs, checking the acquire/release discipline.
    pub(super) fn drain(&mut self, name: &str) {
        let now = self.now;
        loop {
            let node = self.nodes.get_mut(name).expect("known node");
            let Some(output) = node.core.poll_output() else { break };
            self.log.push(format!("{:>7} {name} {output:?}", now.as_millis()));
            match output {
                DuraVipOutput::Send { to, payload } => {
                    assert!(payload.len() <= wire::MAX_DATAGRAM);
                    assert_ne!(to, name, "a node sends to itself");
                    let latency = self.latency;
                    self.push(
                        latency,
                        Event::Deliver {
                            from: name.to_owned(),
                            to,
                            payload,
                        },
                    );
                }
                DuraVipOutput::SetTimer { after, timer } => {
                    let incarnation = node.incarnation;
                    self.push(
                        after,
                        Event::Timer {
                            node: name.to_owned(),
                            incarnation,
                            timer,
                        },
                    );
                }
                DuraVipOutput::Acquire(addr) => {
                    assert!(node.held.insert(addr), "{name} acquired {addr} twice\n{}", self.tail());
                    self.changes.push((now, name.to_owned(), addr, true));
                }
                DuraVipOutput::Release(addr) => {
                    assert!(
                        node.held.remove(&addr),
                        "{name} released {addr} it did not hold\n{}",
                        self.tail()
                    );
                    self.changes.push((now, name.to_owned(), addr, false));
                }
            }
        }
        let core_held: BTreeSet<IpAddr> = self.core(name).held().collect();
        assert_eq!(
            core_held, self.nodes[name].held,
            "{name}: held() disagrees with its outputs"
        );
        if self.strict {
            for b in &self.bindings {
                let h = self.holders(b.addr);
                assert!(
                    h.len() <= 1,
                    "at {:?} {} is held by {h:?}\n{}",
                    self.now,
                    b.addr,
                    self.tail()
                );
            }
        }
    }

    pub(super) fn tail(&self) -> String {
        self.log
            .iter()
            .rev()
            .take(40)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Runs every event due within `d`, then sets the clock to the end of it.
    pub(super) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > end {
                break;
            }
            let ((at, _), event) = entry.remove_entry();
            self.now = at;
            match event {
                Event::Deliver { from, to, payload } => {
                    let reachable = !self.cut.contains(&(from.clone(), to.clone()))
                        && self.nodes.get(&from).is_some_and(|n| n.running)
                        && self.nodes.get(&to).is_some_and(|n| n.running);
                    if reachable {
                        let now = self.at();
                        self.core_mut(&to)
                            .handle_datagram(now, &from, &payload)
                            .expect("well-formed datagram");
                        self.drain(&to);
                    }
                }
                Event::Timer {
                    node,
                    incarnation,
                    timer,
                } => {
                    let live = self
                        .nodes
                        .get(&node)
                        .is_some_and(|n| n.running && n.incarnation == incarnation);
                    if live {
                        let now = self.at();
                        self.core_mut(&node).handle_timer(now, timer);
                        self.drain(&node);
                    }
                }
            }
        }
        self.now = end;
    }

    pub(super) fn id(&self, name: &str) -> MemberId {
        member(name, self.nodes[name].incarnation)
    }

    /// `observer` learns that `subject` is up.
    pub(super) fn up(&mut self, observer: &str, subject: &str) {
        let (now, id) = (self.at(), self.id(subject));
        self.core_mut(observer).handle_member_up(now, &id);
        self.drain(observer);
    }

    /// `observer` learns that `subject` is down.
    pub(super) fn down(&mut self, observer: &str, subject: &str) {
        let (now, id) = (self.at(), self.id(subject));
        self.core_mut(observer).handle_member_down(now, &id);
        self.drain(observer);
    }

    /// Cuts every link between the two groups, both ways.
    pub(super) fn partition(&mut self, a: &[&str], b: &[&str]) {
        for x in a {
            for y in b {
                self.cut.insert((x.to_string(), y.to_string()));
                self.cut.insert((y.to_string(), x.to_string()));
            }
        }
    }

    /// The machine stops: its addresses vanish with it.
    pub(super) fn crash(&mut self, name: &str) {
        let node = self.nodes.get_mut(name).expect("known node");
        node.running = false;
        node.held.clear();
        self.log.push(format!("{:>7} {name} crashed", self.now.as_millis()));
    }

    /// A new run of `name` (next incarnation) that sees `peers`, and that they see.
    pub(super) fn restart(&mut self, name: &str, peers: &[&str]) {
        let incarnation = self.nodes[name].incarnation + 1;
        self.boot(name, incarnation);
        for p in peers {
            self.up(name, p);
            self.up(p, name);
        }
    }

    pub(super) fn holders(&self, addr: IpAddr) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.running && n.held.contains(&addr))
            .map(|(k, _)| k.clone())
            .collect()
    }

    pub(super) fn names(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// Every address has exactly one holder, and every running node (in `among`) elects it.
    pub(super) fn assert_one_agreed_owner_each(&self, among: &[&str]) {
        for b in &self.bindings {
            let h = self.holders(b.addr);
            assert_eq!(h.len(), 1, "{} held by {h:?}\n{}", b.addr, self.tail());
            for n in among {
                assert_eq!(
                    self.core(n).desired_owner(b.addr),
                    Some(h[0].as_str()),
                    "{n} disagrees on {}",
                    b.addr
                );
            }
        }
    }

    /// When `addr` was last acquired, and by whom.
    pub(super) fn last_acquired(&self, addr: IpAddr) -> Option<(Duration, String)> {
        self.changes
            .iter()
            .rev()
            .find(|c| c.2 == addr && c.3)
            .map(|c| (c.0, c.1.clone()))
    }
}
