//! The DuraVIP core of one node: its state (view, holdings, claims heard, move overrides)
//! and its public face: construction, getters, inputs, the `cluster duravip` commands and the
//! output queue. The election and the claim/lease protocol are in `protocol`. No I/O here:
//! see the module documentation for the protocol and [`DuraVip`] for the driving contract.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::Instant;

use tracing::{debug, info};

use super::message::{DuraVipMessage, Stamp};
use super::rank::Rank;
use super::assign::Table;
use super::rank::rendezvous_score;
use super::report::{
    term_text, Announced, CandidateRow, ClaimHeard, HoldingState, MoveRecord, Moved, VipExplanation, VipState, VipTable,
};
use super::{Binding, DuraVipConfig, DuraVipOutput, DuraVipTimer, NO_TERM, Policy, Term};
use crate::error::DuraVipError;
use crate::ids::{MemberId, Role};
use crate::stats::DuraVipCounters;

mod protocol;

/// Where this node stands with one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holding {
    /// Neither holding nor trying to.
    Idle,
    /// Majority policy: claiming from sequence `since` on, waiting for a majority to back a claim.
    Acquiring { since: u64 },
    /// `Acquire` was emitted. Under the majority policy, acknowledgements of claims from
    /// sequence `since` on keep the lease.
    Held { since: u64 },
}

impl Holding {
    fn state(self) -> HoldingState {
        match self {
            Holding::Idle => HoldingState::Idle,
            Holding::Acquiring { .. } => HoldingState::Acquiring,
            Holding::Held { .. } => HoldingState::Held,
        }
    }
}

/// A `duravip move`: the address belongs to `host` while it is alive, decided at `term`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Override {
    host: String,
    term: Term,
}

/// The latest thing a peer said about one address: a claim (with the term it claims under) or
/// a release.
#[derive(Debug, Clone)]
struct ClaimRecord {
    stamp: Stamp,
    at: Instant,
    term: Term,
    released: bool,
}

/// One binding and this node's state for it.
#[derive(Debug)]
struct Vip {
    addr: IpAddr,
    name: String,
    /// Empty: every node.
    candidates: BTreeSet<String>,
    preference: Option<String>,
    holding: Holding,
    moved: Option<Override>,
    /// The highest move term ever seen for this address, kept after its override is dropped
    /// so that a late report of an older move is not adopted again.
    newest_term: Term,
    claims: BTreeMap<String, ClaimRecord>,
    /// Peer → send time of the newest of our claims it acknowledged.
    acks: BTreeMap<String, Instant>,
    /// Majority: the claimant this node last acknowledged, and when.
    backing: Option<(String, Instant)>,
}

impl Vip {
    /// `name` is on the candidate list (any name is, when the list is empty). Whether it is a
    /// node and not a manager is for the caller to know.
    fn lists(&self, name: &str) -> bool {
        self.candidates.is_empty() || self.candidates.contains(name)
    }
}

