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

pub mod codec;
mod config;
mod health;
mod roster;
mod screen;
mod view;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use foca::{Foca, NoCustomBroadcast, Notification, OwnedNotification};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use self::codec::FixedCodec;
pub use self::config::MembershipConfig;
pub use self::roster::{Host, Roster};
pub use self::screen::Refusal;
pub use self::view::{MemberState, MemberView};
use crate::error::MembershipError;
use crate::ids::{MemberId, SwimId};
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
        timer: foca::Timer<SwimId>,
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
    /// Send `payload` as one datagram to host `to` at `addr`.
    Send {
        /// The destination's name (shared with the roster: no allocation per packet).
        to: Arc<str>,
        /// Its QUIC address.
        addr: SocketAddr,
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
    /// Publish a cluster event. Boxed: an event with two identities is 192 bytes, the other
    /// outputs under 90, and every output is moved through a queue or two per packet.
    Event(Box<ClusterEvent>),
}

/// The SWIM membership state machine of one member.
pub struct Membership {
    foca: Foca<SwimId, FixedCodec, StdRng, NoCustomBroadcast>,
    roster: Roster,
    config: MembershipConfig,
    /// Our identity in full, in step with foca's (which renews it).
    me: MemberId,
    /// Our host number in the roster.
    my_number: Option<u32>,
    outputs: VecDeque<Output>,
    notes: Vec<OwnedNotification<SwimId>>,
    /// Per host number, one bit: have we heard of it (grown on demand).
    heard: Vec<u64>,
    /// How many bits of `heard` are set.
    heard_count: usize,
    /// By host number: when its state last changed in our view. A member known from a seeded
    /// start and unchanged since has no entry (its time is `started`): a simulator's large
    /// cluster would otherwise hold N² of them.
    since: BTreeMap<u32, Instant>,
    /// When we started.
    started: Option<Instant>,
    /// True while a seeded start applies its members.
    seeding: bool,
    /// When we last answered a peer that spoke to an old identity of ours (by host number).
    reintroduced: BTreeMap<u32, Instant>,
    /// The roster host last announced to; announces walk the ring from here.
    cursor: Option<u32>,
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
    /// Members declared down (crashed, cut off or left), by host number, with the incarnation
    /// declared down, until they come back. foca holds the same knowledge, but a fresh SWIM
    /// state after an isolation holds none — and when the only peer of a two-member cluster
    /// leaves, that is exactly what follows — so the member table reads the down members from
    /// here too.
    departed: BTreeMap<u32, u64>,
    /// Per relay: when a refusal was last logged, and how many were not logged since.
    refusal_log: BTreeMap<String, (Instant, u64)>,
    /// Counters for [`Membership::counters`].
    tally: Tally,
    /// The latest time passed in (foca's callbacks carry none).
    now: Option<Instant>,
    /// Datagrams are written into this and split off it: one allocation per several packets.
    send_buf: BytesMut,
    /// Our own health, which stretches the suspicions we raise (see `health.rs`).
    health: health::Health,
    /// foca's gossip timer, held back while foca has no update to gossip (see
    /// [`Membership::pace_gossip`]).
    parked_gossip: Option<(Timer, Instant)>,
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
/// Capacity an emptied output queue keeps.
const QUEUE_KEPT: usize = 64;
/// Refusals of forged gossip kept for [`Membership::refusals`].
const REFUSALS_KEPT: usize = 32;
/// A relay of forged gossip is logged at most once per this period (with a count of the
/// refusals not logged since), so a hostile peer cannot flood the log.
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(10);

/// Bytes a datagram buffer is allocated by: the datagrams split off one allocation share it
/// until the last of them is dropped, so it stays small (a simulator holds one per member).
const SEND_CHUNK: usize = 4 * wire::MAX_DATAGRAM;

/// How long from `now` until the next round of a timer that was due at `due` and repeats
/// every `period`: the rounds it missed are skipped, its phase is kept.
fn next_round(due: Instant, now: Instant, period: Duration) -> Duration {
    if due >= now || period.is_zero() {
        return due.saturating_duration_since(now);
    }
    let late = now.duration_since(due).as_nanos() % period.as_nanos();
    if late == 0 {
        Duration::ZERO
    } else {
        // late < period, so the difference fits in a Duration.
        period.saturating_sub(Duration::from_nanos(u64::try_from(late).unwrap_or(u64::MAX)))
    }
}

/// foca's runtime: buffers everything foca asks for.
struct Sink<'a> {
    outputs: &'a mut VecDeque<Output>,
    notes: &'a mut Vec<OwnedNotification<SwimId>>,
    /// Sends go only to roster hosts at their roster address.
    roster: &'a Roster,
    generation: u32,
    tally: &'a mut Tally,
    now: Option<Instant>,
    send_buf: &'a mut BytesMut,
}

