//! SWIM membership: foca driven behind our own adapter.
//!
//! [`Membership`] owns a `foca::Foca` and an output queue. foca's `Runtime` callbacks are
//! buffered into that queue (as `foca::AccumulatingRuntime` does) together with our own
//! timers and events, so drivers see one stream of [`Output`]s. No I/O here.
//!
//! # Contract
//!
//! - Getters: [`Membership::identity`], [`Membership::members`], [`Membership::live_count`].
//! - Inputs: [`Membership::handle_datagram`], [`Membership::handle_timer`].
//! - Commands: [`Membership::start`], [`Membership::leave`].
//! - Outputs: [`Membership::poll_output`], to be drained to empty after every input or command,
//!   in order: a `SetTimer` must be scheduled, a `Send` sent, an `Event` published.
//! - `now` never goes backwards between calls.

mod config;
mod health;
mod screen;
mod view;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use foca::{Codec, Foca, NoCustomBroadcast, Notification, OwnedNotification, PostcardCodec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use self::config::MembershipConfig;
pub use self::screen::Refusal;
pub use self::view::{MemberState, MemberView};
use crate::error::MembershipError;
use crate::ids::{MemberId, Role};
use crate::stats::MembershipCounters;
use crate::wire::{self, Kind};

/// A timer the driver must fire back into [`Membership::handle_timer`] after its delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timer {
    /// One of foca's own timers.
    Swim {
        /// Which SWIM state set it (a fresh state after an isolation ignores older timers).
        generation: u32,
        /// foca's timer.
        timer: foca::Timer<MemberId>,
    },
    /// Announce to the seeds again if we still have no live peer.
    Rejoin,
}

/// Something that happened to the cluster, in our view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// A member became live.
    MemberUp(MemberId),
    /// A member was declared down (crashed, unreachable, or left).
    MemberDown(MemberId),
    /// A member restarted: same name, newer incarnation.
    MemberRenewed {
        /// The identity we knew.
        from: MemberId,
        /// The newer one.
        to: MemberId,
    },
    /// We are known by at least one live member.
    Joined,
    /// Every member we knew is down or gone.
    Isolated,
    /// We had been declared down and came back with a new incarnation.
    Rejoined(MemberId),
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `payload` as one datagram to `to`.
    Send {
        /// The destination member.
        to: MemberId,
        /// The datagram, already in its envelope.
        payload: Bytes,
    },
    /// Call `handle_timer(timer)` once `after` has passed.
    SetTimer {
        /// Delay from now.
        after: Duration,
        /// What to fire.
        timer: Timer,
    },
    /// Publish a cluster event.
    Event(ClusterEvent),
}

/// The members a cluster may contain, from the segment file: name → (address, subcluster),
/// and which of them are managers (every other host is a node). A packet from anyone else, or
/// naming a known host at another address, in another subcluster or role, is refused. Clones
/// share one table (a simulator runs thousands of members with the same roster).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    hosts: Arc<BTreeMap<String, (SocketAddr, String)>>,
    managers: Arc<BTreeSet<String>>,
}

impl Roster {
    /// An empty roster (accepts nobody until hosts are added).
    pub fn new() -> Self {
        Roster::default()
    }

    /// Adds a permitted member.
    pub fn insert(&mut self, name: &str, addr: SocketAddr, subcluster: &str) {
        Arc::make_mut(&mut self.hosts).insert(name.to_owned(), (addr, subcluster.to_owned()));
    }

    /// The same roster with the hosts `managers` in the manager role.
    pub fn with_managers(mut self, managers: &BTreeSet<String>) -> Self {
        self.managers = Arc::new(managers.clone());
        self
    }

    /// The role host `name` has in the segment file.
    pub fn role_of(&self, name: &str) -> Role {
        if self.managers.contains(name) {
            Role::Manager
        } else {
            Role::Node
        }
    }

    /// Checks a claimed identity against the roster: a host, at its address, in its
    /// subcluster, in its role.
    pub fn check(&self, id: &MemberId) -> Result<(), MembershipError> {
        self.check_address(id)?;
        let role = self.role_of(&id.name);
        if id.role != role {
            return Err(MembershipError::NotInRoster(format!(
                "{} claims the role {} but the segment file makes it a {}",
                id.name, id.role, role
            )));
        }
        Ok(())
    }

