//! The test harness of the crate: N node cores — manager and nodes, each with membership,
//! ordered operations and DuraVIP — wired in memory with a virtual clock. It is the only
//! driver the crate's tests have: the cores inside a node are tested through it.
//!
//! The network carries datagrams and stream messages with a fixed latency, an extra delay per
//! directed link and a random jitter (which reorders messages sent close together). Links can
//! be cut both ways or one way; datagrams can be lost or duplicated; stream messages can be
//! lost (with their connection: each message rides its own QUIC stream) or duplicated. Members
//! can crash, restart, leave, be frozen (a stopped process: its timers wait, what is sent to it
//! is lost) and answer their operations at once, later or never. One seeded RNG drives every
//! random choice, and every output is logged with its time, so two runs can be compared byte
//! for byte. No sockets and no sleeps: time is virtual.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};

use crate::duravip::{Binding, DuraVip, DuraVipConfig, Policy};
use crate::ids::{MemberId, Role};
use crate::membership::{ClusterEvent, MemberState, MembershipConfig, Roster};
use crate::node::{Channel, Command, CommandError, DuravipSetup, Input, Node, NodeConfig, Output, Reply, Requester, Timer};
use crate::ops::journal::{self, Damage, JournalWrite};
use crate::ops::{AnswerStatus, OpId, OpsConfig};
use crate::wire;

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

/// The same, with an explicit candidate list (the majority policy needs one).
pub(crate) fn listed(count: u8, candidates: &[&str]) -> Vec<Binding> {
    let mut b = bindings(count);
    for binding in &mut b {
        binding.candidates = candidates.iter().map(|n| n.to_string()).collect();
    }
    b
}

pub(crate) fn vip(last: u8) -> IpAddr {
    IpAddr::from([10, 1, 1, last])
}

pub(crate) fn majority() -> DuraVipConfig {
    DuraVipConfig { policy: Policy::Majority, ..DuraVipConfig::default() }
}

/// How a member's shell answers the operations it runs (an [`Output::Execute`], or the reply
/// of a command of the cores to an operation): commands starting with `fail` fail, the others
/// succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answering {
    /// In the same turn.
    AtOnce,
    /// This long after the operation started (the command takes time).
    After(Duration),
    /// Never: the command hangs.
    Never,
}

/// What the harness checks about DuraVIP holders after every output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HolderCheck {
    /// Nothing.
    Off,
    /// No address has two holders while no link is cut, once membership has formed (the
    /// first 8 s, when views may still differ).
    WhileConnected,
    /// No address ever has two holders, cuts or not (the majority policy's promise).
    Always,
}

enum Event {
    Deliver { from: String, to: String, channel: Channel, payload: Bytes },
    Timer { node: String, run: u32, timer: Timer },
    Executed { node: String, run: u32, op: OpId, status: AnswerStatus, body: String },
    /// The shell's pull of the newest configuration revisions is done.
    Fetched { node: String, run: u32, revisions: crate::revisions::Revisions },
}

/// One member of the test cluster.
pub(crate) struct Member {
    pub(crate) core: Option<Node>,
    pub(crate) role: Role,
    pub(crate) addr: SocketAddr,
    pub(crate) subcluster: String,
    /// SWIM tuning, read at every start.
    pub(crate) membership: MembershipConfig,
    pub(crate) run: u32,
    pub(crate) incarnation: u64,
    pub(crate) answering: Answering,
    pub(crate) frozen: bool,
    /// Timers and answers that came due while frozen; they fire when thawed.
    waiting: Vec<Event>,
    /// Addresses held now (from Acquire/Release).
    pub(crate) held: BTreeSet<IpAddr>,
    /// Operations the current run applied, in order.
    pub(crate) applied: Vec<OpId>,
    /// What the cores answered to the operations of the current run that were their commands.
    pub(crate) answers: Vec<(OpId, Result<Reply, CommandError>)>,
    /// Manager: operations completed (every target answered, left or timed out).
    pub(crate) completed: Vec<OpId>,
    /// Membership events, with their time.
    pub(crate) events: Vec<(Duration, ClusterEvent)>,
    /// Manager: its journal file, which survives a crash (every write is durable at once).
    pub(crate) disk: Vec<u8>,
    /// Manager: where reading the journal stopped early at the last start, if it did.
    pub(crate) damage: Option<Damage>,
    /// Node: the configuration revisions its core asked the shell to fetch, in order.
    pub(crate) fetches: Vec<crate::revisions::Revisions>,
}