impl foca::Runtime<SwimId> for Sink<'_> {
    fn notify(&mut self, notification: Notification<'_, SwimId>) {
        // The per-packet notifications are counted here, from borrowed headers; only the
        // membership changes are kept.
        match notification {
            Notification::DataSent(header) => {
                if let (foca::Message::Ping(number), Some(now)) = (&header.message, self.now) {
                    tracing::trace!(member = %header.dst, "probe sent");
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
            Notification::ProbeFailed(_, member) => {
                tracing::debug!(%member, "probe failed: no ack, direct or indirect");
                self.tally.counters.suspicions_raised += 1;
            }
            other => self.notes.push(other.to_owned()),
        }
    }

    fn send_to(&mut self, to: SwimId, data: &[u8]) {
        // Every identity foca holds was screened on the way in, so this refuses nothing unless
        // that screening has a hole; it is what keeps the shell from ever dialling an address
        // the segment file does not list.
        let Some(host) = self.roster.host_of(&to) else {
            tracing::warn!(member = %to, "not sending to a member the segment file does not list");
            return;
        };
        if self.send_buf.capacity() < wire::HEADER_LEN + data.len() {
            *self.send_buf = BytesMut::with_capacity(SEND_CHUNK.max(wire::HEADER_LEN + data.len()));
        }
        let payload = wire::encode_into(self.send_buf, Kind::Swim, data);
        self.outputs.push_back(Output::Send { to: Arc::clone(&host.name), addr: host.addr, payload });
    }

    fn submit_after(&mut self, event: foca::Timer<SwimId>, after: Duration) {
        self.outputs.push_back(Output::SetTimer { after, timer: Timer::Swim { generation: self.generation, timer: event } });
    }
}

/// Builds the runtime foca calls back into, borrowing the fields it needs.
macro_rules! sink {
    ($self:ident) => {
        Sink {
            outputs: &mut $self.outputs,
            notes: &mut $self.notes,
            roster: &$self.roster,
            generation: $self.generation,
            tally: &mut $self.tally,
            now: $self.now,
            send_buf: &mut $self.send_buf,
        }
    };
}

impl Membership {
    /// A member with identity `id`, allowed to talk to the hosts of `roster`.
    pub fn new(id: MemberId, roster: Roster, config: MembershipConfig, mut rng: StdRng) -> Self {
        let foca = Foca::new(SwimId::of(&id), config.to_foca(), StdRng::seed_from_u64(rng.next_u64()), FixedCodec);
        Membership {
            foca,
            my_number: roster.number_of(&id.name),
            me: id,
            roster,
            config,
            outputs: VecDeque::new(),
            notes: Vec::new(),
            heard: Vec::new(),
            heard_count: 0,
            since: BTreeMap::new(),
            started: None,
            seeding: false,
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
            send_buf: BytesMut::new(),
            health: health::Health::default(),
            parked_gossip: None,
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
        &self.me
    }

    /// The tuning in force.
    pub fn config(&self) -> &MembershipConfig {
        &self.config
    }

    /// The roster this member checks peers against.
    pub fn roster(&self) -> &Roster {
        &self.roster
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

    fn has_heard(&self, number: u32) -> bool {
        self.heard.get(number as usize / 64).is_some_and(|word| word & (1 << (number % 64)) != 0)
    }

    fn since_of(&self, number: Option<u32>) -> Option<Instant> {
        let n = number?;
        self.since.get(&n).copied().or_else(|| self.has_heard(n).then_some(self.started).flatten())
    }

    /// Host `number` was heard of, and its state changed now (unless a seeded start is
    /// applying it).
    fn mark(&mut self, number: Option<u32>, now: Instant) {
        let Some(n) = number else { return };
        let word = n as usize / 64;
        if self.heard.len() <= word {
            self.heard.resize(word + 1, 0);
        }
        if let Some(bits) = self.heard.get_mut(word) {
            if *bits & (1 << (n % 64)) == 0 {
                *bits |= 1 << (n % 64);
                self.heard_count += 1;
            }
        }
        if !self.seeding {
            self.since.insert(n, now);
        }
    }

    /// Every member we know of, ourselves included, ordered by name. A member declared down
    /// stays listed as down until it comes back, even after an isolation starts our SWIM state
    /// afresh (see [`Membership::leave`]).
    pub fn members(&self) -> Vec<MemberView> {
        let mut rows: Vec<(u32, MemberView)> = Vec::with_capacity(self.foca.iter_membership_state().len() + 1);
        for m in self.foca.iter_membership_state() {
            let Some(number) = self.roster.number_of_key(m.id().key) else { continue };
            if Some(number) == self.my_number {
                continue;
            }
            let Some(id) = self.roster.member(m.id()) else { continue };
            let state = match m.state() {
                foca::State::Alive => MemberState::Up,
                foca::State::Suspect => MemberState::Suspect,
                foca::State::Down => MemberState::Down,
            };
            rows.push((number, MemberView { id, state, since: self.since_of(Some(number)), local: false }));
        }
        for (&number, &incarnation) in &self.departed {
            if Some(number) == self.my_number || rows.iter().any(|(n, _)| *n == number) {
                continue;
            }
            let Some(host) = self.roster.host(number) else { continue };
            let Some(id) = self.roster.member(&SwimId { key: host.key, incarnation }) else { continue };
            rows.push((number, MemberView { id, state: MemberState::Down, since: self.since_of(Some(number)), local: false }));
        }
        let mut rows: Vec<MemberView> = rows.into_iter().map(|(_, row)| row).collect();
        rows.push(MemberView { since: self.since_of(self.my_number), id: self.me.clone(), state: MemberState::Up, local: true });
        rows.sort_by(|a, b| a.id.name.cmp(&b.id.name));
        rows
    }

    /// Starts membership: announces to the next few hosts of the roster (in name order) and
    /// arms the rejoin timer. A cold start of N members thus costs a few announces each, not
    /// N² connections; gossip spreads the rest, and hosts still unheard of get announces of
    /// their own later ([`Timer::Rejoin`]).
    pub fn start(&mut self, now: Instant) {
        self.now = Some(now);
        self.started = Some(now);
        self.mark(self.my_number, now);
        self.announce_along_ring(START_ANNOUNCES, false);
        self.arm_rejoin(now);
    }

    fn arm_rejoin(&mut self, now: Instant) {
        self.gap_fill = Some((now + self.config.rejoin_period, self.config.rejoin_period));
        self.outputs.push_back(Output::SetTimer { after: self.config.rejoin_period, timer: Timer::Rejoin });
    }

    /// Starts membership from a state the cluster reaches once formed: every member in
    /// `members` (identities the roster lists; ourselves and unlisted ones are skipped) known
    /// and alive, without a message sent. Only a simulator uses this, to run a large cluster
    /// without first spending simulated hours forming it by gossip (every member learning
    /// every other, each learning a scan of foca's member list); probing, suspicion and the
    /// rest then run as from any other state. Each member becomes known through the same
    /// [`ClusterEvent::MemberUp`] a cold start publishes.
    pub fn start_seeded(&mut self, now: Instant, members: impl IntoIterator<Item = SwimId>) {
        self.now = Some(now);
        self.started = Some(now);
        self.mark(self.my_number, now);
        let me = self.foca.identity().key;
        let updates = members
            .into_iter()
            .filter(|id| id.key != me && self.roster.host_of(id).is_some())
            .map(|id| foca::Member::new(id, 0, foca::State::Alive));
        let updates: Vec<_> = updates.collect();
        let mut sink = sink!(self);
        if let Err(error) = self.foca.apply_many(updates.into_iter(), false, &mut sink) {
            tracing::warn!(%error, "seeding the member table");
        }
        self.seeding = true;
        self.absorb_notes(now);
        self.seeding = false;
        self.arm_rejoin(now);
    }

    /// Leaves the cluster gracefully: tells peers we are going. Drain the outputs and send
    /// them before closing the transport. The peers declare us down at once and list us as
    /// down from then on; the last peer of a two-member cluster too, although it is then alone
    /// and starts its SWIM state afresh.
    pub fn leave(&mut self, now: Instant) {
        self.now = Some(now);
        let mut sink = sink!(self);
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
    /// list are cut out (and logged, naming `peer`); the others are applied.
    pub fn handle_datagram(&mut self, now: Instant, peer: &str, datagram: &[u8]) -> Result<(), MembershipError> {
        self.now = Some(now);
        let (kind, body) = wire::decode(datagram)?;
        match kind {
            Kind::Swim => {
                let screened = screen::screen(&self.roster, peer, body)?;
                if !screened.refused.is_empty() {
                    self.note_refusals(now, peer, screened.refused);
                }
                let body = screened.rewritten.as_deref().unwrap_or(body);
                self.reintroduce(now, &screened.header);
                let mut sink = sink!(self);
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
    fn note_refusals(&mut self, now: Instant, relay: &str, refused: Vec<(SwimId, String)>) {
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
                    "dropped gossip about a member the segment file does not list"
                );
                self.refusal_log.insert(relay.to_owned(), (now, 0));
            } else if let Some((_, count)) = self.refusal_log.get_mut(relay) {
                *count += 1;
            }
            if self.refusals.len() == REFUSALS_KEPT {
                self.refusals.pop_front();
            }
            self.refusals.push_back(Refusal { relay: relay.to_owned(), member: self.roster.member_or_key(&member), reason });
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
                let mut sink = sink!(self);
                if let Err(error) = self.foca.handle_timer(t, &mut sink) {
                    tracing::warn!(%error, "swim timer");
                }
            }
            Timer::Rejoin => {
                if self.foca.num_members() == 0 {
                    // Nobody answers: keep knocking, a bounded number of doors per round.
                    self.announce_along_ring(ALONE_ANNOUNCES, false);
                } else if let Some((_, wait)) = self.gap_fill.filter(|(due, _)| now >= *due && self.heard_count < self.roster.len()) {
                    // Some hosts of the roster were never heard of (they started in another
                    // island, or never started): announce to a few, backing off to the
                    // announce period so a host that never comes costs little.
                    self.announce_along_ring(GAP_FILL_ANNOUNCES, true);
                    let next = wait.saturating_mul(2).min(self.config.announce_period.max(self.config.rejoin_period));
                    self.gap_fill = Some((now + next, next));
                }
                self.outputs.push_back(Output::SetTimer { after: self.config.rejoin_period, timer: Timer::Rejoin });
            }
        }
        self.absorb_notes(now);
    }

    /// The next thing the driver must do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        let next = self.outputs.pop_front();
        if next.is_none() && self.outputs.capacity() > QUEUE_KEPT {
            // A burst (a seeded start's events, a renewal's announces) does not keep its
            // memory: a simulator holds one queue per member.
            self.outputs.shrink_to(QUEUE_KEPT);
        }
        next
    }

    /// A peer addressed an older identity of ours: foca drops such packets unread, so the
    /// peer would never learn that we renewed (after being declared down across a partition,
    /// say) and would soon declare our old identity down while we are alive. We announce our
    /// current identity to it instead — at most once per probe period per peer — so it
    /// renews us at once and answers with its own view.
    fn reintroduce(&mut self, now: Instant, header: &foca::Header<SwimId>) {
        let me = self.foca.identity();
        let stale = header.dst.key == me.key && header.dst.incarnation < me.incarnation;
        if !stale || header.message == foca::Message::Announce {
            return;
        }
        let Some(peer) = self.roster.number_of_key(header.src.key) else { return };
        let recent = self
            .reintroduced
            .get(&peer)
            .is_some_and(|at| now.saturating_duration_since(*at) < self.config.probe_period);
        if recent {
            return;
        }
        self.reintroduced.insert(peer, now);
        self.announce(header.src);
    }

    /// Announces to up to `count` roster hosts after the last one announced to (after us at
    /// first), only to hosts never heard of if `unknown_only`.
    fn announce_along_ring(&mut self, count: usize, unknown_only: bool) {
        let n = self.roster.len();
        let Ok(n32) = u32::try_from(n) else { return };
        if n32 == 0 {
            return;
        }
        let from = self.cursor.or(self.my_number).unwrap_or(n32 - 1);
        let mut chosen = Vec::with_capacity(count.min(n));
        for step in 1..=n32 {
            if chosen.len() == count {
                break;
            }
            let number = (from % n32 + step) % n32;
            if Some(number) == self.my_number || (unknown_only && self.has_heard(number)) {
                continue;
            }
            if let Some(host) = self.roster.host(number) {
                chosen.push((number, SwimId { key: host.key, incarnation: 0 }));
            }
        }
        if let Some((last, _)) = chosen.last() {
            self.cursor = Some(*last);
        }
        for (_, seed) in chosen {
            self.announce(seed);
        }
    }

    fn announce(&mut self, seed: SwimId) {
        let mut sink = sink!(self);
        if let Err(error) = self.foca.announce(seed, &mut sink) {
            tracing::warn!(%error, "announce");
        }
    }

    /// foca re-arms its gossip timer every gossip period, and at each round gossips only if it
    /// has updates to send; in a quiet cluster that is ten wake-ups a second for nothing on
    /// every member (and, in a simulator, most of its events). So while foca has no update the
    /// timer is held back, with the time it was due, and the first update to arrive sets it
    /// for the round the running timer would have reached next: gossip goes out exactly when
    /// it would have without the pause. Exactly one gossip timer is ever out.
    fn pace_gossip(&mut self, now: Instant) {
        let armed = self.outputs.iter().position(|o| {
            matches!(o, Output::SetTimer { timer: Timer::Swim { timer: foca::Timer::PeriodicGossip(_), .. }, .. })
        });
        if self.foca.updates_backlog() == 0 {
            // (A period too long to add to the clock leaves the timer running.)
            let due = armed.and_then(|i| match &self.outputs[i] {
                Output::SetTimer { after, .. } => now.checked_add(*after).map(|due| (i, due)),
                _ => None,
            });
            if let Some((i, due)) = due {
                if let Some(Output::SetTimer { timer, .. }) = self.outputs.remove(i) {
                    self.parked_gossip = Some((timer, due));
                }
            }
        } else if armed.is_some() {
            // foca started a timer of its own (on connecting): that one runs.
            self.parked_gossip = None;
        } else if let Some((timer, due)) = self.parked_gossip.take() {
            let after = next_round(due, now, self.config.gossip_period);
            self.outputs.push_back(Output::SetTimer { after, timer });
        }
    }

    fn absorb_notes(&mut self, now: Instant) {
        self.health.review(&self.tally.counters, self.config.suspect_to_down_after, &mut self.outputs);
        self.pace_gossip(now);
        let mut isolated = false;
        let mut renewed = false;
        for note in std::mem::take(&mut self.notes) {
            let event = match note {
                OwnedNotification::MemberUp(id) => {
                    let number = self.roster.number_of_key(id.key);
                    self.mark(number, now);
                    if let Some(n) = number {
                        self.departed.remove(&n);
                    }
                    ClusterEvent::MemberUp(self.roster.member_or_key(&id))
                }
                OwnedNotification::MemberDown(id) => {
                    self.tally.counters.downs += 1;
                    let number = self.roster.number_of_key(id.key);
                    self.mark(number, now);
                    if let Some(n) = number {
                        self.departed.insert(n, id.incarnation);
                    }
                    ClusterEvent::MemberDown(self.roster.member_or_key(&id))
                }
                OwnedNotification::Rename(from, to) => {
                    self.tally.counters.renewals += 1;
                    let number = self.roster.number_of_key(to.key);
                    self.mark(number, now);
                    if let Some(n) = number {
                        self.departed.remove(&n);
                    }
                    ClusterEvent::MemberRenewed { from: self.roster.member_or_key(&from), to: self.roster.member_or_key(&to) }
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
                    self.me.incarnation = id.incarnation;
                    renewed = true;
                    ClusterEvent::Rejoined(self.me.clone())
                }
                OwnedNotification::Defunct => {
                    // Identities always renew, so foca rejoins by itself; nothing to publish.
                    continue;
                }
                #[allow(unreachable_patterns)]
                _ => continue,
            };
            self.outputs.push_back(Output::Event(Box::new(event)));
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
        let peers: Vec<SwimId> = self.foca.iter_members().take(RENEWAL_ANNOUNCES).map(|m| *m.id()).collect();
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
        self.foca = Foca::new(renewed, self.config.to_foca(), rng, FixedCodec);
        self.generation = self.generation.wrapping_add(1);
        self.parked_gossip = None;
        self.tally.incarnation = 0;
        self.tally.probe = None;
        self.cursor = None;
        self.me.incarnation = renewed.incarnation;
        self.outputs.push_back(Output::Event(Box::new(ClusterEvent::Rejoined(self.me.clone()))));
    }
}

#[cfg(test)]
mod tests;
