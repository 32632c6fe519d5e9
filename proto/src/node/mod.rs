//! The state machine of one member: SWIM membership, its part in ordered operations
//! (the sequencer on a manager, the applier on a node) and DuraVIP ownership, composed once.
//! The daemons and the simulator drive this and nothing else of the crate. No I/O here.
//!
//! [`Node`] routes every received message by its envelope kind, hands membership events to
//! the cores that follow the view, runs the console commands that belong to the cores
//! (`broadcast`, `retrieve`, `cluster oplog`, `cluster duravip ...`), and turns everything the
//! cores ask for into one stream of [`Output`]s with one [`Timer`] type.
//!
//! # Driving contract
//!
//! - Construct with [`Node::new`], call [`Node::start`] once.
//! - Inputs: [`Node::handle`] with an [`Input`] (a datagram, a stream message, a timer, the
//!   result of an operation's command), [`Node::command`] for a console command of the cores,
//!   [`Node::leave`] for a graceful stop.
//! - After each of them drain [`Node::poll_output`] to `None`, performing each output in order:
//!   send, schedule the timer, publish the event, run the command, apply the address change,
//!   deliver the reply. A manager's [`Output::Journal`] writes must be durable (fsynced)
//!   before any send or reply that follows them is performed. A shell may batch the journal
//!   writes of one drain, or of several, into one fsync, and go on handing inputs to the node
//!   meanwhile, as long as it holds every output that follows those writes, in order, until
//!   the fsync is done (the daemons do: group commit). A write that fails is retried until it
//!   succeeds, everything behind it still held; meanwhile the shell reports the failure with
//!   [`Node::journal_failed`], so that new operations are refused instead of waiting. A
//!   refusal ([`Output::is_refusal`]) need not wait for the journal.
//! - A manager restarted with the journal of its earlier run calls [`Node::recover`] with its
//!   records before [`Node::start`].
//! - Getters ([`Node::identity`], [`Node::members`], [`Node::sequencer`], [`Node::applier`],
//!   [`Node::duravip`], [`Node::stats`], ...) read the state; they never change it.
//! - `now` never goes backwards between calls.
//!
//! # Running commands
//!
//! An operation's command is run by the node core itself when it belongs to a core (the
//! answer comes out as [`Output::Reply`] to [`Requester::Operation`]; the shell renders it in
//! the operation's format and hands the text back as [`Input::Executed`]); any other command
//! comes out as [`Output::Execute`] for the shell to run (built-in console commands, declared
//! programs), again answered with [`Input::Executed`].

mod command;
pub mod line;
mod route;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::rngs::StdRng;

pub use self::command::{Command, CommandError, Reply, RetrieveScope};
pub use self::line::Format;
use crate::duravip::{Binding, DuraVip, DuraVipConfig, DuraVipTimer};
use crate::error::{DecodeError, DuraVipError, MembershipError, OpsError};
use crate::ids::{MemberId, Role};
use crate::membership::{self, ClusterEvent, MemberState, MemberView, Membership, MembershipConfig, Roster};
use crate::stats::{Counters, MemberCounts, OpsCounters, RevisionCount, Stats};
use crate::ops::journal::{JournalRecord, JournalWrite};
use crate::ops::{AnswerStatus, Applier, Op, OpId, OpsConfig, Sequencer, SequencerTimer};
use crate::holders::{HolderBook, Reporter};
use crate::revisions::{FetchOutcome, FollowTiming, Follower, Publisher, Revisions};

/// DuraVIP bindings and tuning of a member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DuravipSetup {
    /// The bindings (empty: DuraVIP is off).
    pub bindings: Vec<Binding>,
    /// Policy and timings.
    pub config: DuraVipConfig,
}

impl DuravipSetup {
    /// Checks the bindings and tuning as the ownership core of node `me` would take them
    /// (duplicate addresses or names, a preference outside the candidates, timings that do
    /// not fit together), without building a member.
    pub fn check(&self, me: &MemberId) -> Result<(), DuraVipError> {
        if self.bindings.is_empty() {
            return Ok(());
        }
        let mut node = me.clone();
        node.role = Role::Node;
        DuraVip::new(node, self.bindings.clone(), self.config.clone()).map(|_| ())
    }
}