/// The network between the members.
pub(crate) struct Links {
    /// Directed links that drop everything.
    pub(crate) cut: BTreeSet<(String, String)>,
    /// Extra delay of a directed link.
    pub(crate) delay: BTreeMap<(String, String), Duration>,
    pub(crate) latency: Duration,
    /// Every message waits up to this much more (uniformly), so messages sent close together
    /// may arrive in another order.
    pub(crate) jitter: Duration,
    /// Probability that a datagram is lost, and that one is delivered twice.
    pub(crate) loss: f64,
    pub(crate) duplicate: f64,
    /// Probability that a stream message is lost with its connection, and that one arrives
    /// twice (more than QUIC does: the protocol must not rely on it never happening).
    pub(crate) stream_loss: f64,
    pub(crate) stream_duplicate: f64,
}

/// How to build a test cluster: a manager `mgr` and the nodes, started at time 0.
pub(crate) struct Setup {
    names: Vec<String>,
    bindings: Vec<Binding>,
    config: DuraVipConfig,
    seed: u64,
    subclusters: BTreeMap<String, String>,
    membership: BTreeMap<String, MembershipConfig>,
    stopped: BTreeSet<String>,
    ops: OpsConfig,
}

impl Setup {
    /// Nodes `names` (subclusters alternate east, west; `mgr` is east), no DuraVIP bindings.
    pub(crate) fn new(names: &[&str], seed: u64) -> Setup {
        Setup {
            names: names.iter().map(|n| n.to_string()).collect(),
            bindings: Vec::new(),
            config: DuraVipConfig::default(),
            seed,
            subclusters: BTreeMap::new(),
            membership: BTreeMap::new(),
            stopped: BTreeSet::new(),
            ops: OpsConfig::default(),
        }
    }

    /// Ordered-operations tuning for every member.
    pub(crate) fn ops(mut self, ops: OpsConfig) -> Setup {
        self.ops = ops;
        self
    }

    pub(crate) fn bindings(mut self, bindings: Vec<Binding>) -> Setup {
        self.bindings = bindings;
        self
    }

    pub(crate) fn duravip(mut self, config: DuraVipConfig) -> Setup {
        self.config = config;
        self
    }

    /// Puts `names` in subcluster `sc`.
    pub(crate) fn subcluster(mut self, sc: &str, names: &[&str]) -> Setup {
        self.subclusters.extend(names.iter().map(|n| (n.to_string(), sc.to_owned())));
        self
    }

    /// Gives `names` this SWIM tuning instead of the LAN preset.
    pub(crate) fn membership(mut self, names: &[&str], config: MembershipConfig) -> Setup {
        self.membership.extend(names.iter().map(|n| (n.to_string(), config.clone())));
        self
    }

    /// Hosts of the roster that do not start (until [`Cluster::start`]).
    pub(crate) fn stopped(mut self, names: &[&str]) -> Setup {
        self.stopped.extend(names.iter().map(|n| n.to_string()));
        self
    }

    pub(crate) fn start(self) -> Cluster {
        Cluster::from_setup(self)
    }
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
    pub(crate) net: Links,
    /// Replies to console requests, by request number.
    pub(crate) replies: BTreeMap<u64, Result<Reply, CommandError>>,
    next_request: u64,
    /// Every output, with time and member, for comparing runs.
    pub(crate) log: Vec<String>,
    /// Every address change: (time, member, address, acquired?).
    pub(crate) changes: Vec<(Duration, String, IpAddr, bool)>,
    /// Every re-announcement: (time, member, address).
    pub(crate) announced: Vec<(Duration, String, IpAddr)>,
    pub(crate) holder_check: HolderCheck,
    /// Ordered-operations tuning, read at every start.
    pub(crate) ops: OpsConfig,
}

impl Cluster {
    /// A manager `mgr` and nodes `names` with these DuraVIP bindings, started at time 0.
    pub(crate) fn new(names: &[&str], bindings: Vec<Binding>, config: DuraVipConfig, seed: u64) -> Cluster {
        Setup::new(names, seed).bindings(bindings).duravip(config).start()
    }