/// The DuraVIP ownership core of one node.
///
/// # Driving contract
///
/// - Construct with [`DuraVip::new`], call [`DuraVip::start`] once, then feed every input:
///   [`handle_member_up`](DuraVip::handle_member_up) /
///   [`handle_member_down`](DuraVip::handle_member_down) from the membership core,
///   [`handle_datagram`](DuraVip::handle_datagram) for each [`crate::wire::Kind::Duravip`]
///   datagram, [`handle_timer`](DuraVip::handle_timer) when a timer set by
///   [`DuraVipOutput::SetTimer`] fires.
/// - Commands: [`move_to`](DuraVip::move_to) (the ordered operation `cluster duravip move`,
///   applied on every node in the same order) and [`announce_view`](DuraVip::announce_view).
/// - Getters: [`held`](DuraVip::held), [`owner_of`](DuraVip::owner_of),
///   [`desired_owner`](DuraVip::desired_owner), [`show`](DuraVip::show), ...
/// - After every input or command, drain [`poll_output`](DuraVip::poll_output) to `None` and
///   perform the outputs in order. `now` must never go backwards.
///
/// A node starts holding nothing (the driver removes any DuraVIP address left configured
/// before it starts, as Momentum does) and acquires only once its view has settled.
#[derive(Debug)]
pub struct DuraVip {
    me: MemberId,
    config: DuraVipConfig,
    vips: BTreeMap<IpAddr, Vip>,
    /// Live nodes other than this one.
    view: BTreeMap<String, MemberId>,
    generation: u64,
    settled: bool,
    view_since: Option<Instant>,
    started: bool,
    /// Majority: until this time after a start, the node neither backs claims nor acquires.
    /// A new run has forgotten whom the previous run backed; waiting out `claim_silence`
    /// lets every claim that run may have backed lapse first.
    amnesia_until: Option<Instant>,
    /// Set by [`DuraVip::leave`]: nothing is acquired any more.
    left: bool,
    /// The view has settled once since the start: from then on a dead owner's addresses are
    /// taken over at once.
    mature: bool,
    /// Nodes in the cluster, the candidates of a binding without a list.
    cluster_nodes: usize,
    /// The election table of the current view.
    table: Table,
    /// When the bindings were configured (the start of the run).
    configured_since: Option<Instant>,
    /// The latest time passed in, for the getters.
    now: Option<Instant>,
    /// The last sequence number used in a stamp.
    seq: u64,
    /// Sequence → send time of our recent claims, to date their acknowledgements.
    sent: BTreeMap<u64, Instant>,
    to_claim: BTreeSet<IpAddr>,
    to_release: BTreeMap<String, BTreeSet<IpAddr>>,
    outputs: VecDeque<DuraVipOutput>,
    /// Acquisitions, releases, moves, conflicts (see [`DuraVip::counters`]).
    counters: DuraVipCounters,
}

impl DuraVip {
    /// The core of node `me` with its bindings. Refuses a bad configuration: two bindings with
    /// the same address or name, a preference outside the candidate list, a majority-policy
    /// inconsistent timings. (Under the majority policy a binding without a candidate list counts
    /// every node of the cluster: give their number with [`DuraVip::with_cluster_nodes`].)
    pub fn new(me: MemberId, bindings: Vec<Binding>, config: DuraVipConfig) -> Result<DuraVip, DuraVipError> {
        config.validate()?;
        let mut vips: BTreeMap<IpAddr, Vip> = BTreeMap::new();
        let mut names = BTreeSet::new();
        for b in bindings {
            if b.name.is_empty() {
                return Err(DuraVipError::Binding {
                    binding: b.addr.to_string(),
                    problem: "the binding has an empty name".to_owned(),
                });
            }
            if !names.insert(b.name.clone()) {
                return Err(DuraVipError::DuplicateName(b.name));
            }
            if let Some(first) = vips.get(&b.addr) {
                return Err(DuraVipError::DuplicateAddress {
                    addr: b.addr,
                    first: first.name.clone(),
                    second: b.name,
                });
            }
            let candidates: BTreeSet<String> = b.candidates.iter().cloned().collect();
            if candidates.iter().any(String::is_empty) {
                return Err(binding_error(&b.name, "a candidate name is empty".to_owned()));
            }
            if let Some(p) = &b.preference {
                if p.is_empty() || !(candidates.is_empty() || candidates.contains(p)) {
                    return Err(binding_error(
                        &b.name,
                        format!("preferred node {p:?} is not one of its candidates"),
                    ));
                }
            }
            vips.insert(
                b.addr,
                Vip {
                    addr: b.addr,
                    name: b.name,
                    candidates,
                    preference: b.preference,
                    holding: Holding::Idle,
                    moved: None,
                    newest_term: NO_TERM,
                    claims: BTreeMap::new(),
                    acks: BTreeMap::new(),
                    backing: None,
                },
            );
        }
        Ok(DuraVip {
            me,
            config,
            vips,
            view: BTreeMap::new(),
            generation: 0,
            settled: false,
            view_since: None,
            started: false,
            amnesia_until: None,
            left: false,
            mature: false,
            cluster_nodes: 0,
            table: Table::default(),
            configured_since: None,
            now: None,
            seq: 0,
            sent: BTreeMap::new(),
            to_claim: BTreeSet::new(),
            to_release: BTreeMap::new(),
            outputs: VecDeque::new(),
            counters: DuraVipCounters::default(),
        })
    }

    /// Tells the core how many nodes the cluster has: the candidates of a binding without a
    /// list, whose majority the majority policy counts. The node core sets it from the roster.
    pub fn with_cluster_nodes(mut self, nodes: usize) -> DuraVip {
        self.cluster_nodes = nodes;
        self
    }