/// Everything a member core needs, validated by the shell.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// This member's identity for this run.
    pub id: MemberId,
    /// The hosts of the segment file: who may be a member, at which address.
    pub roster: Roster,
    /// The names of the hosts that run a manager.
    pub managers: BTreeSet<String>,
    /// SWIM tuning.
    pub membership: MembershipConfig,
    /// Ordered-operations tuning.
    pub ops: OpsConfig,
    /// The manager epoch of this run (managers only; it must exceed every earlier run's).
    pub epoch: u64,
    /// DuraVIP bindings. A node with bindings runs the ownership core; a manager uses them to
    /// check `broadcast cluster duravip move` before sequencing it.
    pub duravip: DuravipSetup,
}

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A QUIC datagram: may be lost, duplicated or reordered (SWIM, DuraVIP).
    Datagram,
    /// A QUIC stream: reliable and ordered while the connection lasts (operations).
    Stream,
}

/// Every timer of a member, to be handed back through [`Input::Timer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    /// Membership's.
    Membership(membership::Timer),
    /// The sequencer's (managers).
    Ops(SequencerTimer),
    /// DuraVIP's.
    DuraVip(DuraVipTimer),
    /// A console request forwarded to the manager has waited long enough.
    Forwarded(u64),
    /// Managers: time to tell lagging nodes the newest configuration revisions again. Nodes
    /// following a repository: time to look for new revisions (or retry).
    Revisions,
    /// Nodes: time to tell the managers again where this node stands with its DuraVIP
    /// addresses.
    Holders,
}

/// Who asked for a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requester {
    /// A console request; the number is the shell's own.
    Console(u64),
    /// An ordered operation this node applies, with the output format its command asked for.
    Operation {
        /// The operation.
        id: OpId,
        /// `xml` / `json` prefix of its command.
        format: Format,
    },
}

/// Something that happened to this member, for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// A datagram from the peer authenticated (by its certificate) as `from`.
    Datagram {
        /// The peer's name.
        from: &'a str,
        /// The datagram, in its envelope.
        payload: &'a [u8],
    },
    /// A whole message read from a stream of the peer authenticated as `from`.
    Message {
        /// The peer's name.
        from: &'a str,
        /// The message, in its envelope.
        payload: &'a [u8],
    },
    /// A timer set by [`Output::SetTimer`] fired.
    Timer(Timer),
    /// The command of operation `op` (handed out by [`Output::Execute`] or answered by
    /// [`Output::Reply`] to [`Requester::Operation`]) finished.
    Executed {
        /// The operation.
        op: OpId,
        /// Success or failure.
        status: AnswerStatus,
        /// What it printed.
        body: String,
    },
}

/// What the shell must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `payload` to member `to` at `addr`.
    Send {
        /// The member's name (shared with the roster for membership datagrams).
        to: Arc<str>,
        /// Its QUIC address.
        addr: SocketAddr,
        /// Datagram or stream.
        channel: Channel,
        /// The message, in its envelope.
        payload: Bytes,
    },
    /// Hand `timer` back through [`Input::Timer`] once `after` has passed.
    SetTimer {
        /// Delay from now.
        after: Duration,
        /// The timer.
        timer: Timer,
    },
    /// A membership event (already passed to the other cores).
    Event(ClusterEvent),
    /// Run this operation's command (not one of the cores'), then answer with
    /// [`Input::Executed`].
    Execute(Op),
    /// The answer to a command of the cores.
    Reply {
        /// Who asked.
        to: Requester,
        /// The answer, as data for the shell to render.
        result: Result<Reply, CommandError>,
    },
    /// Configure this DuraVIP address on this machine and announce it.
    Acquire(IpAddr),
    /// Remove this DuraVIP address from this machine.
    Release(IpAddr),
    /// Announce this DuraVIP address, held here, again: another holder of it (the far side of
    /// a healed partition) has just given way.
    Announce(IpAddr),
    /// Manager: every target of this operation answered, left or timed out.
    Completed(OpId),
    /// Manager: write this to the journal (the `Control_Cache` file) and make it durable
    /// before performing any [`Output::Send`] or [`Output::Reply`] that follows.
    Journal(JournalWrite),
    /// Node: bring the working copy up to at least these revisions (a manager says they are
    /// the newest, or it is time to look), say how it went with [`Node::config_fetch_done`],
    /// and report what runs with [`Node::config_running`].
    ConfigFetch(Revisions),
}