    fn from_setup(setup: Setup) -> Cluster {
        // The one clock read: the harness picks its virtual epoch; the cores only see it.
        #[allow(clippy::disallowed_methods)]
        let base = Instant::now();
        let mut roster = Roster::new();
        let mut members = BTreeMap::new();
        let all: Vec<(String, Role)> = std::iter::once(("mgr".to_owned(), Role::Manager))
            .chain(setup.names.iter().map(|n| (n.clone(), Role::Node)))
            .collect();
        for (i, (name, role)) in all.iter().enumerate() {
            let alternate = if i % 2 == 0 { "east" } else { "west" };
            let sc = setup.subclusters.get(name).map_or(alternate, String::as_str);
            let addr = SocketAddr::from(([127, 0, 1, i as u8 + 1], 4803));
            roster.insert(name, addr, sc);
            let membership = setup.membership.get(name).cloned().unwrap_or_else(|| MembershipConfig::lan(8));
            members.insert(
                name.clone(),
                Member {
                    core: None,
                    role: *role,
                    addr,
                    subcluster: sc.to_owned(),
                    membership,
                    run: 0,
                    incarnation: 0,
                    answering: Answering::AtOnce,
                    frozen: false,
                    waiting: Vec::new(),
                    held: BTreeSet::new(),
                    applied: Vec::new(),
                    answers: Vec::new(),
                    completed: Vec::new(),
                    events: Vec::new(),
                    disk: Vec::new(),
                    damage: None,
                    fetches: Vec::new(),
                },
            );
        }
        let mut c = Cluster {
            base,
            now: Duration::ZERO,
            members,
            roster,
            managers: BTreeSet::from(["mgr".to_owned()]),
            duravip: DuravipSetup { bindings: setup.bindings, config: setup.config },
            queue: BTreeMap::new(),
            seq: 0,
            rng: StdRng::seed_from_u64(setup.seed),
            net: Links {
                cut: BTreeSet::new(),
                delay: BTreeMap::new(),
                latency: ms(1),
                jitter: Duration::ZERO,
                loss: 0.0,
                duplicate: 0.0,
                stream_loss: 0.0,
                stream_duplicate: 0.0,
            },
            replies: BTreeMap::new(),
            next_request: 0,
            log: Vec::new(),
            changes: Vec::new(),
            announced: Vec::new(),
            holder_check: HolderCheck::WhileConnected,
            ops: setup.ops,
        };
        let names: Vec<String> = c.members.keys().filter(|n| !setup.stopped.contains(*n)).cloned().collect();
        for n in names {
            c.start(&n);
        }
        c
    }

    pub(crate) fn at(&self) -> Instant {
        self.base + self.now
    }

    /// Starts a new run of `name` (a restart if it runs: the old process is gone, with the
    /// addresses it held).
    pub(crate) fn start(&mut self, name: &str) {
        self.boot(name, true);
    }

    /// A new run of `name` that never calls `start`: it has no timers and announces nothing,
    /// it only answers what reaches it (as a member renewed across a cut whose announcements
    /// were all lost).
    pub(crate) fn renew_unannounced(&mut self, name: &str) {
        self.boot(name, false);
    }