    // ---- getters ----

    /// This node's identity.
    pub fn me(&self) -> &MemberId {
        &self.me
    }

    /// The configuration.
    pub fn config(&self) -> &DuraVipConfig {
        &self.config
    }

    /// The generation of the view: it grows with every change of the view.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// True once the current view has been unchanged for `settle`.
    pub fn is_settled(&self) -> bool {
        self.settled
    }

    /// The live nodes this node sees, itself included if it is a node, by name.
    pub fn view(&self) -> impl Iterator<Item = &str> {
        let me = (self.me.role == Role::Node).then_some(self.me.name.as_str());
        let mut names: Vec<&str> = self.view.keys().map(String::as_str).chain(me).collect();
        names.sort_unstable();
        names.into_iter()
    }

    /// What this core counted since the start (acquisitions, releases, moves, conflicts), with
    /// the addresses held and bound now.
    pub fn counters(&self) -> DuraVipCounters {
        let mut counters = self.counters.clone();
        counters.held = self.held().count() as u64;
        counters.bound = self.vips.len() as u64;
        counters
    }

    /// The addresses this node holds now (an `Acquire` was emitted and no `Release` since).
    pub fn held(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.vips
            .values()
            .filter(|v| matches!(v.holding, Holding::Held { .. }))
            .map(|v| v.addr)
    }

