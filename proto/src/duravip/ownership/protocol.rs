//! The inner workings of [`DuraVip`]: the view and the election, the policy conditions
//! (quorum, lease, recent claims), the evaluation that turns them into acquisitions and
//! releases, the sending of claims and notices, and the handling of peers' messages. No I/O here.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::{ClaimRecord, DuraVip, Holding, Override, Vip};
use crate::duravip::message::{DuraVipMessage, Stamp};
use crate::duravip::assign::{assign, Slot, Why};
use crate::duravip::rank::Rank;
use crate::duravip::{DuraVipOutput, DuraVipTimer, NO_TERM, Policy, Term};
use crate::ids::Role;

impl DuraVip {
    // ---- internals: view ----

    pub(super) fn touch(&mut self, now: Instant) {
        self.now = Some(self.now.map_or(now, |t| t.max(now)));
    }

    pub(super) fn view_changed(&mut self, now: Instant) {
        self.reassign();
        self.generation += 1;
        self.settled = false;
        self.view_since = Some(now);
        self.outputs.push_back(DuraVipOutput::SetTimer {
            after: self.config.settle,
            timer: DuraVipTimer::Settle(self.generation),
        });
    }

    pub(super) fn is_live(&self, name: &str) -> bool {
        if name == self.me.name {
            self.me.role == Role::Node
        } else {
            self.view.contains_key(name)
        }
    }

    /// `name` may hold `vip`: listed, and a node if it is this one (peers in the view are nodes).
    pub(super) fn candidate(&self, vip: &Vip, name: &str) -> bool {
        vip.lists(name) && (name != self.me.name || self.me.role == Role::Node)
    }