impl Output {
    /// True for a console reply that refuses the command: it acknowledges nothing and follows
    /// no journal write of its own, so a shell may perform it at once, ahead of outputs held
    /// for the journal (a refusal must not wait for a disk that is failing).
    pub fn is_refusal(&self) -> bool {
        matches!(self, Output::Reply { to: Requester::Console(_), result: Err(_) })
    }
}

/// An input the member refused. State is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The envelope was bad. Expected only from broken or hostile peers.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Membership refused the datagram.
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// The operations protocol refused the message.
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// DuraVIP refused the datagram.
    #[error(transparent)]
    DuraVip(#[from] DuraVipError),
    /// A message for a core this member does not run (a DuraVIP datagram at a member without
    /// bindings, operations at a node from someone who is not a manager).
    #[error("{0}")]
    NotHere(String),
}

/// The role core of a member.
enum RoleCore {
    Manager(Box<Sequencer>),
    Node(Box<Applier>),
}

/// The configuration-revision core of a member.
enum RevisionCore {
    Publisher(Publisher),
    Follower(Follower),
}

/// How often a manager tells a node that does not run the newest configuration revisions.
const REVISION_RESEND: Duration = Duration::from_secs(1);

/// Who holds the DuraVIP addresses: the manager's book, a node's reports to the managers.
enum HolderCore {
    Book(HolderBook),
    Reporter(Reporter),
}

/// How often a node tells the managers again where it stands with its DuraVIP addresses
/// (changes are told at once; this mends a report lost with its connection).
const HOLDERS_REPAIR: Duration = Duration::from_secs(30);

/// A console request forwarded to a manager, waiting for its answer.
struct Forward {
    to: Requester,
    manager: String,
}

/// The state machine of one member. See the module documentation for the contract.
pub struct Node {
    membership: Membership,
    role: RoleCore,
    revisions: RevisionCore,
    holders: HolderCore,
    duravip: Option<DuraVip>,
    /// The bindings by address (managers check moves against them).
    bindings: BTreeMap<IpAddr, Binding>,
    roster: Roster,
    managers: BTreeSet<String>,
    ops: OpsConfig,
    forwards: BTreeMap<u64, Forward>,
    next_forward: u64,
    outputs: VecDeque<Output>,
    /// The latest time passed in; [`Node::poll_output`] moves the cores' outputs out with it.
    now: Option<Instant>,
}

impl Node {
    /// The core of a member. Refused when the DuraVIP bindings are unusable (see
    /// [`DuraVip::new`]); nothing is built then.
    pub fn new(config: NodeConfig, rng: StdRng) -> Result<Node, DuraVipError> {
        let NodeConfig { id, roster, managers, membership, ops, epoch, duravip } = config;
        let roster = roster.with_managers(&managers);
        let nodes = roster.len().saturating_sub(managers.len());
        let core = match (id.role, duravip.bindings.is_empty()) {
            (Role::Node, false) => Some(
                DuraVip::new(id.clone(), duravip.bindings.clone(), duravip.config.clone())?.with_cluster_nodes(nodes),
            ),
            _ => None,
        };
        let bindings = duravip.bindings.into_iter().map(|b| (b.addr, b)).collect();
        let revisions = match id.role {
            Role::Manager => RevisionCore::Publisher(Publisher::new(REVISION_RESEND)),
            Role::Node => RevisionCore::Follower(Follower::new()),
        };
        let holders = match id.role {
            Role::Manager => HolderCore::Book(HolderBook::new()),
            Role::Node => HolderCore::Reporter(Reporter::new(id.incarnation, HOLDERS_REPAIR)),
        };
        let role = match id.role {
            Role::Manager => RoleCore::Manager(Box::new(Sequencer::new(epoch, ops.clone()).with_cluster_nodes(nodes))),
            Role::Node => RoleCore::Node(Box::new(Applier::new(id.incarnation, ops.clone()))),
        };
        Ok(Node {
            membership: Membership::new(id, roster.clone(), membership, rng),
            role,
            revisions,
            holders,
            duravip: core,
            bindings,
            roster,
            managers,
            ops,
            forwards: BTreeMap::new(),
            next_forward: 0,
            outputs: VecDeque::new(),
            now: None,
        })
    }