    /// Checks the name, address and subcluster of an identity (the identities we announce to
    /// before we have heard from a host carry no role).
    pub fn check_address(&self, id: &MemberId) -> Result<(), MembershipError> {
        match self.hosts.get(&id.name) {
            None => Err(MembershipError::NotInRoster(format!(
                "{} is not a host of the segment file",
                id.name
            ))),
            Some((addr, _)) if *addr != id.addr => Err(MembershipError::NotInRoster(format!(
                "{} claims address {} but the segment file says {}",
                id.name, id.addr, addr
            ))),
            Some((_, sc)) if *sc != id.subcluster => Err(MembershipError::NotInRoster(format!(
                "{} claims subcluster {} but the segment file says {}",
                id.name, id.subcluster, sc
            ))),
            Some(_) => Ok(()),
        }
    }

    /// True if `name` is a host of the roster.
    pub fn contains(&self, name: &str) -> bool {
        self.hosts.contains_key(name)
    }

    /// The QUIC address of host `name`.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.hosts.get(name).map(|(addr, _)| *addr)
    }

    /// The subcluster of host `name`.
    pub fn subcluster_of(&self, name: &str) -> Option<&str> {
        self.hosts.get(name).map(|(_, sc)| sc.as_str())
    }

    /// The subcluster named `name` (compared ignoring ASCII case), as the roster spells it.
    pub fn subcluster(&self, name: &str) -> Option<&str> {
        self.hosts.values().map(|(_, sc)| sc.as_str()).find(|sc| sc.eq_ignore_ascii_case(name))
    }

    /// The hosts' names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }

    /// The permitted members in ring order: names sorted, starting after `after`, wrapping.
    fn ring_after<'a>(&'a self, after: &'a str) -> impl Iterator<Item = (&'a String, &'a (SocketAddr, String))> + 'a {
        use std::ops::Bound::{Excluded, Unbounded};
        self.hosts
            .range::<str, _>((Excluded(after), Unbounded))
            .chain(self.hosts.range::<str, _>((Unbounded, Excluded(after))))
    }

    /// Number of permitted members.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// True if no member is permitted.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }
}

/// The SWIM membership state machine of one member.
pub struct Membership {
    foca: Foca<MemberId, PostcardCodec, StdRng, NoCustomBroadcast>,
    roster: Roster,
    config: MembershipConfig,
    outputs: VecDeque<Output>,
    notes: Vec<OwnedNotification<MemberId>>,
    since: BTreeMap<String, Instant>,
    /// When we last answered a peer that spoke to an old identity of ours (by peer name).
    reintroduced: BTreeMap<String, Instant>,
    /// The roster host last announced to; announces walk the ring from here.
    cursor: Option<String>,
    /// When to look for roster hosts never heard of next, and the wait after that.
    gap_fill: Option<(Instant, Duration)>,
    /// Seeds a fresh SWIM state after an isolation.
    rng: StdRng,
    /// Counts fresh SWIM states; timers of earlier ones are ignored.
    generation: u32,
    /// The latest identities cut out of received packets (see [`Membership::refusals`]).
    refusals: VecDeque<Refusal>,
    /// Identities cut out of received packets since start.
    refused_total: u64,
    /// Members declared down (crashed, cut off or left), by name, until they come back. foca
    /// holds the same knowledge, but a fresh SWIM state after an isolation holds none — and
    /// when the only peer of a two-member cluster leaves, that is exactly what follows — so
    /// the member table reads the down members from here too.
    departed: BTreeMap<String, MemberId>,
    /// Per relay: when a refusal was last logged, and how many were not logged since.
    refusal_log: BTreeMap<String, (Instant, u64)>,
    /// Counters for [`Membership::counters`].
    tally: Tally,
    /// The latest time passed in (foca's callbacks carry none).
    now: Option<Instant>,
    /// Our own health, which stretches the suspicions we raise (see `health.rs`).
    health: health::Health,
}

/// What membership counts as it runs: plain integers and the probe in flight, so that
/// counting allocates nothing per packet.
#[derive(Debug, Default)]
struct Tally {
    counters: MembershipCounters,
    /// Our latest direct probe: its number and when its ping went out.
    probe: Option<(foca::ProbeNumber, Instant)>,
    /// The highest incarnation of ours seen in our own packets since the identity was last
    /// renewed: foca raises it only to refute a suspicion of us.
    incarnation: u16,
}

