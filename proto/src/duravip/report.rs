//! What the DuraVIP core tells an operator, as data: the state table behind `cluster duravip
//! show` / `show tables`, the outcome of a move or an announce. The shells render it as text,
//! XML or JSON; nothing here formats console text. No I/O here.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{Policy, Term, NO_TERM};

/// The text of a term as operators see operation ids: `epoch.seq`.
pub fn term_text(term: Term) -> String {
    format!("{}.{}", term.0, term.1)
}

/// Where this node stands with one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldingState {
    /// It holds the address (the actuator was told to configure it).
    Held,
    /// It claims the address and waits before holding it (a handover, or the majority lease).
    Acquiring,
    /// It neither holds nor claims it.
    Idle,
}

impl HoldingState {
    /// The lowercase name: `held`, `acquiring` or `idle`.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldingState::Held => "held",
            HoldingState::Acquiring => "acquiring",
            HoldingState::Idle => "idle",
        }
    }
}

/// A `duravip move` in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoveRecord {
    /// The host the address was moved to.
    pub host: String,
    /// The operation that moved it, `epoch.seq`.
    pub operation: String,
}

/// One address as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipState {
    /// The address.
    pub addr: IpAddr,
    /// The binding declaring it.
    pub binding: String,
    /// Who holds it, as far as this node knows: itself, or the best live claimant heard.
    pub owner: Option<String>,
    /// Whom this node's view elects.
    pub elected: Option<String>,
    /// This node's own state for it.
    pub holding: HoldingState,
    /// `owned`, `acquiring` or `unowned`.
    pub ownership: &'static str,
    /// `safe` (the view is settled), `settling`, or `minority` (majority policy without a
    /// majority of its candidates in view).
    pub safety: &'static str,
    /// The move in force, if any.
    pub moved: Option<MoveRecord>,
    /// `Duravip_Preference`.
    pub preference: Option<String>,
    /// The live nodes that may hold it (this node included if it may), by name.
    pub candidates: Vec<String>,
}

/// The state table of `cluster duravip show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipTable {
    /// This node's name.
    pub node: String,
    /// The partition policy.
    pub policy: Policy,
    /// True once the view has been unchanged for the settle time.
    pub settled: bool,
    /// The live nodes in this node's view, by name.
    pub view: Vec<String>,
    /// Seconds since the view last changed.
    pub view_stable_secs: u64,
    /// Seconds since the bindings were last configured.
    pub config_stable_secs: u64,
    /// Every address, in address order.
    pub vips: Vec<VipState>,
}

/// What a `duravip move` did on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    /// The address.
    pub addr: IpAddr,
    /// Its binding.
    pub binding: String,
    /// The host named.
    pub host: String,
    /// The operation, `epoch.seq`.
    pub operation: String,
    /// False if a newer move was already known (nothing changed).
    pub applied: bool,
    /// The newer move's operation when `applied` is false.
    pub superseded_by: Option<String>,
    /// This node's state for the address afterwards.
    pub holding: HoldingState,
}

/// What `duravip announce view` did on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Announced {
    /// The operation, `epoch.seq` (`0.0` when typed at the node's own console).
    pub operation: String,
    /// Nodes the state was sent to.
    pub peers: usize,
    /// Addresses this node holds.
    pub holding: usize,
    /// Addresses it manages.
    pub addresses: usize,
    /// Moves in force that it knows.
    pub moves: usize,
}

impl Announced {
    /// True when the announcement came from an operation, not from a local console.
    pub fn from_operation(&self) -> bool {
        self.operation != term_text(NO_TERM)
    }
}

/// What a node heard last from one candidate about an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimHeard {
    /// The move term it claims under (`0.0`: none).
    pub operation: String,
    /// Milliseconds since it was heard.
    pub age_ms: u64,
    /// It was a release notice.
    pub released: bool,
    /// It still counts (recent, not released).
    pub active: bool,
}

/// One live candidate of an address, as the election sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CandidateRow {
    /// The node.
    pub name: String,
    /// Its rendezvous score for the address, in hexadecimal (higher ranks first).
    pub score: String,
    /// Addresses the election table gives it.
    pub load: usize,
    /// It is the binding's preferred node.
    pub preferred: bool,
    /// What this node last heard from it about the address.
    pub claim: Option<ClaimHeard>,
}

/// `cluster duravip explain IP`: why this node's view elects the owner it elects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipExplanation {
    /// The address.
    pub addr: IpAddr,
    /// Its binding.
    pub binding: String,
    /// The partition policy.
    pub policy: Policy,
    /// Whom the view elects.
    pub elected: Option<String>,
    /// Why: `moved`, `preferred`, `spread` or `overflow`.
    pub why: Option<super::Why>,
    /// Who holds it as far as this node knows.
    pub owner: Option<String>,
    /// This node's own state for it.
    pub holding: HoldingState,
    /// The move in force.
    pub moved: Option<MoveRecord>,
    /// `Duravip_Preference`, and whether that node is live.
    pub preference: Option<String>,
    /// The preferred node is a live candidate.
    pub preference_live: bool,
    /// Addresses every live node gets by the spread ...
    pub quota: usize,
    /// ... and how many nodes get one more.
    pub quota_extra: usize,
    /// The view has been unchanged for the settle time.
    pub settled: bool,
    /// The view has settled once since this node started.
    pub mature: bool,
    /// Majority policy: a majority of the candidates is in view (always true under available).
    pub quorum: bool,
    /// The live candidates, highest score first.
    pub candidates: Vec<CandidateRow>,
}