    // ---- getters ----

    /// Our current identity.
    pub fn identity(&self) -> &MemberId {
        self.membership.identity()
    }

    /// Every member we know of, ourselves included, ordered by name.
    pub fn members(&self) -> Vec<MemberView> {
        self.membership.members()
    }

    /// Member identities cut out of received gossip because the segment file does not list
    /// them as given: the latest few, and the count since start.
    pub fn gossip_refusals(&self) -> (impl Iterator<Item = &membership::Refusal>, u64) {
        self.membership.refusals()
    }

    /// Number of live peers (not counting ourselves).
    pub fn live_count(&self) -> usize {
        self.membership.live_count()
    }

    /// The SWIM tuning in force.
    pub fn membership_config(&self) -> &MembershipConfig {
        self.membership.config()
    }

    /// The sequencer and results buffer (managers).
    pub fn sequencer(&self) -> Option<&Sequencer> {
        match &self.role {
            RoleCore::Manager(seq) => Some(seq),
            RoleCore::Node(_) => None,
        }
    }

    /// The applier (nodes).
    pub fn applier(&self) -> Option<&Applier> {
        match &self.role {
            RoleCore::Node(applier) => Some(applier),
            RoleCore::Manager(_) => None,
        }
    }

    /// Managers: the newest configuration revisions and what each live node runs.
    pub fn config_publisher(&self) -> Option<&Publisher> {
        match &self.revisions {
            RevisionCore::Publisher(p) => Some(p),
            RevisionCore::Follower(_) => None,
        }
    }

    /// Nodes: the configuration revisions in force and the newest heard of.
    pub fn config_follower(&self) -> Option<&Follower> {
        match &self.revisions {
            RevisionCore::Follower(f) => Some(f),
            RevisionCore::Publisher(_) => None,
        }
    }

    /// The DuraVIP ownership core (nodes with bindings).
    pub fn duravip(&self) -> Option<&DuraVip> {
        self.duravip.as_ref()
    }

    /// Managers: who holds each DuraVIP address, as the nodes reported it (only addresses of
    /// this manager's bindings are kept).
    pub fn duravip_holders(&self) -> Option<&HolderBook> {
        match &self.holders {
            HolderCore::Book(book) => Some(book),
            HolderCore::Reporter(_) => None,
        }
    }

    /// The DuraVIP bindings by address.
    pub fn bindings(&self) -> &BTreeMap<IpAddr, Binding> {
        &self.bindings
    }

    /// The hosts of the segment file.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// One snapshot of this member's counters and gauges: members by subcluster and state
    /// (as [`Node::members`] lists them), what membership, the operations core and DuraVIP
    /// counted since the start, and the configuration revisions running and newest. Reading
    /// it walks the member list; the counting itself is done as the cores run.
    pub fn stats(&self) -> Stats {
        let mut members: BTreeMap<&str, MemberCounts> = BTreeMap::new();
        let view = self.members();
        for m in &view {
            let row = members
                .entry(m.id.subcluster.as_str())
                .or_insert_with(|| MemberCounts { subcluster: m.id.subcluster.clone(), ..MemberCounts::default() });
            match m.state {
                MemberState::Up => row.up += 1,
                MemberState::Suspect => row.suspect += 1,
                MemberState::Down => row.down += 1,
            }
        }
        let revisions = match &self.revisions {
            RevisionCore::Publisher(p) => p
                .newest()
                .iter()
                .map(|(repo, rev)| RevisionCount { repo: repo.clone(), running: None, newest: Some(*rev) })
                .collect(),
            RevisionCore::Follower(f) => {
                let repos: BTreeSet<&String> = f.running().keys().chain(f.newest().keys()).collect();
                repos
                    .into_iter()
                    .map(|repo| RevisionCount {
                        repo: repo.clone(),
                        running: f.running().get(repo).copied(),
                        newest: f.newest().get(repo).copied(),
                    })
                    .collect()
            }
        };
        Stats {
            role: self.identity().role,
            subcluster: self.identity().subcluster.clone(),
            members: members.into_values().collect(),
            counters: self.counters(),
            revisions,
        }
    }