/// Hosts announced to at start: the next ones after us in the roster's name order (a ring,
/// so the members that start together are connected and gossip does the rest). A cluster of
/// up to 33 members announces to everyone, which joins fastest (measured at 32 members:
/// 0.8 s, against 1.1 s announcing to 4); beyond that the cost stays at 32 announces per
/// member instead of growing with the cluster (N² at a cold start).
const START_ANNOUNCES: usize = 32;
/// Live members told directly of our renewed identity.
const RENEWAL_ANNOUNCES: usize = 32;
/// Roster hosts never heard of that a member announces to per gap-fill round.
const GAP_FILL_ANNOUNCES: usize = 4;
/// Hosts a member with no live peer at all announces to per rejoin round.
const ALONE_ANNOUNCES: usize = 16;
/// Refusals of forged gossip kept for [`Membership::refusals`].
const REFUSALS_KEPT: usize = 32;
/// A relay of forged gossip is logged at most once per this period (with a count of the
/// refusals not logged since), so a hostile peer cannot flood the log.
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(10);

/// foca's runtime: buffers everything foca asks for.
struct Sink<'a> {
    outputs: &'a mut VecDeque<Output>,
    notes: &'a mut Vec<OwnedNotification<MemberId>>,
    /// Sends go only to roster hosts at their roster address.
    roster: &'a Roster,
    generation: u32,
    tally: &'a mut Tally,
    now: Option<Instant>,
}

impl foca::Runtime<MemberId> for Sink<'_> {
    fn notify(&mut self, notification: Notification<'_, MemberId>) {
        // The per-packet notifications are counted here, from borrowed headers; only the
        // membership changes are kept.
        match notification {
            Notification::DataSent(header) => {
                if let (foca::Message::Ping(number), Some(now)) = (&header.message, self.now) {
                    self.tally.probe = Some((*number, now));
                }
                if header.src_incarnation > self.tally.incarnation {
                    self.tally.counters.suspicions_refuted += u64::from(header.src_incarnation - self.tally.incarnation);
                    self.tally.incarnation = header.src_incarnation;
                }
            }
            Notification::DataReceived(header) => {
                if let (foca::Message::Ack(number), Some((probe, sent)), Some(now)) = (&header.message, self.tally.probe, self.now) {
                    if *number == probe {
                        self.tally.counters.probe_rtt.record(now.saturating_duration_since(sent));
                        self.tally.probe = None;
                    }
                }
            }
            Notification::ProbeFailed(..) => self.tally.counters.suspicions_raised += 1,
            other => self.notes.push(other.to_owned()),
        }
    }

    fn send_to(&mut self, to: MemberId, data: &[u8]) {
        // Every identity foca holds was screened on the way in, so this refuses nothing unless
        // that screening has a hole; it is what keeps the shell from ever dialling an address
        // the segment file does not list.
        if let Err(error) = self.roster.check_address(&to) {
            tracing::warn!(member = %to, %error, "not sending to a member the segment file does not list");
            return;
        }
        self.outputs.push_back(Output::Send { to, payload: wire::encode(Kind::Swim, data) });
    }

    fn submit_after(&mut self, event: foca::Timer<MemberId>, after: Duration) {
        self.outputs.push_back(Output::SetTimer { after, timer: Timer::Swim { generation: self.generation, timer: event } });
    }
}

impl Membership {
    /// A member with identity `id`, allowed to talk to the hosts of `roster`.
    pub fn new(id: MemberId, roster: Roster, config: MembershipConfig, mut rng: StdRng) -> Self {
        let foca = Foca::new(id, config.to_foca(), StdRng::seed_from_u64(rng.next_u64()), PostcardCodec);
        Membership {
            foca,
            roster,
            config,
            outputs: VecDeque::new(),
            notes: Vec::new(),
            since: BTreeMap::new(),
            reintroduced: BTreeMap::new(),
            cursor: None,
            gap_fill: None,
            rng,
            generation: 0,
            refusals: VecDeque::new(),
            refused_total: 0,
            refusal_log: BTreeMap::new(),
            departed: BTreeMap::new(),
            tally: Tally::default(),
            now: None,
            health: health::Health::default(),
        }
    }

    /// What membership counted since the start.
    pub fn counters(&self) -> MembershipCounters {
        let mut counters = self.tally.counters.clone();
        counters.gossip_refused = self.refused_total;
        counters
    }

    /// Our current identity.
    pub fn identity(&self) -> &MemberId {
        self.foca.identity()
    }

    /// The tuning in force.
    pub fn config(&self) -> &MembershipConfig {
        &self.config
    }

