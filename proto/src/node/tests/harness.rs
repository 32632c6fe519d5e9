//! The test harness of the crate: N node cores — manager and nodes, each with membership,
//! ordered operations and DuraVIP — wired in memory with a virtual clock and a network whose
//! links have a fixed latency, can be cut, and can lose, duplicate or delay datagrams from a
//! seeded RNG. Streams are reliable while a link is up (QUIC's), dropped while it is cut.
//! Every output is logged with its time, so two runs can be compared byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use crate::duravip::{Binding, DuraVipConfig};
use crate::ids::{MemberId, Role};
use crate::membership::{ClusterEvent, MembershipConfig, Roster};
use crate::node::{Channel, Command, CommandError, DuravipSetup, Input, Node, NodeConfig, Output, Reply, Requester, Timer};
use crate::ops::{AnswerStatus, OpId, OpsConfig};

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `count` bindings `vip-1`.. on 10.1.1.1.., every node a candidate.
pub(crate) fn bindings(count: u8) -> Vec<Binding> {
    (1..=count)
        .map(|i| Binding { name: format!("vip-{i}"), addr: vip(i), candidates: Vec::new(), preference: None })
        .collect()
}

pub(crate) fn vip(last: u8) -> IpAddr {
    IpAddr::from([10, 1, 1, last])
}

enum Event {
    Deliver { from: String, to: String, channel: Channel, payload: Bytes },
    Timer { node: String, run: u32, timer: Timer },
}

/// One member of the test cluster.
pub(crate) struct Member {
    pub(crate) core: Option<Node>,
    pub(crate) role: Role,
    pub(crate) addr: SocketAddr,
    pub(crate) subcluster: String,
    pub(crate) run: u32,
    pub(crate) incarnation: u64,
    /// Addresses held now (from Acquire/Release).
    pub(crate) held: BTreeSet<IpAddr>,
    /// Operations applied, in order.
    pub(crate) applied: Vec<OpId>,
    /// Membership events, with their time.
    pub(crate) events: Vec<(Duration, ClusterEvent)>,
}

/// The cluster: members, clock, network, replies to console requests.
pub(crate) struct Cluster {
    base: Instant,
    pub(crate) now: Duration,
    pub(crate) members: BTreeMap<String, Member>,
    roster: Roster,
    managers: BTreeSet<String>,
    duravip: DuravipSetup,
    queue: BTreeMap<(Duration, u64), Event>,
    seq: u64,
    rng: StdRng,
    /// Directed links that drop everything.
    pub(crate) cut: BTreeSet<(String, String)>,
    pub(crate) latency: Duration,
    /// Probability that a datagram is lost, and that one is delivered twice.
    pub(crate) loss: f64,
    pub(crate) duplicate: f64,
    /// Replies to console requests, by request number.
    pub(crate) replies: BTreeMap<u64, Result<Reply, CommandError>>,
    next_request: u64,
    /// Every output, with time and member, for comparing runs.
    pub(crate) log: Vec<String>,
    /// Every address change: (time, member, address, acquired?).
    pub(crate) changes: Vec<(Duration, String, IpAddr, bool)>,
    /// Check after every output that no address has two holders (off for partitions).
    pub(crate) strict_holders: bool,
}

impl Cluster {
    /// A manager `mgr` and nodes `names` (subclusters alternate east, west), with these
    /// DuraVIP bindings, started at time 0.
    pub(crate) fn new(names: &[&str], bindings: Vec<Binding>, config: DuraVipConfig, seed: u64) -> Cluster {
        // The one clock read: the harness picks its virtual epoch; the cores only see it.
        #[allow(clippy::disallowed_methods)]
        let base = Instant::now();
        let mut roster = Roster::new();
        let mut members = BTreeMap::new();
        let all: Vec<(&str, Role)> =
            std::iter::once(("mgr", Role::Manager)).chain(names.iter().map(|n| (*n, Role::Node))).collect();
        for (i, (name, role)) in all.iter().enumerate() {
            let sc = if i % 2 == 0 { "east" } else { "west" };
            let addr = SocketAddr::from(([127, 0, 1, i as u8 + 1], 4803));
            roster.insert(name, addr, sc);
            members.insert(
                name.to_string(),
                Member {
                    core: None,
                    role: *role,
                    addr,
                    subcluster: sc.to_owned(),
                    run: 0,
                    incarnation: 0,
                    held: BTreeSet::new(),
                    applied: Vec::new(),
                    events: Vec::new(),
                },
            );
        }
        let mut c = Cluster {
            base,
            now: Duration::ZERO,
            members,
            roster,
            managers: BTreeSet::from(["mgr".to_owned()]),
            duravip: DuravipSetup { bindings, config },
            queue: BTreeMap::new(),
            seq: 0,
            rng: StdRng::seed_from_u64(seed),
            cut: BTreeSet::new(),
            latency: ms(1),
            loss: 0.0,
            duplicate: 0.0,
            replies: BTreeMap::new(),
            next_request: 0,
            log: Vec::new(),
            changes: Vec::new(),
            strict_holders: true,
        };
        let names: Vec<String> = c.members.keys().cloned().collect();
        for n in names {
            c.start(&n);
        }
        c
    }