    /// What the cores counted since the start (the counters of [`Node::stats`] without the
    /// gauges read from the member list).
    pub fn counters(&self) -> Counters {
        let ops = match &self.role {
            RoleCore::Manager(seq) => seq.counters(),
            RoleCore::Node(applier) => OpsCounters { applied: applier.applied_total(), ..OpsCounters::default() },
        };
        Counters {
            membership: self.membership.counters(),
            ops,
            duravip: self.duravip.as_ref().map(DuraVip::counters).unwrap_or_default(),
        }
    }

    // ---- commands ----

    /// Starts membership (announces to the roster) and DuraVIP (which acquires nothing until
    /// its view has settled).
    pub fn start(&mut self, now: Instant) {
        self.now = Some(now);
        if let RoleCore::Manager(seq) = &mut self.role {
            seq.start(now);
        }
        self.membership.start(now);
        if let Some(vip) = &mut self.duravip {
            vip.start(now);
        }
        self.pump(now);
    }

    /// Starts as [`Node::start`] does, but from the state a formed cluster reaches: every
    /// member of `members` already known and alive (see [`Membership::start_seeded`]). For a
    /// simulator's large clusters only.
    pub fn start_seeded(&mut self, now: Instant, members: impl IntoIterator<Item = crate::ids::SwimId>) {
        self.now = Some(now);
        if let RoleCore::Manager(seq) = &mut self.role {
            seq.start(now);
        }
        self.membership.start_seeded(now, members);
        if let Some(vip) = &mut self.duravip {
            vip.start(now);
        }
        self.pump(now);
    }

    /// Manager: the records of the journal an earlier run left (see
    /// [`crate::ops::journal::read`]), before [`Node::start`]. The results buffer comes back,
    /// and the operations some target had not answered are delivered before new ones are
    /// taken. The journal is rewritten at once as a snapshot ([`Output::Journal`]). Nodes
    /// ignore this.
    pub fn recover(&mut self, now: Instant, records: &[JournalRecord]) {
        self.now = Some(now);
        if let RoleCore::Manager(seq) = &mut self.role {
            seq.recover(now, records);
        }
        self.pump(now);
    }

    /// Manager: the shell's report on its journal writes — `Some(why)` while they fail (it
    /// retries them, holding what follows), `None` once they are durable again. New
    /// operations are refused meanwhile (see [`Sequencer::set_journal_fault`]). Nodes ignore
    /// this.
    pub fn journal_failed(&mut self, now: Instant, fault: Option<String>) {
        self.now = Some(now);
        if let RoleCore::Manager(seq) = &mut self.role {
            seq.set_journal_fault(fault);
        }
        self.pump(now);
    }

    /// Manager: revision `rev` of configuration repository `repo` is the newest (the
    /// configuration server said so). Every live node that does not run it is told, and told
    /// again until it reports running it. False, with nothing changed, for a revision not
    /// newer than the one known (or a name out of bounds). Nodes ignore this.
    pub fn config_published(&mut self, now: Instant, repo: &str, rev: u64) -> bool {
        self.now = Some(now);
        let newer = match &mut self.revisions {
            RevisionCore::Publisher(p) => p.publish(repo, rev),
            RevisionCore::Follower(_) => false,
        };
        self.pump(now);
        newer
    }

    /// Node: the working copy runs `revisions` (after the start, a pull or a reload), with the
    /// failure that keeps it from the newest, if one does; every live manager is told.
    /// Managers ignore this.
    pub fn config_running(&mut self, now: Instant, revisions: Revisions, error: Option<String>) {
        self.now = Some(now);
        if let RevisionCore::Follower(f) = &mut self.revisions {
            f.set_running(revisions, error);
        }
        self.pump(now);
    }