    /// The latest member identities cut out of received packets because the segment file does
    /// not list them as given (up to 32, oldest first), and how many were cut out since start.
    pub fn refusals(&self) -> (impl Iterator<Item = &Refusal>, u64) {
        (self.refusals.iter(), self.refused_total)
    }

    /// Number of live peers (not counting ourselves).
    pub fn live_count(&self) -> usize {
        self.foca.num_members()
    }

    /// Every member we know of, ourselves included, ordered by name. A member declared down
    /// stays listed as down until it comes back, even after an isolation starts our SWIM state
    /// afresh (see [`Membership::leave`]).
    pub fn members(&self) -> Vec<MemberView> {
        let mut rows: Vec<MemberView> = self
            .foca
            .iter_membership_state()
            .map(|m| MemberView {
                id: m.id().clone(),
                state: match m.state() {
                    foca::State::Alive => MemberState::Up,
                    foca::State::Suspect => MemberState::Suspect,
                    foca::State::Down => MemberState::Down,
                },
                since: self.since.get(&m.id().name).copied(),
                local: false,
            })
            .collect();
        let me = self.identity().clone();
        rows.retain(|r| r.id.name != me.name);
        for (name, id) in &self.departed {
            if *name != me.name && !rows.iter().any(|r| r.id.name == *name) {
                rows.push(MemberView {
                    id: id.clone(),
                    state: MemberState::Down,
                    since: self.since.get(name).copied(),
                    local: false,
                });
            }
        }
        rows.push(MemberView {
            since: self.since.get(&me.name).copied(),
            id: me,
            state: MemberState::Up,
            local: true,
        });
        rows.sort_by(|a, b| a.id.name.cmp(&b.id.name));
        rows
    }

    /// Starts membership: announces to the next few hosts of the roster (in name order) and
    /// arms the rejoin timer. A cold start of N members thus costs a few announces each, not
    /// N² connections; gossip spreads the rest, and hosts still unheard of get announces of
    /// their own later ([`Timer::Rejoin`]).
    pub fn start(&mut self, now: Instant) {
        self.now = Some(now);
        let me = self.identity().name.clone();
        self.since.insert(me, now);
        self.announce_along_ring(START_ANNOUNCES, false);
        self.gap_fill = Some((now + self.config.rejoin_period, self.config.rejoin_period));
        self.outputs.push_back(Output::SetTimer {
            after: self.config.rejoin_period,
            timer: Timer::Rejoin,
        });
    }

    /// Leaves the cluster gracefully: tells peers we are going. Drain the outputs and send
    /// them before closing the transport. The peers declare us down at once and list us as
    /// down from then on; the last peer of a two-member cluster too, although it is then alone
    /// and starts its SWIM state afresh.
    pub fn leave(&mut self, now: Instant) {
        self.now = Some(now);
        let mut sink = Sink { outputs: &mut self.outputs, notes: &mut self.notes, roster: &self.roster, generation: self.generation, tally: &mut self.tally, now: self.now };
        if let Err(error) = self.foca.leave_cluster(&mut sink) {
            tracing::warn!(%error, "leaving the cluster");
        }
        self.absorb_notes(now);
    }