    pub(crate) fn at(&self) -> Instant {
        self.base + self.now
    }

    /// Starts a new run of `name` (a restart if it ran before).
    pub(crate) fn start(&mut self, name: &str) {
        let seed = self.rng.next_u64();
        let now = self.at();
        let (roster, managers, duravip) = (self.roster.clone(), self.managers.clone(), self.duravip.clone());
        let m = self.members.get_mut(name).expect("known member");
        m.run += 1;
        m.incarnation += 1;
        m.held.clear();
        let id = MemberId {
            name: name.to_owned(),
            addr: m.addr,
            role: m.role,
            subcluster: m.subcluster.clone(),
            incarnation: m.incarnation,
        };
        let config = NodeConfig {
            id,
            roster,
            managers,
            membership: MembershipConfig::lan(8),
            ops: OpsConfig::default(),
            epoch: m.incarnation,
            duravip,
        };
        let mut core = Node::new(config, StdRng::seed_from_u64(seed)).expect("valid configuration");
        core.start(now);
        m.core = Some(core);
        self.drain(name);
    }

    /// kill -9: the process is gone, its addresses with it.
    pub(crate) fn crash(&mut self, name: &str) {
        let m = self.members.get_mut(name).expect("known member");
        m.core = None;
        m.held.clear();
        self.log.push(format!("{:>7} {name} crashed", self.now.as_millis()));
    }

    pub(crate) fn core(&self, name: &str) -> &Node {
        self.members[name].core.as_ref().expect("running member")
    }

    fn push(&mut self, after: Duration, event: Event) {
        self.seq += 1;
        self.queue.insert((self.now + after, self.seq), event);
    }

    /// A console command at `name`; returns the request number its reply is filed under.
    pub(crate) fn command(&mut self, name: &str, command: Command) -> u64 {
        self.next_request += 1;
        let request = self.next_request;
        let now = self.at();
        if let Some(core) = self.members.get_mut(name).and_then(|m| m.core.as_mut()) {
            core.command(now, request, command);
        }
        self.drain(name);
        request
    }

    /// The words of a console line, parsed as the shells do, run at `name`.
    pub(crate) fn console(&mut self, name: &str, line: &str) -> u64 {
        let role = self.members[name].role;
        let request = crate::node::line::parse_line(line).expect("a command line");
        let command = Command::parse(role, &request.words).expect("a command of the cores").expect("well-formed");
        self.command(name, command)
    }