    /// Node: the shell follows a configuration repository: it is asked to fetch now (the pull
    /// at start), on every newer revision announced, and as `timing` says, one fetch at a time
    /// ([`Output::ConfigFetch`]). Managers ignore this.
    pub fn config_follow(&mut self, now: Instant, timing: FollowTiming) {
        self.now = Some(now);
        if let RevisionCore::Follower(f) = &mut self.revisions {
            f.follow(timing);
        }
        self.pump(now);
    }

    /// Node: the fetch asked for by [`Output::ConfigFetch`] ended (report what runs with
    /// [`Node::config_running`]). Managers ignore this.
    pub fn config_fetch_done(&mut self, now: Instant, outcome: FetchOutcome) {
        self.now = Some(now);
        if let RevisionCore::Follower(f) = &mut self.revisions {
            f.fetch_done(now, outcome);
        }
        self.pump(now);
    }

    /// Leaves the cluster gracefully: DuraVIP releases everything at once and tells the
    /// candidates, membership tells peers we are going. Drain and send the outputs before
    /// closing the transport.
    pub fn leave(&mut self, now: Instant) {
        self.now = Some(now);
        if let Some(vip) = &mut self.duravip {
            vip.leave(now);
        }
        self.membership.leave(now);
        self.pump(now);
    }

    /// A configuration reload of the DuraVIP bindings: see [`DuraVip::reconfigure`] (the
    /// node restates its state to its peers at once). A node that had none starts its DuraVIP
    /// core now. Refused, with nothing changed, if the bindings are unusable.
    pub fn reconfigure_duravip(&mut self, now: Instant, setup: DuravipSetup) -> Result<(), DuraVipError> {
        let nodes = self.roster.len().saturating_sub(self.managers.len());
        let role = self.identity().role;
        match (&mut self.duravip, role) {
            (Some(vip), _) => vip.reconfigure(now, setup.bindings.clone(), setup.config)?,
            (None, Role::Node) if !setup.bindings.is_empty() => {
                let mut vip = DuraVip::new(self.identity().clone(), setup.bindings.clone(), setup.config)?
                    .with_cluster_nodes(nodes);
                vip.start(now);
                for m in self.membership.members().into_iter().filter(|m| !m.local && m.state == crate::membership::MemberState::Up) {
                    vip.handle_member_up(now, &m.id);
                }
                self.duravip = Some(vip);
            }
            _ => {}
        }
        self.bindings = setup.bindings.into_iter().map(|b| (b.addr, b)).collect();
        if let HolderCore::Book(book) = &mut self.holders {
            book.retain_known(|addr| self.bindings.contains_key(&addr));
        }
        self.pump(now);
        Ok(())
    }

    /// A console command of the cores (see [`Command::parse`]). The answer comes out as
    /// [`Output::Reply`] to `Requester::Console(request)`, at once or, for a command the
    /// manager must order (`cluster duravip move` typed at a node), when the manager answers.
    ///
    /// Operations submitted by several commands before the next [`Node::poll_output`] travel
    /// together (one message per node), so a shell that takes a burst of console requests in
    /// one turn should run them all, then drain.
    pub fn command(&mut self, now: Instant, request: u64, command: Command) {
        self.now = Some(now);
        self.run_command(now, Requester::Console(request), command);
    }

    // ---- inputs ----

    /// Something happened. Refused inputs change nothing and return why.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) -> Result<(), NodeError> {
        self.now = Some(now);
        let result = match input {
            Input::Datagram { from, payload } => self.on_datagram(now, from, payload),
            Input::Message { from, payload } => self.on_message(now, from, payload),
            Input::Timer(timer) => {
                self.on_timer(now, timer);
                Ok(())
            }
            Input::Executed { op, status, body } => {
                if let RoleCore::Node(applier) = &mut self.role {
                    applier.handle_executed(op, status, body);
                }
                Ok(())
            }
        };
        self.pump(now);
        result
    }

    /// The next thing the shell must do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() {
            if let Some(now) = self.now {
                self.pump(now);
            }
        }
        let next = self.outputs.pop_front();
        if next.is_none() && self.outputs.capacity() > 64 {
            // A burst of outputs does not keep its memory (a simulator holds one queue per
            // member).
            self.outputs.shrink_to(64);
        }
        next
    }
}
