//! DuraVIP: which node holds each virtual service address. Every node runs one [`DuraVip`]
//! core; the cores agree on an owner per address from the membership view alone, move
//! addresses when their owner dies, comes back or is told to move by an ordered operation, and
//! resolve the conflicts a partition leaves behind. No I/O here: adding or removing an
//! address is an output ([`DuraVipOutput::Acquire`] / [`DuraVipOutput::Release`]) the driver
//! performs.
//!
//! # Election
//!
//! The desired owner of an address, given a node's view (itself plus the nodes reported up),
//! is, among the address's live candidates: the host of a `duravip move` override, else the
//! binding's preferred node, else the candidate with the highest [`rendezvous_score`]. Every
//! node computes the same answer from the same view, without a coordinator; when an owner dies
//! only its own addresses move, and when it returns they go back to it.
//!
//! # Claims, conflicts and partitions
//!
//! A holder restates its holdings every beat in a `Claim` to the address's other live
//! candidates. A node does not start to hold an address while another node's claim for it is
//! recent (within `lease` under [`Policy::Available`], `claim_silence` under
//! [`Policy::Majority`]); a holder that hears a claim ranking above its own releases at once.
//! Rank is: override term, then preference, then rendezvous score, then name — the same order
//! as the election, so after a partition heals the node the merged view elects keeps the
//! address and the other releases within a beat.
//!
//! Under [`Policy::Majority`] a node also needs its view to hold a strict majority of the
//! address's candidates, and holds only under a lease: a claimant counts the candidates that
//! acknowledged one of its claims sent within the last `lease`, and holds while those and itself
//! are a strict majority. A node acknowledges a claim only while no other claim for the address
//! is recent and it neither holds nor acquires the address itself, so two leases can never
//! overlap: any two majorities share a node, and that node acknowledged at most one of them.
//! Because `claim_silence > lease + beat`, an old holder cut off on the minority side has let
//! its lease lapse (checked at every beat) before anyone on the majority side may acquire.
//! This assumes the nodes' clocks run at about the same rate over a few seconds; it does not
//! assume they agree on the time.

mod assign;
mod message;
mod ownership;
mod rank;
mod report;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;

pub use self::message::{DuraVipMessage, Stamp};
pub use self::ownership::DuraVip;
pub use self::rank::rendezvous_score;
pub use self::assign::Why;
pub use self::report::{
    term_text, Announced, CandidateRow, ClaimHeard, HoldingState, MoveRecord, Moved, VipExplanation, VipState, VipTable,
};
use crate::error::DuraVipError;

/// The term of a `duravip move`: the ordered operation's id as `(manager epoch, sequence)`.
/// `(0, 0)` means "no move": a holder that holds by election alone claims with it.
pub type Term = (u64, u64);

/// The term of a holding that no `duravip move` decided.
pub const NO_TERM: Term = (0, 0);

/// What a partition does to addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Each side of a partition keeps every address alive (the Momentum behaviour); when the
    /// partition heals, one of the two holders releases.
    #[default]
    Available,
    /// Only a side whose view holds a strict majority of an address's candidates may hold it,
    /// under a lease acknowledged by such a majority; there are never two holders at once,
    /// even across a partition.
    Majority,
}

/// A virtual address and who may hold it, from the node configuration (`Binding` scopes with
/// `Enable_Duravip`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The binding's name (`"duravip-1"` in `Binding "duravip-1" { }`).
    pub name: String,
    /// The address (`Bind_Address`).
    pub addr: IpAddr,
    /// Names of the nodes allowed to hold it; empty means every node (role `node`). Under
    /// [`Policy::Majority`] an empty list counts every node of the cluster (their number is given
    /// by [`DuraVip::with_cluster_nodes`]; without it the core never holds such an address).
    pub candidates: Vec<String>,
    /// `Duravip_Preference`: the node favoured whenever it is alive.
    pub preference: Option<String>,
}

/// Tuning of DuraVIP ownership. Every node of a cluster must use the same values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuraVipConfig {
    /// What a partition does to addresses.
    pub policy: Policy,
    /// A node acquires only once its view has been unchanged this long (anti-flap, like
    /// Momentum's `view_mature_time` and `if_down_limit`).
    pub settle: Duration,
    /// How often a holder restates its claims (and, under [`Policy::Majority`], checks its lease).
    pub beat: Duration,
    /// How recent an acknowledgement must be to keep a majority lease; under
    /// [`Policy::Available`], how recent another node's claim must be to hold back an acquisition.
    pub lease: Duration,
    /// Under [`Policy::Majority`], how long after another node's last claim for an address a
    /// node waits before it may acquire that address. Must exceed `lease + beat`.
    pub claim_silence: Duration,
}

impl Default for DuraVipConfig {
    fn default() -> Self {
        DuraVipConfig {
            policy: Policy::Available,
            settle: Duration::from_secs(2),
            beat: Duration::from_secs(1),
            lease: Duration::from_secs(3),
            claim_silence: Duration::from_secs(5),
        }
    }
}

impl DuraVipConfig {
    /// Checks the timing relations the protocol relies on; the error names the field.
    pub fn validate(&self) -> Result<(), DuraVipError> {
        if self.beat.is_zero() {
            return Err(DuraVipError::Config("duravip.beat must be greater than 0".to_owned()));
        }
        if self.lease <= self.beat {
            return Err(DuraVipError::Config(format!(
                "duravip.lease ({:?}) must be greater than duravip.beat ({:?})",
                self.lease, self.beat
            )));
        }
        // Clocks run at slightly different rates and timers fire a little late: the margin
        // (a twentieth of lease + beat, at least 100 ms) covers that.
        let floor = self.lease.saturating_add(self.beat);
        let margin = (floor / 20).max(Duration::from_millis(100));
        if self.claim_silence < floor.saturating_add(margin) {
            return Err(DuraVipError::Config(format!(
                "duravip.claim_silence ({:?}) must be at least lease + beat plus a margin for clock drift ({:?})",
                self.claim_silence,
                floor.saturating_add(margin)
            )));
        }
        let day = Duration::from_secs(86_400);
        if self.settle > day || self.claim_silence > day {
            return Err(DuraVipError::Config("duravip timings must be under a day".to_owned()));
        }
        Ok(())
    }
}

/// Timers of the DuraVIP core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuraVipTimer {
    /// The view of this generation has been unchanged for `settle`, if it is still current.
    Settle(u64),
    /// Restate claims, check leases, re-evaluate; re-armed every `beat`.
    Beat,
    /// Under [`Policy::Available`], the claim of a member declared down falls silent: drop it
    /// and re-evaluate (see [`DuraVip::handle_member_down`]).
    Silence,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DuraVipOutput {
    /// Send `payload` (a [`crate::wire::Kind::Duravip`] envelope of at most
    /// [`crate::wire::MAX_DATAGRAM`] bytes) to the member named `to`, as a datagram.
    Send {
        /// Member name.
        to: String,
        /// The datagram.
        payload: Bytes,
    },
    /// Call `handle_timer(timer)` after `after`.
    SetTimer {
        /// Delay.
        after: Duration,
        /// Timer.
        timer: DuraVipTimer,
    },
    /// Configure this address on this node (and announce it: gratuitous ARP / unsolicited
    /// neighbour advertisement).
    Acquire(IpAddr),
    /// Remove this address from this node.
    Release(IpAddr),
    /// This node holds the address and another holder just gave it up: announce it again
    /// (gratuitous ARP / unsolicited neighbour advertisement) so traffic comes back here.
    Announce(IpAddr),
}