    /// Performs `name`'s outputs.
    pub(crate) fn drain(&mut self, name: &str) {
        let now = self.now;
        loop {
            let Some(m) = self.members.get_mut(name) else { return };
            let Some(output) = m.core.as_mut().and_then(Node::poll_output) else { break };
            self.log.push(format!("{:>7} {name} {output:?}", now.as_millis()));
            let run = m.run;
            match output {
                Output::Send { to, channel, payload, .. } => {
                    assert_ne!(to, name, "a member sends to itself");
                    let lost = channel == Channel::Datagram && self.rng.random_bool(self.loss);
                    let twice = channel == Channel::Datagram && self.rng.random_bool(self.duplicate);
                    if !lost {
                        let event = Event::Deliver { from: name.to_owned(), to: to.clone(), channel, payload: payload.clone() };
                        self.push(self.latency, event);
                    }
                    if twice {
                        self.push(self.latency * 3, Event::Deliver { from: name.to_owned(), to, channel, payload });
                    }
                }
                Output::SetTimer { after, timer } => self.push(after, Event::Timer { node: name.to_owned(), run, timer }),
                Output::Event(e) => m.events.push((now, e)),
                Output::Execute(op) => {
                    m.applied.push(op.id);
                    let status = if op.command.starts_with("fail") { AnswerStatus::Error } else { AnswerStatus::Ok };
                    let body = format!("{name} ran {}", op.command);
                    let at = self.base + now;
                    if let Some(core) = m.core.as_mut() {
                        core.handle(at, Input::Executed { op: op.id, status, body }).expect("result taken");
                    }
                }
                Output::Reply { to: Requester::Operation { id, .. }, result } => {
                    m.applied.push(id);
                    let (status, body) = match result {
                        Ok(reply) => (AnswerStatus::Ok, format!("{reply:?}")),
                        Err(e) => (AnswerStatus::Error, e.to_string()),
                    };
                    let at = self.base + now;
                    if let Some(core) = m.core.as_mut() {
                        core.handle(at, Input::Executed { op: id, status, body }).expect("result taken");
                    }
                }
                Output::Reply { to: Requester::Console(request), result } => {
                    self.replies.insert(request, result);
                }
                Output::Acquire(addr) => {
                    assert!(m.held.insert(addr), "{name} acquired {addr} twice");
                    self.changes.push((now, name.to_owned(), addr, true));
                }
                Output::Release(addr) => {
                    assert!(m.held.remove(&addr), "{name} released {addr} it did not hold");
                    self.changes.push((now, name.to_owned(), addr, false));
                }
                Output::Completed(_) => {}
            }
        }
        if self.strict_holders && self.cut.is_empty() {
            for b in &self.duravip.bindings {
                let h = self.holders(b.addr);
                // With no cut and membership settled, overlapping holders are a bug; while
                // membership is still forming (the first seconds) views may differ.
                assert!(h.len() <= 1 || self.now < secs(8), "at {:?} {} held by {h:?}", self.now, b.addr);
            }
        }
    }

    /// Runs every event due within `d`, then sets the clock to its end.
    pub(crate) fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > end {
                break;
            }
            let ((at, _), event) = entry.remove_entry();
            self.now = at;
            let now = self.at();
            match event {
                Event::Deliver { from, to, channel, payload } => {
                    if self.cut.contains(&(from.clone(), to.clone())) {
                        continue;
                    }
                    let Some(core) = self.members.get_mut(&to).and_then(|m| m.core.as_mut()) else { continue };
                    let input = match channel {
                        Channel::Datagram => Input::Datagram { from: &from, payload: &payload },
                        Channel::Stream => Input::Message { from: &from, payload: &payload },
                    };
                    core.handle(now, input).expect("well-formed message");
                    self.drain(&to);
                }
                Event::Timer { node, run, timer } => {
                    let Some(m) = self.members.get_mut(&node) else { continue };
                    if m.run != run {
                        continue;
                    }
                    let Some(core) = m.core.as_mut() else { continue };
                    core.handle(now, Input::Timer(timer)).expect("timers are never refused");
                    self.drain(&node);
                }
            }
        }
        self.now = end;
    }

    /// Cuts every link between the two groups, both ways.
    pub(crate) fn partition(&mut self, a: &[&str], b: &[&str]) {
        for x in a {
            for y in b {
                self.cut.insert((x.to_string(), y.to_string()));
                self.cut.insert((y.to_string(), x.to_string()));
            }
        }
    }

    pub(crate) fn heal(&mut self) {
        self.cut.clear();
    }

    pub(crate) fn holders(&self, addr: IpAddr) -> Vec<String> {
        self.members.iter().filter(|(_, m)| m.held.contains(&addr)).map(|(k, _)| k.clone()).collect()
    }

    /// Names of the members `observer` sees up (itself included).
    pub(crate) fn up_view(&self, observer: &str) -> BTreeSet<String> {
        self.core(observer)
            .members()
            .into_iter()
            .filter(|m| m.state == crate::membership::MemberState::Up)
            .map(|m| m.id.name)
            .collect()
    }

    /// The reply to console request `request`.
    pub(crate) fn reply(&self, request: u64) -> &Result<Reply, CommandError> {
        self.replies.get(&request).expect("a reply")
    }
}