    pub(super) fn live_candidates<'a>(&'a self, vip: &'a Vip) -> impl Iterator<Item = &'a str> + 'a {
        let me = self.candidate(vip, &self.me.name).then_some(self.me.name.as_str());
        let mut names: Vec<&str> = self
            .view
            .keys()
            .filter(|n| vip.lists(n))
            .map(String::as_str)
            .chain(me)
            .collect();
        names.sort_unstable();
        names.into_iter()
    }

    pub(super) fn other_live_candidates(&self, vip: &Vip) -> Vec<String> {
        self.view.keys().filter(|n| vip.lists(n)).cloned().collect()
    }

    /// The election: the owner the table of the current view gives `vip` (see
    /// [`super::super::assign`]).
    pub(super) fn elect<'a>(&'a self, vip: &'a Vip) -> Option<&'a str> {
        self.table.owners.get(&vip.addr).map(|(owner, _)| owner.as_str())
    }

    /// Recomputes the election table after the view or a move changed.
    pub(super) fn reassign(&mut self) {
        let slots: Vec<Slot<'_>> = self
            .vips
            .values()
            .map(|vip| {
                let eligible: Vec<&str> = self.live_candidates(vip).collect();
                let live = |n: &str| eligible.contains(&n);
                let pinned = match (&vip.moved, &vip.preference) {
                    (Some(o), _) if live(&o.host) => Some((o.host.as_str(), Why::Moved)),
                    (_, Some(p)) if live(p) => Some((p.as_str(), Why::Preferred)),
                    _ => None,
                };
                Slot { addr: vip.addr, pinned, eligible }
            })
            .collect();
        self.table = assign(&slots);
    }

    pub(super) fn my_term(&self, vip: &Vip) -> Term {
        vip.moved
            .as_ref()
            .filter(|o| o.host == self.me.name)
            .map_or(NO_TERM, |o| o.term)
    }

    pub(super) fn my_rank<'a>(&'a self, vip: &'a Vip) -> Rank<'a> {
        Rank::of(vip.addr, &self.me.name, self.my_term(vip), vip.preference.as_deref())
    }

    // ---- internals: policy conditions ----

    /// How recent another node's claim must be to count.
    pub(super) fn window(&self) -> Duration {
        match self.config.policy {
            Policy::Available => self.config.lease,
            Policy::Majority => self.config.claim_silence,
        }
    }

    pub(super) fn active(&self, r: &ClaimRecord, now: Instant) -> bool {
        !r.released && now.saturating_duration_since(r.at) < self.window()
    }

    /// Majority: the view holds a strict majority of the candidates.
    pub(super) fn quorum(&self, vip: &Vip) -> bool {
        match self.config.policy {
            Policy::Available => true,
            Policy::Majority => {
                let all = self.candidate_count(vip);
                all > 0 && self.live_candidates(vip).count() * 2 > all
            }
        }
    }

    /// Majority: acknowledgements of claims sent within `lease`, with this node, are a strict
    /// majority of the candidates.
    pub(super) fn backed(&self, vip: &Vip, now: Instant) -> bool {
        match self.config.policy {
            Policy::Available => true,
            Policy::Majority => {
                let fresh = vip
                    .acks
                    .values()
                    .filter(|&&at| now.saturating_duration_since(at) < self.config.lease);
                let all = self.candidate_count(vip);
                all > 0 && (fresh.count() + 1) * 2 > all
            }
        }
    }

    /// How many nodes may hold `vip`: its list, or every node of the cluster (0 when that number
    /// was never given: no majority can then be counted, and nothing is held).
    pub(super) fn candidate_count(&self, vip: &Vip) -> usize {
        if vip.candidates.is_empty() {
            self.cluster_nodes
        } else {
            vip.candidates.len()
        }
    }

    /// Another node's recent claim holds back an acquisition.
    pub(super) fn contested(&self, vip: &Vip, now: Instant) -> bool {
        vip.claims.values().any(|r| self.active(r, now))
    }

    /// A claim by `claimant` under `term` beats this node's own claim on `vip`: a newer move
    /// term wins; between equal terms, if the claimant is in the view, the view's election
    /// decides (so views that agree hand an address over to the node they elect); otherwise
    /// the fixed rank (preference, score, name) does, which both sides of a healed partition
    /// compute alike before their views merge.
    pub(super) fn beats(&self, vip: &Vip, claimant: &str, term: Term) -> bool {
        let mine = self.my_term(vip);
        if term != mine {
            return term > mine;
        }
        if self.view.contains_key(claimant) {
            match self.elect(vip) {
                Some(e) if e == claimant => return true,
                Some(e) if e == self.me.name => return false,
                _ => {}
            }
        }
        Rank::of(vip.addr, claimant, term, vip.preference.as_deref()) > self.my_rank(vip)
    }

    /// A recent claim beats this node's own.
    pub(super) fn beaten(&self, vip: &Vip, now: Instant) -> bool {
        vip.claims.iter().any(|(n, r)| self.active(r, now) && self.beats(vip, n, r.term))
    }

    /// This node may start holding `vip` now: under the available policy once no recent
    /// claim is left (the old holder released), under the majority policy once a majority
    /// backs its claims.
    pub(super) fn may_hold(&self, vip: &Vip, now: Instant) -> bool {
        match self.config.policy {
            Policy::Available => !self.contested(vip, now),
            Policy::Majority => self.backed(vip, now),
        }
    }

    // ---- internals: evaluation ----

    /// Re-evaluates and sends what that produced; the end of every input.
    pub(super) fn settle_inputs(&mut self, now: Instant) {
        self.evaluate(now);
        self.flush(now);
    }

    pub(super) fn evaluate(&mut self, now: Instant) {
        let addrs: Vec<IpAddr> = self.vips.keys().copied().collect();
        for addr in addrs {
            self.evaluate_one(now, addr);
        }
    }

    /// The rules, per address:
    /// - a holder keeps the address while it has its quorum and lease and no recent claim
    ///   beats its own — also when its view elects another node: it gives the address up when
    ///   that node claims it, so a handover has no gap;
    /// - a node that claims gives up when it is no longer elected or is beaten, and holds once
    ///   it may ([`DuraVip::may_hold`]);
    /// - an elected node that has matured (its view settled once since it started) claims an
    ///   address nobody claims at once — a dead owner's addresses move without waiting for the
    ///   view to settle again — and one that another node still claims only once its view has
    ///   settled (anti-flap), or at once when a move names it.
    pub(super) fn evaluate_one(&mut self, now: Instant, addr: IpAddr) {
        let Some(vip) = self.vips.get(&addr) else { return };
        let elected = self.elect(vip) == Some(self.me.name.as_str());
        let quorum = self.quorum(vip);
        match vip.holding {
            Holding::Held { .. } => {
                if !quorum || !self.backed(vip, now) || self.beaten(vip, now) || !self.candidate(vip, &self.me.name) {
                    self.give_up(addr, None);
                }
            }
            Holding::Acquiring { since } => {
                if !elected || !quorum || self.beaten(vip, now) {
                    self.give_up(addr, None);
                } else if self.may_hold(vip, now) {
                    self.hold(addr, since);
                }
            }
            Holding::Idle => {
                let ready = elected && quorum && self.mature && !self.left && !self.amnesic(now);
                if !ready || self.beaten(vip, now) {
                    return;
                }
                let orphan = !self.contested(vip, now);
                if orphan || self.settled || self.my_term(vip) != NO_TERM {
                    let since = self.seq + 1;
                    if self.may_hold(vip, now) {
                        self.hold(addr, since);
                    } else if let Some(vip) = self.vips.get_mut(&addr) {
                        debug!(%addr, "acquiring: claiming before holding");
                        vip.holding = Holding::Acquiring { since };
                    }
                    self.to_claim.insert(addr);
                }
            }
        }
    }

    pub(super) fn hold(&mut self, addr: IpAddr, since: u64) {
        if let Some(vip) = self.vips.get_mut(&addr) {
            info!(%addr, binding = %vip.name, "acquiring DuraVIP address");
            vip.holding = Holding::Held { since };
            self.counters.acquired += 1;
            self.outputs.push_back(DuraVipOutput::Acquire(addr));
        }
    }

    /// Stops holding or acquiring `addr` and tells its live candidates (and `also`).
    pub(super) fn give_up(&mut self, addr: IpAddr, also: Option<&str>) {
        let Some(vip) = self.vips.get(&addr) else { return };
        let mut tell = self.other_live_candidates(vip);
        tell.extend(also.map(str::to_owned));
        let Some(vip) = self.vips.get_mut(&addr) else { return };
        if matches!(vip.holding, Holding::Held { .. }) {
            info!(%addr, binding = %vip.name, "releasing DuraVIP address");
            self.counters.released += 1;
            self.outputs.push_back(DuraVipOutput::Release(addr));
        }
        vip.holding = Holding::Idle;
        vip.acks.clear();
        for peer in tell {
            self.to_release.entry(peer).or_default().insert(addr);
        }
    }

    pub(super) fn next_stamp(&mut self) -> Stamp {
        self.seq += 1;
        Stamp {
            incarnation: self.me.incarnation,
            seq: self.seq,
        }
    }

    /// Sends the release notices and claims queued by this input.
    pub(super) fn flush(&mut self, now: Instant) {
        if !self.to_release.is_empty() {
            let stamp = self.next_stamp();
            for (to, addrs) in std::mem::take(&mut self.to_release) {
                for payload in DuraVipMessage::released_datagrams(stamp, addrs.into_iter().collect()) {
                    self.outputs.push_back(DuraVipOutput::Send {
                        to: to.clone(),
                        payload,
                    });
                }
            }
        }
        if self.to_claim.is_empty() {
            return;
        }
        let mut per_peer: BTreeMap<String, Vec<(IpAddr, Term)>> = BTreeMap::new();
        for addr in std::mem::take(&mut self.to_claim) {
            let Some(vip) = self.vips.get(&addr) else { continue };
            if vip.holding == Holding::Idle {
                continue;
            }
            let term = self.my_term(vip);
            for peer in self.other_live_candidates(vip) {
                per_peer.entry(peer).or_default().push((addr, term));
            }
        }
        if per_peer.is_empty() {
            return;
        }
        let stamp = self.next_stamp();
        self.sent.insert(stamp.seq, now);
        for (to, claims) in per_peer {
            for payload in DuraVipMessage::claim_datagrams(stamp, claims) {
                self.outputs.push_back(DuraVipOutput::Send {
                    to: to.clone(),
                    payload,
                });
            }
        }
    }

    /// Sends `to` what this node holds and the moves it knows, for the addresses `to` may hold.
    pub(super) fn send_state(&mut self, to: &str) {
        let mut holdings = Vec::new();
        let mut overrides = Vec::new();
        for vip in self.vips.values().filter(|v| v.lists(to)) {
            if matches!(vip.holding, Holding::Held { .. }) {
                holdings.push((vip.addr, self.my_term(vip)));
            }
            if let Some(o) = &vip.moved {
                overrides.push((vip.addr, o.host.clone(), o.term));
            }
        }
        let stamp = Stamp {
            incarnation: self.me.incarnation,
            seq: self.seq,
        };
        for payload in DuraVipMessage::state_datagrams(stamp, holdings, overrides) {
            self.outputs.push_back(DuraVipOutput::Send {
                to: to.to_owned(),
                payload,
            });
        }
    }

    /// Under [`Policy::Available`]: forgets the claims of members out of the view (declared
    /// down) that have also fallen silent — no claim for a beat and a half, where a holder
    /// restates every beat — so their addresses are taken over at once instead of after the
    /// lease. One still claiming (a false down, or the far side of a cut) keeps its claim until
    /// it lapses. Under the majority policy claims keep counting: claim silence is what keeps
    /// leases apart. Returns when the next claim of a member out of the view falls silent, if
    /// one is still recent.
    pub(super) fn drop_silent_claims(&mut self, now: Instant) -> Option<Instant> {
        let silent = self.config.beat.saturating_mul(3) / 2;
        let view = &self.view;
        let mut next: Option<Instant> = None;
        for vip in self.vips.values_mut() {
            vip.claims.retain(|host, r| {
                if view.contains_key(host) {
                    return true;
                }
                let keep = now.saturating_duration_since(r.at) < silent;
                if keep {
                    let at = r.at.checked_add(silent).unwrap_or(r.at);
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
                keep
            });
        }
        next
    }

    pub(super) fn prune(&mut self, now: Instant) {
        let lease = self.config.lease;
        let forget = self.window().saturating_mul(4);
        self.sent.retain(|_, at| now.saturating_duration_since(*at) < lease);
        for vip in self.vips.values_mut() {
            vip.claims.retain(|_, r| now.saturating_duration_since(r.at) < forget);
            vip.acks.retain(|_, at| now.saturating_duration_since(*at) < lease);
        }
        if self.config.policy == Policy::Available {
            // A missed silence (a claim heard after the down) is caught here, a beat late.
            self.drop_silent_claims(now);
        }
    }

    // ---- internals: messages ----

    /// Claims (or, from a `State`, holdings) of `from`: record them, adopt a newer move they
    /// reveal, give up what they outrank, and under the majority policy acknowledge those this
    /// node may back.
    pub(super) fn on_claims(&mut self, now: Instant, from: &str, stamp: Stamp, claims: Vec<(IpAddr, Term)>, ack: bool) {
        let mut backing = Vec::new();
        for (addr, term) in claims {
            let Some(vip) = self.vips.get_mut(&addr) else {
                debug!(%addr, peer = %from, "ignoring a claim for an address we do not manage");
                continue;
            };
            if !vip.lists(from) {
                debug!(%addr, peer = %from, "ignoring a claim from a node that is not a candidate");
                continue;
            }
            let newer = vip
                .claims
                .get(from)
                .is_none_or(|r| stamp > r.stamp || (stamp == r.stamp && !r.released));
            if !newer {
                continue;
            }
            vip.claims.insert(
                from.to_owned(),
                ClaimRecord {
                    stamp,
                    at: now,
                    term,
                    released: false,
                },
            );
            self.adopt(addr, from, term);
            let Some(vip) = self.vips.get(&addr) else { continue };
            if vip.holding != Holding::Idle && self.beats(vip, from, term) {
                info!(%addr, peer = %from, "another node's claim beats ours");
                self.give_up(addr, Some(from));
            }
            if ack && self.config.policy == Policy::Majority && self.may_back(addr, from, now) {
                if let Some(vip) = self.vips.get_mut(&addr) {
                    vip.backing = Some((from.to_owned(), now));
                }
                backing.push(addr);
            }
        }
        if !backing.is_empty() {
            for payload in DuraVipMessage::ack_datagrams(stamp, backing) {
                self.outputs.push_back(DuraVipOutput::Send {
                    to: from.to_owned(),
                    payload,
                });
            }
        }
    }

    /// This node may back `from`'s claim on `addr`: it neither holds nor acquires the address,
    /// it is past its start-up amnesia, and either it already backs `from` or no other node's
    /// claim for it is recent. One backing at a time is what keeps two majority leases from
    /// overlapping; staying with the claimant already backed keeps a stray claim from a node
    /// with a stale view from starving the holder.
    pub(super) fn may_back(&self, addr: IpAddr, from: &str, now: Instant) -> bool {
        if self.amnesic(now) {
            return false;
        }
        self.vips.get(&addr).is_some_and(|vip| {
            let backs_from = vip
                .backing
                .as_ref()
                .is_some_and(|(n, at)| n == from && now.saturating_duration_since(*at) < self.window());
            vip.holding == Holding::Idle
                && (backs_from || !vip.claims.iter().any(|(n, r)| n != from && self.active(r, now)))
        })
    }

    /// Majority, just after a start: too early to back or acquire anything.
    pub(super) fn amnesic(&self, now: Instant) -> bool {
        self.amnesia_until.is_some_and(|until| now < until)
    }

    pub(super) fn on_ack(&mut self, from: &str, stamp: Stamp, addrs: Vec<IpAddr>) {
        if self.config.policy != Policy::Majority || stamp.incarnation != self.me.incarnation {
            return;
        }
        let Some(&sent_at) = self.sent.get(&stamp.seq) else {
            debug!(peer = %from, seq = stamp.seq, "ignoring an acknowledgement of a claim too old to count");
            return;
        };
        for addr in addrs {
            let Some(vip) = self.vips.get_mut(&addr) else { continue };
            let since = match vip.holding {
                Holding::Acquiring { since } | Holding::Held { since } => since,
                Holding::Idle => continue,
            };
            if stamp.seq >= since && vip.lists(from) {
                let at = vip.acks.entry(from.to_owned()).or_insert(sent_at);
                *at = (*at).max(sent_at);
            }
        }
    }

    pub(super) fn on_released(&mut self, now: Instant, from: &str, stamp: Stamp, addrs: Vec<IpAddr>) {
        for addr in addrs {
            let Some(vip) = self.vips.get_mut(&addr) else { continue };
            if !vip.lists(from) || vip.claims.get(from).is_some_and(|r| r.stamp > stamp) {
                continue;
            }
            // This node holds the address and another node gives it up: that node held or
            // claimed it too (the far side of a healed cut, or a claimant that lost).
            let conflicted = matches!(vip.holding, Holding::Held { .. });
            vip.claims.insert(
                from.to_owned(),
                ClaimRecord {
                    stamp,
                    at: now,
                    term: NO_TERM,
                    released: true,
                },
            );
            if conflicted {
                self.counters.conflicts += 1;
                // Its announcements may have drawn the neighbours' traffic to it: this node
                // announces the address again.
                info!(%addr, peer = %from, "a conflicting holder released; announcing again");
                self.outputs.push_back(DuraVipOutput::Announce(addr));
            }
        }
    }

    /// Adopts the move (`addr` → `host` at `term`) if it is newer than any this node knows
    /// and `host` is a live candidate (an override whose host is down is dropped, so one
    /// learnt about a host that is down is not taken up).
    pub(super) fn adopt(&mut self, addr: IpAddr, host: &str, term: Term) {
        if term == NO_TERM || !self.is_live(host) {
            return;
        }
        let Some(vip) = self.vips.get(&addr) else { return };
        if !self.candidate(vip, host) || term < vip.newest_term || vip.moved.as_ref().is_some_and(|o| o.term >= term) {
            return;
        }
        if let Some(vip) = self.vips.get_mut(&addr) {
            info!(%addr, %host, term = ?term, "adopting a move learnt from a peer");
            vip.moved = Some(Override {
                host: host.to_owned(),
                term,
            });
            vip.newest_term = term;
        }
        self.reassign();
    }
}