    /// Every bound address with this node's state for it and the term it claims under
    /// ([`NO_TERM`] unless a `duravip move` named this node), in address order.
    pub fn holdings(&self) -> impl Iterator<Item = (IpAddr, Term, HoldingState)> + '_ {
        self.vips.values().map(|v| (v.addr, self.my_term(v), v.holding.state()))
    }

    /// Who this node believes holds `addr`: itself if it does, else the highest-ranked live
    /// node whose claim for it is recent (as of the last input), else nobody.
    pub fn owner_of(&self, addr: IpAddr) -> Option<&str> {
        let vip = self.vips.get(&addr)?;
        if matches!(vip.holding, Holding::Held { .. }) {
            return Some(&self.me.name);
        }
        let now = self.now?;
        vip.claims
            .iter()
            .filter(|(name, r)| self.view.contains_key(*name) && self.active(r, now))
            .map(|(name, r)| Rank::of(addr, name, r.term, vip.preference.as_deref()))
            .max()
            .map(|rank| rank.name)
    }

    /// The owner this node's view elects for `addr` (override, then preference, then score),
    /// whether or not it holds the address yet.
    pub fn desired_owner(&self, addr: IpAddr) -> Option<&str> {
        self.vips.get(&addr).and_then(|v| self.elect(v))
    }

    /// The `duravip move` override this node knows for `addr`, as (host, term).
    pub fn override_of(&self, addr: IpAddr) -> Option<(&str, Term)> {
        self.vips.get(&addr)?.moved.as_ref().map(|o| (o.host.as_str(), o.term))
    }

    /// This node's state for `addr`, if it manages it.
    pub fn holding(&self, addr: IpAddr) -> Option<HoldingState> {
        self.vips.get(&addr).map(|v| v.holding.state())
    }

    /// The state table of `cluster duravip show` / `show tables`: per address who owns it,
    /// whom the view elects, this node's part, the move in force and the live candidates.
    pub fn table(&self, now: Instant) -> VipTable {
        let stable = |since: Option<Instant>| since.map_or(0, |s| now.saturating_duration_since(s).as_secs());
        let vips = self
            .vips
            .values()
            .map(|vip| {
                let owner = self.owner_of(vip.addr).map(str::to_owned);
                let ownership = match (vip.holding, &owner) {
                    (Holding::Acquiring { .. }, _) => "acquiring",
                    (_, Some(_)) => "owned",
                    (_, None) => "unowned",
                };
                let safety = if !self.quorum(vip) {
                    "minority"
                } else if !self.settled {
                    "settling"
                } else {
                    "safe"
                };
                VipState {
                    addr: vip.addr,
                    binding: vip.name.clone(),
                    owner,
                    elected: self.elect(vip).map(str::to_owned),
                    holding: vip.holding.state(),
                    ownership,
                    safety,
                    moved: vip.moved.as_ref().map(|o| MoveRecord { host: o.host.clone(), operation: term_text(o.term) }),
                    preference: vip.preference.clone(),
                    candidates: self.live_candidates(vip).map(str::to_owned).collect(),
                }
            })
            .collect();
        VipTable {
            node: self.me.name.clone(),
            policy: self.config.policy,
            settled: self.settled,
            view: self.view().map(str::to_owned).collect(),
            view_stable_secs: stable(self.view_since),
            config_stable_secs: stable(self.configured_since),
            vips,
        }
    }

    /// `cluster duravip explain ADDR`: the view, the move, the preference, the loads and the
    /// claims heard that make the election give `addr` to its owner. `None` if no binding
    /// declares `addr`.
    pub fn explain(&self, now: Instant, addr: IpAddr) -> Option<VipExplanation> {
        let vip = self.vips.get(&addr)?;
        let window = self.window();
        let mut candidates: Vec<CandidateRow> = self
            .live_candidates(vip)
            .map(|name| CandidateRow {
                name: name.to_owned(),
                score: format!("{:016x}", rendezvous_score(addr, name)),
                load: self.table.loads.get(name).copied().unwrap_or(0),
                preferred: vip.preference.as_deref() == Some(name),
                claim: vip.claims.get(name).map(|r| {
                    let age = now.saturating_duration_since(r.at);
                    ClaimHeard {
                        operation: term_text(r.term),
                        age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
                        released: r.released,
                        active: !r.released && age < window,
                    }
                }),
            })
            .collect();
        candidates.sort_by(|a, b| b.score.cmp(&a.score));
        let live = |n: &str| candidates.iter().any(|c| c.name == n);
        Some(VipExplanation {
            addr,
            binding: vip.name.clone(),
            policy: self.config.policy,
            elected: self.elect(vip).map(str::to_owned),
            why: self.table.owners.get(&addr).map(|(_, why)| *why),
            owner: self.owner_of(addr).map(str::to_owned),
            holding: vip.holding.state(),
            moved: vip.moved.as_ref().map(|o| MoveRecord { host: o.host.clone(), operation: term_text(o.term) }),
            preference: vip.preference.clone(),
            preference_live: vip.preference.as_deref().is_some_and(live),
            quota: self.table.quota.0,
            quota_extra: self.table.quota.1,
            settled: self.settled,
            mature: self.mature,
            quorum: self.quorum(vip),
            candidates,
        })
    }

    // ---- inputs ----

    /// Starts the core: arms the settle timer of the current view and the beat. A node
    /// starts holding nothing. Calling it again does nothing.
    pub fn start(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        if self.config.policy == Policy::Majority {
            self.amnesia_until = now.checked_add(self.config.claim_silence);
        }
        self.touch(now);
        self.view_since.get_or_insert(now);
        self.configured_since.get_or_insert(now);
        self.outputs.push_back(DuraVipOutput::SetTimer {
            after: self.config.settle,
            timer: DuraVipTimer::Settle(self.generation),
        });
        self.outputs.push_back(DuraVipOutput::SetTimer {
            after: self.config.beat,
            timer: DuraVipTimer::Beat,
        });
    }

    /// A member is up, or renewed (a newer incarnation). Managers are ignored: they never
    /// hold addresses. The member is sent this node's state, so that a restarted node learns
    /// the moves it missed.
    pub fn handle_member_up(&mut self, now: Instant, id: &MemberId) {
        self.touch(now);
        if id.name == self.me.name {
            return;
        }
        if id.role != Role::Node {
            if self.view.remove(&id.name).is_some() {
                self.view_changed(now);
                self.settle_inputs(now);
            }
            return;
        }
        if self
            .view
            .get(&id.name)
            .is_some_and(|known| known.incarnation >= id.incarnation)
        {
            return;
        }
        self.view.insert(id.name.clone(), id.clone());
        self.view_changed(now);
        self.settle_inputs(now);
        self.send_state(&id.name);
    }

    /// A member is down. A report about an older incarnation than the one known is ignored.
    /// Move overrides naming the member are dropped.
    pub fn handle_member_down(&mut self, now: Instant, id: &MemberId) {
        self.touch(now);
        if id.name == self.me.name
            || self
                .view
                .get(&id.name)
                .is_none_or(|known| known.incarnation > id.incarnation)
        {
            return;
        }
        self.view.remove(&id.name);
        let available = self.config.policy == Policy::Available;
        for vip in self.vips.values_mut() {
            if vip.moved.as_ref().is_some_and(|o| o.host == id.name) {
                info!(addr = %vip.addr, host = %id.name, "dropping the move override of a host that went down");
                vip.moved = None;
            }
        }
        // Under the available policy a member declared down that has also fallen silent no
        // longer holds its addresses back (`drop_silent_claims`). One declared down within a
        // beat and a half of its last claim is dropped the moment it falls silent.
        if available {
            self.drop_silent_claims_and_wait(now);
        }
        self.view_changed(now);
        self.settle_inputs(now);
    }

    /// A DuraVIP datagram from the member named `from` (the authenticated peer). Junk is
    /// refused with an error and changes nothing.
    pub fn handle_datagram(&mut self, now: Instant, from: &str, payload: &[u8]) -> Result<(), DuraVipError> {
        let message = DuraVipMessage::decode(payload)?;
        self.touch(now);
        if from == self.me.name {
            debug!("ignoring a DuraVIP datagram from ourselves");
            return Ok(());
        }
        match message {
            DuraVipMessage::Claim { stamp, claims } => self.on_claims(now, from, stamp, claims, true),
            DuraVipMessage::ClaimAck { stamp, addrs } => self.on_ack(from, stamp, addrs),
            DuraVipMessage::Released { stamp, addrs } => self.on_released(now, from, stamp, addrs),
            DuraVipMessage::State {
                stamp,
                holdings,
                overrides,
            } => {
                for (addr, host, term) in overrides {
                    self.adopt(addr, &host, term);
                }
                self.on_claims(now, from, stamp, holdings, false);
            }
        }
        self.settle_inputs(now);
        Ok(())
    }

    /// Drops the claims of members out of the view that have fallen silent, and sets
    /// [`DuraVipTimer::Silence`] for the next of them that is still recent (several members
    /// declared down close together fall silent one after another).
    fn drop_silent_claims_and_wait(&mut self, now: Instant) {
        if let Some(silent_at) = self.drop_silent_claims(now) {
            self.outputs.push_back(DuraVipOutput::SetTimer {
                after: silent_at.saturating_duration_since(now),
                timer: DuraVipTimer::Silence,
            });
        }
    }

    /// A timer set by [`DuraVipOutput::SetTimer`] fired.
    pub fn handle_timer(&mut self, now: Instant, timer: DuraVipTimer) {
        self.touch(now);
        match timer {
            DuraVipTimer::Settle(generation) => {
                if generation == self.generation && !self.settled {
                    self.settled = true;
                    self.mature = true;
                    debug!(generation, "view settled");
                    self.settle_inputs(now);
                }
            }
            DuraVipTimer::Silence => {
                if self.config.policy == Policy::Available {
                    self.drop_silent_claims_and_wait(now);
                    self.settle_inputs(now);
                }
            }
            DuraVipTimer::Beat => {
                self.prune(now);
                self.evaluate(now);
                let claiming: Vec<IpAddr> = self
                    .vips
                    .values()
                    .filter(|v| v.holding != Holding::Idle)
                    .map(|v| v.addr)
                    .collect();
                self.to_claim.extend(claiming);
                self.flush(now);
                self.outputs.push_back(DuraVipOutput::SetTimer {
                    after: self.config.beat,
                    timer: DuraVipTimer::Beat,
                });
            }
        }
    }

    // ---- commands ----

    /// `cluster duravip move ADDR to HOST`, applied on every node in the same order, `term`
    /// being the operation's id. Refused if `addr` is not a binding, `host` is not a live node
    /// in this node's view, or not a candidate for `addr`. A move older than one already known
    /// changes nothing (the outcome says which move supersedes it).
    pub fn move_to(&mut self, now: Instant, term: Term, addr: IpAddr, host: &str) -> Result<Moved, DuraVipError> {
        self.touch(now);
        let vip = self.vips.get(&addr).ok_or(DuraVipError::UnknownAddress(addr))?;
        if !self.is_live(host) {
            return Err(DuraVipError::NotALiveMember(host.to_owned()));
        }
        if !self.candidate(vip, host) {
            return Err(DuraVipError::NotACandidate {
                addr,
                host: host.to_owned(),
                binding: vip.name.clone(),
            });
        }
        let mut moved = Moved {
            addr,
            binding: vip.name.clone(),
            host: host.to_owned(),
            operation: term_text(term),
            applied: term >= vip.newest_term,
            superseded_by: None,
            holding: vip.holding.state(),
        };
        if !moved.applied {
            moved.superseded_by = Some(term_text(vip.newest_term));
            return Ok(moved);
        }
        self.counters.moves += 1;
        if let Some(vip) = self.vips.get_mut(&addr) {
            vip.moved = Some(Override {
                host: host.to_owned(),
                term,
            });
            vip.newest_term = term;
        }
        self.reassign();
        info!(%addr, %host, term = ?term, "duravip move");
        self.settle_inputs(now);
        moved.holding = self.vips.get(&addr).map_or(HoldingState::Idle, |v| v.holding.state());
        Ok(moved)
    }

    /// A configuration reload: the bindings and tuning in force from now on. Addresses no
    /// longer declared are released (and the candidates told), new ones start idle, kept ones
    /// keep their holder, claims and moves; then this node restates its state to every live
    /// peer at once — Momentum needed an operator's `announce view` after each reload for the
    /// nodes to agree again. Refused, with nothing changed, if the new configuration is bad.
    pub fn reconfigure(&mut self, now: Instant, bindings: Vec<Binding>, config: DuraVipConfig) -> Result<(), DuraVipError> {
        if config.policy != self.config.policy {
            return Err(DuraVipError::Config(
                "duravip_policy changes only at a restart (the majority policy's leases need a fresh start)".to_owned(),
            ));
        }
        let fresh = DuraVip::new(self.me.clone(), bindings, config)?;
        self.touch(now);
        let gone: Vec<IpAddr> = self.vips.keys().filter(|a| !fresh.vips.contains_key(*a)).copied().collect();
        for addr in &gone {
            self.give_up(*addr, None);
        }
        self.flush(now);
        for addr in gone {
            self.vips.remove(&addr);
        }
        for (addr, new) in fresh.vips {
            match self.vips.get_mut(&addr) {
                Some(vip) => {
                    vip.name = new.name;
                    vip.candidates = new.candidates;
                    vip.preference = new.preference;
                }
                None => {
                    self.vips.insert(addr, new);
                }
            }
        }
        self.config = fresh.config;
        self.configured_since = Some(now);
        info!(addresses = self.vips.len(), "DuraVIP configuration reloaded");
        self.view_changed(now);
        self.settle_inputs(now);
        let peers: Vec<String> = self.view.keys().cloned().collect();
        for peer in &peers {
            self.send_state(peer);
        }
        Ok(())
    }

    /// The node is leaving the cluster (a graceful stop): releases everything it holds or is
    /// acquiring and tells the candidates at once, so successors need not wait for leases to
    /// lapse.
    pub fn leave(&mut self, now: Instant) {
        self.touch(now);
        self.left = true;
        let mine: Vec<IpAddr> =
            self.vips.values().filter(|v| v.holding != Holding::Idle).map(|v| v.addr).collect();
        for addr in mine {
            self.give_up(addr, None);
        }
        self.flush(now);
    }

    /// `cluster duravip announce view`: re-evaluates, then sends this node's state (what it
    /// holds, the moves it knows) to every live node that is a candidate for an address this
    /// node is a candidate for. `term` is the operation's id ([`NO_TERM`] from a local console).
    pub fn announce_view(&mut self, now: Instant, term: Term) -> Announced {
        self.touch(now);
        self.settle_inputs(now);
        let mut peers = BTreeSet::new();
        for vip in self.vips.values() {
            if self.candidate(vip, &self.me.name) {
                peers.extend(self.view.keys().filter(|n| vip.lists(n)).cloned());
            }
        }
        for peer in &peers {
            self.send_state(peer);
        }
        Announced {
            operation: term_text(term),
            peers: peers.len(),
            holding: self.held().count(),
            addresses: self.vips.len(),
            moves: self.vips.values().filter(|v| v.moved.is_some()).count(),
        }
    }

    // ---- outputs ----

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<DuraVipOutput> {
        self.outputs.pop_front()
    }
}

fn binding_error(binding: &str, problem: String) -> DuraVipError {
    DuraVipError::Binding {
        binding: binding.to_owned(),
        problem,
    }
}