    /// A datagram arrived from the peer authenticated (by its certificate) as `peer`.
    ///
    /// Refused, with state unchanged, when the envelope is bad, when the packet claims to
    /// come from someone else, when the sender is not in the roster, or when its message names
    /// a member that is not. Membership updates it carries about members the roster does not
    /// list as given are cut out (and logged, naming `peer`); the others are applied.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        peer: &str,
        datagram: &[u8],
    ) -> Result<(), MembershipError> {
        self.now = Some(now);
        let (kind, body) = wire::decode(datagram)?;
        match kind {
            Kind::Swim => {
                let header: foca::Header<MemberId> = PostcardCodec
                    .decode_header(body)
                    .map_err(|e| MembershipError::Swim(e.to_string()))?;
                if header.src.name != peer {
                    return Err(MembershipError::Impostor {
                        authenticated: peer.to_owned(),
                        claimed: header.src.name,
                    });
                }
                self.roster.check(&header.src)?;
                let screened = screen::screen(&self.roster, body)?;
                self.note_refusals(now, peer, screened.refused);
                let body = screened.rewritten.as_deref().unwrap_or(body);
                self.reintroduce(now, &screened.header);
                let mut sink = Sink { outputs: &mut self.outputs, notes: &mut self.notes, roster: &self.roster, generation: self.generation, tally: &mut self.tally, now: self.now };
                let result = self.foca.handle_data(body, &mut sink);
                self.absorb_notes(now);
                result.map_err(|e| MembershipError::Swim(e.to_string()))
            }
            // Operations travel on streams, never as datagrams; DuraVIP datagrams belong to the
            // DuraVIP core, not to membership.
            Kind::Ops | Kind::Duravip | Kind::Config | Kind::Holders => Err(MembershipError::Decode(crate::error::DecodeError::Kind(kind as u8))),
        }
    }

    /// Keeps and logs (rate-limited per relay) the identities cut out of `relay`'s packet.
    fn note_refusals(&mut self, now: Instant, relay: &str, refused: Vec<(MemberId, String)>) {
        for (member, reason) in refused {
            self.refused_total += 1;
            let due = self
                .refusal_log
                .get(relay)
                .is_none_or(|(at, _)| now.saturating_duration_since(*at) >= REFUSAL_LOG_PERIOD);
            if due {
                let unlogged = self.refusal_log.get(relay).map_or(0, |(_, count)| *count);
                tracing::warn!(
                    relay,
                    %member,
                    reason = %reason,
                    unlogged,
                    "dropped gossip about a member the segment file does not list as given"
                );
                self.refusal_log.insert(relay.to_owned(), (now, 0));
            } else if let Some((_, count)) = self.refusal_log.get_mut(relay) {
                *count += 1;
            }
            if self.refusals.len() == REFUSALS_KEPT {
                self.refusals.pop_front();
            }
            self.refusals.push_back(Refusal { relay: relay.to_owned(), member, reason });
        }
    }

    /// A timer set by an earlier [`Output::SetTimer`] fired.
    pub fn handle_timer(&mut self, now: Instant, timer: Timer) {
        self.now = Some(now);
        match timer {
            Timer::Swim { generation, timer: t } => {
                if generation != self.generation {
                    self.absorb_notes(now);
                    return;
                }
                let mut sink = Sink { outputs: &mut self.outputs, notes: &mut self.notes, roster: &self.roster, generation: self.generation, tally: &mut self.tally, now: self.now };
                if let Err(error) = self.foca.handle_timer(t, &mut sink) {
                    tracing::warn!(%error, "swim timer");
                }
            }
            Timer::Rejoin => {
                if self.foca.num_members() == 0 {
                    // Nobody answers: keep knocking, a bounded number of doors per round.
                    self.announce_along_ring(ALONE_ANNOUNCES, false);
                } else if let Some((_, wait)) = self.gap_fill.filter(|(due, _)| now >= *due && self.since.len() < self.roster.len()) {
                    // Some hosts of the roster were never heard of (they started in another
                    // island, or never started): announce to a few, backing off to the
                    // announce period so a host that never comes costs little.
                    self.announce_along_ring(GAP_FILL_ANNOUNCES, true);
                    let next = wait.saturating_mul(2).min(self.config.announce_period.max(self.config.rejoin_period));
                    self.gap_fill = Some((now + next, next));
                }
                self.outputs.push_back(Output::SetTimer {
                    after: self.config.rejoin_period,
                    timer: Timer::Rejoin,
                });
            }
        }
        self.absorb_notes(now);
    }

    /// The next thing the driver must do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// A peer addressed an older identity of ours: foca drops such packets unread, so the
    /// peer would never learn that we renewed (after being declared down across a partition,
    /// say) and would soon declare our old identity down while we are alive. We announce our
    /// current identity to it instead — at most once per probe period per peer — so it
    /// renews us at once and answers with its own view.
    fn reintroduce(&mut self, now: Instant, header: &foca::Header<MemberId>) {
        let me = self.foca.identity();
        let stale = header.dst.name == me.name && header.dst.incarnation < me.incarnation;
        if !stale || header.message == foca::Message::Announce {
            return;
        }
        let recent = self
            .reintroduced
            .get(&header.src.name)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.config.probe_period);
        if recent {
            return;
        }
        self.reintroduced.insert(header.src.name.clone(), now);
        self.announce(header.src.clone());
    }

    /// Announces to up to `count` roster hosts after the last one announced to (after us at
    /// first), only to hosts never heard of if `unknown_only`.
    fn announce_along_ring(&mut self, count: usize, unknown_only: bool) {
        let me = self.foca.identity().name.clone();
        let from = self.cursor.clone().unwrap_or_else(|| me.clone());
        let mut chosen = Vec::with_capacity(count);
        for (name, (addr, subcluster)) in self.roster.ring_after(&from) {
            if chosen.len() == count {
                break;
            }
            if *name == me || (unknown_only && self.since.contains_key(name)) {
                continue;
            }
            chosen.push(MemberId::seed(name, *addr, subcluster));
        }
        if let Some(last) = chosen.last() {
            self.cursor = Some(last.name.clone());
        }
        for seed in chosen {
            self.announce(seed);
        }
    }

    fn announce(&mut self, seed: MemberId) {
        let mut sink = Sink { outputs: &mut self.outputs, notes: &mut self.notes, roster: &self.roster, generation: self.generation, tally: &mut self.tally, now: self.now };
        if let Err(error) = self.foca.announce(seed, &mut sink) {
            tracing::warn!(%error, "announce");
        }
    }

    fn absorb_notes(&mut self, now: Instant) {
        self.health.review(&self.tally.counters, self.config.suspect_to_down_after, &mut self.outputs);
        let mut isolated = false;
        let mut renewed = false;
        for note in std::mem::take(&mut self.notes) {
            let event = match note {
                OwnedNotification::MemberUp(id) => {
                    self.since.insert(id.name.clone(), now);
                    self.departed.remove(&id.name);
                    ClusterEvent::MemberUp(id)
                }
                OwnedNotification::MemberDown(id) => {
                    self.tally.counters.downs += 1;
                    self.since.insert(id.name.clone(), now);
                    self.departed.insert(id.name.clone(), id.clone());
                    ClusterEvent::MemberDown(id)
                }
                OwnedNotification::Rename(from, to) => {
                    self.tally.counters.renewals += 1;
                    self.since.insert(to.name.clone(), now);
                    self.departed.remove(&to.name);
                    ClusterEvent::MemberRenewed { from, to }
                }
                OwnedNotification::Active => ClusterEvent::Joined,
                OwnedNotification::Idle => {
                    self.tally.counters.isolations += 1;
                    isolated = true;
                    ClusterEvent::Isolated
                }
                OwnedNotification::Rejoin(id) => {
                    // Declared down while alive: the renewed identity refutes it.
                    self.tally.counters.false_downs_refuted += 1;
                    self.tally.incarnation = 0;
                    renewed = true;
                    ClusterEvent::Rejoined(id)
                }
                OwnedNotification::Defunct => {
                    // Identities always renew, so foca rejoins by itself; nothing to publish.
                    continue;
                }
                #[allow(unreachable_patterns)]
                _ => continue,
            };
            self.outputs.push_back(Output::Event(event));
        }
        if isolated {
            self.start_afresh();
        } else if renewed {
            self.introduce_renewal();
        }
    }

    /// We were declared down and renewed our identity. foca tells a few members; the others
    /// keep the old identity until news reaches them, and meanwhile take the declaration of
    /// the old one for ours (a false down of a live member). We announce the new identity to
    /// the live members directly — up to [`RENEWAL_ANNOUNCES`], which is all of them in a
    /// cluster of ordinary size.
    fn introduce_renewal(&mut self) {
        let peers: Vec<MemberId> =
            self.foca.iter_members().take(RENEWAL_ANNOUNCES).map(|m| m.id().clone()).collect();
        for peer in peers {
            self.announce(peer);
        }
    }

    /// Every peer was declared down: most likely we are the one cut off. The SWIM state now
    /// holds a down declaration for every member, which it would gossip as soon as we can talk
    /// again, and every member would have to renew its identity to refute it (a cluster-wide
    /// flap caused by one isolated member). Instead we start over with a renewed identity and
    /// a clean state: our old identity is already down everywhere, the new one announces itself
    /// (see [`Timer::Rejoin`]) and is welcomed as a renewal.
    fn start_afresh(&mut self) {
        let Some(renewed) = foca::Identity::renew(self.foca.identity()) else { return };
        let rng = StdRng::seed_from_u64(self.rng.next_u64());
        self.foca = Foca::new(renewed.clone(), self.config.to_foca(), rng, PostcardCodec);
        self.generation = self.generation.wrapping_add(1);
        self.tally.incarnation = 0;
        self.tally.probe = None;
        self.cursor = None;
        self.outputs.push_back(Output::Event(ClusterEvent::Rejoined(renewed)));
    }
}

#[cfg(test)]
mod tests;