    fn boot(&mut self, name: &str, announce: bool) {
        let seed = self.rng.next_u64();
        let now = self.at();
        let (roster, managers, duravip) = (self.roster.clone(), self.managers.clone(), self.duravip.clone());
        let m = self.members.get_mut(name).expect("known member");
        m.run += 1;
        m.incarnation += 1;
        m.held.clear();
        m.applied.clear();
        m.answers.clear();
        m.waiting.clear();
        m.frozen = false;
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
            membership: m.membership.clone(),
            ops: self.ops.clone(),
            epoch: m.incarnation,
            duravip,
        };
        let mut core = Node::new(config, StdRng::seed_from_u64(seed)).expect("valid configuration");
        let replay = journal::read(&m.disk);
        m.damage = replay.damage;
        if !replay.records.is_empty() {
            core.recover(now, &replay.records);
        }
        if announce {
            core.start(now);
        }
        m.core = Some(core);
        self.log.push(format!("{:>7} {name} started", self.now.as_millis()));
        self.drain(name);
    }

    /// kill -9: the process is gone, its addresses with it.
    pub(crate) fn crash(&mut self, name: &str) {
        let m = self.members.get_mut(name).expect("known member");
        m.core = None;
        m.held.clear();
        self.log.push(format!("{:>7} {name} crashed", self.now.as_millis()));
    }

    /// A graceful stop: the member says goodbye (its outputs go out), then keeps running
    /// until [`Cluster::crash`] ends the process.
    pub(crate) fn leave(&mut self, name: &str) {
        let now = self.at();
        if let Some(core) = self.members.get_mut(name).and_then(|m| m.core.as_mut()) {
            core.leave(now);
        }
        self.drain(name);
    }

    /// SIGSTOP: the member's timers wait and whatever is sent to it is lost; what it holds it
    /// keeps.
    pub(crate) fn freeze(&mut self, name: &str) {
        self.members.get_mut(name).expect("known member").frozen = true;
        self.log.push(format!("{:>7} {name} frozen", self.now.as_millis()));
    }

    /// SIGCONT: the timers that came due meanwhile fire now, in order.
    pub(crate) fn thaw(&mut self, name: &str) {
        let m = self.members.get_mut(name).expect("known member");
        m.frozen = false;
        let waiting = std::mem::take(&mut m.waiting);
        self.log.push(format!("{:>7} {name} thawed", self.now.as_millis()));
        for event in waiting {
            self.push(Duration::ZERO, event);
        }
    }

    pub(crate) fn core(&self, name: &str) -> &Node {
        self.members[name].core.as_ref().expect("running member")
    }

    /// The DuraVIP core of node `name`.
    pub(crate) fn vip_core(&self, name: &str) -> &DuraVip {
        self.core(name).duravip().expect("a node with bindings")
    }

    fn member_mut(&mut self, name: &str) -> &mut Member {
        self.members.get_mut(name).expect("known member")
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

    /// Sends `payload` from `from` to `to` now, through the network, as if `from` had sent
    /// it (a late copy from an earlier run, say).
    pub(crate) fn inject(&mut self, from: &str, to: &str, channel: Channel, payload: Bytes) {
        self.send(from, to.to_owned(), channel, payload);
    }

    /// Performs `name`'s outputs.
    pub(crate) fn drain(&mut self, name: &str) {
        loop {
            let Some(m) = self.members.get_mut(name) else { return };
            let run = m.run;
            let Some(output) = m.core.as_mut().and_then(Node::poll_output) else { break };
            self.log.push(format!("{:>7} {name} {output:?}", self.now.as_millis()));
            self.perform(name, run, output);
        }
        self.check_holders(name);
    }

    fn perform(&mut self, name: &str, run: u32, output: Output) {
        let now = self.now;
        match output {
            Output::Send { to, channel, payload, .. } => self.send(name, to.to_string(), channel, payload),
            Output::SetTimer { after, timer } => self.push(after, Event::Timer { node: name.to_owned(), run, timer }),
            Output::Event(e) => self.member_mut(name).events.push((now, e)),
            Output::Execute(op) => {
                let status = if op.command.starts_with("fail") { AnswerStatus::Error } else { AnswerStatus::Ok };
                let body = format!("{name} ran {}", op.command);
                self.member_mut(name).applied.push(op.id);
                self.answer(name, run, op.id, status, body);
            }
            Output::Reply { to: Requester::Operation { id, .. }, result } => {
                let (status, body) = match &result {
                    Ok(reply) => (AnswerStatus::Ok, format!("{reply:?}")),
                    Err(e) => (AnswerStatus::Error, e.to_string()),
                };
                let m = self.member_mut(name);
                m.applied.push(id);
                m.answers.push((id, result));
                self.answer(name, run, id, status, body);
            }
            Output::Reply { to: Requester::Console(request), result } => {
                self.replies.insert(request, result);
            }
            Output::Acquire(addr) => {
                assert!(self.member_mut(name).held.insert(addr), "{name} acquired {addr} twice\n{}", self.tail());
                self.changes.push((now, name.to_owned(), addr, true));
            }
            Output::Release(addr) => {
                assert!(self.member_mut(name).held.remove(&addr), "{name} released {addr} it did not hold\n{}", self.tail());
                self.changes.push((now, name.to_owned(), addr, false));
            }
            Output::Announce(addr) => {
                assert!(self.member_mut(name).held.contains(&addr), "{name} announced {addr} it does not hold\n{}", self.tail());
                self.announced.push((now, name.to_owned(), addr));
            }
            Output::Completed(id) => self.member_mut(name).completed.push(id),
            Output::ConfigFetch(revisions) => {
                // The shell pulls (10 ms), then says what runs.
                self.member_mut(name).fetches.push(revisions.clone());
                self.push(Duration::from_millis(10), Event::Fetched { node: name.to_owned(), run, revisions });
            }
            Output::Journal(write) => {
                let m = self.member_mut(name);
                match write {
                    JournalWrite::Append(bytes) => m.disk.extend_from_slice(&bytes),
                    JournalWrite::Replace(bytes) => m.disk = bytes.to_vec(),
                }
            }
        }
    }

    /// The shell of `name` answers operation `op`, as its [`Answering`] says.
    fn answer(&mut self, name: &str, run: u32, op: OpId, status: AnswerStatus, body: String) {
        match self.members[name].answering {
            Answering::AtOnce => self.executed(name, op, status, body),
            Answering::After(d) => self.push(d, Event::Executed { node: name.to_owned(), run, op, status, body }),
            Answering::Never => {}
        }
    }

    fn executed(&mut self, name: &str, op: OpId, status: AnswerStatus, body: String) {
        let now = self.at();
        if let Some(core) = self.members.get_mut(name).and_then(|m| m.core.as_mut()) {
            core.handle(now, Input::Executed { op, status, body }).expect("results are never refused");
        }
    }

    fn send(&mut self, from: &str, to: String, channel: Channel, payload: Bytes) {
        assert_ne!(to, from, "a member sends to itself");
        if channel == Channel::Datagram {
            assert!(payload.len() <= wire::MAX_DATAGRAM, "{from} sent a datagram of {} bytes", payload.len());
        }
        let (loss, duplicate) = match channel {
            Channel::Datagram => (self.net.loss, self.net.duplicate),
            Channel::Stream => (self.net.stream_loss, self.net.stream_duplicate),
        };
        let lost = self.rng.random_bool(loss);
        let twice = self.rng.random_bool(duplicate);
        let link = (from.to_owned(), to);
        let delay = self.net.latency + self.net.delay.get(&link).copied().unwrap_or_default();
        let (from, to) = link;
        if !lost {
            let after = delay + self.jitter();
            let event = Event::Deliver { from: from.clone(), to: to.clone(), channel, payload: payload.clone() };
            self.push(after, event);
        }
        if twice {
            let after = delay * 3 + self.jitter();
            self.push(after, Event::Deliver { from, to, channel, payload });
        }
    }

    fn jitter(&mut self) -> Duration {
        let max = u64::try_from(self.net.jitter.as_micros()).unwrap_or(u64::MAX);
        if max == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros(self.rng.random_range(0..=max))
    }

    /// After `name`'s outputs: its DuraVIP core's `held()` matches what it acquired and
    /// released, and the [`HolderCheck`] holds.
    fn check_holders(&self, name: &str) {
        if let Some(m) = self.members.get(name) {
            if let Some(core) = m.core.as_ref().and_then(Node::duravip) {
                let held: BTreeSet<IpAddr> = core.held().collect();
                assert_eq!(held, m.held, "{name}: held() disagrees with its outputs");
            }
        }
        let check = match self.holder_check {
            HolderCheck::Off => false,
            HolderCheck::WhileConnected => self.net.cut.is_empty() && self.now >= secs(8),
            HolderCheck::Always => true,
        };
        if check {
            for b in &self.duravip.bindings {
                let h = self.holders(b.addr);
                assert!(h.len() <= 1, "at {:?} {} held by {h:?}\n{}", self.now, b.addr, self.tail());
            }
        }
    }

    /// The last lines of the log, for failure messages.
    pub(crate) fn tail(&self) -> String {
        let from = self.log.len().saturating_sub(40);
        self.log[from..].join("\n")
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
            self.fire(event);
        }
        self.now = end;
    }

    fn fire(&mut self, event: Event) {
        let now = self.at();
        let (node, run) = match &event {
            Event::Deliver { from, to, channel, payload } => {
                if self.net.cut.contains(&(from.clone(), to.clone())) {
                    return;
                }
                let Some(m) = self.members.get_mut(to) else { return };
                let Some(core) = m.core.as_mut().filter(|_| !m.frozen) else { return };
                let input = match channel {
                    Channel::Datagram => Input::Datagram { from, payload },
                    Channel::Stream => Input::Message { from, payload },
                };
                core.handle(now, input).expect("well-formed message");
                let to = to.clone();
                self.drain(&to);
                return;
            }
            Event::Timer { node, run, .. } | Event::Executed { node, run, .. } | Event::Fetched { node, run, .. } => {
                (node.clone(), *run)
            }
        };
        let Some(m) = self.members.get_mut(&node) else { return };
        if m.run != run || m.core.is_none() {
            return;
        }
        if m.frozen {
            m.waiting.push(event);
            return;
        }
        match event {
            Event::Timer { timer, .. } => {
                if let Some(core) = m.core.as_mut() {
                    core.handle(now, Input::Timer(timer)).expect("timers are never refused");
                }
            }
            Event::Executed { op, status, body, .. } => self.executed(&node, op, status, body),
            Event::Fetched { revisions, .. } => {
                let now = self.at();
                if let Some(core) = self.members.get_mut(&node).and_then(|m| m.core.as_mut()) {
                    core.config_running(now, revisions, None);
                    core.config_fetch_done(now, crate::revisions::FetchOutcome::Done);
                }
            }
            Event::Deliver { .. } => {}
        }
        self.drain(&node);
    }

    /// Cuts every link between the two groups, both ways.
    pub(crate) fn partition(&mut self, a: &[&str], b: &[&str]) {
        self.cut_one_way(a, b);
        self.cut_one_way(b, a);
    }

    /// Cuts the links from every member of `from` to every member of `to` (not back).
    pub(crate) fn cut_one_way(&mut self, from: &[&str], to: &[&str]) {
        for x in from {
            for y in to {
                self.net.cut.insert((x.to_string(), y.to_string()));
            }
        }
    }

    /// Cuts `name` off from every other member, both ways.
    pub(crate) fn isolate(&mut self, name: &str) {
        let others: Vec<String> = self.members.keys().filter(|n| *n != name).cloned().collect();
        let others: Vec<&str> = others.iter().map(String::as_str).collect();
        self.partition(&[name], &others);
    }

    /// Adds `extra` to the latency of the link from `from` to `to`.
    pub(crate) fn delay(&mut self, from: &str, to: &str, extra: Duration) {
        self.net.delay.insert((from.to_owned(), to.to_owned()), extra);
    }

    /// Every link up again, with no extra delay.
    pub(crate) fn heal(&mut self) {
        self.net.cut.clear();
        self.net.delay.clear();
    }

    pub(crate) fn holders(&self, addr: IpAddr) -> Vec<String> {
        self.members.iter().filter(|(_, m)| m.held.contains(&addr)).map(|(k, _)| k.clone()).collect()
    }

    /// When `addr` was last acquired, and by whom.
    pub(crate) fn last_acquired(&self, addr: IpAddr) -> Option<(Duration, String)> {
        self.changes.iter().rev().find(|c| c.2 == addr && c.3).map(|c| (c.0, c.1.clone()))
    }

    /// Names of the members `observer` sees up (itself included).
    pub(crate) fn up_view(&self, observer: &str) -> BTreeSet<String> {
        self.core(observer)
            .members()
            .into_iter()
            .filter(|m| m.state == MemberState::Up)
            .map(|m| m.id.name)
            .collect()
    }

    /// The events `observer` saw from `after` on that `pick` accepts, with their time.
    pub(crate) fn events_since<'a>(
        &'a self,
        observer: &str,
        after: Duration,
        pick: impl Fn(&ClusterEvent) -> bool + 'a,
    ) -> impl Iterator<Item = &'a (Duration, ClusterEvent)> + 'a {
        self.members[observer].events.iter().filter(move |(at, e)| *at >= after && pick(e))
    }

    /// When `observer` first saw `subject` declared down, from `after` on.
    pub(crate) fn saw_down(&self, observer: &str, subject: &str, after: Duration) -> Option<Duration> {
        self.events_since(observer, after, |e| matches!(e, ClusterEvent::MemberDown(m) if m.name == subject))
            .map(|(at, _)| *at)
            .next()
    }

    /// When `observer` first saw `subject` up (or renewed), from `after` on.
    pub(crate) fn saw_up(&self, observer: &str, subject: &str, after: Duration) -> Option<Duration> {
        self.events_since(observer, after, |e| {
            matches!(e, ClusterEvent::MemberUp(m) | ClusterEvent::MemberRenewed { to: m, .. } if m.name == subject)
        })
        .map(|(at, _)| *at)
        .next()
    }

    /// The reply to console request `request`.
    pub(crate) fn reply(&self, request: u64) -> &Result<Reply, CommandError> {
        self.replies.get(&request).expect("a reply")
    }

    /// The operation a console request sequenced, and its targets.
    pub(crate) fn submitted(&self, request: u64) -> (OpId, Vec<String>) {
        match self.reply(request) {
            Ok(Reply::Submitted { id, targets, .. }) => (*id, targets.clone()),
            other => panic!("expected a submitted operation, got {other:?}"),
        }
    }
}
